//! UPDATE ratcheting, dry runs and controller updates over real TLS, with AdmissionReviews in
//! the shape kube-apiserver sends them (`oldObject`, `options: UpdateOptions`, `dryRun`) and
//! objects as the API server stores them (managedFields, last-applied annotation, status).

use crate::server_support as support;

use std::sync::Arc;

use arc_swap::ArcSwap;
use dbhook::model::Object;
use dbhook::policy::Policy;
use dbhook::view::ManifestView;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const JOB_IMAGE: &str = "ghcr.io/acme/shop-web:sha-1111111";
const PLAINTEXT: &str = "postgres://shop:s3cret@shop-pg-rw.shop.svc:5432/shop";

/// Metadata as the API server returns it: uid, resourceVersion, managedFields, and the
/// annotation `kubectl apply` leaves.
fn meta(name: &str, labels: Value, annotations: Value) -> Value {
    let mut annotations = annotations;
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = json!(format!(
        "{{\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"shop\"}}}}\n"
    ));
    json!({
        "name": name, "namespace": "shop",
        "uid": "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        "resourceVersion": "481207", "generation": 4,
        "creationTimestamp": "2026-11-02T10:11:12Z",
        "labels": labels, "annotations": annotations,
        "managedFields": [
            {"manager": "argocd-controller", "operation": "Update", "apiVersion": "v1",
             "time": "2026-11-20T09:14:07Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {}}},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": "2026-11-20T09:14:09Z", "fieldsType": "FieldsV1", "subresource": "status",
             "fieldsV1": {"f:status": {}}}
        ]
    })
}

/// What a controller's write changes besides its own field: managedFields and, for the
/// client, nothing else of what dbhook judges.
fn touched_by(obj: &mut Value, manager: &str) {
    let entries = obj["metadata"]["managedFields"].as_array_mut().unwrap();
    entries.push(json!({"manager": manager, "operation": "Update", "apiVersion": "v1",
        "time": "2026-12-01T04:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}));
}

fn cluster(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": meta(name, json!({"app.kubernetes.io/part-of": "shop"}), json!({})),
        "spec": spec,
        "status": {"phase": "Cluster in healthy state", "instances": 3, "readyInstances": 3,
                   "currentPrimary": format!("{name}-1"), "latestGeneratedNode": 3}})
}

fn archiving_spec() -> Value {
    json!({"instances": 3, "imageName": "ghcr.io/cloudnative-pg/postgresql:17.5",
        "storage": {"size": "20Gi"}, "bootstrap": {"initdb": {"database": "shop", "owner": "shop"}},
        "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                     "parameters": {"barmanObjectName": "shop-backups"}}]})
}

fn pod_template(container: Value) -> Value {
    json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
           "spec": {"containers": [container], "restartPolicy": "Always"}})
}

fn rollout(image: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": meta("web", json!({"app.kubernetes.io/name": "web", "dbhook.io/cluster": "shop-pg"}),
                         json!({"rollout.argoproj.io/revision": "4"})),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}]}},
                 "template": pod_template(json!({"name": "web", "image": image,
                     "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}]}))},
        "status": {"phase": "Healthy", "replicas": 3, "readyReplicas": 3, "currentPodHash": "6d4b9c7f8"}})
}

fn deployment(image: &str, db_url: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("api", json!({"app.kubernetes.io/name": "api", "dbhook.io/cluster": "shop-pg"}),
                         json!({"deployment.kubernetes.io/revision": "7"})),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
                 "template": pod_template(json!({"name": "api", "image": image,
                     "env": [{"name": "DB_URL", "value": db_url}]}))},
        "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 2}})
}

fn migration_job(name: &str, image: &str, env: Value, finalizers: Value) -> Value {
    let mut metadata = meta(
        name,
        json!({"dbhook.io/cluster": "shop-pg"}),
        json!({"argocd.argoproj.io/hook": "PreSync",
               "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded"}),
    );
    metadata["finalizers"] = finalizers;
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
        "spec": {"backoffLimit": 3, "completions": 1, "parallelism": 1,
                 "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "migrate", "image": image, "command": ["/app/migrate", "up"], "env": env}]}}},
        "status": {"succeeded": 1, "startTime": "2026-11-20T09:14:08Z", "completionTime": "2026-11-20T09:14:40Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}})
}

/// An AdmissionReview as kube-apiserver sends it for an UPDATE of `old` into `object`.
fn update(uid: &str, object: &Value, old: Value, dry_run: bool) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())});
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": object["metadata"]["name"], "namespace": "shop", "operation": "UPDATE",
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": dry_run,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "argocd-controller"}}})
}

/// The cluster the reviews are judged against: backups in place, and the PreSync migration Job
/// of the current release.
fn view() -> Arc<ManifestView> {
    let store = json!({"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
        "metadata": {"name": "shop-backups", "namespace": "shop"},
        "spec": {"retentionPolicy": "30d", "configuration": {"destinationPath": "s3://shop-pg-backups/shop-pg",
            "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}});
    let scheduled = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
        "metadata": {"name": "shop-pg-daily", "namespace": "shop"},
        "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": "shop-pg"}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}});
    let objects = [
        store,
        scheduled,
        cluster("shop-pg", archiving_spec()),
        migration_job("web-migrate", JOB_IMAGE, json!([]), json!([])),
    ];
    let objects = objects
        .iter()
        .map(|o| Arc::new(Object::from_value(o).unwrap()))
        .collect();
    // The cluster as the watch caches would hold it: a synced view at admission.
    Arc::new(ManifestView::at_admission(objects))
}

async fn server_with(policy: Policy) -> (Pki, dbhook::server::RunningServer, reqwest::Client) {
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.view = view();
    config.policy = Arc::new(ArcSwap::from_pointee(policy));
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    (pki, server, h2)
}

/// Validates `review`; returns the response after checking the envelope.
async fn validate(client: &reqwest::Client, addr: std::net::SocketAddr, review: &Value) -> Value {
    let reply = post(client, addr, "/validate", review).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let answer = reply.json();
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    answer["response"].clone()
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn has_warning(response: &Value, prefix: &str) -> bool {
    warnings(response).iter().any(|w| w.starts_with(prefix))
}

fn denial(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    response["status"]["message"].as_str().unwrap().to_string()
}

fn violations(response: &Value) -> Value {
    serde_json::from_str(
        response["auditAnnotations"]["violations"]
            .as_str()
            .expect("violations annotation"),
    )
    .unwrap()
}

fn legacy_cluster() -> Value {
    cluster(
        "legacy-pg",
        json!({"instances": 1, "storage": {"size": "5Gi"}, "bootstrap": {"initdb": {"database": "legacy"}}}),
    )
}

#[tokio::test]
async fn a_label_only_update_of_a_non_compliant_cluster_is_allowed_with_a_pre_existing_warning() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = legacy_cluster();
    let mut new = old.clone();
    new["metadata"]["labels"]["team"] = json!("payments");
    touched_by(&mut new, "kubectl-label");
    let response = validate(&h2, server.addr, &update("u-label", &new, old.clone(), false)).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        has_warning(&response, "dbhook: [backup-configured] pre-existing: "),
        "{:?}",
        warnings(&response)
    );
    let listed = violations(&response);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "backup-configured")
        .unwrap();
    assert_eq!(
        (entry["action"].as_str(), entry["state"].as_str()),
        (Some("deny"), Some("pre-existing"))
    );
    // The same Cluster created now is denied: the ratchet only forgives what was there.
    let created = {
        let mut r = update("u-create", &new, Value::Null, false);
        r["request"]["operation"] = json!("CREATE");
        r["request"]["options"] = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
        r
    };
    let message = denial(&validate(&h2, server.addr, &created).await);
    assert!(message.contains("[backup-configured]"), "{message}");
    let metrics = metrics(server.admin_addr).await;
    for series in [
        r#"dbhook_findings_total{rule="backup-configured",action="deny",mode="enforce",state="pre-existing"} 1"#,
        r#"dbhook_findings_total{rule="backup-configured",action="deny",mode="enforce"} 1"#,
        r#"dbhook_admission_requests_total{webhook="validate",kind="Cluster",operation="UPDATE",result="allowed"} 1"#,
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
}

#[tokio::test]
async fn an_update_that_removes_wal_archiving_is_denied() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = cluster("shop-pg", archiving_spec());
    let mut new = old.clone();
    new["spec"].as_object_mut().unwrap().remove("plugins");
    touched_by(&mut new, "kubectl-client-side-apply");
    let response = validate(&h2, server.addr, &update("u-wal", &new, old.clone(), false)).await;
    let message = denial(&response);
    assert!(
        message.starts_with("dbhook denied Cluster shop/shop-pg: [backup-configured] "),
        "{message}"
    );
    assert_eq!(violations(&response)[0]["rule"], "backup-configured");
    // Its label-only update is fine: nothing to ratchet, nothing to deny.
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("payments");
    let response = validate(&h2, server.addr, &update("u-ok", &relabelled, old, false)).await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn an_image_bump_keeps_a_pre_existing_plaintext_url_but_a_new_value_is_denied() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = deployment("ghcr.io/acme/shop-api:sha-1111111", PLAINTEXT);
    let bumped = deployment("ghcr.io/acme/shop-api:sha-2222222", PLAINTEXT);
    let response = validate(&h2, server.addr, &update("u-bump", &bumped, old.clone(), false)).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        has_warning(
            &response,
            "dbhook: [db-url-plaintext] pre-existing: container api env DB_URL"
        ),
        "{:?}",
        warnings(&response)
    );
    let other = deployment(
        "ghcr.io/acme/shop-api:sha-2222222",
        &PLAINTEXT.replace("s3cret", "n3w-s3cret"),
    );
    let response = validate(&h2, server.addr, &update("u-new", &other, old, false)).await;
    let message = denial(&response);
    assert!(
        message.contains("[db-url-plaintext] container api env DB_URL"),
        "{message}"
    );
    let text = response.to_string();
    assert!(!text.contains("s3cret"), "no credential in the answer: {text}");
}

#[tokio::test]
async fn a_finalizer_removal_of_a_violating_job_is_allowed_even_under_a_strict_policy() {
    let strict = Policy::from_yaml("rules:\n  db-url-plaintext: {allowExistingViolations: false}\n").unwrap();
    let (_pki, server, h2) = server_with(strict).await;
    let env = json!([{"name": "DB_URL", "value": PLAINTEXT}]);
    let old = migration_job(
        "web-migrate",
        JOB_IMAGE,
        env.clone(),
        json!(["argocd.argoproj.io/hook-finalizer"]),
    );
    let mut released = migration_job("web-migrate", JOB_IMAGE, env, json!([]));
    touched_by(&mut released, "argocd-controller");
    released["metadata"]["resourceVersion"] = json!("481299");
    let response = validate(&h2, server.addr, &update("u-fin", &released, old.clone(), false)).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(has_warning(&response, "dbhook: [db-url-plaintext] pre-existing: "));
    // Anything more than the finalizer is judged strictly under this policy.
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("payments");
    let message = denial(&validate(&h2, server.addr, &update("u-strict", &relabelled, old.clone(), false)).await);
    assert!(message.contains("[db-url-plaintext]"), "{message}");
    // A Job being deleted is never held up.
    let mut deleting = old.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-01T04:00:00Z");
    let mut deleting_relabelled = deleting.clone();
    deleting_relabelled["metadata"]["labels"]["team"] = json!("payments");
    let response = validate(
        &h2,
        server.addr,
        &update("u-del", &deleting_relabelled, deleting, false),
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn a_lockstep_mismatch_on_a_dry_run_is_warned_not_denied() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = rollout(JOB_IMAGE);
    let next = rollout("ghcr.io/acme/shop-web:sha-2222222");
    let review = update("u-dry", &next, old, true);
    let response = validate(&h2, server.addr, &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        has_warning(
            &response,
            "dbhook: [migration-image-lockstep] image ghcr.io/acme/shop-web"
        ),
        "{:?}",
        warnings(&response)
    );
    // The real request is denied.
    let mut real = review.clone();
    real["request"]["dryRun"] = json!(false);
    real["request"]["uid"] = json!("u-real");
    let message = denial(&validate(&h2, server.addr, &real).await);
    assert!(message.contains("[migration-image-lockstep]"), "{message}");
}

#[tokio::test]
async fn a_controller_annotation_update_of_a_rollout_whose_image_already_mismatched_is_allowed() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = rollout("ghcr.io/acme/shop-web:sha-2222222");
    let mut new = old.clone();
    new["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("5");
    new["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = json!("shop:argoproj.io/Rollout:shop/web");
    new["status"]["phase"] = json!("Progressing");
    touched_by(&mut new, "rollouts-controller");
    let response = validate(&h2, server.addr, &update("u-ctl", &new, old.clone(), false)).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        has_warning(
            &response,
            "dbhook: [migration-image-lockstep] pre-existing: image ghcr.io/acme/shop-web"
        ),
        "{:?}",
        warnings(&response)
    );
    // `kubectl argo rollouts set image` to another wrong image introduces a new mismatch.
    let other = rollout("ghcr.io/acme/shop-web:sha-3333333");
    let message = denial(&validate(&h2, server.addr, &update("u-set", &other, old, false)).await);
    assert!(message.contains("[migration-image-lockstep]"), "{message}");
}

#[tokio::test]
async fn allow_existing_violations_false_restores_strict_judging() {
    let strict = Policy::from_yaml("rules:\n  backup-configured: {allowExistingViolations: false}\n").unwrap();
    let (_pki, server, h2) = server_with(strict).await;
    let old = legacy_cluster();
    let mut new = old.clone();
    new["metadata"]["labels"]["team"] = json!("payments");
    let response = validate(&h2, server.addr, &update("u-strict", &new, old, false)).await;
    let message = denial(&response);
    assert!(message.contains("[backup-configured]"), "{message}");
    assert!(!has_warning(&response, "dbhook: [backup-configured] pre-existing"));
    // Other rules keep the default: the plaintext URL of an untouched env stays a warning.
    let old = deployment("ghcr.io/acme/shop-api:sha-1111111", PLAINTEXT);
    let bumped = deployment("ghcr.io/acme/shop-api:sha-2222222", PLAINTEXT);
    let response = validate(&h2, server.addr, &update("u-bump", &bumped, old, false)).await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn an_unusable_old_object_is_judged_as_a_new_one_with_a_warning() {
    let (_pki, server, h2) = server_with(Policy::default()).await;
    let old = deployment("ghcr.io/acme/shop-api:sha-1111111", PLAINTEXT);
    let bumped = deployment("ghcr.io/acme/shop-api:sha-2222222", PLAINTEXT);
    let mut undecodable = old.clone();
    undecodable["spec"]["template"]["spec"]["containers"] = json!("not a list");
    let mut bad_metadata = old.clone();
    bad_metadata["metadata"]["labels"] = json!("not a map");
    let config_map =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api", "namespace": "shop"}, "data": {}});
    let cases = [
        ("undecodable", undecodable, "oldObject cannot be decoded: "),
        ("bad metadata", bad_metadata, "oldObject cannot be decoded: metadata"),
        (
            "another kind",
            config_map,
            "oldObject is a v1 ConfigMap, not a apps/v1 Deployment",
        ),
        ("missing", Value::Null, "the UPDATE carries no oldObject"),
        (
            "a number",
            json!(42),
            "oldObject cannot be decoded: the object is not a JSON object",
        ),
    ];
    for (label, old, reason) in cases {
        let response = validate(&h2, server.addr, &update(label, &bumped, old, false)).await;
        let message = denial(&response);
        assert!(message.contains("[db-url-plaintext]"), "{label}: {message}");
        assert!(
            warnings(&response)
                .iter()
                .any(|w| w.starts_with(&format!("dbhook: {reason}")) && w.contains("no finding counts as pre-existing")),
            "{label}: {:?}",
            warnings(&response)
        );
    }
    // A compliant object is still allowed: the warning alone never denies.
    let clean = rollout(JOB_IMAGE);
    let response = validate(&h2, server.addr, &update("clean", &clean, json!(42), false)).await;
    assert_eq!(response["allowed"], true, "{response}");
}
