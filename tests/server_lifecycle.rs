//! Readiness, metrics, the report, policy hot reload, and graceful shutdown with requests in
//! flight.

use crate::server_support as support;

use std::time::Duration;

use crate::support::{
    ALL_CRDS, CLUSTERS, FakeApiServer, JOBS, NS, OBJECT_STORES, ROLLOUTS, SCHEDULED_BACKUPS, app, cnpg_cluster,
    migration_job, object_store, scheduled_backup,
};
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use support::*;
use tokio::io::AsyncReadExt as _;

async fn refuses_connections(addr: std::net::SocketAddr) {
    eventually("the webhook listener stops accepting", || async move {
        tokio::net::TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_during_an_http2_review_answers_it_flips_readyz_and_stops_accepting() {
    let pki = Pki::new();
    // ProbeView, not the cluster view: only it can hold a review inside the handler, which is
    // what makes the request be in flight when the shutdown begins.
    let view = ProbeView::holding(1);
    let mut config = config(pki.tls_paths());
    config.view = view.clone();
    let server = start(config).await;
    assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, StatusCode::OK);

    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { post(&h2, addr, "/mutate", &example("review-rollout.json")).await });
    view.wait_until_held(1).await;

    server.shutdown();
    let (status, body) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting down"));
    refuses_connections(server.addr).await;

    view.release();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::OK);
    assert!(patch_of(&reply.json()).is_some(), "the held review got its full answer");
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .expect("the server stops once the in-flight request is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_during_a_slow_http1_upload_still_answers_it() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let body = serde_json::to_vec(&example("review-rollout.json")).unwrap();
    let mut stream = raw_tls(server.addr, &[&pki.bundle.ca_cert], &[b"http/1.1"])
        .await
        .unwrap();
    // `Expect: 100-continue` makes the server say when the handler has started reading the body:
    // from then on the request is in flight.
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: {SERVICE_NAME}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    write(&mut stream, head.as_bytes()).await;
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (half, rest) = body.split_at(body.len() / 2);
    write(&mut stream, half).await;

    server.shutdown();
    assert_eq!(
        admin_get(server.admin_addr, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    refuses_connections(server.addr).await;

    write(&mut stream, rest).await;
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let review: Value = serde_json::from_str(json).unwrap();
    assert!(patch_of(&review).is_some());
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shutdown_timeout_bounds_a_request_that_never_finishes() {
    let pki = Pki::new();
    // ProbeView: a handler that never finishes needs a view that holds it (the cluster view's
    // lookups never block).
    let view = ProbeView::holding(1);
    let mut config = config(pki.tls_paths());
    config.view = view.clone();
    config.shutdown_timeout = Duration::from_millis(200);
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let addr = server.addr;
    // A review large enough to be judged off the runtime (spawn_blocking): its handler waits
    // the way a real slow one would, without blocking the worker that drives its connection.
    let mut review = example("review-rollout.json");
    review["request"]["object"]["metadata"]["annotations"]["example.com/padding"] =
        json!("x".repeat(dbhook::server::webhook::BLOCKING_BODY_BYTES));
    let stuck = tokio::spawn(async move {
        h2.post(url(addr, "/mutate"))
            .body(serde_json::to_vec(&review).unwrap())
            .send()
            .await
    });
    view.wait_until_held(1).await;
    server.shutdown();
    // Join returns although the handler is still held.
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .unwrap();
    // The connection is cut under the held request: its client's request ends, with no answer
    // and before its own timeout, while the handler is still held (released only afterwards,
    // so a late answer cannot race the cut).
    let outcome = tokio::time::timeout(Duration::from_secs(60), stuck)
        .await
        .expect("the client's request ends once its connection is cut")
        .unwrap();
    view.release();
    let err = outcome.expect_err("the request cut off by the shutdown timeout got an answer");
    assert!(!err.is_timeout(), "cut off, not timed out: {err:?}");
    assert!(err.status().is_none(), "no HTTP status reached the client: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_view_to_sync() {
    // The cluster view over a fake API server whose Cluster list fails: not synced until the
    // API server answers it.
    let api = FakeApiServer::start(&ALL_CRDS).await;
    api.fail(CLUSTERS);
    let harness = crate::support::start(&api).await;
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.view = harness.view.clone();
    let server = start(config).await;
    let (status, body) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with("cluster view not synced yet"), "{body}");
    assert_eq!(admin_get(server.admin_addr, "/livez").await.0, StatusCode::OK);
    api.recover(CLUSTERS);
    eventually("readyz turns 200 once the Cluster list is answered", || async {
        (admin_get(server.admin_addr, "/readyz").await.0 == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_serves_the_findings_the_view_computed_over_the_cluster() {
    let api = FakeApiServer::start(&ALL_CRDS).await;
    // The shop app, clean: a Cluster archiving WAL with its store and a daily backup, a Rollout
    // and its PreSync migration Job on the same image…
    api.preload(CLUSTERS, [cnpg_cluster("shop-pg")]);
    let mut store = object_store("shop-pg-store");
    store["spec"]["configuration"]["wal"] = json!({"compression": "gzip"});
    store["spec"]["configuration"]["data"] = json!({"compression": "gzip"});
    api.preload(OBJECT_STORES, [store]);
    api.preload(SCHEDULED_BACKUPS, [scheduled_backup("shop-pg-daily", "shop-pg")]);
    api.preload(ROLLOUTS, [app("web", "ghcr.io/acme/web:sha-1111111")]);
    api.preload(
        JOBS,
        [migration_job("web-migrate", "ghcr.io/acme/web:sha-1111111", json!({}))],
    );
    // …and a Cluster nobody backs up.
    api.preload(
        CLUSTERS,
        [json!({"metadata": {"name": "legacy-pg", "namespace": NS}, "spec": {"instances": 1, "storage": {"size": "1Gi"}}})],
    );
    let harness = crate::support::start(&api).await;
    harness.synced().await;
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.view = harness.view.clone();
    let server = start(config).await;
    let report: Value = eventually("the background report covers every watched object", || async {
        let (status, body) = admin_get(server.admin_addr, "/report").await;
        assert_eq!(status, StatusCode::OK);
        let report: Value = serde_json::from_str(&body).unwrap();
        (report["summary"]["objects"] == 6).then_some(report)
    })
    .await;
    assert_eq!(
        report["summary"],
        json!({"objects": 6, "deny": 1, "warn": 0, "patched": 0}),
        "{report}"
    );
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["rule"], "backup-configured");
    assert_eq!(findings[0]["action"], "deny");
    assert_eq!(
        findings[0]["object"],
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "namespace": NS, "name": "legacy-pg"})
    );
    assert!(
        findings[0].get("file").is_none(),
        "read from the cluster, not a file: {report}"
    );
}

#[tokio::test]
/// `dbhook_view_synced` and `dbhook_report_findings` belong to the cluster view; standalone
/// they have no series.
async fn metrics_are_prometheus_text_with_the_servers_metrics() {
    let (content_type, text) = metrics_after_patches_and_a_denial(1).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    for name in [
        "dbhook_admission_requests_total{",
        "dbhook_admission_duration_seconds_bucket{",
        "dbhook_findings_total{",
        "dbhook_patches_total{",
        "dbhook_tls_reloads_total{",
        "dbhook_tls_cert_expiry_timestamp_seconds ",
        "dbhook_policy_reloads_total{",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(!text.contains("hunter2"));
}

const ENFORCE: &str = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nmode: enforce\n";
const AUDIT: &str = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nmode: audit\n";

#[tokio::test]
async fn configmap_swap_reloads_the_policy_and_a_bad_file_keeps_the_old_one() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut volume = Volume::new(dir.path(), &[("policy.yaml", ENFORCE)]);
    let mut config = config(pki.tls_paths());
    config.policy_path = Some(volume.path("policy.yaml"));
    config.reload_interval = Duration::from_secs(3600);
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let review = example("review-rollout.json");
    let patched = |answer: &Value| answer["response"].get("patch").is_some();
    assert!(patched(&post(&h2, server.addr, "/mutate", &review).await.json()));

    volume.update(&[("policy.yaml", AUDIT)]);
    eventually("audit mode takes effect", || {
        let (h2, review) = (h2.clone(), review.clone());
        async move { (!patched(&post(&h2, server.addr, "/mutate", &review).await.json())).then_some(()) }
    })
    .await;
    let reloads =
        |text: &str, result: &str| metric(text, &format!(r#"dbhook_policy_reloads_total{{result="{result}"}}"#));
    assert_eq!(reloads(&metrics(server.admin_addr).await, "success"), Some(1.0));

    volume.update(&[("policy.yaml", "mode: sometimes\n")]);
    eventually("the bad policy is counted", || async {
        (reloads(&metrics(server.admin_addr).await, "error") == Some(1.0)).then_some(())
    })
    .await;
    let answer = post(&h2, server.addr, "/mutate", &review).await.json();
    assert!(!patched(&answer), "audit mode stays in force: {answer}");
}

#[tokio::test]
async fn a_bad_policy_file_at_startup_is_a_startup_error() {
    let pki = Pki::new();
    std::fs::write(pki.path("policy.yaml"), "rules:\n  no-such-rule: deny\n").unwrap();
    let mut config = config(pki.tls_paths());
    config.policy_path = Some(pki.path("policy.yaml"));
    let err = dbhook::server::Server::bind(config).await.err().unwrap();
    assert!(err.to_string().contains("no-such-rule"), "{err}");
    assert_eq!(dbhook::cli::Failure::from(err).exit_code(), 2);
}

/// Standalone, the report is empty by construction: it says so instead of looking clean.
#[tokio::test]
async fn report_without_a_cluster_view_says_so() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let (status, body) = admin_get(server.admin_addr, "/report").await;
    assert_eq!(status, StatusCode::OK);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["summary"]["objects"], 0);
    let note = report["note"].as_str().unwrap_or_else(|| panic!("no note in {body}"));
    assert!(note.starts_with("no cluster view"), "{note}");
}
