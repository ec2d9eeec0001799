//! Expiring exemptions through the webhook router over the live cluster view, on the view's
//! clock: applied with a warning before the expiry, denied after it, counted by
//! `dbhook_exemptions{state}` over the view.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use dbhook::policy::Policy;
use dbhook::server::webhook::{WebhookState, router};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use support::*;
use tower::ServiceExt as _;

/// A Rollout with a literal credential, exempted until `until` (T0 is 2027-01-15T08:00:00Z).
fn exempted_rollout(until: &str) -> Value {
    let mut v = app("web", "ghcr.io/acme/web:sha-1a2b3c4");
    v["apiVersion"] = json!("argoproj.io/v1alpha1");
    v["kind"] = json!("Rollout");
    v["metadata"]["annotations"] = json!({
        "dbhook.io/exempt": "db-url-plaintext",
        "dbhook.io/exempt-until": until,
        "dbhook.io/exempt-reason": "OPS-1234 move to the app Secret"
    });
    v["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "LEGACY_URL", "value": "postgresql://app:hunter2@db.shop/app"}]);
    v
}

fn admission_review(object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d8f7c1e-1111-4a2b-9c3d-000000000001",
            "kind": {"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout"},
            "resource": {"group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts"},
            "name": "web", "namespace": NS, "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "argocd-controller"}
        }
    })
}

async fn validate(h: &Harness, policy: &Policy, object: &Value) -> Value {
    let app = router(Arc::new(WebhookState {
        policy: Arc::new(arc_swap::ArcSwap::from_pointee(policy.clone())),
        view: h.view.clone(),
        metrics: h.metrics.clone(),
        max_body_bytes: 7 << 20,
        request_timeout: Duration::from_secs(10),
    }));
    let req = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&admission_review(object)).unwrap()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<Value>(&body).unwrap()["response"].clone()
}

fn gauge(h: &Harness, state: &str) -> Option<String> {
    let text = h.metrics.render();
    let prefix = format!("dbhook_exemptions{{state=\"{state}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

fn policy() -> Policy {
    Policy::from_yaml("rules: {db-url-plaintext: {allowExemption: true}}").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_warns_before_its_expiry_and_denies_after_it_on_the_view_clock() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    let rollout = exempted_rollout("2027-01-20");
    server.apply(ROLLOUTS, rollout.clone());
    let h = start_with(&server, policy(), |o| o.report_refresh = Duration::from_millis(100)).await;
    h.synced().await;

    // Five days ahead: within the default 14 warning days.
    let r = validate(&h, &policy(), &rollout).await;
    assert_eq!(r["allowed"], true, "{r}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("dbhook: exemption of [db-url-plaintext] expires on 2027-01-20"),
        "{warnings}"
    );
    assert!(!r.to_string().contains("hunter2"), "{r}");
    until("the report counts one expiring exemption", || {
        gauge(&h, "expiring").as_deref() == Some("1")
    })
    .await;
    assert_eq!(gauge(&h, "active").as_deref(), Some("0"));

    // Far ahead: active and silent.
    let far = exempted_rollout("2030-01-01");
    let r = validate(&h, &policy(), &far).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("warnings").is_none_or(Value::is_null), "{r}");

    // Six days later the date has passed: the exemption no longer applies.
    h.clock.advance_minutes(6 * 24 * 60);
    let r = validate(&h, &policy(), &rollout).await;
    assert_eq!(r["allowed"], false, "{r}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("[db-url-plaintext]"), "{message}");
    assert!(message.contains("(exemption expired on 2027-01-20)"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    until("the report counts one expired exemption", || {
        gauge(&h, "expired").as_deref() == Some("1")
    })
    .await;
    assert_eq!(gauge(&h, "expiring").as_deref(), Some("0"));
    let report = dbhook::cluster::LiveView::report(h.view.as_ref());
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == "db-url-plaintext")
        .expect("the finding is back in the report");
    let e = serde_json::to_value(&f.exemption).unwrap();
    assert_eq!(
        e,
        json!({"state": "expired", "until": "2027-01-20", "reason": "OPS-1234 move to the app Secret"})
    );

    // maxDays caps how far ahead an expiry may be.
    let capped =
        Policy::from_yaml("exemptions: {maxDays: 30}\nrules: {db-url-plaintext: {allowExemption: true}}").unwrap();
    let r = validate(&h, &capped, &far).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("more than 30 days ahead (exemptions.maxDays)"),
        "{r}"
    );
    // requireExpiry: an undated exemption does not apply.
    let strict =
        Policy::from_yaml("exemptions: {requireExpiry: true}\nrules: {db-url-plaintext: {allowExemption: true}}")
            .unwrap();
    let mut undated = far.clone();
    undated["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("dbhook.io/exempt-until");
    assert_eq!(validate(&h, &strict, &undated).await["allowed"], false);
    assert_eq!(validate(&h, &policy(), &undated).await["allowed"], true);
}

/// A lockstep denial over the live view names the migration Job it compared with, with the
/// resourceVersion the view read, and carries the short evidence in its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_evidence_names_the_job_with_its_resource_version() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    let job = server.apply(
        JOBS,
        migration_job("web-migrate", "ghcr.io/acme/web:sha-1111111", json!({})),
    );
    let rv = job["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let h = start(&server).await;
    h.synced().await;
    let rollout = admitted(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-2222222"));
    until("the view pairs the Job", || {
        !dbhook::view::View::migration_jobs_for(h.view.as_ref(), &rollout)
            .items
            .is_empty()
    })
    .await;
    let d = dbhook::engine::review(
        &dbhook::engine::Change::create(&rollout),
        h.view.as_ref(),
        &Policy::default(),
        h.now(),
    );
    let f = d
        .findings
        .iter()
        .find(|f| f.rule == "migration-image-lockstep")
        .expect("a lockstep finding");
    assert_eq!(f.evidence.observed, "ghcr.io/acme/web:sha-2222222");
    assert_eq!(f.evidence.expected, "ghcr.io/acme/web:sha-1111111");
    assert_eq!(
        serde_json::to_value(&f.evidence.objects).unwrap(),
        json!([{"apiVersion": "batch/v1", "kind": "Job", "namespace": NS, "name": "web-migrate", "resourceVersion": rv}])
    );
    let message = d.message.unwrap();
    assert!(
        message.ends_with("(expected ghcr.io/acme/web:sha-1111111, observed ghcr.io/acme/web:sha-2222222)"),
        "{message}"
    );
    // /report carries the same evidence once the Rollout is in the view.
    server.apply(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-2222222"));
    let evidence = eventually("the report has the lockstep finding", || async {
        let report = serde_json::to_value(dbhook::cluster::LiveView::report(h.view.as_ref())).unwrap();
        report["findings"]
            .as_array()?
            .iter()
            .find(|f| f["rule"] == "migration-image-lockstep" && f["object"]["kind"] == "Rollout")
            .map(|f| f["evidence"].clone())
    })
    .await;
    assert_eq!(evidence["objects"][0]["resourceVersion"], json!(rv));
    assert_eq!(evidence["observed"], "ghcr.io/acme/web:sha-2222222");
}
