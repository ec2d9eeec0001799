//! The view's event handling and lookups, fed watch events directly (no API server; the
//! integration tests in `tests/cluster_*.rs` run the same code against a fake one).

use std::sync::atomic::AtomicI64;

use kube::api::PartialObjectMeta;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use super::watch::{apply_namespace_event, apply_object_event};
use super::*;
use crate::policy::Action;

struct Fixture {
    shared: Shared,
    now: Arc<AtomicI64>,
}

const T0: i64 = 1_800_000_000;

fn fixture(policy: Policy) -> Fixture {
    let now = Arc::new(AtomicI64::new(T0));
    let t = now.clone();
    let opts = ClusterOptions {
        clock: Arc::new(move || DateTime::from_timestamp(t.load(Ordering::SeqCst), 0).unwrap_or_default()),
        ..ClusterOptions::default()
    };
    let shared = Shared::new(Arc::new(ArcSwap::from_pointee(policy)), Arc::new(Metrics::new()), &opts);
    for r in Res::ALL {
        shared.health(r).set_served(Served::Yes);
    }
    Fixture { shared, now }
}

impl Fixture {
    fn decoded(res: Res, v: Value) -> Arc<Object> {
        super::decode::from_value(res, &v)
    }
    /// A complete listing of `res`, with the contact it brings.
    fn list(&self, res: Res, objects: Vec<Value>) {
        self.list_without_contact(res, objects);
        self.shared.health(res).touch();
    }
    /// The listing's events alone: a synced cache whose API server has not been heard from
    /// (how the lookups read a resource whose contact is older than the staleness window; when
    /// a contact turns stale is `health`'s unit test, on a clock the test sets).
    fn list_without_contact(&self, res: Res, objects: Vec<Value>) {
        let mut buf = Vec::new();
        apply_object_event(&self.shared, res, Event::Init, &mut buf);
        for o in objects {
            apply_object_event(&self.shared, res, Event::InitApply(Self::decoded(res, o)), &mut buf);
        }
        apply_object_event(&self.shared, res, Event::InitDone, &mut buf);
    }
    fn apply(&self, res: Res, o: Value) {
        apply_object_event(&self.shared, res, Event::Apply(Self::decoded(res, o)), &mut Vec::new());
    }
    fn delete(&self, res: Res, o: Value) {
        apply_object_event(&self.shared, res, Event::Delete(Self::decoded(res, o)), &mut Vec::new());
    }
    fn sync_all_empty(&self) {
        for &r in Res::OBJECTS {
            self.list(r, vec![]);
        }
    }
    fn advance_minutes(&self, m: i64) {
        self.now.fetch_add(m * 60, Ordering::SeqCst);
    }
}

fn cluster(name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
           "spec": {"instances": 1}})
}

fn job(name: &str, tag: &str, extra_annotations: Value) -> Value {
    let mut ann = json!({"argocd.argoproj.io/hook": "PreSync"});
    if let (Some(a), Some(extra)) = (ann.as_object_mut(), extra_annotations.as_object()) {
        a.extend(extra.clone());
    }
    json!({"metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                        "creationTimestamp": "2027-01-15T08:00:00Z",
                        "labels": {"dbhook.io/cluster": "shop-pg"}, "annotations": ann},
           "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": format!("ghcr.io/acme/web:{tag}")}]}}}})
}

fn rollout(name: &str, image: &str) -> Object {
    Object::from_value(&json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop", "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
    }))
    .unwrap()
}

/// `present <name>`, `absent` or `unknown`.
fn show(l: Lookup<Arc<Object>>) -> String {
    match l {
        Lookup::Present(o) => format!("present {}", o.name()),
        Lookup::Absent => "absent".into(),
        Lookup::Unknown => "unknown".into(),
    }
}

fn names(l: &Listing) -> Vec<&str> {
    l.items.iter().map(|o| o.name()).collect()
}

#[test]
fn lookups_are_unknown_until_synced_then_present_or_absent() {
    let f = fixture(Policy::default());
    assert_eq!(show(f.shared.cluster("shop", "shop-pg")), "unknown");
    assert!(!f.shared.scheduled_backups_for("shop", "shop-pg").complete);
    f.list(Res::Clusters, vec![cluster("shop-pg")]);
    assert_eq!(show(f.shared.cluster("shop", "shop-pg")), "present shop-pg");
    assert_eq!(show(f.shared.cluster("shop", "other")), "absent");
    assert_eq!(show(f.shared.cluster("prod", "shop-pg")), "absent");
}

#[test]
fn an_unserved_kind_is_unknown_even_when_synced_before() {
    let f = fixture(Policy::default());
    f.list(Res::ObjectStores, vec![]);
    assert_eq!(show(f.shared.object_store("shop", "s3")), "absent");
    f.shared.health(Res::ObjectStores).set_served(Served::No);
    f.shared.forget(Res::ObjectStores);
    assert_eq!(show(f.shared.object_store("shop", "s3")), "unknown");
}

#[test]
fn without_contact_absent_turns_unknown_but_cached_objects_stay_present() {
    let f = fixture(Policy::default());
    f.list_without_contact(Res::Clusters, vec![cluster("shop-pg")]);
    assert_eq!(show(f.shared.cluster("shop", "other")), "unknown");
    assert_eq!(show(f.shared.cluster("shop", "shop-pg")), "present shop-pg");
    f.shared.health(Res::Clusters).touch();
    assert_eq!(show(f.shared.cluster("shop", "other")), "absent");
}

#[test]
fn events_after_sync_add_modify_and_delete() {
    let f = fixture(Policy::default());
    f.list(Res::Clusters, vec![]);
    f.apply(Res::Clusters, cluster("shop-pg"));
    assert_eq!(show(f.shared.cluster("shop", "shop-pg")), "present shop-pg");
    f.delete(Res::Clusters, cluster("shop-pg"));
    assert_eq!(show(f.shared.cluster("shop", "shop-pg")), "absent");
}

#[test]
fn scheduled_backups_are_listed_for_their_cluster() {
    let f = fixture(Policy::default());
    let sb = |name: &str, target: &str| {
        json!({"metadata": {"name": name, "namespace": "shop"},
               "spec": {"cluster": {"name": target}, "schedule": "0 0 2 * * *"}})
    };
    f.list(
        Res::ScheduledBackups,
        vec![sb("daily", "shop-pg"), sb("other", "other-pg")],
    );
    let l = f.shared.scheduled_backups_for("shop", "shop-pg");
    assert_eq!((names(&l), l.complete), (vec!["daily"], true));
    assert!(f.shared.scheduled_backups_for("shop", "none").is_absent());
}

#[test]
fn migration_jobs_pair_by_cluster_label_or_by_rollout_annotation() {
    let f = fixture(Policy::default());
    let unpaired = json!({"metadata": {"name": "seed", "namespace": "shop",
        "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x:1"}]}}}});
    f.list(
        Res::Jobs,
        vec![
            job("web-migrate", "sha-1", json!({})),
            job("worker-migrate", "sha-1", json!({"dbhook.io/rollout": "worker"})),
            job("both", "sha-1", json!({"dbhook.io/rollout": "web,worker"})),
            unpaired,
        ],
    );
    let web = f.shared.migration_jobs_for(&rollout("web", "ghcr.io/acme/web:sha-1"));
    assert_eq!((names(&web), web.complete), (vec!["both", "web-migrate"], true));
    let worker = f
        .shared
        .migration_jobs_for(&rollout("worker", "ghcr.io/acme/web:sha-1"));
    assert_eq!(names(&worker), ["both", "web-migrate", "worker-migrate"]);
}

#[test]
fn app_workloads_are_found_for_a_job_across_the_three_kinds() {
    let f = fixture(Policy::default());
    f.sync_all_empty();
    let app = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "shop", "labels": {"dbhook.io/cluster": "shop-pg"}},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:sha-1"}]}}}})
    };
    f.apply(Res::Rollouts, app("web"));
    f.apply(Res::Deployments, app("api"));
    f.apply(Res::StatefulSets, app("queue"));
    let j = Object::from_value(&{
        let mut v = job("m", "sha-1", json!({}));
        v["apiVersion"] = json!("batch/v1");
        v["kind"] = json!("Job");
        v
    })
    .unwrap();
    let l = f.shared.app_workloads_for(&j);
    let mut got = names(&l);
    got.sort();
    assert_eq!((got, l.complete), (vec!["api", "queue", "web"], true));
    f.shared.health(Res::Rollouts).set_served(Served::No);
    assert!(!f.shared.app_workloads_for(&j).complete, "no Rollout CRD: incomplete");
}

#[test]
fn a_hook_succeeded_job_is_remembered_after_deletion_for_the_memory_window() {
    let f = fixture(Policy::from_yaml("lockstepMemoryMinutes: 30").unwrap());
    let hook = job(
        "web-migrate",
        "sha-2",
        json!({"argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
    );
    f.list(Res::Jobs, vec![hook.clone()]);
    f.delete(Res::Jobs, hook);
    let app = rollout("web", "ghcr.io/acme/web:sha-1");
    let l = f.shared.migration_jobs_for(&app);
    assert_eq!((names(&l), l.complete), (vec!["web-migrate"], true));
    f.advance_minutes(29);
    assert_eq!(f.shared.migration_jobs_for(&app).items.len(), 1);
    f.advance_minutes(1);
    assert!(f.shared.migration_jobs_for(&app).is_absent());
}

#[test]
fn a_plain_deleted_job_is_not_remembered() {
    let f = fixture(Policy::default());
    let plain = job("web-migrate", "sha-2", json!({}));
    f.list(Res::Jobs, vec![plain.clone()]);
    f.delete(Res::Jobs, plain);
    assert!(f.shared.migration_jobs_for(&rollout("web", "x:1")).is_absent());
}

#[test]
fn a_hook_job_that_vanished_during_a_relist_is_remembered() {
    let f = fixture(Policy::default());
    let hook = job(
        "web-migrate",
        "sha-2",
        json!({"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}),
    );
    f.list(Res::Jobs, vec![hook]);
    f.list(Res::Jobs, vec![]);
    assert_eq!(f.shared.memory.len(), 1);
    assert_eq!(
        names(&f.shared.migration_jobs_for(&rollout("web", "x:1"))),
        ["web-migrate"]
    );
}

#[test]
fn namespace_mode_labels_follow_metadata_events() {
    let f = fixture(Policy::default());
    let ns = |name: &str, labels: Value| -> PartialObjectMeta<k8s_openapi::api::core::v1::Namespace> {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    };
    let mut buf = HashMap::new();
    apply_namespace_event(&f.shared, Event::Init, &mut buf);
    apply_namespace_event(
        &f.shared,
        Event::InitApply(ns("shop", json!({"dbhook.io/mode": "audit"}))),
        &mut buf,
    );
    apply_namespace_event(&f.shared, Event::InitApply(ns("prod", json!({}))), &mut buf);
    apply_namespace_event(&f.shared, Event::InitDone, &mut buf);
    assert_eq!(f.shared.namespace_mode_label("shop").as_deref(), Some("audit"));
    assert_eq!(f.shared.namespace_mode_label("prod"), None);
    apply_namespace_event(&f.shared, Event::Apply(ns("shop", json!({}))), &mut buf);
    assert_eq!(f.shared.namespace_mode_label("shop"), None);
    apply_namespace_event(
        &f.shared,
        Event::Apply(ns("prod", json!({"dbhook.io/mode": "enforce"}))),
        &mut buf,
    );
    assert_eq!(f.shared.namespace_mode_label("prod").as_deref(), Some("enforce"));
}

#[test]
fn readiness_needs_discovery_and_every_served_resource_synced() {
    let f = fixture(Policy::default());
    f.sync_all_empty();
    assert!(!f.shared.synced(), "discovery has not answered");
    f.shared.set_discovered();
    assert!(!f.shared.synced(), "namespaces not synced");
    apply_namespace_event(&f.shared, Event::InitDone, &mut HashMap::new());
    assert!(f.shared.synced());
    let rendered = f.shared.metrics.render();
    assert!(
        rendered.contains("dbhook_view_synced{resource=\"jobs.batch\"} 1"),
        "{rendered}"
    );
}

#[test]
fn the_report_reviews_every_cached_object_and_sets_the_gauge() {
    let f = fixture(Policy::default());
    f.sync_all_empty();
    let leaky = json!({"metadata": {"name": "api", "namespace": "shop", "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:latest",
            "env": [{"name": "DB_URL", "value": "postgres://app:pw@shop-pg-rw/app"}]}]}}}});
    f.apply(Res::Deployments, leaky);
    f.apply(Res::Clusters, cluster("shop-pg"));
    let report = report::compute(&f.shared, &Policy::default());
    assert_eq!(report.summary.objects, 2);
    let rules: Vec<(&str, Action)> = report.findings.iter().map(|x| (x.rule, x.action)).collect();
    assert!(rules.contains(&("db-url-plaintext", Action::Deny)), "{rules:?}");
    assert!(rules.contains(&("image-tag-pinned", Action::Warn)), "{rules:?}");
    let api = &report.findings[0].object;
    assert_eq!(
        (api.kind.as_str(), api.namespace.as_str(), api.name.as_str()),
        ("Deployment", "shop", "api")
    );
    assert!(report.findings.iter().all(|x| x.file.is_none() && x.line.is_none()));
    report::publish(&f.shared, report);
    let rendered = f.shared.metrics.render();
    assert!(
        rendered.contains("dbhook_report_findings{rule=\"db-url-plaintext\",action=\"deny\"} 1"),
        "{rendered}"
    );
}

// --- degraded readiness ------------------------------------------------------------------

fn synced_gauge(f: &Fixture, res: Res) -> Option<i64> {
    let text = f.shared.metrics.render();
    let prefix = format!("dbhook_view_synced{{resource=\"{}\"}} ", res.name());
    text.lines().find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
}

#[test]
fn after_the_sync_timeout_unsynced_resources_are_degraded_unknown_and_readiness_waits_no_more() {
    let f = fixture(Policy::default());
    f.shared.set_discovered();
    for &r in Res::OBJECTS.iter().filter(|&&r| r != Res::Clusters) {
        f.list(r, vec![]);
    }
    f.shared
        .health(Res::Clusters)
        .failed(&"403 Forbidden: clusters is forbidden");
    assert!(!f.shared.synced(), "namespaces and clusters have not synced");
    assert!(f.shared.state(Res::Clusters).state.starts_with("syncing"));

    f.shared.degrade_unsynced();
    assert!(f.shared.synced(), "the sync timeout ends the wait");
    let clusters = f.shared.state(Res::Clusters);
    assert!(!clusters.ok && clusters.degraded, "{clusters:?}");
    assert!(clusters.state.contains("403 Forbidden"), "{clusters:?}");
    assert!(f.shared.state(Res::Namespaces).degraded);
    let jobs = f.shared.state(Res::Jobs);
    assert_eq!((jobs.ok, jobs.state.as_str()), (true, "synced"));
    assert!(matches!(f.shared.cluster("shop", "shop-pg"), Lookup::Unknown));
    assert_eq!(synced_gauge(&f, Res::Clusters), Some(0));

    // It syncs later: no longer degraded, lookups conclude again, the gauge says so.
    f.list(Res::Clusters, vec![]);
    let clusters = f.shared.state(Res::Clusters);
    assert_eq!((clusters.ok, clusters.state.as_str()), (true, "synced"));
    assert!(f.shared.cluster("shop", "shop-pg").is_absent());
    assert_eq!(synced_gauge(&f, Res::Clusters), Some(1));
}

#[test]
fn a_resource_synced_before_the_timeout_is_never_degraded_and_a_missing_crd_is_not_served() {
    let f = fixture(Policy::default());
    f.shared.health(Res::ObjectStores).set_served(Served::No);
    f.shared.set_discovered();
    for &r in Res::OBJECTS.iter().filter(|&&r| r != Res::ObjectStores) {
        f.list(r, vec![]);
    }
    let mut buf = std::collections::HashMap::new();
    apply_namespace_event(&f.shared, Event::Init, &mut buf);
    apply_namespace_event(&f.shared, Event::InitDone, &mut buf);
    assert!(f.shared.synced());
    f.shared.degrade_unsynced();
    let states: Vec<ResourceState> = Res::ALL.iter().map(|&r| f.shared.state(r)).collect();
    assert!(states.iter().all(|s| !s.degraded), "{states:?}");
    let stores = f.shared.state(Res::ObjectStores);
    assert!(stores.ok && stores.state.starts_with("not served"), "{stores:?}");
    assert_eq!(synced_gauge(&f, Res::ObjectStores), None, "not served: no gauge");
}

#[test]
fn undiscovered_crds_are_degraded_with_the_discovery_error() {
    let f = fixture(Policy::default());
    f.shared.health(Res::Rollouts).set_served(Served::Undetermined);
    f.shared.discovery_failed(&"client error (Connect)");
    f.shared.degrade_unsynced();
    let rollouts = f.shared.state(Res::Rollouts);
    assert!(rollouts.degraded, "{rollouts:?}");
    assert!(
        rollouts
            .state
            .contains("API discovery has not answered (last error: client error (Connect))"),
        "{rollouts:?}"
    );
    assert_eq!(synced_gauge(&f, Res::Rollouts), Some(0));
}
