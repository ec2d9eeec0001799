//! The cluster view against a fake API server: sync and readiness, lookups, label-selected
//! watches, namespace modes, missing and late CRDs, an API-server outage, lockstep memory and
//! the background report.

use crate::support;

use std::time::Duration;

use dbhook::cluster::LiveView;
use dbhook::cluster::{Answer, Res, Served};
use dbhook::engine::{self, Change};
use dbhook::policy::{Action, Mode, Policy};
use dbhook::view::View;
use serde_json::{Value, json};
use support::*;

/// The objects of the seed app, already in the cluster when the view starts.
fn seed(server: &FakeApiServer) {
    server.apply(
        NAMESPACES,
        namespace("shop", json!({"kubernetes.io/metadata.name": "shop"})),
    );
    server.apply(NAMESPACES, namespace("kube-system", json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.apply(SCHEDULED_BACKUPS, scheduled_backup("shop-pg-daily", "shop-pg"));
    server.apply(OBJECT_STORES, object_store("shop-pg-store"));
    server.apply(
        JOBS,
        migration_job("web-migrate-1", "ghcr.io/acme/web:sha-1111111", json!({})),
    );
    server.apply(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-1111111"));
    server.apply(DEPLOYMENTS, app("api", "ghcr.io/acme/api:sha-1111111"));
    // Not labelled: the server-side selector keeps these out of the caches.
    let mut unrelated = app("unrelated", "nginx:1.27");
    unrelated["metadata"]["labels"] = json!({"app": "unrelated"});
    server.apply(DEPLOYMENTS, unrelated.clone());
    server.apply(JOBS, {
        let mut j = migration_job("backup-cron-123", "postgres:17", json!({}));
        j["metadata"]["labels"] = json!({"app": "cron"});
        j
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_present_at_start_are_found_once_synced() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    seed(&server);
    let h = start(&server).await;
    h.synced().await;
    let v = &h.view;

    assert_eq!(present(v.cluster(NS, "shop-pg")).as_deref(), Some("shop-pg"));
    assert_eq!(show(v.cluster(NS, "other-pg")), "absent");
    assert_eq!(show(v.cluster("prod", "shop-pg")), "absent");
    assert_eq!(
        present(v.object_store(NS, "shop-pg-store")).as_deref(),
        Some("shop-pg-store")
    );
    assert_eq!(show(v.object_store(NS, "missing")), "absent");

    let backups = v.scheduled_backups_for(NS, "shop-pg");
    assert_eq!(
        (names(&backups), backups.complete),
        (vec!["shop-pg-daily".to_string()], true)
    );
    assert!(v.scheduled_backups_for(NS, "other-pg").is_absent());

    let web = admitted(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-2222222"));
    let jobs = v.migration_jobs_for(&web);
    assert_eq!((names(&jobs), jobs.complete), (vec!["web-migrate-1".to_string()], true));
    let job = &jobs.items[0];
    assert_eq!((job.api_version.as_str(), job.kind.as_str()), ("batch/v1", "Job"));
    assert!(job.is_migration_job());

    let apps = v.app_workloads_for(&admitted(JOBS, migration_job("m", "x:1", json!({}))));
    assert_eq!(
        (names(&apps), apps.complete),
        (vec!["api".to_string(), "web".to_string()], true)
    );

    // Only labelled workloads are cached, and only what rules read is kept.
    assert_eq!(v.cached(Res::Deployments), 1);
    assert_eq!(v.cached(Res::Jobs), 1);
    let cluster = v.cluster(NS, "shop-pg").present().unwrap();
    assert!(
        cluster
            .annotation("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );

    let rendered = h.metrics.render();
    for r in Res::ALL {
        let line = format!("dbhook_view_synced{{resource=\"{}\"}} 1", r.name());
        assert!(rendered.contains(&line), "missing {line} in\n{rendered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_listed_and_watched_with_the_cluster_label_selector() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    seed(&server);
    let h = start(&server).await;
    h.synced().await;
    // A watch request has been made for every resource by now (sync needs the LIST; wait for
    // the WATCH that follows it).
    for res in [JOBS, ROLLOUTS, DEPLOYMENTS, STATEFULSETS] {
        until("the workload watch is open", || {
            server.requests_for(res).iter().any(|r| r.is_watch())
        })
        .await;
        for r in server.requests_for(res) {
            assert_eq!(
                r.query.get("labelSelector").map(String::as_str),
                Some("dbhook.io/cluster"),
                "{} {:?}",
                r.path,
                r.query
            );
        }
    }
    for res in [CLUSTERS, SCHEDULED_BACKUPS, OBJECT_STORES, NAMESPACES] {
        let reqs = server.requests_for(res);
        assert!(!reqs.is_empty(), "{} never listed", res.plural);
        assert!(reqs.iter().all(|r| !r.query.contains_key("labelSelector")), "{reqs:?}");
    }
    // Namespaces are read metadata-only.
    let ns = server.requests_for(NAMESPACES);
    assert!(
        ns.iter().all(|r| r.accept.contains("as=PartialObjectMetadata")),
        "{ns:?}"
    );
    // Nothing but GET, and never Secrets.
    let all = server.requests();
    assert!(all.iter().all(|r| r.method == "GET"), "{all:?}");
    assert!(all.iter().all(|r| !r.path.contains("secrets")), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_created_after_start_becomes_present() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    let h = start(&server).await;
    h.synced().await;
    assert_eq!(show(h.view.cluster(NS, "shop-pg")), "absent");
    assert!(h.view.scheduled_backups_for(NS, "shop-pg").is_absent());

    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.apply(SCHEDULED_BACKUPS, scheduled_backup("shop-pg-daily", "shop-pg"));
    until("the new Cluster is present", || {
        present(h.view.cluster(NS, "shop-pg")).is_some()
    })
    .await;
    until("its ScheduledBackup is listed", || {
        h.view.scheduled_backups_for(NS, "shop-pg").items.len() == 1
    })
    .await;

    // Modified: the index follows the new target; deleted: absent again.
    server.apply(SCHEDULED_BACKUPS, scheduled_backup("shop-pg-daily", "other-pg"));
    until("the ScheduledBackup moved", || {
        h.view.scheduled_backups_for(NS, "shop-pg").is_absent()
            && h.view.scheduled_backups_for(NS, "other-pg").items.len() == 1
    })
    .await;
    server.delete(CLUSTERS, NS, "shop-pg");
    until("the deleted Cluster is absent", || {
        h.view.cluster(NS, "shop-pg").is_absent()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_losing_its_label_leaves_the_cache() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(DEPLOYMENTS, app("api", "ghcr.io/acme/api:sha-1"));
    let h = start(&server).await;
    h.synced().await;
    let job = admitted(JOBS, migration_job("m", "x:1", json!({})));
    assert_eq!(names(&h.view.app_workloads_for(&job)), ["api"]);
    let mut unlabelled = app("api", "ghcr.io/acme/api:sha-1");
    unlabelled["metadata"]["labels"] = json!({});
    server.apply(DEPLOYMENTS, unlabelled);
    until("the unlabelled Deployment is gone", || {
        h.view.cached(Res::Deployments) == 0
    })
    .await;
    assert!(h.view.app_workloads_for(&job).items.is_empty());
}

/// A Deployment with a plaintext DB_URL: denied by `db-url-plaintext` in enforce mode.
fn leaky_deployment() -> Value {
    let mut d = app("api", "ghcr.io/acme/api:sha-1111111");
    d["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "DB_URL", "value": "postgres://app:s3cret@shop-pg-rw:5432/app"}]);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_a_namespace_to_audit_changes_its_mode() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace("shop", json!({})));
    let h = start(&server).await;
    h.synced().await;
    let policy = Policy::default();
    let obj = admitted(DEPLOYMENTS, leaky_deployment());

    assert_eq!(engine::mode_for(NS, h.view.as_ref(), &policy), Mode::Enforce);
    let d = engine::review(&Change::create(&obj), h.view.as_ref(), &policy, h.now());
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.findings
            .iter()
            .any(|f| f.rule == "db-url-plaintext" && f.action == Action::Deny)
    );

    server.apply(NAMESPACES, namespace("shop", json!({"dbhook.io/mode": "audit"})));
    until("the namespace is in audit mode", || {
        engine::mode_for(NS, h.view.as_ref(), &policy) == Mode::Audit
    })
    .await;
    let d = engine::review(&Change::create(&obj), h.view.as_ref(), &policy, h.now());
    assert!(d.allowed, "{d:?}");
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("audit: would deny: [db-url-plaintext]")),
        "{:?}",
        d.warnings
    );

    // Back to enforce by label; a policy that ignores namespace labels stays in enforce.
    server.apply(NAMESPACES, namespace("shop", json!({"dbhook.io/mode": "enforce"})));
    until("the label says enforce", || {
        h.view.namespace_mode_label(NS).as_deref() == Some("enforce")
    })
    .await;
    server.apply(NAMESPACES, namespace("shop", json!({"dbhook.io/mode": "audit"})));
    until("the label says audit", || {
        h.view.namespace_mode_label(NS).as_deref() == Some("audit")
    })
    .await;
    let strict = Policy::from_yaml("allowNamespaceMode: false").unwrap();
    assert_eq!(engine::mode_for(NS, h.view.as_ref(), &strict), Mode::Enforce);
    server.delete(NAMESPACES, "", "shop");
    until("the deleted namespace has no mode", || {
        h.view.namespace_mode_label(NS).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crds_make_their_kinds_unknown_until_installed() {
    // No Argo Rollouts, no CNPG, no Barman Cloud plugin.
    let server = FakeApiServer::start(&[]).await;
    server.apply(
        JOBS,
        migration_job("web-migrate-1", "ghcr.io/acme/web:sha-1", json!({})),
    );
    let h = start(&server).await;
    h.synced().await;
    let v = &h.view;
    for res in [Res::Rollouts, Res::Clusters, Res::ScheduledBackups, Res::ObjectStores] {
        assert_eq!(v.served(res), Served::No, "{res:?}");
        assert_eq!(v.answer(res), Answer::Unknown, "{res:?}");
    }
    assert_eq!(show(v.cluster(NS, "shop-pg")), "unknown");
    assert_eq!(show(v.object_store(NS, "s3")), "unknown");
    let backups = v.scheduled_backups_for(NS, "shop-pg");
    assert!(!backups.complete && backups.items.is_empty());
    // Jobs are built in: known. App workloads include Rollouts: incomplete without their CRD.
    let jobs = v.migration_jobs_for(&admitted(DEPLOYMENTS, app("web", "ghcr.io/acme/web:sha-1")));
    assert_eq!((names(&jobs), jobs.complete), (vec!["web-migrate-1".to_string()], true));
    assert!(
        !v.app_workloads_for(&admitted(JOBS, migration_job("m", "x:1", json!({}))))
            .complete
    );
    // Unknown never denies: a Deployment for a Cluster the view cannot see is allowed.
    let d = engine::review(
        &Change::create(&admitted(DEPLOYMENTS, app("api", "ghcr.io/acme/api:sha-1"))),
        v.as_ref(),
        &Policy::default(),
        h.now(),
    );
    assert!(d.allowed, "{d:?}");
    assert!(
        server.requests_for(CLUSTERS).is_empty(),
        "no request for a resource that is not served"
    );

    // CNPG is installed later: its watches start without a restart.
    server.install(&CNPG);
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    until("the late Cluster is present", || {
        present(v.cluster(NS, "shop-pg")).is_some()
    })
    .await;
    assert_eq!(show(v.cluster(NS, "other-pg")), "absent");
    assert!(v.scheduled_backups_for(NS, "shop-pg").is_absent());
    assert_eq!(
        show(v.object_store(NS, "s3")),
        "unknown",
        "Barman Cloud still not installed"
    );
    assert!(
        h.metrics
            .render()
            .contains("dbhook_view_synced{resource=\"clusters.postgresql.cnpg.io\"} 1")
    );

    // Removed again: unknown again, not absent.
    server.uninstall(&CNPG);
    until("the removed kind is unknown", || {
        show(v.cluster(NS, "shop-pg")) == "unknown"
    })
    .await;
    assert!(v.synced(), "a CRD going away does not take the webhook out of rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_every_started_watch() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    seed(&server);
    // ScheduledBackups cannot be listed: that watch never syncs, so the view is not ready.
    server.fail(SCHEDULED_BACKUPS);
    // Within the sync timeout: after it, readiness stops waiting (tests/server_cli.rs).
    let h = start_with(&server, Policy::default(), |o| {
        o.sync_timeout = Duration::from_secs(3600)
    })
    .await;
    until("the other caches synced", || {
        h.view.answer(Res::Clusters) == Answer::Fresh && h.view.answer(Res::Jobs) == Answer::Fresh
    })
    .await;
    assert!(!h.view.synced());
    assert_eq!(h.view.answer(Res::ScheduledBackups), Answer::Unknown);
    assert!(!h.view.scheduled_backups_for(NS, "shop-pg").complete);
    let rendered = h.metrics.render();
    assert!(
        rendered.contains("dbhook_view_synced{resource=\"scheduledbackups.postgresql.cnpg.io\"} 0"),
        "{rendered}"
    );
    server.recover(SCHEDULED_BACKUPS);
    h.synced().await;
    assert_eq!(h.view.scheduled_backups_for(NS, "shop-pg").items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_turns_absent_into_unknown_never_into_a_denial() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.set_bookmark_interval(Duration::from_millis(100));
    seed(&server);
    let h = start_with(&server, Policy::default(), |o| o.staleness = Duration::from_secs(2)).await;
    h.synced().await;
    until("fresh", || h.view.answer(Res::Clusters) == Answer::Fresh).await;
    assert_eq!(show(h.view.cluster(NS, "other-pg")), "absent");

    server.go_down();
    until("absent turned unknown", || {
        show(h.view.cluster(NS, "other-pg")) == "unknown"
    })
    .await;
    // What was cached is still known to exist; what is missing is no longer known to be.
    assert_eq!(present(h.view.cluster(NS, "shop-pg")).as_deref(), Some("shop-pg"));
    until("every cache is stale", || {
        Res::ALL
            .into_iter()
            .filter(|&r| r != Res::Namespaces)
            .all(|r| h.view.answer(r) == Answer::Stale)
    })
    .await;
    assert!(!h.view.scheduled_backups_for(NS, "other-pg").complete);
    let web = admitted(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-1111111"));
    let jobs = h.view.migration_jobs_for(&web);
    assert_eq!(
        (names(&jobs), jobs.complete),
        (vec!["web-migrate-1".to_string()], false)
    );
    assert!(
        h.view.synced(),
        "an outage does not take a serving webhook out of rotation"
    );

    // Changes made while the view could not see them arrive after the API server is back.
    server.come_back();
    server.apply(CLUSTERS, cnpg_cluster("late-pg"));
    until("fresh again", || show(h.view.cluster(NS, "other-pg")) == "absent").await;
    until("the change made during the outage is seen", || {
        present(h.view.cluster(NS, "late-pg")).is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_watch_goes_stale_alone() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.set_bookmark_interval(Duration::from_millis(100));
    seed(&server);
    let h = start_with(&server, Policy::default(), |o| o.staleness = Duration::from_secs(2)).await;
    h.synced().await;
    server.fail(CLUSTERS);
    until("the failing resource is stale", || {
        h.view.answer(Res::Clusters) == Answer::Stale
    })
    .await;
    assert_eq!(show(h.view.cluster(NS, "other-pg")), "unknown");
    assert_eq!(h.view.answer(Res::ScheduledBackups), Answer::Fresh);
    assert!(h.view.scheduled_backups_for(NS, "other-pg").is_absent());
    server.recover(CLUSTERS);
    until("fresh again", || show(h.view.cluster(NS, "other-pg")) == "absent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_watch_is_not_fresh_even_within_the_staleness_window() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    seed(&server);
    // The default staleness (5 minutes) never elapses here: only the failure counts.
    let h = start(&server).await;
    h.synced().await;
    assert_eq!(show(h.view.cluster(NS, "other-pg")), "absent");
    server.fail(CLUSTERS);
    until("the failing watch is not fresh", || {
        h.view.answer(Res::Clusters) == Answer::Stale
    })
    .await;
    assert_eq!(show(h.view.cluster(NS, "other-pg")), "unknown");
    assert_eq!(show(h.view.cluster(NS, "shop-pg")), "shop-pg");
    assert_eq!(h.view.answer(Res::Jobs), Answer::Fresh);
    server.recover(CLUSTERS);
    until("fresh after the next successful request", || {
        show(h.view.cluster(NS, "other-pg")) == "absent"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_history_makes_the_watch_relist() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    seed(&server);
    let h = start(&server).await;
    h.synced().await;
    // The watch breaks, history is compacted meanwhile: resuming answers 410 Gone, the watcher
    // relists and the cache converges, including a deletion it never saw as an event.
    server.go_down();
    server.delete(CLUSTERS, NS, "shop-pg");
    server.apply(CLUSTERS, cnpg_cluster("new-pg"));
    server.compact();
    server.come_back();
    until("the relist replaced the cache", || {
        h.view.cluster(NS, "shop-pg").is_absent() && present(h.view.cluster(NS, "new-pg")).is_some()
    })
    .await;
}

fn hook_job(name: &str, tag: &str, delete_policy: Value) -> Value {
    migration_job(name, &format!("ghcr.io/acme/web:{tag}"), delete_policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_hook_succeeded_job_is_remembered_for_the_memory_window() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    let policy =
        Policy::from_yaml("rules:\n  migration-image-lockstep: {action: deny, lockstepMemoryMinutes: 30}\n").unwrap();
    assert_eq!(policy.params.migration_image_lockstep.lockstep_memory_minutes, 30);
    let h = start_with(&server, policy, |_| {}).await;
    h.synced().await;
    let web = admitted(ROLLOUTS, app("web", "ghcr.io/acme/web:sha-2222222"));

    server.apply(
        JOBS,
        hook_job(
            "web-migrate-2",
            "sha-2222222",
            json!({"argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
        ),
    );
    server.apply(JOBS, hook_job("seed-data", "sha-2222222", json!({})));
    until("both Jobs are listed", || {
        h.view.migration_jobs_for(&web).items.len() == 2
    })
    .await;

    // Argo CD deletes the succeeded hook; a Job without that policy is deleted by hand.
    server.delete(JOBS, NS, "web-migrate-2");
    server.delete(JOBS, NS, "seed-data");
    until("both deletions were seen", || h.view.cached(Res::Jobs) == 0).await;
    let jobs = h.view.migration_jobs_for(&web);
    assert_eq!((names(&jobs), jobs.complete), (vec!["web-migrate-2".to_string()], true));
    let images: Vec<&str> = jobs.items[0]
        .workload()
        .unwrap()
        .containers()
        .map(|c| c.image())
        .collect();
    assert_eq!(images, ["ghcr.io/acme/web:sha-2222222"], "remembered with its spec");
    assert_eq!(h.view.remembered_jobs(), 1);

    h.clock.advance_minutes(29);
    assert_eq!(names(&h.view.migration_jobs_for(&web)), ["web-migrate-2"]);
    h.clock.advance_minutes(2);
    assert!(
        h.view.migration_jobs_for(&web).is_absent(),
        "forgotten after the window"
    );

    // The window is read from the live policy.
    server.apply(
        JOBS,
        hook_job(
            "web-migrate-3",
            "sha-3333333",
            json!({"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}),
        ),
    );
    until("the Helm hook Job is listed", || h.view.cached(Res::Jobs) == 1).await;
    server.delete(JOBS, NS, "web-migrate-3");
    until("its deletion was seen", || h.view.cached(Res::Jobs) == 0).await;
    assert_eq!(names(&h.view.migration_jobs_for(&web)), ["web-migrate-3"]);
    h.policy.store(std::sync::Arc::new(Policy::default()));
    h.clock.advance_minutes(45);
    assert_eq!(
        names(&h.view.migration_jobs_for(&web)),
        ["web-migrate-3"],
        "default window: 60 minutes"
    );
    h.clock.advance_minutes(16);
    assert!(h.view.migration_jobs_for(&web).is_absent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_covers_objects_already_in_the_cluster_and_follows_changes() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace("shop", json!({})));
    server.apply(DEPLOYMENTS, leaky_deployment());
    server.apply(ROLLOUTS, app("web", "ghcr.io/acme/web:latest"));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    let h = start(&server).await;
    h.synced().await;
    let report = eventually("the report covers the three objects", || async {
        let r = h.view.report();
        (r.summary.objects == 3).then_some(r)
    })
    .await;
    let json = serde_json::to_value(&report).unwrap();
    let plaintext = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "db-url-plaintext")
        .unwrap_or_else(|| panic!("no db-url-plaintext finding in {json:#}"));
    assert_eq!(plaintext["action"], "deny");
    assert_eq!(
        plaintext["object"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "api"})
    );
    assert!(plaintext.get("file").is_none() && plaintext.get("line").is_none());
    assert!(plaintext["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "image-tag-pinned" && f.object.name == "web" && f.action == Action::Warn),
        "{json:#}"
    );
    assert_eq!(
        json["summary"]["deny"],
        json!(report.findings.iter().filter(|f| f.action == Action::Deny).count())
    );
    let rendered = h.metrics.render();
    assert!(
        rendered.contains("dbhook_report_findings{rule=\"db-url-plaintext\",action=\"deny\"} 1"),
        "{rendered}"
    );

    // Fixed in the cluster: the finding and its gauge series go.
    server.apply(DEPLOYMENTS, app("api", "ghcr.io/acme/api:sha-1111111"));
    until("the fixed Deployment has no finding", || {
        !h.view.report().findings.iter().any(|f| f.rule == "db-url-plaintext")
    })
    .await;
    until("the gauge was reset", || {
        !h.metrics.render().contains("rule=\"db-url-plaintext\"")
    })
    .await;
    // A policy change alone recomputes the report.
    h.policy.store(std::sync::Arc::new(
        Policy::from_yaml("rules:\n  image-tag-pinned: {action: off}\n").unwrap(),
    ));
    until("the switched-off rule has no finding", || {
        !h.view.report().findings.iter().any(|f| f.rule == "image-tag-pinned")
    })
    .await;
}

/// The API server fails from the start: after the sync timeout the view is ready with every
/// resource degraded (unknown, gauge 0); once it answers, the built-in kinds sync and a CRD that
/// turns out not to be installed loses its gauge instead of looking like an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_down_at_start_degrades_after_the_sync_timeout_and_recovers() {
    let server = FakeApiServer::start(&CNPG).await;
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.go_down();
    let h = start_with(&server, Policy::default(), |o| {
        o.sync_timeout = Duration::from_millis(300)
    })
    .await;
    h.synced().await;
    let states = h.view.resource_states();
    assert!(states.iter().all(|s| s.degraded && !s.ok), "{states:?}");
    assert!(matches!(h.view.cluster(NS, "shop-pg"), dbhook::view::Lookup::Unknown));
    let rendered = h.metrics.render();
    assert!(
        rendered.contains("dbhook_view_synced{resource=\"rollouts.argoproj.io\"} 0"),
        "{rendered}"
    );

    server.come_back();
    until("clusters synced and rollouts known to be absent", || {
        h.view.answer(Res::Clusters) == Answer::Fresh && h.view.served(Res::Rollouts) == Served::No
    })
    .await;
    assert_eq!(present(h.view.cluster(NS, "shop-pg")).as_deref(), Some("shop-pg"));
    until("every served resource synced", || {
        h.view.resource_states().iter().all(|s| s.ok && !s.degraded)
    })
    .await;
    let rendered = h.metrics.render();
    assert!(!rendered.contains("rollouts.argoproj.io"), "{rendered}");
    assert!(
        rendered.contains("dbhook_view_synced{resource=\"clusters.postgresql.cnpg.io\"} 1"),
        "{rendered}"
    );
}
