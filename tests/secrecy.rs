//! Plaintext credentials that reach dbhook (in env, annotations, unknown kinds, malformed bodies
//! and watched objects) never come out again: not in logs at any level, not in warnings, denial
//! messages, audit annotations, 400 reasons, metrics or the report (SECURITY.md); nor do bearer
//! tokens sent to the admin port.
//!
//! The whole process logs JSON at `trace` into a buffer, as `dbhook serve` logs to stderr in a
//! cluster. Both tests share it: each asserts that no test's secret is in it.

mod support;
use support::server as server_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use dbhook::metrics::Metrics;
use dbhook::policy::Policy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{
    Pki, admin_get, client, config, container0, example, post, rollout_edited as rollout, send, start, url,
};
use support::{ALL_CRDS, CLUSTERS, FakeApiServer, NS, OBJECT_STORES, ROLLOUTS, SCHEDULED_BACKUPS, app, cnpg_cluster};

const PASSWORD: &str = "S3cretPassw0rd";
const URI: &str = "postgres://app:S3cretPassw0rd@db/app";
const JDBC: &str = "jdbc:postgresql://db:5432/app?user=app&password=S3cretPassw0rd";
const DSN: &str = "host=db user=app password=S3cretPassw0rd dbname=app";

/// Every log line of the process, as JSON.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || Sink(sink.clone()))
            .init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Fails naming where the password showed up, with some context.
fn assert_no_secret(what: &str, text: &str) {
    if let Some(at) = text.find(PASSWORD) {
        let start = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
        let end = (at + 200).min(text.len());
        let end = (end..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        panic!("the credential leaked into {what}: …{}…", &text[start..end]);
    }
}

/// A review of another kind, built on the Cluster example's envelope.
fn review_of(group: &str, kind: &str, object: Value) -> Value {
    let mut review = example("review-cluster-no-backup.json");
    review["request"]["kind"] = json!({"group": group, "version": "v1", "kind": kind});
    review["request"]["object"] = object;
    review
}

/// Reviews and bodies carrying the credential in every place a user or attacker might put it.
fn carriers() -> Vec<(String, Vec<u8>)> {
    let mut reviews: Vec<(String, Value)> = Vec::new();
    for (form, secret) in [("URI", URI), ("JDBC", JDBC), ("DSN", DSN)] {
        let s = json!(secret);
        let mut add = |what: &str, review: Value| reviews.push((format!("{what} ({form})"), review));
        add(
            "env DB_URL",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "value": s}])),
        );
        add(
            "env OTHER and an init container",
            rollout(|o| {
                container0(o)["env"] = json!([{"name": "OTHER", "value": s}]);
                o["spec"]["template"]["spec"]["initContainers"] =
                    json!([{"name": "init", "image": "busybox:1", "env": [{"name": "DB_URL", "value": s}]}]);
            }),
        );
        for key in [
            "note",
            "dbhook.io/secret-name",
            "dbhook.io/env-name",
            "dbhook.io/secret-key",
            "dbhook.io/containers",
            "dbhook.io/exempt",
            "dbhook.io/rollout",
        ] {
            add(
                &format!("annotation {key}"),
                rollout(|o| o["metadata"]["annotations"][key] = s.clone()),
            );
        }
        add(
            "the cluster label",
            rollout(|o| o["metadata"]["labels"]["dbhook.io/cluster"] = s.clone()),
        );
        add(
            "the image",
            rollout(|o| container0(o)["image"] = json!(format!("{secret}:latest"))),
        );
        add(
            "Cluster spec.env",
            review_of("postgresql.cnpg.io", "Cluster", {
                let mut c = cnpg_cluster("shop-pg");
                c["apiVersion"] = json!("postgresql.cnpg.io/v1");
                c["kind"] = json!("Cluster");
                c["spec"]["plugins"][0]["parameters"]["endpointURL"] = s.clone();
                c["spec"]["env"] = json!([{"name": "DB_URL", "value": s}]);
                c
            }),
        );
        add(
            "ObjectStore endpointURL and sidecar env",
            review_of(
                "barmancloud.cnpg.io",
                "ObjectStore",
                json!({
                "apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
                "metadata": {"name": "store", "namespace": "shop"},
                "spec": {"retentionPolicy": "30d",
                         "configuration": {"destinationPath": "s3://b/p", "endpointURL": s},
                         "instanceSidecarConfiguration": {"env": [{"name": "X", "value": s}]}}}),
            ),
        );
        add(
            "ScheduledBackup schedule",
            review_of(
                "postgresql.cnpg.io",
                "ScheduledBackup",
                json!({
                "apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
                "metadata": {"name": "daily", "namespace": "shop"},
                "spec": {"schedule": format!("0 0 2 * * {secret}"), "cluster": {"name": s}}}),
            ),
        );
        add(
            "a ConfigMap",
            review_of(
                "",
                "ConfigMap",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "db", "namespace": "shop", "annotations": {"url": s}}, "data": {"DB_URL": s}}),
            ),
        );
        add(
            "a Secret",
            review_of(
                "",
                "Secret",
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "shop"}, "stringData": {"uri": s}}),
            ),
        );
        // Malformed: the credential where the decoder expects something else.
        add("env as the credential", rollout(|o| container0(o)["env"] = s.clone()));
        add(
            "containers as the credential",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = s.clone()),
        );
        add(
            "valueFrom as the credential",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "value": s, "valueFrom": s}])),
        );
        add(
            "labels as the credential",
            rollout(|o| o["metadata"]["labels"] = s.clone()),
        );
        add(
            "Cluster spec.env as the credential",
            review_of(
                "postgresql.cnpg.io",
                "Cluster",
                json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "shop-pg", "namespace": "shop"}, "spec": {"env": s}}),
            ),
        );
        add(
            "schedule as a list",
            review_of(
                "postgresql.cnpg.io",
                "ScheduledBackup",
                json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
            "metadata": {"name": "daily", "namespace": "shop"}, "spec": {"schedule": [s]}}),
            ),
        );
        let mut envelope = |what: &str, field: &str| {
            let mut r = example("review-rollout.json");
            r["request"][field] = s.clone();
            add(what, r);
        };
        envelope("request.operation as the credential", "operation");
        envelope("request.dryRun as the credential", "dryRun");
        envelope("request.kind as the credential", "kind");
        envelope("request.userInfo as the credential", "userInfo");
        envelope("request.name as the credential", "name");
        envelope("request.namespace as the credential", "namespace");
        let mut unknown = example("review-rollout.json");
        unknown["request"]["kind"]["kind"] = s.clone();
        add("request.kind.kind as the credential", unknown);
        add(
            "the object's name and creationTimestamp",
            rollout(|o| {
                o["metadata"]["name"] = s.clone();
                o["metadata"]["creationTimestamp"] = s.clone();
            }),
        );
    }
    // A password on its own, where a decoder would quote it.
    let bare = json!(PASSWORD);
    reviews.push((
        "env as a bare password".into(),
        rollout(|o| container0(o)["env"] = bare.clone()),
    ));
    reviews.push((
        "env value as a list holding a bare password".into(),
        rollout(|o| container0(o)["env"] = json!([{"name": "DB_PASSWORD", "value": [bare]}])),
    ));
    reviews.push((
        "env value a bare password, valueFrom malformed".into(),
        rollout(|o| container0(o)["env"] = json!([{"name": "DB_PASSWORD", "value": bare, "valueFrom": bare}])),
    ));
    reviews.push((
        "a label value as a bare password".into(),
        rollout(|o| o["metadata"]["labels"] = json!({"pw": [bare]})),
    ));
    let mut r = example("review-rollout.json");
    r["request"]["operation"] = bare.clone();
    reviews.push(("request.operation as a bare password".into(), r));

    let mut out: Vec<(String, Vec<u8>)> = reviews
        .into_iter()
        .map(|(what, r)| (what, serde_json::to_vec(&r).unwrap()))
        .collect();
    let text = String::from_utf8(
        serde_json::to_vec(&rollout(|o| {
            container0(o)["env"] = json!([{"name": "DB_URL", "value": URI}])
        }))
        .unwrap(),
    )
    .unwrap();
    let cut = text.find(PASSWORD).unwrap() + PASSWORD.len() + 4;
    out.push((
        "a review truncated after the credential".into(),
        text.as_bytes()[..cut].to_vec(),
    ));
    out.push(("the credential as the body".into(), URI.as_bytes().to_vec()));
    out.push((
        "the credential as a JSON string body".into(),
        format!("\"{URI}\"").into_bytes(),
    ));
    out.push((
        "the credential as a key of the envelope".into(),
        format!("{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"{URI}\":1}}").into_bytes(),
    ));
    out.push((
        "the credential as the apiVersion".into(),
        format!("{{\"apiVersion\":\"{URI}\",\"kind\":\"AdmissionReview\",\"request\":{{}}}}").into_bytes(),
    ));
    out.push((
        "the credential as the kind".into(),
        format!("{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"{URI}\"}}").into_bytes(),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_reviews_never_reach_logs_warnings_denials_or_400_reasons() {
    logs();
    let pki = Pki::new();
    let enforce = start(config(pki.tls_paths())).await;
    let mut audit_config = config(pki.tls_paths());
    audit_config.policy = Arc::new(ArcSwap::from_pointee(Policy::from_yaml("mode: audit").unwrap()));
    let audit = start(audit_config).await;

    let carriers = carriers();
    let mut denied = 0;
    let mut rejected = 0;
    for server in [&enforce, &audit] {
        for h1 in [false, true] {
            let c = client(&pki.bundle.ca_cert, server.addr, h1);
            for (what, body) in &carriers {
                for path in ["/validate", "/mutate"] {
                    let reply = send(&c, &url(server.addr, path), body.clone()).await;
                    let context = format!("the answer to {what} on {path}");
                    assert!(
                        [StatusCode::OK, StatusCode::BAD_REQUEST].contains(&reply.status),
                        "{context}: {}",
                        reply.status
                    );
                    assert_no_secret(&context, &reply.text);
                    if reply.status == StatusCode::BAD_REQUEST {
                        rejected += 1;
                        continue;
                    }
                    let answer = reply.json();
                    if answer["response"]["allowed"] == false {
                        denied += 1;
                    }
                    if let Some(patch) = server_support::patch_of(&answer) {
                        assert_no_secret(
                            &format!("the patch for {what}"),
                            &serde_json::to_string(&patch).unwrap(),
                        );
                    }
                }
            }
        }
        for path in ["/metrics", "/report"] {
            let (_, body) = admin_get(server.admin_addr, path).await;
            assert_no_secret(path, &body);
        }
    }
    eprintln!(
        "secrecy: {} carriers × 8 requests; {denied} denied, {rejected} rejected with 400",
        carriers.len()
    );
    assert!(denied > 0 && rejected > 0, "both denials and 400s were exercised");

    let logs = captured();
    assert!(logs.contains("\"admission review\""), "the capture works");
    assert!(logs.contains("\"admission request rejected\""), "400s were logged");
    assert_no_secret("the logs", &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_watched_objects_never_reach_logs_or_the_report() {
    logs();
    let api = FakeApiServer::start(&ALL_CRDS).await;
    let mut cluster = cnpg_cluster("shop-pg");
    cluster["spec"]["env"] = json!([{"name": "DB_URL", "value": URI}]);
    api.apply(CLUSTERS, cluster);
    let mut broken = cnpg_cluster("broken-pg");
    broken["spec"]["env"] = json!(URI);
    api.apply(CLUSTERS, broken);
    let mut bare = cnpg_cluster("bare-pg");
    bare["spec"]["env"] = json!(PASSWORD);
    api.apply(CLUSTERS, bare);
    let mut web = app("web", "ghcr.io/acme/web:sha-1111111");
    web["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "DB_URL", "value": URI}]);
    web["metadata"]["annotations"] = json!({"dbhook.io/secret-name": URI, "note": JDBC});
    api.apply(ROLLOUTS, web);
    api.apply(
        SCHEDULED_BACKUPS,
        json!({"metadata": {"name": "daily", "namespace": NS},
               "spec": {"schedule": format!("0 0 2 * * {URI}"), "cluster": {"name": "shop-pg"}}}),
    );
    api.apply(
        OBJECT_STORES,
        json!({"metadata": {"name": "shop-pg-store", "namespace": NS},
               "spec": {"configuration": {"endpointURL": URI}, "retentionPolicy": JDBC}}),
    );

    let policy = Arc::new(ArcSwap::from_pointee(Policy::default()));
    let metrics = Arc::new(Metrics::new());
    let options = dbhook::cluster::ClusterOptions {
        report_debounce: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let view = dbhook::cluster::start(api.client(), policy.clone(), metrics.clone(), options).await;
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.view = view;
    config.policy = policy;
    config.metrics = metrics;
    let server = start(config).await;
    let report = server_support::eventually("the report covers the watched objects", || async {
        let (status, body) = admin_get(server.admin_addr, "/report").await;
        let report: Value = serde_json::from_str(&body).ok()?;
        (status == StatusCode::OK && report["summary"]["objects"].as_u64() >= Some(5)).then_some(body)
    })
    .await;
    assert!(
        report.contains("db-url-plaintext"),
        "the credential was found: {report}"
    );
    assert_no_secret("the report", &report);
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let reply = post(&h2, server.addr, "/validate", &example("review-rollout.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_no_secret("an answer judged against the view", &reply.text);
    assert_no_secret("/metrics", &admin_get(server.admin_addr, "/metrics").await.1);

    let logs = captured();
    assert!(
        logs.contains("cached without its spec"),
        "the malformed Cluster was logged"
    );
    assert_no_secret("the logs", &logs);
}

/// Bearer tokens sent to the admin port are checked with the API server but never logged, at
/// any level and whatever the outcome, nor echoed in a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_never_reach_logs_or_refusals() {
    use dbhook::server::auth::{AdminAccess, AuthOptions};
    logs();
    let api = FakeApiServer::start(&[]).await;
    // The "password" is each token in turn: allowed, not allowed, unknown.
    let pki = Pki::new();
    let mut cfg = config(pki.tls_paths());
    let options = AuthOptions {
        metrics: true,
        ..AuthOptions::default()
    };
    cfg.admin_access = Arc::new(AdminAccess::reviewed(api.client(), options));
    let server = start(cfg).await;
    let get = |path: &'static str, authorization: String| {
        let admin = server.admin_addr;
        async move {
            let response = reqwest::Client::new()
                .get(format!("http://{admin}{path}"))
                .header("authorization", authorization)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let mut seen = Vec::new();
    // Unknown, then known but not allowed, then allowed.
    seen.push(get("/report", format!("Bearer {PASSWORD}")).await);
    api.add_token(PASSWORD, "reader", &[]);
    seen.push(get("/metrics", format!("Bearer {PASSWORD}")).await);
    api.grant("reader", "/report");
    seen.push(get("/report", format!("Bearer {PASSWORD}x")).await);
    api.add_token(&format!("{PASSWORD}y"), "reader", &[]);
    seen.push(get("/report", format!("Bearer {PASSWORD}y")).await);
    // Malformed and another scheme.
    seen.push(get("/report", format!("Bearer {PASSWORD}\tq")).await);
    seen.push(get("/report", format!("Basic {PASSWORD}")).await);
    // The API server failing mid-review.
    api.go_down();
    seen.push(get("/report", format!("Bearer {PASSWORD}z")).await);
    let statuses: Vec<u16> = seen.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(statuses, [401, 403, 401, 200, 400, 401, 503]);
    for (status, body) in &seen[..3] {
        assert_no_secret(&format!("a {status} refusal"), body);
    }
    for (status, body) in &seen[4..] {
        assert_no_secret(&format!("a {status} refusal"), body);
    }
    assert!(
        api.reviews().iter().any(|r| r["spec"]["token"] == PASSWORD),
        "the token did reach the API server's review"
    );
    assert_no_secret("the logs", &captured());
}
