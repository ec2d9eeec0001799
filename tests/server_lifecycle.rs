//! Readiness, metrics, the report, policy hot reload, and graceful shutdown with requests in
//! flight.

use crate::server_support as support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dbhook::report::{Report, Summary};
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
    let view = ProbeView::holding(1);
    let mut config = config(pki.tls_paths());
    config.view = view.clone();
    config.shutdown_timeout = Duration::from_millis(200);
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let addr = server.addr;
    let stuck = tokio::spawn(async move {
        h2.post(url(addr, "/mutate"))
            .body(serde_json::to_vec(&example("review-rollout.json")).unwrap())
            .send()
            .await
    });
    view.wait_until_held(1).await;
    server.shutdown();
    // Join returns although the handler is still held.
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .unwrap();
    view.release();
    let _ = stuck.await;
}

#[tokio::test]
async fn readyz_waits_for_the_view_to_sync() {
    let pki = Pki::new();
    let view = Arc::new(ProbeView::default());
    view.synced.store(false, Ordering::SeqCst);
    let mut config = config(pki.tls_paths());
    config.view = view.clone();
    let server = start(config).await;
    let (status, body) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not synced"), "{body}");
    assert_eq!(admin_get(server.admin_addr, "/livez").await.0, StatusCode::OK);
    view.synced.store(true, Ordering::SeqCst);
    assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn report_serves_the_views_report_as_json() {
    let pki = Pki::new();
    let mut view = ProbeView::default();
    view.report = Report {
        summary: Summary {
            objects: 12,
            deny: 1,
            warn: 2,
            patched: 3,
        },
        findings: Vec::new(),
        ..Report::default()
    };
    let mut config = config(pki.tls_paths());
    config.view = Arc::new(view);
    let server = start(config).await;
    let (status, body) = admin_get(server.admin_addr, "/report").await;
    assert_eq!(status, StatusCode::OK);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        report,
        json!({"summary": {"objects": 12, "deny": 1, "warn": 2, "patched": 3}, "findings": []})
    );
}

#[tokio::test]
/// `dbhook_view_synced` and `dbhook_report_findings` belong to the cluster view; standalone
/// they have no series.
async fn metrics_are_prometheus_text_with_the_servers_metrics() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    post(&h2, server.addr, "/mutate", &example("review-rollout.json")).await;
    let mut denied = example("review-rollout.json");
    denied["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "DB_URL", "value": "postgresql://app:hunter2@db/app"}]);
    post(&h2, server.addr, "/validate", &denied).await;

    let response = reqwest::get(format!("http://{}/metrics", server.admin_addr))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
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
