//! The 7 MiB body limit over HTTP/2 answers as it does over HTTP/1.1: a 413 with its reason,
//! sent before the rest of the body is read, then the stream (not the connection) is reset with
//! NO_ERROR so the client stops uploading. kube-apiserver speaks HTTP/2 to webhooks.

use crate::server_support as support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use reqwest::{StatusCode, Version};
use support::*;

const CHUNK: usize = 64 * 1024;

/// A body of unknown length (no content-length: the server can only count) that would go on
/// to `total` bytes if nobody stopped it, counting what the client actually produced.
fn endless_body(total: usize, produced: Arc<AtomicUsize>) -> reqwest::Body {
    let chunks = futures::stream::iter((0..total / CHUNK).map(move |_| {
        produced.fetch_add(CHUNK, Ordering::Relaxed);
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b' '; CHUNK])))
    }));
    reqwest::Body::wrap(StreamBody::new(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_bodies_over_7_mib_get_413_before_the_rest_is_read_and_the_connection_survives() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    // ALPN picks h2, as with kube-apiserver; one client keeps one connection.
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let limit = dbhook::server::MAX_BODY_BYTES;

    // Declared length: refused without reading a byte of the body.
    let declared = send(&h2, &url(server.addr, "/mutate"), vec![b' '; limit + 1]).await;
    assert_eq!(declared.version, Version::HTTP_2);
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", declared.text);
    assert!(declared.text.contains("exceeds"), "{}", declared.text);

    // No declared length, and an upload far bigger than the limit: the answer comes when the
    // limit is crossed, and the client is told to stop long before it would have finished.
    let total = 64 * 1024 * 1024;
    let produced = Arc::new(AtomicUsize::new(0));
    let response = h2
        .post(url(server.addr, "/validate"))
        .header("content-type", "application/json")
        .body(endless_body(total, produced.clone()))
        .send()
        .await
        .expect("an answer, not a reset stream");
    assert_eq!(response.version(), Version::HTTP_2);
    let counted = reply(response).await;
    assert_eq!(counted.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", counted.text);
    assert!(counted.text.contains("exceeds"), "{}", counted.text);
    let sent = produced.load(Ordering::Relaxed);
    assert!(
        sent > limit && sent < total,
        "the client produced {sent} bytes: more than the limit, and not the whole upload"
    );

    // Only the stream was reset: the same connection answers the next review.
    let again = post(&h2, server.addr, "/mutate", &example("review-rollout.json")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.version, Version::HTTP_2);
    assert_eq!(again.json()["response"]["allowed"], true);
}

/// One HTTP/2 frame: type, flags, stream id, payload.
type RawFrame = (u8, u8, u32, Vec<u8>);

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK "literal header field without indexing, new name", no Huffman coding.
fn hpack_literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0x00, u8::try_from(name.len()).unwrap()];
    out.extend_from_slice(name.as_bytes());
    out.push(u8::try_from(value.len()).unwrap());
    out.extend_from_slice(value.as_bytes());
    out
}

/// What reqwest hides: the frames themselves. After a complete 413 (HEADERS, then DATA with
/// END_STREAM), the server resets the stream with NO_ERROR — the code that tells a conforming
/// client to stop uploading and keep the response — and leaves the connection open.
#[tokio::test]
async fn h2_413_is_a_complete_response_then_rst_stream_no_error() {
    use tokio::io::AsyncReadExt as _;

    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let mut tls = raw_tls(server.addr, &[&pki.bundle.ca_cert], &[b"h2"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut headers = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/mutate"),
        (":authority", SERVICE_NAME),
        ("content-type", "application/json"),
        ("content-length", "8388608"),
    ] {
        headers.extend(hpack_literal(name, value));
    }
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(4, 0, 0, &[])); // SETTINGS
    hello.extend(h2_frame(1, 0x4, 1, &headers)); // HEADERS, END_HEADERS; the body follows
    hello.extend(h2_frame(0, 0, 1, &[b' '; 16 * 1024])); // the first DATA of 8 MiB
    write(&mut tls, &hello).await;

    let mut frames: Vec<RawFrame> = Vec::new();
    let mut buf = Vec::new();
    let read_frames = async {
        loop {
            while buf.len() >= 9 {
                let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
                let frame: RawFrame = (buf[3], buf[4], stream, buf[9..9 + len].to_vec());
                buf.drain(..9 + len);
                // Only stream 1 matters; SETTINGS, WINDOW_UPDATE and PING are connection upkeep.
                if frame.2 == 1 || frame.0 == 7 {
                    let done = frame.0 == 3 || frame.0 == 7;
                    frames.push(frame);
                    if done {
                        return;
                    }
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed; frames so far: {frames:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read_frames)
        .await
        .expect("the server answers and resets the stream without waiting for the body");

    let kinds: Vec<(u8, u8)> = frames.iter().map(|f| (f.0, f.1 & 0x1)).collect();
    // HEADERS (no END_STREAM), DATA with END_STREAM, RST_STREAM.
    assert_eq!(kinds, [(1, 0), (0, 1), (3, 0)], "{frames:?}");
    let body = String::from_utf8_lossy(&frames[1].3);
    assert!(body.contains("request body exceeds 7340032 bytes"), "{body}");
    assert_eq!(frames[2].3, 0u32.to_be_bytes(), "RST_STREAM carries NO_ERROR (0)");
    // The status itself (HPACK may Huffman-code it) is checked through reqwest above.
}
