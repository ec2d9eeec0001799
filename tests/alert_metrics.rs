//! The chart's alerts (templates/prometheusrule.yaml) and Grafana dashboard read only metrics a
//! running dbhook exports (plus two of the API server's own, named below): a renamed metric
//! fails here instead of silently never alerting.

use std::collections::BTreeSet;
use std::path::Path;

use crate::server_support::{self as ss, Pki};
use crate::support::{ALL_CRDS, CLUSTERS, FakeApiServer, JOBS, cnpg_cluster, migration_job};

/// The API server's metrics `DbhookUnreachableFromAPIServer` reads: how calls to the webhooks
/// fail is only visible from the caller.
const API_SERVER_METRICS: [&str; 2] = [
    "apiserver_admission_webhook_rejection_count",
    "apiserver_admission_webhook_fail_open_count",
];

/// The metric names a file reads: every `dbhook_*` name, and every name followed by a label
/// selector (`name{…}`, or `name{{ printf … }}` in the template).
fn metrics_in(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dbhook = regex::Regex::new(r"\bdbhook_[a-z0-9_]*[a-z0-9]").unwrap();
    let selected = regex::Regex::new(r"\b([a-z_][a-z0-9_]*)\{").unwrap();
    dbhook
        .find_iter(&text)
        .map(|m| m.as_str().to_string())
        .chain(selected.captures_iter(&text).map(|c| c[1].to_string()))
        .collect()
}

/// The sample names of a Prometheus text exposition.
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_read_is_exported_by_a_running_server() {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/dbhook");
    let rules = metrics_in(&chart.join("templates/prometheusrule.yaml"));
    let dashboard = metrics_in(&chart.join("dashboards/dbhook.json"));
    for (what, names) in [("rule file", &rules), ("dashboard", &dashboard)] {
        let ours = names.iter().filter(|n| n.starts_with("dbhook_")).count();
        assert!(ours >= 6, "the {what} names too few dbhook metrics: {names:?}");
    }
    assert!(API_SERVER_METRICS.iter().all(|m| rules.contains(*m)), "{rules:?}");

    // A server with a cluster view (dbhook_view_synced comes from it) that has answered a
    // patched, a denied and an unreadable review (series appear with their first sample).
    let api = FakeApiServer::start(&ALL_CRDS).await;
    api.preload(
        JOBS,
        [migration_job(
            "web-migrate",
            "ghcr.io/acme/web:sha-2222222",
            serde_json::json!({}),
        )],
    );
    // Archives WAL without a ScheduledBackup: a finding for the background report's gauge.
    api.preload(CLUSTERS, [cnpg_cluster("shop-pg")]);
    let harness = crate::support::start(&api).await;
    harness.synced().await;
    let pki = Pki::new();
    let mut config = ss::config(pki.tls_paths());
    config.view = harness.view.clone();
    config.metrics = harness.metrics.clone();
    let server = ss::start(config).await;
    let client = ss::client(&pki.bundle.ca_cert, server.addr, false);
    let patched = ss::post(&client, server.addr, "/mutate", &ss::example("review-rollout.json")).await;
    assert_eq!(patched.json()["response"]["patchType"], "JSONPatch", "{}", patched.text);
    let denied = ss::post(
        &client,
        server.addr,
        "/validate",
        &ss::example("review-cluster-no-backup.json"),
    )
    .await;
    assert_eq!(denied.json()["response"]["allowed"], false, "{}", denied.text);
    let error = ss::send(&client, &ss::url(server.addr, "/validate"), b"{not json".to_vec()).await;
    assert_eq!(error.status, 400);

    // The report runs in the background after the sync: wait for its gauge.
    let metrics = ss::eventually("the background report's findings in /metrics", || async {
        let metrics = ss::metrics(server.admin_addr).await;
        metrics.contains("dbhook_report_findings{").then_some(metrics)
    })
    .await;
    let names = exported(&metrics);
    let missing: Vec<&String> = rules
        .union(&dashboard)
        .filter(|m| !names.contains(*m) && !API_SERVER_METRICS.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the chart reads metrics the server does not export: {missing:?}\n/metrics:\n{metrics}"
    );
    server.shutdown();
    server.join().await;
}
