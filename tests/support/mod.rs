//! Shared pieces of the cluster-view tests: the fake API server, starting a view against it,
//! polling with a generous upper bound, a movable clock and real-shaped objects.

#![allow(dead_code)]

pub mod fake_apiserver;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use dbhook::cluster::{self, ClusterOptions, ClusterView};
use dbhook::metrics::Metrics;
use dbhook::model::Object;
use dbhook::policy::Policy;
use dbhook::view::Lookup;
use serde_json::{Value, json};

pub use fake_apiserver::*;

/// How long any condition may take before a test gives up. Generous: the machine is shared.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `f` until it returns `Some`, panicking with `what` after [`PATIENCE`].
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `cond` holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    eventually(what, || cond().then_some(())).await;
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

pub const T0: i64 = 1_800_000_000;

impl TestClock {
    pub fn new() -> TestClock {
        TestClock(Arc::new(AtomicI64::new(T0)))
    }
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0.load(Ordering::SeqCst), 0).unwrap()
    }
    pub fn advance_minutes(&self, m: i64) {
        self.0.fetch_add(m * 60, Ordering::SeqCst);
    }
    pub fn as_clock(&self) -> cluster::Clock {
        let t = self.0.clone();
        Arc::new(move || DateTime::from_timestamp(t.load(Ordering::SeqCst), 0).unwrap_or_default())
    }
}

/// Options for tests: quick discovery and report, the default staleness, a test clock.
pub fn options(clock: &TestClock) -> ClusterOptions {
    ClusterOptions {
        discovery_interval: Duration::from_millis(200),
        report_debounce: Duration::from_millis(50),
        clock: clock.as_clock(),
        ..ClusterOptions::default()
    }
}

/// A view started against `server`, with what it was started with.
pub struct Harness {
    pub view: Arc<ClusterView>,
    pub policy: Arc<ArcSwap<Policy>>,
    pub metrics: Arc<Metrics>,
    pub clock: TestClock,
}

/// Logs of the view and kube under `RUST_LOG` (e.g. `RUST_LOG=dbhook=debug,kube=debug`),
/// captured per test.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub async fn start_with(server: &FakeApiServer, policy: Policy, opts: impl FnOnce(&mut ClusterOptions)) -> Harness {
    init_logs();
    let clock = TestClock::new();
    let mut o = options(&clock);
    opts(&mut o);
    let policy = Arc::new(ArcSwap::from_pointee(policy));
    let metrics = Arc::new(Metrics::new());
    let view = cluster::start(server.client(), policy.clone(), metrics.clone(), o).await;
    Harness {
        view,
        policy,
        metrics,
        clock,
    }
}

pub async fn start(server: &FakeApiServer) -> Harness {
    start_with(server, Policy::default(), |_| {}).await
}

impl Harness {
    /// Waits until every started watch has synced.
    pub async fn synced(&self) {
        use dbhook::view::LiveView;
        until("the view has synced", || self.view.synced()).await;
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

// --- real-shaped objects -------------------------------------------------------------------

pub const NS: &str = "shop";

pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "spec": {"finalizers": ["kubernetes"]},
           "status": {"phase": "Active"}})
}

/// A CNPG Cluster archiving WAL to an ObjectStore through the Barman Cloud plugin.
pub fn cnpg_cluster(name: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": NS,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\":\"copy\"}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}]},
        "spec": {
            "instances": 3,
            "storage": {"size": "20Gi"},
            "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                         "parameters": {"barmanObjectName": format!("{name}-store")}}]
        },
        "status": {"phase": "Cluster in healthy state", "readyInstances": 3}
    })
}

pub fn scheduled_backup(name: &str, cluster: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": NS},
           "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": cluster}, "method": "plugin",
                    "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}})
}

pub fn object_store(name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": NS},
           "spec": {"retentionPolicy": "30d",
                    "configuration": {"destinationPath": "s3://backups/shop", "s3Credentials": {"inheritFromIAMRole": true}}}})
}

fn pod_template(container: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": container}},
           "spec": {"containers": [{"name": container, "image": image,
               "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}]}]}})
}

/// An Argo CD PreSync migration Job for cluster `shop-pg`, with `extra` annotations.
pub fn migration_job(name: &str, image: &str, extra: Value) -> Value {
    let mut annotations = json!({"argocd.argoproj.io/hook": "PreSync"});
    if let (Some(a), Some(e)) = (annotations.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"dbhook.io/cluster": "shop-pg"},
                     "annotations": annotations},
        "spec": {"backoffLimit": 1, "template": {
            "metadata": {"labels": {"app": "migrate"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "migrate", "image": image, "args": ["migrate", "up"],
                         "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}]}]}}},
        "status": {"succeeded": 1}
    })
}

/// A labelled app workload (Rollout, Deployment or StatefulSet body).
pub fn app(name: &str, image: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod_template(name, image)}
    })
}

/// `value` as the Object an admission request would carry.
pub fn admitted(res: ResourceType, mut value: Value) -> Object {
    value["apiVersion"] = json!(res.api_version());
    value["kind"] = json!(res.kind);
    Object::from_value(&value).unwrap()
}

/// A lookup's answer as text: `absent`, `unknown` or the present object's name.
pub fn show(l: Lookup<Arc<Object>>) -> String {
    match l {
        Lookup::Present(o) => o.name().to_string(),
        Lookup::Absent => "absent".to_string(),
        Lookup::Unknown => "unknown".to_string(),
    }
}

/// The present object's name.
pub fn present(l: Lookup<Arc<Object>>) -> Option<String> {
    l.present().map(|o| o.name().to_string())
}

pub fn names(l: &dbhook::view::Listing) -> Vec<String> {
    let mut n: Vec<String> = l.items.iter().map(|o| o.name().to_string()).collect();
    n.sort();
    n
}

// --- objects as a busy cluster holds them (memory measurements) ---------------------------

fn managed_fields() -> Value {
    json!([{"manager": "argocd-controller", "operation": "Apply", "apiVersion": "batch/v1",
            "time": "2027-01-15T08:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:argocd.argoproj.io/hook": {}}, "f:labels": {"f:dbhook.io/cluster": {}}},
                         "f:spec": {"f:backoffLimit": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"migrate\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
           {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "batch/v1",
            "time": "2027-01-15T08:01:00Z", "fieldsType": "FieldsV1", "subresource": "status",
            "fieldsV1": {"f:status": {"f:conditions": {}, "f:succeeded": {}, "f:completionTime": {}, "f:startTime": {}}}}])
}

/// Migration Job `i` of 10,000 as the API server returns it: managed fields, a last-applied
/// copy, resources and status, spread over 100 namespaces.
pub fn real_shaped_job(i: usize) -> Value {
    let ns = format!("team-{}", i % 100);
    let mut j = migration_job(
        &format!("web-migrate-{i}"),
        &format!("ghcr.io/acme/web-{}:sha-{:07x}", i % 100, i),
        json!({"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
               "argocd.argoproj.io/tracking-id": format!("{ns}:batch/Job:{ns}/web-migrate-{i}")}),
    );
    j["metadata"]["namespace"] = json!(ns);
    j["metadata"]["labels"]["app.kubernetes.io/instance"] = json!(format!("web-{}", i % 100));
    j["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = json!(format!("c0ffee00-0000-4000-8000-{i:012}"));
    j["metadata"]["managedFields"] = managed_fields();
    j["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(serde_json::to_string(&j["spec"]).unwrap());
    j["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}});
    j["spec"]["template"]["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    j["status"] = json!({"succeeded": 1, "startTime": "2027-01-15T08:00:00Z", "completionTime": "2027-01-15T08:01:00Z",
        "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": "2027-01-15T08:01:00Z", "lastTransitionTime": "2027-01-15T08:01:00Z"}]});
    j
}

/// CNPG Cluster `i` as the API server returns it, spread over 100 namespaces.
pub fn real_shaped_cluster(i: usize) -> Value {
    let mut c = cnpg_cluster(&format!("pg-{i}"));
    c["metadata"]["namespace"] = json!(format!("team-{}", i % 100));
    c["metadata"]["managedFields"] = managed_fields();
    c["spec"]["postgresql"] = json!({"parameters": {"max_connections": "200", "shared_buffers": "256MB"}});
    c["spec"]["resources"] = json!({"requests": {"cpu": "500m", "memory": "1Gi"}});
    c["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "reason": "ClusterIsReady"}]);
    c
}
