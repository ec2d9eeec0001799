//! Slow and many clients (SECURITY.md "Slow or many clients"): a burst over many connections
//! is answered in full; clients that trickle headers, or hold an HTTP/2 connection open without
//! ever sending a request, are cut off while everyone else is served. Loopback only; no timing
//! assertions, only completion and generous upper bounds against hangs.

use crate::server_support as support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

/// Bound on anything that should complete; reaching it means a hang.
const HANG: Duration = Duration::from_secs(60);

/// A review with its own uid, so every answer can be matched to its question.
fn review(n: usize) -> (String, Value, &'static str, bool) {
    let (name, path, patched) = match n % 4 {
        0 => ("review-rollout.json", "/mutate", true),
        1 => ("review-job-presync.json", "/mutate", true),
        2 => ("review-rollout.json", "/validate", false),
        _ => ("review-cluster-no-backup.json", "/validate", false),
    };
    let mut review = example(name);
    let uid = format!("00000000-0000-4000-8000-{n:012}");
    review["request"]["uid"] = json!(uid);
    (uid, review, path, patched)
}

async fn ask(client: &reqwest::Client, addr: SocketAddr, n: usize) {
    let (uid, review, path, patched) = review(n);
    let reply = post(client, addr, path, &review).await;
    assert_eq!(reply.status, StatusCode::OK, "request {n}: {}", reply.text);
    let answer = reply.json();
    assert_eq!(answer["response"]["uid"], uid.as_str(), "request {n}");
    assert_eq!(patch_of(&answer).is_some(), patched, "request {n}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_requests_over_50_connections_is_answered_in_full() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    // 25 HTTP/2 connections with 10 concurrent streams each…
    for c in 0..25 {
        let h2 = client(&pki.bundle.ca_cert, addr, false);
        for s in 0..10 {
            let h2 = h2.clone();
            tasks.spawn(async move { ask(&h2, addr, c * 10 + s).await });
        }
    }
    // …and 25 HTTP/1.1 connections, each asking 10 times in a row on its kept-alive connection.
    for c in 25..50 {
        let h1 = client_builder(&pki.bundle.ca_cert, addr, true)
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        tasks.spawn(async move {
            for s in 0..10 {
                ask(&h1, addr, c * 10 + s).await;
            }
        });
    }
    let answered = tokio::time::timeout(HANG, async {
        let mut n = 0;
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
            n += 1;
        }
        n
    })
    .await
    .expect("every request of the burst is answered");
    assert_eq!(answered, 25 * 10 + 25);
    let metrics = metrics(server.admin_addr).await;
    let count = |webhook: &str, kind: &str, result: &str| {
        metric(
            &metrics,
            &format!(
                r#"dbhook_admission_requests_total{{webhook="{webhook}",kind="{kind}",operation="CREATE",result="{result}"}}"#
            ),
        )
        .unwrap_or(0.0)
    };
    let total = count("mutate", "Rollout", "patched")
        + count("mutate", "Job", "patched")
        + count("validate", "Rollout", "allowed")
        + count("validate", "Cluster", "denied");
    assert_eq!(total, 500.0, "{metrics}");
}

/// Sends `bytes` one at a time, `every` apart, until the server closes the connection; returns
/// how many were sent by then, or `None` if all were (the server never cut it off).
async fn trickle<S>(stream: S, bytes: &[u8], every: Duration) -> Option<usize>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rx, mut tx) = tokio::io::split(stream);
    let mut closed = Box::pin(async move {
        let mut sink = [0u8; 4096];
        // Whatever the server sends (an HTTP/2 SETTINGS frame, GOAWAY), it ends in a close.
        while matches!(rx.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    for (sent, byte) in bytes.iter().enumerate() {
        if tx.write_all(std::slice::from_ref(byte)).await.is_err() || tx.flush().await.is_err() {
            return Some(sent);
        }
        tokio::select! {
            () = &mut closed => return Some(sent + 1),
            () = tokio::time::sleep(every) => {}
        }
    }
    None
}

/// Well-behaved clients on both protocols ask, one request after the other, until every task
/// of `misbehaving` has ended (its client was cut off): the loop ends on that event rather than
/// after a guessed time, and at least one request per protocol is answered whatever the load.
async fn others_are_served_until_cut_off<T>(pki: &Pki, addr: SocketAddr, misbehaving: &[&JoinHandle<T>]) {
    let h2 = client(&pki.bundle.ca_cert, addr, false);
    let h1 = client(&pki.bundle.ca_cert, addr, true);
    let deadline = Instant::now() + HANG;
    let mut n = 0;
    while n < 2 || !misbehaving.iter().all(|t| t.is_finished()) {
        assert!(Instant::now() < deadline, "the misbehaving clients were never cut off");
        ask(if n % 2 == 0 { &h2 } else { &h1 }, addr, n).await;
        n += 1;
    }
}

fn slow_client_config(pki: &Pki) -> dbhook::server::Config {
    let mut config = config(pki.tls_paths());
    config.conn.header_read_timeout = Duration::from_secs(1);
    config.conn.idle_timeout = Duration::from_secs(1);
    config
}

/// Headers of a real request, long enough that trickling all of them would take minutes.
fn long_head() -> Vec<u8> {
    format!(
        "POST /mutate HTTP/1.1\r\nhost: {SERVICE_NAME}\r\ncontent-type: application/json\r\nx-padding: {}\r\n\r\n",
        "x".repeat(600)
    )
    .into_bytes()
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trickling_headers_a_byte_every_200_ms_are_cut_off_while_others_are_served() {
    let pki = Pki::new();
    let server = start(slow_client_config(&pki)).await;
    let cas = [pki.bundle.ca_cert.as_str()];

    let h1 = raw_tls(server.addr, &cas, &[b"http/1.1"]).await.unwrap();
    let h1_trickle = tokio::spawn(async move { trickle(h1, &long_head(), Duration::from_millis(200)).await });

    let mut h2 = raw_tls(server.addr, &cas, &[b"h2"]).await.unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    write(&mut h2, H2_PREFACE).await;
    write(&mut h2, &H2_SETTINGS).await;
    // A HEADERS frame (type 1, END_HEADERS, stream 1) announcing 4,000 bytes of header block.
    let mut frame = vec![0x00, 0x0f, 0xa0, 0x1, 0x4, 0, 0, 0, 1];
    frame.extend(std::iter::repeat_n(0x40, 4000));
    let h2_trickle = tokio::spawn(async move { trickle(h2, &frame, Duration::from_millis(200)).await });

    others_are_served_until_cut_off(&pki, server.addr, &[&h1_trickle, &h2_trickle]).await;
    for (what, trickler) in [("HTTP/1.1", h1_trickle), ("HTTP/2", h2_trickle)] {
        let sent = tokio::time::timeout(HANG, trickler)
            .await
            .unwrap_or_else(|_| panic!("{what}: the trickling client was never cut off"))
            .unwrap();
        assert!(sent.is_some(), "{what}: the server waited for every byte");
    }
    ask(&client(&pki.bundle.ca_cert, server.addr, false), server.addr, 99).await;
}

/// Reads HTTP/2 frames, acknowledging SETTINGS and PINGs like a live client, until the server
/// closes the connection; returns whether a GOAWAY came first.
async fn idle_h2_client(mut stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> bool {
    write(&mut stream, H2_PREFACE).await;
    write(&mut stream, &H2_SETTINGS).await;
    let mut goaway = false;
    loop {
        let mut head = [0u8; 9];
        if stream.read_exact(&mut head).await.is_err() {
            return goaway;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if stream.read_exact(&mut payload).await.is_err() {
            return goaway;
        }
        let (kind, flags) = (head[3], head[4]);
        match kind {
            0x4 if flags & 0x1 == 0 => {
                let _ = stream.write_all(&[0, 0, 0, 0x4, 0x1, 0, 0, 0, 0]).await;
            }
            0x6 if flags & 0x1 == 0 => {
                let mut ack = vec![0, 0, 8, 0x6, 0x1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                let _ = stream.write_all(&ack).await;
            }
            0x7 => goaway = true,
            _ => {}
        }
        let _ = stream.flush().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_never_sends_a_request_is_closed_with_goaway() {
    let pki = Pki::new();
    let server = start(slow_client_config(&pki)).await;
    let cas = [pki.bundle.ca_cert.as_str()];
    // A pooled client whose connection goes idle gets a GOAWAY too, and simply reconnects. It
    // asks before the idle connection below is opened, so its connection goes idle first: once
    // the idle one has been closed, the pooled one has been too, and its next request cannot
    // race the close.
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    ask(&h2, server.addr, 0).await;

    // Answers pings, so keep-alive alone would keep it forever.
    let idle = raw_tls(server.addr, &cas, &[b"h2"]).await.unwrap();
    let idle = tokio::spawn(idle_h2_client(idle));
    others_are_served_until_cut_off(&pki, server.addr, &[&idle]).await;
    let goaway = tokio::time::timeout(HANG, idle)
        .await
        .expect("the idle connection was never closed")
        .unwrap();
    assert!(goaway, "the close was graceful: GOAWAY first");
    ask(&h2, server.addr, 1).await;
}
