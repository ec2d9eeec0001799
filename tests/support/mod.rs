//! Everything the integration tests share, in one tree:
//! - here: the cluster-view harness over the fake API server, a movable clock, and
//!   real-shaped objects;
//! - [`fake_apiserver`]: list + watch over HTTP, as kube-apiserver answers;
//! - [`server`]: the in-process webhook server and clients that call it as kube-apiserver does;
//! - [`cli`]: the built binary as a subprocess, in a hermetic environment (`dbhook`, and
//!   `dbhook serve` in the background);
//! - [`wait`]: the one polling helper.

#![allow(dead_code)]

pub mod cli;
pub mod fake_apiserver;
pub mod server;
pub mod wait;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use dbhook::cluster::{self, ClusterOptions, ClusterView};
use dbhook::metrics::Metrics;
use dbhook::model::Object;
use dbhook::policy::Policy;
use dbhook::view::Lookup;
use serde_json::{Value, json};

pub use fake_apiserver::*;
// Re-exports under the names the tests use; each test binary uses a different part.
#[allow(unused_imports)]
pub use wait::{PATIENCE, eventually, until};

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
        use dbhook::cluster::LiveView;
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
//
// Shaped after what kube-apiserver returns for objects applied by Argo CD with client-side apply
// and reconciled by their controllers: every defaulted field, the last-applied copy, managed
// fields of the applier and the controller, status. Spread over `SPREAD_NAMESPACES` namespaces.

/// Namespaces the realistic cluster spreads its objects over.
pub const SPREAD_NAMESPACES: usize = 50;

/// Clusters in the realistic cluster; Job `i` uses Cluster `i % CLUSTERS_IN_CLUSTER`.
pub const CLUSTERS_IN_CLUSTER: usize = 1_000;

fn uid(kind: u8, i: usize) -> String {
    format!("{kind:02x}c0ffee-{:04x}-4{:03x}-8000-{i:012x}", i % 65_536, i % 4096)
}

fn managed(manager: &str, operation: &str, api_version: &str, subresource: Option<&str>, fields: Value) -> Value {
    let mut m = json!({"manager": manager, "operation": operation, "apiVersion": api_version,
                       "time": "2027-01-15T08:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields});
    if let Some(s) = subresource {
        m["subresource"] = json!(s);
    }
    m
}

/// Migration Job `i` of a large cluster: an Argo CD PreSync hook on its app's image, completed.
pub fn real_shaped_job(i: usize) -> Value {
    let ns = format!("team-{}", i % SPREAD_NAMESPACES);
    let app = format!("app-{}", i % CLUSTERS_IN_CLUSTER);
    let name = format!("{app}-migrate-{i:07x}");
    let uid = uid(1, i);
    let image = format!("ghcr.io/acme/{app}:sha-{i:07x}");
    let labels = json!({"app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod"),
        "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/component": "migration",
        "dbhook.io/cluster": format!("pg-{}", i % CLUSTERS_IN_CLUSTER)});
    let container = json!({"name": "migrate", "image": image, "args": ["migrate", "up", "--dir", "/migrations"],
        "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": format!("pg-{}-app", i % CLUSTERS_IN_CLUSTER), "key": "uri"}}},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}}});
    let applied = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "annotations": {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}},
        "spec": {"backoffLimit": 1, "template": {"metadata": {"labels": labels},
                 "spec": {"restartPolicy": "Never", "serviceAccountName": app, "containers": [container]}}}});
    let mut pod_labels = labels.clone();
    pod_labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    pod_labels["batch.kubernetes.io/job-name"] = json!(name);
    pod_labels["controller-uid"] = json!(uid);
    pod_labels["job-name"] = json!(name);
    let mut container = container;
    container["imagePullPolicy"] = json!("IfNotPresent");
    container["terminationMessagePath"] = json!("/dev/termination-log");
    container["terminationMessagePolicy"] = json!("File");
    let metadata = json!({
        "name": name, "namespace": ns, "uid": uid, "resourceVersion": format!("{}", 1_000_000 + i),
        "generation": 1, "creationTimestamp": "2027-01-15T08:00:00Z", "labels": pod_labels,
        "annotations": {
            "argocd.argoproj.io/hook": "PreSync",
            "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
            "argocd.argoproj.io/tracking-id": format!("{app}-prod:batch/Job:{ns}/{name}"),
            "batch.kubernetes.io/job-tracking": "",
            "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&applied).unwrap_or_default()
        },
        "managedFields": [
            managed("argocd-controller", "Update", "batch/v1", None, json!({
                "f:metadata": {"f:annotations": {".": {}, "f:argocd.argoproj.io/hook": {}, "f:argocd.argoproj.io/hook-delete-policy": {},
                                                 "f:argocd.argoproj.io/tracking-id": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                               "f:labels": {".": {}, "f:app.kubernetes.io/component": {}, "f:app.kubernetes.io/instance": {},
                                            "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}, "f:dbhook.io/cluster": {}}},
                "f:spec": {"f:backoffLimit": {}, "f:completionMode": {}, "f:completions": {}, "f:manualSelector": {},
                           "f:parallelism": {}, "f:podReplacementPolicy": {}, "f:suspend": {},
                           "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}}},
                               "f:spec": {"f:containers": {"k:{\"name\":\"migrate\"}": {".": {}, "f:args": {}, "f:env": {}, "f:image": {},
                                   "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}, "f:securityContext": {},
                                   "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                                   "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
                                   "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}}}}})),
            managed("kube-controller-manager", "Update", "batch/v1", Some("status"), json!({
                "f:status": {"f:completionTime": {}, "f:conditions": {}, "f:ready": {}, "f:startTime": {}, "f:succeeded": {},
                             "f:terminating": {}, "f:uncountedTerminatedPods": {}}}))
        ]
    });
    json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 1, "completionMode": "NonIndexed", "suspend": false,
            "manualSelector": false, "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": pod_labels},
                "spec": {"containers": [container], "restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                         "dnsPolicy": "ClusterFirst", "serviceAccountName": app, "serviceAccount": app,
                         "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                         "schedulerName": "default-scheduler"}
            }
        },
        "status": {
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": "2027-01-15T08:01:00Z", "lastTransitionTime": "2027-01-15T08:01:00Z"},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": "2027-01-15T08:01:00Z", "lastTransitionTime": "2027-01-15T08:01:00Z"}
            ],
            "startTime": "2027-01-15T08:00:00Z", "completionTime": "2027-01-15T08:01:00Z",
            "succeeded": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}
        }
    })
}

/// CNPG Cluster `i`: three instances archiving WAL through the Barman Cloud plugin, with the
/// defaults CNPG's webhook fills in and the status its operator writes.
pub fn real_shaped_cluster(i: usize) -> Value {
    let ns = format!("team-{}", i % SPREAD_NAMESPACES);
    let name = format!("pg-{i}");
    let applied = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"instances": 3, "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4-standard-bookworm",
                 "storage": {"size": "20Gi"},
                 "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                              "parameters": {"barmanObjectName": format!("{name}-store")}}]}});
    let pods: Vec<String> = (1..=3).map(|n| format!("{name}-{n}")).collect();
    let metadata = json!({
        "name": name, "namespace": ns, "uid": uid(2, i), "resourceVersion": format!("{}", 2_000_000 + i),
        "generation": 3, "creationTimestamp": "2027-01-10T08:00:00Z",
        "labels": {"app.kubernetes.io/instance": format!("{name}-prod")},
        "annotations": {"argocd.argoproj.io/tracking-id": format!("{name}-prod:postgresql.cnpg.io/Cluster:{ns}/{name}"),
                        "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&applied).unwrap_or_default()},
        "managedFields": [
            managed("argocd-controller", "Update", "postgresql.cnpg.io/v1", None, json!({
                "f:metadata": {"f:annotations": {".": {}, "f:argocd.argoproj.io/tracking-id": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                               "f:labels": {".": {}, "f:app.kubernetes.io/instance": {}}},
                "f:spec": {".": {}, "f:imageName": {}, "f:instances": {}, "f:plugins": {}, "f:storage": {".": {}, "f:size": {}}}})),
            managed("manager", "Update", "postgresql.cnpg.io/v1", Some("status"), json!({
                "f:status": {".": {}, "f:certificates": {}, "f:cloudNativePGCommitHash": {}, "f:conditions": {}, "f:currentPrimary": {},
                             "f:healthyPVC": {}, "f:image": {}, "f:instanceNames": {}, "f:instances": {}, "f:instancesStatus": {},
                             "f:phase": {}, "f:readyInstances": {}, "f:topology": {}, "f:writeService": {}}}))
        ]
    });
    let spec = json!({
        "affinity": {"podAntiAffinityType": "preferred"}, "bootstrap": {"initdb": {"database": "app", "encoding": "UTF8",
            "localeCType": "C", "localeCollate": "C", "owner": "app"}},
        "enablePDB": true, "enableSuperuserAccess": false, "failoverDelay": 0,
        "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4-standard-bookworm", "instances": 3, "logLevel": "info",
        "maxSyncReplicas": 0, "minSyncReplicas": 0,
        "monitoring": {"customQueriesConfigMap": [{"key": "queries", "name": "cnpg-default-monitoring"}],
                       "disableDefaultQueries": false, "enablePodMonitor": false},
        "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "enabled": true, "isWALArchiver": true,
                     "parameters": {"barmanObjectName": format!("{name}-store")}}],
        "postgresGID": 26, "postgresUID": 26,
        "postgresql": {"parameters": {"archive_mode": "on", "archive_timeout": "5min", "dynamic_shared_memory_type": "posix",
            "full_page_writes": "on", "log_destination": "csvlog", "log_directory": "/controller/log", "log_filename": "postgres",
            "log_rotation_age": "0", "log_rotation_size": "0", "log_truncate_on_rotation": "false", "logging_collector": "on",
            "max_connections": "200", "max_parallel_workers": "32", "max_replication_slots": "32", "max_worker_processes": "32",
            "shared_buffers": "256MB", "shared_memory_type": "mmap", "ssl_max_protocol_version": "TLSv1.3",
            "ssl_min_protocol_version": "TLSv1.3", "wal_keep_size": "512MB", "wal_level": "logical",
            "wal_log_hints": "on", "wal_receiver_timeout": "5s", "wal_sender_timeout": "5s"},
            "syncReplicaElectionConstraint": {"enabled": false}},
        "primaryUpdateMethod": "restart", "primaryUpdateStrategy": "unsupervised",
        "replicationSlots": {"highAvailability": {"enabled": true, "slotPrefix": "_cnpg_"},
                             "synchronizeReplicas": {"enabled": true}, "updateInterval": 30},
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
        "smartShutdownTimeout": 180, "startDelay": 3600, "stopDelay": 1800,
        "storage": {"resizeInUseVolumes": true, "size": "20Gi"}, "switchoverDelay": 3600
    });
    let certificates = json!({
            "availableArchitectures": [{"goArch": "amd64", "hash": "0f3d6a1b9c8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"},
                                       {"goArch": "arm64", "hash": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"}],
"clientCASecret": format!("{name}-ca"), "replicationTLSSecret": format!("{name}-replication"),
                "serverCASecret": format!("{name}-ca"), "serverTLSSecret": format!("{name}-server"),
                "serverAltDNSNames": [format!("{name}-rw"), format!("{name}-rw.{ns}"), format!("{name}-rw.{ns}.svc"),
                    format!("{name}-r"), format!("{name}-r.{ns}"), format!("{name}-r.{ns}.svc"),
                    format!("{name}-ro"), format!("{name}-ro.{ns}"), format!("{name}-ro.{ns}.svc")],
                "expirations": {format!("{name}-ca"): "2027-04-10 08:00:00 +0000 UTC",
                                format!("{name}-replication"): "2027-04-10 08:00:00 +0000 UTC",
                                format!("{name}-server"): "2027-04-10 08:00:00 +0000 UTC"}});
    let status = json!({
        "certificates": certificates,
        "cloudNativePGCommitHash": "9a4b5c6d", "cloudNativePGOperatorHash": "4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
             "lastTransitionTime": "2027-01-10T08:05:00Z"},
            {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": "2027-01-10T08:05:00Z"},
            {"type": "LastBackupSucceeded", "status": "True", "reason": "LastBackupSucceeded",
             "message": "Backup was successful", "lastTransitionTime": "2027-01-15T02:00:30Z"}
        ],
        "configMapResourceVersion": {"metrics": {"cnpg-default-monitoring": "1234"}},
        "currentPrimary": pods[0], "currentPrimaryTimestamp": "2027-01-10T08:03:00.000000Z",
        "healthyPVC": pods, "image": "ghcr.io/cloudnative-pg/postgresql:16.4-standard-bookworm",
        "instanceNames": pods, "instances": 3,
        "instancesReportedState": {pods[0].clone(): {"isPrimary": true, "timeLineID": 1},
                                   pods[1].clone(): {"isPrimary": false, "timeLineID": 1},
                                   pods[2].clone(): {"isPrimary": false, "timeLineID": 1}},
        "instancesStatus": {"healthy": pods}, "latestGeneratedNode": 3, "managedRolesStatus": {},
        "phase": "Cluster in healthy state", "poolerIntegrations": {"pgBouncerIntegration": {}},
        "pvcCount": 3, "readService": format!("{name}-r"), "readyInstances": 3,
        "secretsResourceVersion": {"applicationSecretVersion": "1001", "clientCaSecretVersion": "1002",
            "replicationSecretVersion": "1003", "serverCaSecretVersion": "1002", "serverSecretVersion": "1004"},
        "switchReplicaClusterStatus": {}, "targetPrimary": pods[0], "targetPrimaryTimestamp": "2027-01-10T08:02:00.000000Z",
        "timelineID": 1,
        "topology": {"instances": {pods[0].clone(): {}, pods[1].clone(): {}, pods[2].clone(): {}},
                     "nodesUsed": 3, "successfullyExtracted": true},
        "writeService": format!("{name}-rw")
    });
    json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": metadata, "spec": spec, "status": status})
}

/// The daily ScheduledBackup of Cluster `i`, as the API server returns it with its status.
pub fn real_shaped_scheduled_backup(i: usize) -> Value {
    let ns = format!("team-{}", i % SPREAD_NAMESPACES);
    let name = format!("pg-{i}-daily");
    let applied = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": format!("pg-{i}")}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}, "backupOwnerReference": "self"}});
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid(3, i), "resourceVersion": format!("{}", 3_000_000 + i),
            "generation": 1, "creationTimestamp": "2027-01-10T08:00:00Z",
            "annotations": {"argocd.argoproj.io/tracking-id": format!("pg-{i}-prod:postgresql.cnpg.io/ScheduledBackup:{ns}/{name}"),
                            "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&applied).unwrap_or_default()},
            "ownerReferences": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": format!("pg-{i}"),
                                 "uid": uid(2, i), "controller": true}],
            "managedFields": [
                managed("argocd-controller", "Update", "postgresql.cnpg.io/v1", None, json!({
                    "f:metadata": {"f:annotations": {".": {}, "f:argocd.argoproj.io/tracking-id": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                    "f:spec": {".": {}, "f:backupOwnerReference": {}, "f:cluster": {".": {}, "f:name": {}}, "f:method": {},
                               "f:pluginConfiguration": {".": {}, "f:name": {}}, "f:schedule": {}}})),
                managed("manager", "Update", "postgresql.cnpg.io/v1", Some("status"), json!({
                    "f:status": {".": {}, "f:lastCheckTime": {}, "f:lastScheduleTime": {}, "f:nextScheduleTime": {}}}))
            ]
        },
        "spec": {"backupOwnerReference": "self", "cluster": {"name": format!("pg-{i}")}, "immediate": false,
                 "method": "plugin", "online": true, "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"},
                 "schedule": "0 0 2 * * *", "suspend": false, "target": "prefer-standby"},
        "status": {"lastCheckTime": "2027-01-15T02:00:00Z", "lastScheduleTime": "2027-01-15T02:00:00Z",
                   "nextScheduleTime": "2027-01-16T02:00:00Z"}
    })
}

/// ObjectStore of Cluster `i` (the Barman Cloud plugin's store).
pub fn real_shaped_object_store(i: usize) -> Value {
    let ns = format!("team-{}", i % SPREAD_NAMESPACES);
    json!({
        "apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
        "metadata": {"name": format!("pg-{i}-store"), "namespace": ns, "uid": uid(4, i),
                     "resourceVersion": format!("{}", 4_000_000 + i), "creationTimestamp": "2027-01-10T08:00:00Z"},
        "spec": {"retentionPolicy": "30d",
                 "configuration": {"destinationPath": format!("s3://backups/{ns}/pg-{i}"),
                                   "s3Credentials": {"inheritFromIAMRole": true},
                                   "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}
    })
}
