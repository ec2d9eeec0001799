//! TLS material: rotation through a Secret-volume symlink swap, refusal of a bad pair, client
//! certificates, and the expiry metric.

use crate::server_support as support;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;
use support::*;

fn tls_reloads(metrics: &str, result: &str) -> f64 {
    metric(metrics, &format!(r#"dbhook_tls_reloads_total{{result="{result}"}}"#)).unwrap_or(-1.0)
}

fn volume_config(volume: &Volume) -> dbhook::server::Config {
    config(dbhook::server::TlsPaths {
        cert: volume.path("tls.crt"),
        key: volume.path("tls.key"),
        client_ca: None,
    })
}

#[tokio::test]
async fn secret_volume_swap_rotates_the_certificate_and_a_bad_pair_is_refused() {
    let a = bundle();
    let b = bundle();
    let c = bundle();
    let dir = tempfile::tempdir().unwrap();
    let mut volume = Volume::new(dir.path(), &[("tls.crt", &a.cert), ("tls.key", &a.key)]);
    let mut config = volume_config(&volume);
    // Only the directory watch can notice the swaps within the test.
    config.reload_interval = std::time::Duration::from_secs(3600);
    let server = start(config).await;
    let cas = [a.ca_cert.as_str(), b.ca_cert.as_str(), c.ca_cert.as_str()];
    assert_eq!(served_cert(server.addr, &cas).await, der_of(&a.cert));

    // A kept-alive HTTP/2 connection made before the rotation.
    let old = client(&a.ca_cert, server.addr, false);
    let before = post(&old, server.addr, "/mutate", &example("review-rollout.json")).await;
    assert_eq!(before.peer_cert.as_deref(), Some(der_of(&a.cert).as_slice()));

    volume.update(&[("tls.crt", &b.cert), ("tls.key", &b.key)]);
    let new_cert = der_of(&b.cert);
    eventually("new connections get the rotated certificate", || {
        let new_cert = new_cert.clone();
        async move { (served_cert(server.addr, &cas).await == new_cert).then_some(()) }
    })
    .await;
    assert_eq!(tls_reloads(&metrics(server.admin_addr).await, "success"), 1.0);

    // The old connection was not dropped: it still answers, still on the old certificate.
    let after = post(&old, server.addr, "/mutate", &example("review-rollout.json")).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.peer_cert, before.peer_cert,
        "same connection as before the rotation"
    );

    // C's certificate with B's key: refused, counted, and B keeps serving.
    volume.update(&[("tls.crt", &c.cert), ("tls.key", &b.key)]);
    eventually("the mismatched pair is counted as a failed reload", || async {
        (tls_reloads(&metrics(server.admin_addr).await, "error") == 1.0).then_some(())
    })
    .await;
    assert_eq!(served_cert(server.addr, &cas).await, new_cert);

    // Garbage is refused the same way; a later good pair is taken again.
    volume.update(&[("tls.crt", "not a certificate"), ("tls.key", &c.key)]);
    eventually("the unparseable pair is counted as a failed reload", || async {
        (tls_reloads(&metrics(server.admin_addr).await, "error") == 2.0).then_some(())
    })
    .await;
    assert_eq!(served_cert(server.addr, &cas).await, new_cert);
    let b_client = client(&b.ca_cert, server.addr, false);
    let reply = post(&b_client, server.addr, "/validate", &example("review-rollout.json")).await;
    assert_eq!(reply.status, StatusCode::OK);

    volume.update(&[("tls.crt", &c.cert), ("tls.key", &c.key)]);
    let c_cert = der_of(&c.cert);
    eventually("a good pair after bad ones is taken", || {
        let c_cert = c_cert.clone();
        async move { (served_cert(server.addr, &cas).await == c_cert).then_some(()) }
    })
    .await;
    assert_eq!(tls_reloads(&metrics(server.admin_addr).await, "success"), 2.0);
}

#[tokio::test]
async fn without_file_events_the_poll_still_notices_a_rotation() {
    let (a, b) = (bundle(), bundle());
    let dir = tempfile::tempdir().unwrap();
    let mut volume = Volume::new(dir.path(), &[("tls.crt", &a.cert), ("tls.key", &a.key)]);
    let mut config = volume_config(&volume);
    config.watch_files = false;
    config.reload_interval = std::time::Duration::from_millis(200);
    let server = start(config).await;
    let cas = [a.ca_cert.as_str(), b.ca_cert.as_str()];
    volume.update(&[("tls.crt", &b.cert), ("tls.key", &b.key)]);
    let new_cert = der_of(&b.cert);
    eventually("the poll picks up the rotated certificate", || {
        let new_cert = new_cert.clone();
        async move { (served_cert(server.addr, &cas).await == new_cert).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_pair_that_does_not_match_at_startup_is_a_startup_error() {
    let pki = Pki::new();
    let other = bundle();
    std::fs::write(pki.path("tls.key"), &other.key).unwrap();
    let err = dbhook::server::Server::bind(config(pki.tls_paths()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("do not belong together"), "{err}");
    assert_eq!(dbhook::cli::Failure::from(err).exit_code(), 2);
}

#[tokio::test]
async fn expiry_is_exported_as_a_metric() {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let metrics = metrics(server.admin_addr).await;
    let expiry = metric(&metrics, "dbhook_tls_cert_expiry_timestamp_seconds").unwrap();
    // The serving certificate's own notAfter, not the wall clock: the same on any day and load.
    let der = der_of(&pki.bundle.cert);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let not_after = cert.validity().not_after.timestamp();
    assert_eq!(expiry, not_after as f64, "{metrics}");
}

/// A client CA and a client certificate it signed, as PEM (CA, cert + key).
fn client_pki() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), format!("{}{}", cert.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_are_served() {
    let pki = Pki::new();
    let (client_ca, identity) = client_pki();
    let (_, stranger) = client_pki();
    std::fs::write(pki.path("client-ca.crt"), &client_ca).unwrap();
    let mut tls = pki.tls_paths();
    tls.client_ca = Some(pki.path("client-ca.crt"));
    let server = start(config(tls)).await;
    let review = serde_json::to_vec(&example("review-rollout.json")).unwrap();

    let anonymous = client(&pki.bundle.ca_cert, server.addr, false);
    let refused = anonymous
        .post(url(server.addr, "/mutate"))
        .body(review.clone())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused: {refused:?}"
    );

    for (identity, accepted) in [(&stranger, false), (&identity, true)] {
        let client = client_builder(&pki.bundle.ca_cert, server.addr, false)
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .build()
            .unwrap();
        let result = client
            .post(url(server.addr, "/mutate"))
            .body(review.clone())
            .send()
            .await;
        match (result, accepted) {
            (Ok(r), true) => assert_eq!(r.status(), StatusCode::OK),
            (Err(_), false) => {}
            (other, _) => panic!("client accepted={accepted}: {other:?}"),
        }
    }
}
