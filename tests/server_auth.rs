//! The admin port's access rules against the fake API server's TokenReview and
//! SubjectAccessReview: 401 without a valid token, 403 without RBAC for the path, 200 with it,
//! 503 when the API server cannot answer; probes always open; decisions cached per token;
//! malformed credentials never forwarded; the admin port over TLS.

use crate::server_support as ss;
use crate::support::FakeApiServer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use dbhook::server::RunningServer;
use dbhook::server::auth::{AdminAccess, AuthOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

struct Setup {
    api: FakeApiServer,
    server: RunningServer,
    _pki: ss::Pki,
}

fn options(metrics: bool) -> AuthOptions {
    AuthOptions {
        metrics,
        ..AuthOptions::default()
    }
}

/// A server whose admin port checks tokens with a fresh fake API server that knows `alice`
/// (allowed /report), `prom` (in group `monitoring`, which may get /metrics) and `bob` (nothing).
async fn setup(options: AuthOptions) -> Setup {
    let api = FakeApiServer::start(&[]).await;
    api.add_token("alice-token", "alice", &["team-a"]);
    api.add_token(
        "prom-token",
        "system:serviceaccount:monitoring:prometheus",
        &["monitoring"],
    );
    api.add_token("bob-token", "bob", &[]);
    api.grant("alice", "/report");
    api.grant("monitoring", "/metrics");
    let pki = ss::Pki::new();
    let mut config = ss::config(pki.tls_paths());
    config.admin_access = Arc::new(AdminAccess::reviewed(api.client(), options));
    let server = ss::start(config).await;
    Setup { api, server, _pki: pki }
}

async fn get(
    admin: SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .get(format!("http://{admin}{path}"))
        .timeout(Duration::from_secs(30));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

async fn status_of(admin: SocketAddr, path: &str, token: Option<&str>) -> StatusCode {
    let header = token.map(|t| format!("Bearer {t}"));
    get(admin, path, header.as_deref()).await.0
}

/// A token the API server does not know is 401 on `path`; bob's, known but not allowed, is 403.
async fn assert_unknown_and_unallowed_refused(admin: SocketAddr, path: &str) {
    assert_eq!(
        status_of(admin, path, Some("made-up")).await,
        StatusCode::UNAUTHORIZED,
        "{path}"
    );
    assert_eq!(
        status_of(admin, path, Some("bob-token")).await,
        StatusCode::FORBIDDEN,
        "{path}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_answers_401_403_200_and_probes_stay_open() {
    let Setup { api, server, .. } = setup(options(false)).await;
    let admin = server.admin_addr;

    let (status, headers, body) = get(admin, "/report", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"dbhook\"");
    assert_eq!(api.review_count("TokenReview"), 0, "no token, nothing to review");

    assert_eq!(
        status_of(admin, "/report", Some("made-up")).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = get(admin, "/report", Some("Bearer bob-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"bob\" may not get /report"), "{body}");
    // Allowed /metrics, not /report.
    assert_eq!(
        status_of(admin, "/report", Some("prom-token")).await,
        StatusCode::FORBIDDEN
    );

    let (status, headers, body) = get(admin, "/report", Some("Bearer alice-token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(report["findings"].is_array(), "{report}");

    // What was asked: the token as sent, then the user it names, for `get` on /report.
    let reviews = api.reviews();
    let token_review = reviews
        .iter()
        .find(|r| r["kind"] == "TokenReview" && r["spec"]["token"] == "alice-token")
        .expect("a TokenReview of alice's token");
    assert_eq!(token_review["apiVersion"], "authentication.k8s.io/v1");
    let sar = reviews
        .iter()
        .find(|r| r["kind"] == "SubjectAccessReview" && r["spec"]["user"] == "alice")
        .expect("a SubjectAccessReview for alice");
    assert_eq!(sar["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(sar["spec"]["groups"], json!(["team-a"]));
    assert_eq!(sar["spec"]["uid"], "uid-alice");
    assert_eq!(
        sar["spec"]["nonResourceAttributes"],
        json!({"path": "/report", "verb": "get"})
    );
    assert!(sar["spec"].get("resourceAttributes").is_none(), "{sar}");
    assert_eq!(
        api.review_count("SubjectAccessReview"),
        3,
        "a made-up token is not authorized"
    );

    // Without --metrics-auth, /metrics stays open; the probes always are.
    let before = api.reviews().len();
    assert_eq!(status_of(admin, "/metrics", None).await, StatusCode::OK);
    assert_eq!(status_of(admin, "/livez", None).await, StatusCode::OK);
    assert_eq!(status_of(admin, "/readyz", None).await, StatusCode::OK);
    assert_eq!(status_of(admin, "/livez", Some("made-up-too")).await, StatusCode::OK);
    assert_eq!(api.reviews().len(), before, "probes and open metrics cost no review");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_auth_metrics_answers_401_403_200() {
    let Setup { api, server, .. } = setup(options(true)).await;
    let admin = server.admin_addr;
    assert_eq!(status_of(admin, "/metrics", None).await, StatusCode::UNAUTHORIZED);
    assert_unknown_and_unallowed_refused(admin, "/metrics").await;
    // alice may read the report, not the metrics: each path is authorized on its own.
    assert_eq!(
        status_of(admin, "/metrics", Some("alice-token")).await,
        StatusCode::FORBIDDEN
    );
    // Prometheus's ServiceAccount, allowed through its group.
    let (status, _, body) = get(admin, "/metrics", Some("Bearer prom-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("dbhook_tls_cert_expiry_timestamp_seconds"), "{body}");
    let sar = api
        .reviews()
        .into_iter()
        .rfind(|r| r["kind"] == "SubjectAccessReview")
        .unwrap();
    assert_eq!(
        sar["spec"]["nonResourceAttributes"],
        json!({"path": "/metrics", "verb": "get"})
    );
    assert_eq!(status_of(admin, "/livez", None).await, StatusCode::OK);
    assert_eq!(status_of(admin, "/readyz", None).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_cannot_answer_is_503_never_open() {
    let Setup { api, server, .. } = setup(options(true)).await;
    let admin = server.admin_addr;
    api.go_down();
    for path in ["/report", "/metrics"] {
        let token = if path == "/report" { "alice-token" } else { "prom-token" };
        let (status, headers, body) = get(admin, path, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(headers.contains_key("retry-after"));
        assert!(!body.contains("findings") && !body.contains("dbhook_"), "{body}");
    }
    assert_eq!(status_of(admin, "/livez", None).await, StatusCode::OK);
    // A 503 is not cached: once the API server answers again, so does dbhook.
    api.come_back();
    assert_eq!(status_of(admin, "/report", Some("alice-token")).await, StatusCode::OK);

    // A hung API server: 503 at the review deadline, not a hung scrape.
    let Setup {
        api: hung,
        server: waiting,
        ..
    } = setup(AuthOptions {
        review_timeout: Duration::from_millis(200),
        ..options(true)
    })
    .await;
    hung.delay_reviews(Duration::from_secs(3600));
    assert_eq!(
        status_of(waiting.admin_addr, "/report", Some("alice-token")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Nothing listening at all.
    let gone = FakeApiServer::start(&[]).await;
    let client = gone.client();
    drop(gone);
    let pki = ss::Pki::new();
    let mut config = ss::config(pki.tls_paths());
    config.admin_access = Arc::new(AdminAccess::reviewed(client, options(true)));
    let server = ss::start(config).await;
    for path in ["/report", "/metrics"] {
        assert_eq!(
            status_of(server.admin_addr, path, Some("alice-token")).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_cached_per_token_and_path() {
    let Setup { api, server, .. } = setup(options(true)).await;
    let admin = server.admin_addr;
    for _ in 0..3 {
        assert_eq!(status_of(admin, "/metrics", Some("prom-token")).await, StatusCode::OK);
    }
    assert_eq!(
        api.review_count("TokenReview"),
        1,
        "one review per token within the TTL"
    );
    assert_eq!(api.review_count("SubjectAccessReview"), 1);
    // Refusals are cached too (briefly), so a scraper with a bad token costs one review.
    for _ in 0..3 {
        assert_unknown_and_unallowed_refused(admin, "/metrics").await;
    }
    assert_eq!(api.review_count("TokenReview"), 3);
    assert_eq!(api.review_count("SubjectAccessReview"), 2);
    // Another path is another decision.
    assert_eq!(
        status_of(admin, "/report", Some("prom-token")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(api.review_count("SubjectAccessReview"), 3);
    // Within the TTL an allowed scrape does not depend on the API server.
    api.go_down();
    assert_eq!(status_of(admin, "/metrics", Some("prom-token")).await, StatusCode::OK);
    // No token ever appears in what the server keeps or logs; the cache is keyed by a hash.

    // With no TTL every request is reviewed: the counts above come from the cache.
    let Setup { api, server, .. } = setup(AuthOptions {
        ttl: Duration::ZERO,
        denied_ttl: Duration::ZERO,
        ..options(true)
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            status_of(server.admin_addr, "/metrics", Some("prom-token")).await,
            StatusCode::OK
        );
    }
    assert_eq!(api.review_count("TokenReview"), 3);
    assert_eq!(api.review_count("SubjectAccessReview"), 3);
}

/// Sends raw bytes to the admin port and returns the status line.
async fn raw_status(admin: SocketAddr, request: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    // The server may answer (and close) before it has read everything: ignore write errors.
    let _ = tcp.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_credentials_are_refused_and_never_forwarded() {
    let Setup { api, server, .. } = setup(options(true)).await;
    let admin = server.admin_addr;
    let huge = format!("Bearer {}", "a".repeat(1024 * 1024));
    // (what, header value, status on the wire). hyper itself answers a header beyond its
    // 64 KiB buffer with 431 and control characters with 400, before dbhook sees them; dbhook
    // answers the rest: 400 for malformed credentials, 401 for another scheme.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("1 MiB Authorization header", huge.clone().into_bytes(), 431),
        ("Basic scheme", b"Basic YWxpY2U6c2VjcmV0".to_vec(), 401),
        ("Digest scheme", b"Digest username=\"alice\"".to_vec(), 401),
        ("token with a control character", b"Bearer alice\x01token".to_vec(), 400),
        ("token with a tab", b"Bearer alice\ttoken".to_vec(), 400),
        ("token with DEL", b"Bearer alice\x7ftoken".to_vec(), 400),
        ("token with non-ASCII bytes", b"Bearer alice\xff\xfetoken".to_vec(), 400),
        ("token with an escape sequence", b"Bearer \x1b[31malice".to_vec(), 400),
    ];
    for path in ["/report", "/metrics"] {
        for (what, value, want) in &cases {
            let mut request = format!("GET {path} HTTP/1.1\r\nHost: dbhook\r\nAuthorization: ").into_bytes();
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            let line = raw_status(admin, &request).await;
            let code: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            assert_eq!(code, *want, "{path} {what}: {line:?}");
        }
    }
    assert!(
        api.reviews().is_empty(),
        "nothing malformed was forwarded: {:?}",
        api.reviews()
    );
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    // The same inputs straight into the router (no hyper in front): dbhook's own answer.
    let state = Arc::new(dbhook::server::admin::AdminState {
        view: Arc::new(dbhook::view::EmptyView),
        metrics: Arc::new(dbhook::metrics::Metrics::new()),
        shutdown: dbhook::server::shutdown::channel().1,
        access: Arc::new(AdminAccess::reviewed(api.client(), options(true))),
    });
    let router = dbhook::server::admin::router(state);
    for path in ["/report", "/metrics"] {
        for (what, value, _) in &cases {
            let Ok(header) = axum::http::HeaderValue::from_bytes(value) else {
                continue; // not even representable as a header value
            };
            let request = Request::get(path)
                .header("authorization", header)
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let want = if what.contains("scheme") { 401 } else { 400 };
            assert_eq!(response.status().as_u16(), want, "{path} {what}");
        }
    }
    assert!(api.reviews().is_empty(), "nothing malformed was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_tls_serves_the_serving_certificate_and_follows_its_rotation() {
    let a = ss::bundle();
    let b = ss::bundle();
    let dir = tempfile::tempdir().unwrap();
    let mut volume = ss::Volume::new(dir.path(), &[("tls.crt", &a.cert), ("tls.key", &a.key)]);
    let client_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(client_ca.path(), &a.ca_cert).unwrap();
    let mut config = ss::config(dbhook::server::TlsPaths {
        cert: volume.path("tls.crt"),
        key: volume.path("tls.key"),
        // Webhook clients need a certificate; probes and scrapers on the admin port do not.
        client_ca: Some(client_ca.path().to_path_buf()),
    });
    config.admin_tls = true;
    let server = ss::start(config).await;
    let admin = server.admin_addr;
    let cas = [a.ca_cert.as_str(), b.ca_cert.as_str()];
    assert_eq!(ss::served_cert(admin, &cas).await, ss::der_of(&a.cert));

    let https = ss::client(&a.ca_cert, admin, true);
    for path in ["/livez", "/readyz", "/report", "/metrics"] {
        let response = https.get(ss::url(admin, path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Plain HTTP to the admin port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{admin}/livez"))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true));

    volume.update(&[("tls.crt", &b.cert), ("tls.key", &b.key)]);
    let new_cert = ss::der_of(&b.cert);
    ss::eventually("the admin port serves the rotated certificate", || {
        let new_cert = new_cert.clone();
        async move { (ss::served_cert(admin, &cas).await == new_cert).then_some(()) }
    })
    .await;
}
