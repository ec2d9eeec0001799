//! Migration-image lockstep (docs/rules.md) decided by the real engine over the live cluster view,
//! in the order Argo CD applies a release: the PreSync migration Job first, then the Rollout.
//!
//! The tests that need the `migration-image-lockstep` rule body (written on the `rules` branch)
//! are ignored until it lands; they must pass once it does.

use crate::support;

use chrono::{DateTime, Utc};
use dbhook::cluster::{LiveView, Res, Served};
use dbhook::engine::{self, Decision};
use dbhook::model::Object;
use dbhook::policy::{Action, Policy};
use dbhook::view::View;
use kube::core::admission::Operation;
use serde_json::{Value, json};
use support::*;

const RULE: &str = "migration-image-lockstep";
const WEB: &str = "ghcr.io/acme/web";

fn image(tag: &str) -> String {
    format!("{WEB}:{tag}")
}

/// The PreSync migration Job of a release, created at `created`.
fn presync_job(name: &str, tag: &str, created: &str, delete_policy: Option<&str>) -> Value {
    let extra = delete_policy.map_or(json!({}), |p| json!({"argocd.argoproj.io/hook-delete-policy": p}));
    let mut job = migration_job(name, &image(tag), extra);
    job["metadata"]["creationTimestamp"] = json!(created);
    job
}

fn rollout(tag: &str) -> Object {
    admitted(ROLLOUTS, app("web", &image(tag)))
}

fn review(view: &dyn View, obj: &Object, op: Operation, now: DateTime<Utc>) -> Decision {
    engine::review(&engine::Change::state(obj, op), view, &Policy::default(), now)
}

fn lockstep_denials(d: &Decision) -> Vec<&str> {
    d.findings
        .iter()
        .filter(|f| f.rule == RULE && f.action == Action::Deny)
        .map(|f| f.message.as_str())
        .collect()
}

/// A cluster with the current release (`sha-1111111`) rolled out.
async fn released() -> (FakeApiServer, Harness) {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.apply(ROLLOUTS, app("web", &image("sha-1111111")));
    let h = start(&server).await;
    h.synced().await;
    (server, h)
}

/// Waits until the view pairs the Rollout with Jobs named `want`.
async fn paired(h: &Harness, want: &[&str]) {
    let app = rollout("any");
    until("the view pairs the expected Jobs", || {
        names(&h.view.migration_jobs_for(&app)) == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_job_then_the_rollout_with_the_same_tag_is_allowed() {
    let (server, h) = released().await;
    // Admitting the Job itself is not judged against the live (old) Rollout.
    let job = admitted(
        JOBS,
        presync_job("web-migrate-2", "sha-2222222", "2027-01-15T09:00:00Z", None),
    );
    let d = review(h.view.as_ref(), &job, Operation::Create, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");

    server.apply(
        JOBS,
        presync_job("web-migrate-2", "sha-2222222", "2027-01-15T09:00:00Z", None),
    );
    paired(&h, &["web-migrate-2"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed, "{d:?}");
    assert!(lockstep_denials(&d).is_empty(), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_with_another_tag_than_its_migration_job_is_denied() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        presync_job("web-migrate-2", "sha-2222222", "2027-01-15T09:00:00Z", None),
    );
    paired(&h, &["web-migrate-2"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(!d.allowed, "{d:?}");
    assert_eq!(lockstep_denials(&d).len(), 1, "{d:?}");
    // The same Rollout at the Job's tag is fine.
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_migration_job_by_creation_time_decides() {
    let (server, h) = released().await;
    // Names sort the other way round: only the creation time can tell which is newest.
    server.apply(
        JOBS,
        presync_job("web-migrate-b", "sha-1111111", "2027-01-15T08:00:00Z", None),
    );
    server.apply(
        JOBS,
        presync_job("web-migrate-a", "sha-2222222", "2027-01-15T09:00:00Z", None),
    );
    paired(&h, &["web-migrate-a", "web-migrate-b"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed, "{d:?}");
    let d = review(h.view.as_ref(), &rollout("sha-1111111"), Operation::Update, h.now());
    assert!(!d.allowed, "the older Job's tag is not the release: {d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_on_hook_success_is_remembered_and_still_denies() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        presync_job(
            "web-migrate-2",
            "sha-2222222",
            "2027-01-15T09:00:00Z",
            Some("HookSucceeded"),
        ),
    );
    paired(&h, &["web-migrate-2"]).await;
    // Argo CD deletes the succeeded hook before it updates the Rollout.
    server.delete(JOBS, NS, "web-migrate-2");
    until("the deletion was seen", || h.view.cached(Res::Jobs) == 0).await;
    paired(&h, &["web-migrate-2"]).await;

    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(!d.allowed, "the remembered Job still decides: {d:?}");
    assert_eq!(lockstep_denials(&d).len(), 1, "{d:?}");
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed, "{d:?}");

    // After lockstepMemoryMinutes (default 60) the Job is forgotten: nothing to compare with.
    h.clock.advance_minutes(61);
    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicitly_paired_job_without_a_common_repository_denies() {
    let (server, h) = released().await;
    let mut job = migration_job(
        "web-migrate-2",
        "ghcr.io/acme/migrations:sha-2222222",
        json!({"dbhook.io/rollout": "web"}),
    );
    job["metadata"]["creationTimestamp"] = json!("2027-01-15T09:00:00Z");
    server.apply(JOBS, job);
    paired(&h, &["web-migrate-2"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(!d.allowed, "{d:?}");
    assert_eq!(lockstep_denials(&d).len(), 1, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_migration_job_the_rollout_is_allowed() {
    let (_server, h) = released().await;
    let jobs = h.view.migration_jobs_for(&rollout("sha-9999999"));
    assert!(jobs.is_absent());
    let d = review(h.view.as_ref(), &rollout("sha-9999999"), Operation::Update, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_created_after_start_becomes_present() {
    let server = FakeApiServer::start(&[]).await;
    let h = start(&server).await;
    h.synced().await;
    assert_eq!(show(h.view.cluster(NS, "shop-pg")), "unknown", "CNPG not installed yet");
    server.install(&CNPG);
    until("the CNPG watches run", || h.view.served(Res::Clusters) == Served::Yes).await;
    until("the empty cache is complete", || {
        show(h.view.cluster(NS, "shop-pg")) == "absent"
    })
    .await;
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    let cluster = eventually("the Cluster is present", || async {
        h.view.cluster(NS, "shop-pg").present()
    })
    .await;
    assert!(matches!(cluster.spec, dbhook::model::Spec::Cluster(_)));
}

/// `Failed=True` as the Job controller writes it once the backoff limit is reached.
fn failed_status() -> Value {
    json!({"failed": 2, "startTime": "2027-01-15T09:00:00Z",
           "conditions": [
               {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastProbeTime": "2027-01-15T09:02:00Z", "lastTransitionTime": "2027-01-15T09:02:00Z"},
               {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastProbeTime": "2027-01-15T09:02:00Z", "lastTransitionTime": "2027-01-15T09:02:00Z"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_newest_job_is_not_the_reference() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        presync_job("web-migrate-2", "sha-2222222", "2027-01-15T08:00:00Z", None),
    );
    // The next release's migration failed; Argo CD's BeforeHookCreation keeps it.
    let mut failed = presync_job("web-migrate-3", "sha-3333333", "2027-01-15T09:00:00Z", None);
    failed["status"] = failed_status();
    server.apply(JOBS, failed);
    paired(&h, &["web-migrate-2", "web-migrate-3"]).await;
    until("the failed condition is cached", || {
        h.view
            .migration_jobs_for(&rollout("any"))
            .items
            .iter()
            .any(|j| j.is_failed_job())
    })
    .await;
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");
    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(!d.allowed, "the failed Job's image is not the release: {d:?}");
    let msg = lockstep_denials(&d)[0];
    assert!(
        msg.contains("ghcr.io/acme/web:sha-3333333")
            && msg.contains("ghcr.io/acme/web:sha-2222222 of migration Job shop/web-migrate-2"),
        "{msg}"
    );
}

/// A Rollout whose pod template lives in Deployment `web-template` (`spec.workloadRef`).
fn workload_ref_rollout() -> Value {
    json!({
        "metadata": {"name": "web", "namespace": NS, "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-template",
                                 "scaleDown": "progressively"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_ref_rollout_is_compared_once_its_deployment_appears() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        presync_job("web-migrate-2", "sha-2222222", "2027-01-15T09:00:00Z", None),
    );
    paired(&h, &["web-migrate-2"]).await;
    let rollout = admitted(ROLLOUTS, workload_ref_rollout());
    // The Deployment is not there yet: unknown, never a denial.
    let d = review(h.view.as_ref(), &rollout, Operation::Update, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");

    let mut deployment = app("web-template", &image("sha-3333333"));
    deployment["spec"]["replicas"] = json!(0);
    server.apply(DEPLOYMENTS, deployment.clone());
    until("the Deployment is cached", || {
        h.view.deployment(NS, "web-template").present().is_some()
    })
    .await;
    let d = review(h.view.as_ref(), &rollout, Operation::Update, h.now());
    assert!(!d.allowed, "{d:?}");
    let msg = lockstep_denials(&d)[0];
    assert!(
        msg.contains(
            "ghcr.io/acme/web:sha-3333333 differs from ghcr.io/acme/web:sha-2222222 of migration Job shop/web-migrate-2"
        ),
        "{msg}"
    );
    let finding = d.findings.iter().find(|f| f.rule == RULE).unwrap();
    assert_eq!(finding.path.as_deref(), Some("spec.workloadRef"));

    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("sha-2222222"));
    server.apply(DEPLOYMENTS, deployment);
    until("the Deployment's new template is cached", || {
        let d = review(h.view.as_ref(), &rollout, Operation::Update, h.now());
        d.allowed && lockstep_denials(&d).is_empty()
    })
    .await;
}

/// A plain Job ordered by Argo CD sync wave, as Atlas-style kits write it.
fn sync_wave_job(name: &str, image: &str, wave: &str, extra: Value) -> Value {
    let mut job = migration_job(name, image, extra);
    let annotations = job["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.remove("argocd.argoproj.io/hook");
    annotations.insert("argocd.argoproj.io/sync-wave".into(), json!(wave));
    job["metadata"]["creationTimestamp"] = json!("2027-01-15T09:00:00Z");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_wave_job_is_a_migration_job_only_before_the_app() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        sync_wave_job("web-migrate", &image("sha-2222222"), "-1", json!({})),
    );
    paired(&h, &["web-migrate"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(!d.allowed, "{d:?}");
    assert_eq!(lockstep_denials(&d).len(), 1, "{d:?}");
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed, "{d:?}");

    // At the app's wave (or after it) the Job runs beside the app: no migration Job.
    for wave in ["0", "1", " -1", "abc", "1e9"] {
        server.apply(
            JOBS,
            sync_wave_job("web-migrate", &image("sha-2222222"), wave, json!({})),
        );
        until("the new wave is cached", || {
            h.view.migration_jobs_for(&rollout("any")).items.is_empty()
        })
        .await;
        let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
        assert!(d.allowed && lockstep_denials(&d).is_empty(), "wave {wave:?}: {d:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_mode_compares_a_separate_migrations_image_by_tag() {
    let (server, h) = released().await;
    server.apply(
        JOBS,
        sync_wave_job(
            "web-migrate",
            "ghcr.io/acme/web-migrations:sha-2222222",
            "-1",
            json!({"dbhook.io/lockstep": "tag", "argocd.argoproj.io/sync-options": "Replace=true"}),
        ),
    );
    paired(&h, &["web-migrate"]).await;
    let d = review(h.view.as_ref(), &rollout("sha-2222222"), Operation::Update, h.now());
    assert!(d.allowed && lockstep_denials(&d).is_empty(), "{d:?}");
    let d = review(h.view.as_ref(), &rollout("sha-3333333"), Operation::Update, h.now());
    assert!(!d.allowed, "{d:?}");
    assert!(lockstep_denials(&d)[0].contains("(compared by tag)"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_finds_a_rollout_out_of_step_with_its_sync_wave_job() {
    let (server, h) = released().await;
    // The live Rollout runs sha-1111111; the wave -1 Job migrated to sha-2222222.
    server.apply(
        JOBS,
        sync_wave_job("web-migrate", &image("sha-2222222"), "-1", json!({})),
    );
    let report = eventually("the report has the lockstep finding", || async {
        let r = h.view.report();
        r.findings
            .iter()
            .any(|f| f.rule == RULE && f.object.name == "web")
            .then_some(r)
    })
    .await;
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == RULE && f.object.name == "web")
        .unwrap();
    assert_eq!(f.action, Action::Deny);
    assert!(f.message.contains("of migration Job shop/web-migrate"), "{}", f.message);
    // And the Job itself, a fixed-name non-hook migration: the replaceable warning.
    assert!(
        report.findings.iter().any(|f| f.rule == "migration-job-replaceable"
            && f.object.name == "web-migrate"
            && f.action == Action::Warn),
        "{:?}",
        report.findings
    );
}
