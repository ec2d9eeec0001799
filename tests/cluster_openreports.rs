//! `serve --reports` against the fake API server: Reports applied by server-side apply with
//! field manager `dbhook`, rewritten only on change, deleted when the namespace is clean,
//! bounded by maxResults; write errors retried with backoff while admission goes on; without
//! the CRD the writer stays off and readiness is not blocked.

use crate::support;

use std::time::Duration;

use dbhook::cluster::LiveView;
use dbhook::cluster::ReportsOptions;
use dbhook::policy::Policy;
use serde_json::{Value, json};
use support::*;

fn reports_options(max_results: usize) -> ReportsOptions {
    ReportsOptions {
        max_results,
        poll: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

/// A labelled Deployment running `image` (a floating tag warns under image-tag-pinned).
fn deployment(ns: &str, name: &str, image: &str) -> Value {
    let mut d = app(name, image);
    d["metadata"]["namespace"] = json!(ns);
    d
}

/// A CNPG Cluster `shop-pg` in `ns` with its ObjectStore and a daily ScheduledBackup: no
/// findings of its own.
fn healthy_database(server: &FakeApiServer, ns: &str) {
    let mut objects = [
        (CLUSTERS, cnpg_cluster("shop-pg")),
        (OBJECT_STORES, object_store("shop-pg-store")),
        (SCHEDULED_BACKUPS, scheduled_backup("shop-pg-daily", "shop-pg")),
    ];
    objects[1].1["spec"]["configuration"]["wal"] = json!({"compression": "gzip"});
    objects[1].1["spec"]["configuration"]["data"] = json!({"compression": "gzip"});
    for (res, o) in &mut objects {
        o["metadata"]["namespace"] = json!(ns);
        server.apply(*res, o.clone());
    }
}

fn report_in(server: &FakeApiServer, ns: &str) -> Option<Value> {
    server.get(REPORTS, ns, "dbhook")
}

fn rules_of(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap_or("").to_string(),
                        r["resources"][0]["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn patches(server: &FakeApiServer) -> Vec<Recorded> {
    server.writes().into_iter().filter(|w| w.method == "PATCH").collect()
}

async fn started(server: &FakeApiServer, max_results: usize) -> Harness {
    let h = start_with(server, Policy::default(), |o| {
        o.reports = Some(reports_options(max_results));
        o.report_refresh = Duration::from_millis(200);
    })
    .await;
    h.synced().await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_applied_updated_on_change_only_and_deleted_when_clean() {
    let server = FakeApiServer::start(&[ALL_CRDS.as_slice(), OPENREPORTS.as_slice()].concat()).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(NAMESPACES, namespace("billing", json!({})));
    healthy_database(&server, NS);
    healthy_database(&server, "billing");
    server.apply(DEPLOYMENTS, deployment(NS, "web", "ghcr.io/acme/web:latest"));
    // A Report another run left behind in a namespace that is clean now.
    server.apply(
        REPORTS,
        json!({"metadata": {"name": "dbhook", "namespace": "billing",
                            "labels": {"app.kubernetes.io/managed-by": "dbhook"}},
               "source": "dbhook", "results": []}),
    );
    let h = started(&server, 1000).await;

    let report = eventually("the shop Report is applied", || async { report_in(&server, NS) }).await;
    assert_eq!(report["source"], "dbhook");
    assert_eq!(report["metadata"]["labels"]["app.kubernetes.io/managed-by"], "dbhook");
    assert_eq!(rules_of(&report), [("image-tag-pinned".to_string(), "web".to_string())]);
    assert_eq!(report["results"][0]["result"], "warn");
    assert_eq!(
        report["results"][0]["properties"]["observed"],
        "container web image ghcr.io/acme/web:latest"
    );
    until("the stale billing Report is deleted", || {
        report_in(&server, "billing").is_none()
    })
    .await;
    let w = &patches(&server)[0];
    assert_eq!(w.query.get("fieldManager").map(String::as_str), Some("dbhook"));
    assert_eq!(w.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(w.content_type, "application/apply-patch+yaml");
    assert_eq!(w.path, "/apis/openreports.io/v1alpha1/namespaces/shop/reports/dbhook");

    // The report is recomputed every 200 ms; nothing changed, so nothing is written.
    let before = server.writes().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(server.writes().len(), before, "{:#?}", server.writes());

    // A change: a second finding in shop, and billing gets its first.
    server.apply(DEPLOYMENTS, deployment(NS, "api", "ghcr.io/acme/api"));
    server.apply(
        DEPLOYMENTS,
        deployment("billing", "invoices", "ghcr.io/acme/invoices:latest"),
    );
    until("the shop Report has both findings", || {
        report_in(&server, NS).is_some_and(|r| r["results"].as_array().is_some_and(|a| a.len() == 2))
    })
    .await;
    eventually("billing gets a Report", || async { report_in(&server, "billing") }).await;

    // Fixed: the namespace is clean and its Report goes.
    server.apply(
        DEPLOYMENTS,
        deployment("billing", "invoices", "ghcr.io/acme/invoices:v1.2.0"),
    );
    until("the billing Report is deleted", || {
        report_in(&server, "billing").is_none()
    })
    .await;
    assert!(report_in(&server, NS).is_some());
    drop(h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_never_holds_more_than_max_results() {
    let server = FakeApiServer::start(&[ALL_CRDS.as_slice(), OPENREPORTS.as_slice()].concat()).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    healthy_database(&server, NS);
    for i in 0..7 {
        server.apply(
            DEPLOYMENTS,
            deployment(NS, &format!("web-{i}"), "ghcr.io/acme/web:latest"),
        );
    }
    let _h = started(&server, 3).await;
    let report = eventually("the Report is applied with all seven counted", || async {
        report_in(&server, NS).filter(|r| r["summary"]["warn"] == 7 && r["summary"]["fail"] == 0)
    })
    .await;
    assert_eq!(report["results"].as_array().unwrap().len(), 3);
    assert_eq!(report["metadata"]["annotations"]["dbhook.io/omitted-results"], "4");
    for w in patches(&server) {
        let n = w
            .body
            .as_ref()
            .and_then(|b| b["results"].as_array())
            .map_or(0, Vec::len);
        assert!(n <= 3, "a write carried {n} results");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_errors_are_retried_with_backoff_and_admission_goes_on() {
    let server = FakeApiServer::start(&[ALL_CRDS.as_slice(), OPENREPORTS.as_slice()].concat()).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.apply(DEPLOYMENTS, deployment(NS, "web", "ghcr.io/acme/web:latest"));
    server.fail_writes(4);
    let h = started(&server, 1000).await;
    // Admission meanwhile answers from the view as usual.
    let obj = admitted(DEPLOYMENTS, deployment(NS, "web", "ghcr.io/acme/web:latest"));
    let d = dbhook::engine::review(
        &dbhook::engine::Change::create(&obj),
        h.view.as_ref(),
        &Policy::default(),
        h.now(),
    );
    assert!(d.allowed);
    assert!(
        d.warnings.iter().any(|w| w.contains("[image-tag-pinned]")),
        "{:?}",
        d.warnings
    );
    eventually("the Report is written after the failures", || async {
        report_in(&server, NS)
    })
    .await;
    let attempts: Vec<Recorded> = patches(&server);
    assert_eq!(attempts.len(), 5, "four failures, then success: {attempts:#?}");
    assert!(h.view.synced(), "readiness is not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_crd_the_writer_stays_off_and_readiness_is_not_blocked() {
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.apply(NAMESPACES, namespace(NS, json!({})));
    server.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    server.apply(DEPLOYMENTS, deployment(NS, "web", "ghcr.io/acme/web:latest"));
    let h = started(&server, 1000).await;
    until("the report has the finding", || !h.view.report().findings.is_empty()).await;
    // Installing the CRD later does not turn it on: the writer looked once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.install(&OPENREPORTS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.writes().is_empty(), "{:#?}", server.writes());
    let discovery: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/apis/openreports.io/v1alpha1")
        .collect();
    assert_eq!(discovery.len(), 1, "asked once: {discovery:#?}");
}
