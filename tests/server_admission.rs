//! The webhook over real TLS sockets, called as kube-apiserver calls it: CA bundle, SNI
//! `dbhook.dbhook.svc`, HTTP/2 by ALPN or HTTP/1.1; patches applied and re-admitted; bad input.

use crate::server_support as support;

use std::time::Duration;

use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use support::*;

/// Starts a server with the default policy and returns it with an h2 and an h1 client.
async fn server() -> (Pki, dbhook::server::RunningServer, reqwest::Client, reqwest::Client) {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let h1 = client(&pki.bundle.ca_cert, server.addr, true);
    (pki, server, h2, h1)
}

/// Admits `review`, applies the returned patch, and admits the result again: the second answer
/// must carry no patch (README.md, "What it does", idempotence). Returns the first answer.
async fn patch_and_readmit(client: &reqwest::Client, addr: std::net::SocketAddr, review: &Value) -> Value {
    let first = post(client, addr, "/mutate", review).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.content_type, "application/json");
    let answer = first.json();
    let patch = patch_of(&answer).expect("a labelled workload is patched");
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    let mut again = review.clone();
    again["request"]["object"] = object;
    let second = post(client, addr, "/mutate", &again).await.json();
    assert_eq!(second["response"]["allowed"], true);
    assert!(
        second["response"].get("patch").is_none(),
        "re-admitting the patched object yields no patch: {second}"
    );
    answer
}

fn assert_envelope(answer: &Value, review: &Value) {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_the_patch_is_base64_json_patch_that_applies() {
    let (_pki, server, h2, _) = server().await;
    let review = example("review-rollout.json");
    let raw = post(&h2, server.addr, "/mutate", &review).await;
    assert_eq!(
        raw.version,
        Version::HTTP_2,
        "ALPN chose h2 (the client did not assume it)"
    );
    // On the wire, `patch` is a base64 string (Go's []byte), not kube-core's number array.
    let wire: Value = serde_json::from_str(&raw.text).unwrap();
    assert!(wire["response"]["patch"].is_string(), "{}", raw.text);
    assert_eq!(wire["response"]["patchType"], "JSONPatch");

    let answer = patch_and_readmit(&h2, server.addr, &review).await;
    assert_envelope(&answer, &review);
    let patch = serde_json::to_value(patch_of(&answer).unwrap()).unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                "value": {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}}])
    );
}

#[tokio::test]
async fn http1_clients_get_the_same_answers() {
    let (_pki, server, _, h1) = server().await;
    for name in ["review-rollout.json", "review-job-presync.json"] {
        let review = example(name);
        let raw = post(&h1, server.addr, "/mutate", &review).await;
        assert_eq!(raw.version, Version::HTTP_11);
        let answer = patch_and_readmit(&h1, server.addr, &review).await;
        assert_envelope(&answer, &review);
    }
}

#[tokio::test]
async fn presync_migration_job_is_patched_and_readmitted_without_patch() {
    let (_pki, server, h2, _) = server().await;
    let review = example("review-job-presync.json");
    let answer = patch_and_readmit(&h2, server.addr, &review).await;
    let patch = serde_json::to_value(patch_of(&answer).unwrap()).unwrap();
    assert_eq!(patch[0]["path"], "/spec/template/spec/containers/0/env");
}

#[tokio::test]
async fn job_update_is_allowed_without_patch() {
    let (_pki, server, h2, _) = server().await;
    let review = example("review-job-update.json");
    // Even with DB_URL missing from the stored Job, an UPDATE cannot change its pod template.
    let mut stripped = review.clone();
    for key in ["object", "oldObject"] {
        stripped["request"][key]["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("env");
    }
    for review in [review, stripped] {
        let answer = post(&h2, server.addr, "/mutate", &review).await.json();
        assert_envelope(&answer, &review);
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn unlabelled_objects_are_allowed_untouched() {
    let (_pki, server, h2, _) = server().await;
    let mut review = example("review-rollout.json");
    review["request"]["object"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("dbhook.io/cluster");
    for path in ["/mutate", "/validate"] {
        let answer = post(&h2, server.addr, path, &review).await.json();
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none());
        assert!(answer["response"].get("warnings").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn dry_run_requests_are_evaluated_normally() {
    let (_pki, server, h2, _) = server().await;
    let mut review = example("review-rollout.json");
    review["request"]["dryRun"] = json!(true);
    patch_and_readmit(&h2, server.addr, &review).await;
    let metrics = metrics(server.admin_addr).await;
    assert!(
        metrics.contains(r#"dbhook_patches_total{kind="Rollout"} 1"#),
        "{metrics}"
    );
}

fn rollout_with_plaintext_url() -> Value {
    rollout_with_plaintext_db_url("postgres://shop:s3cret@shop-pg-rw:5432/shop")
}

#[tokio::test]
async fn enforce_mode_denies_with_403_and_counts_the_finding() {
    let (_pki, server, h2, _) = server().await;
    let review = rollout_with_plaintext_url();
    let answer = post(&h2, server.addr, "/validate", &review).await.json();
    assert_envelope(&answer, &review);
    let response = &answer["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("dbhook denied Rollout shop/web: [db-url-plaintext] "),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "the message never repeats the credential");
    let metrics = metrics(server.admin_addr).await;
    for series in [
        r#"dbhook_admission_requests_total{webhook="validate",kind="Rollout",operation="CREATE",result="denied"} 1"#,
        r#"dbhook_findings_total{rule="db-url-plaintext",action="deny",mode="enforce"} 1"#,
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
}

#[tokio::test]
async fn audit_mode_from_the_policy_file_warns_and_never_patches_or_denies() {
    let pki = Pki::new();
    let policy = pki.path("policy.yaml");
    std::fs::write(&policy, "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nmode: audit\n").unwrap();
    let mut config = config(pki.tls_paths());
    config.policy_path = Some(policy);
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);

    let answer = post(&h2, server.addr, "/validate", &rollout_with_plaintext_url())
        .await
        .json();
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer}");
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("dbhook: audit: would deny: [db-url-plaintext] ")),
        "{warnings:?}"
    );
    let violations: Value = serde_json::from_str(response["auditAnnotations"]["violations"].as_str().unwrap()).unwrap();
    assert_eq!(violations[0]["rule"], "db-url-plaintext");

    let answer = post(&h2, server.addr, "/mutate", &example("review-rollout.json"))
        .await
        .json();
    let response = &answer["response"];
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "audit never patches: {answer}");
    assert!(
        response["auditAnnotations"]["would-patch"].is_string(),
        "the would-be patch is recorded: {answer}"
    );
}

#[tokio::test]
async fn an_undecodable_object_of_a_handled_kind_is_denied_with_the_decode_error() {
    let (_pki, server, h2, _) = server().await;
    let mut review = example("review-rollout.json");
    review["request"]["object"]["spec"]["template"]["spec"]["containers"] = json!("not a list");
    let answer = post(&h2, server.addr, "/mutate", &review).await.json();
    assert_envelope(&answer, &review);
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("cannot decode Rollout shop/web"), "{message}");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_plain_text_reason() {
    let (_pki, server, h2, h1) = server().await;
    let bodies: [(&[u8], &str); 6] = [
        (b"", "not JSON"),
        (b"hello", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (br#"{"apiVersion":"v1","kind":"Pod"}"#, "expected kind AdmissionReview"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#,
            "AdmissionReview",
        ),
    ];
    for client in [&h2, &h1] {
        for (body, reason) in bodies {
            let reply = send(client, &url(server.addr, "/validate"), body.to_vec()).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert!(reply.content_type.starts_with("text/plain"), "{}", reply.content_type);
            assert!(
                reply.text.contains(reason),
                "{:?} → {}",
                String::from_utf8_lossy(body),
                reply.text
            );
        }
    }
    let metrics = metrics(server.admin_addr).await;
    assert!(
        metrics
            .contains(r#"dbhook_admission_requests_total{webhook="validate",kind="",operation="",result="error"} 12"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn v1beta1_reviews_are_refused_naming_the_supported_version() {
    let (_pki, server, h2, _) = server().await;
    let mut review = example("review-rollout.json");
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let reply = post(&h2, server.addr, "/mutate", &review).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("admission.k8s.io/v1 only"), "{}", reply.text);
}

#[tokio::test]
async fn bodies_over_7_mib_get_413() {
    let (pki, server, h2, h1) = server().await;
    let ten_mib = vec![b' '; 10 * 1024 * 1024];
    // HTTP/2 delivers the early answer on the stream even while the upload is unfinished.
    let reply = send(&h2, &url(server.addr, "/mutate"), ten_mib.clone()).await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    // An HTTP/1.1 client may see the connection close before it reads the answer, so ask in
    // bytes: the declared length alone is refused, without reading the body.
    let mut stream = raw_tls(server.addr, &[&pki.bundle.ca_cert], &[b"http/1.1"])
        .await
        .unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: {SERVICE_NAME}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        ten_mib.len()
    );
    write(&mut stream, head.as_bytes()).await;
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    // Chunked, with no length declared: counted while reading.
    let mut stream = raw_tls(server.addr, &[&pki.bundle.ca_cert], &[b"http/1.1"])
        .await
        .unwrap();
    write(
        &mut stream,
        format!("POST /validate HTTP/1.1\r\nhost: {SERVICE_NAME}\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes(),
    )
    .await;
    let chunk = vec![b' '; 1024 * 1024];
    let mut answer = String::new();
    for _ in 0..10 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if tokio::io::AsyncWriteExt::write_all(&mut stream, &framed).await.is_err() {
            break;
        }
    }
    answer.push_str(&read_to_close(&mut stream).await);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    // A body under the limit is still read whole.
    let reply = send(&h1, &url(server.addr, "/mutate"), vec![b' '; 1024]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_path_is_404() {
    let (_pki, server, h2, _) = server().await;
    let get = reply(h2.get(url(server.addr, "/mutate")).send().await.unwrap()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let put = reply(h2.put(url(server.addr, "/validate")).send().await.unwrap()).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    let unknown = post(&h2, server.addr, "/admit", &example("review-rollout.json")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let (status, _) = admin_get(server.admin_addr, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn silent_and_slow_clients_are_cut_off_whatever_the_protocol() {
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.conn.header_read_timeout = Duration::from_millis(300);
    let server = start(config).await;
    let cases: [(&str, &[u8], &[u8]); 4] = [
        (
            "HTTP/1.1 headers never finished",
            b"http/1.1",
            b"POST /mutate HTTP/1.1\r\nhost: dbhook\r\n",
        ),
        ("HTTP/1.1 nothing sent", b"http/1.1", b""),
        ("h2 negotiated, no preface", b"h2", b""),
        ("h2 negotiated, half a preface", b"h2", b"PRI * HTTP/2.0\r\n"),
    ];
    for (case, alpn, sent) in cases {
        let mut stream = raw_tls(server.addr, &[&pki.bundle.ca_cert], &[alpn]).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn), "{case}");
        write(&mut stream, sent).await;
        // No timing assertion: only that the server, not the client, ends the connection.
        let answer = read_to_close(&mut stream).await;
        assert!(!answer.contains(" 200 "), "{case}: {answer}");
    }
    // The server is still there for well-behaved clients.
    let h1 = client(&pki.bundle.ca_cert, server.addr, true);
    let reply = post(&h1, server.addr, "/mutate", &example("review-rollout.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
}
