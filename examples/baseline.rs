//! The floor any Rust webhook pays: the same axum + tokio-rustls + hyper-util stack as
//! `dbhook serve`, parsing the AdmissionReview and echoing the uid, with no policy at all.
//! `scripts/load` runs it beside dbhook and reports dbhook ÷ baseline.
//!
//! Run: `cargo run --release --example baseline -- 127.0.0.1:9443 certs/dev/tls.crt certs/dev/tls.key`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

async fn echo(body: Bytes) -> impl IntoResponse {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => return (StatusCode::BAD_REQUEST, "no request").into_response(),
    };
    let out = AdmissionResponse::from(&req).into_review();
    match serde_json::to_vec(&out) {
        Ok(bytes) => ([("content-type", "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn tls_config(cert: &str, key: &str) -> Result<rustls::ServerConfig, Box<dyn std::error::Error>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args.get(1).map_or("127.0.0.1:9443", String::as_str).parse()?;
    let cert = args.get(2).map_or("certs/dev/tls.crt", String::as_str);
    let key = args.get(3).map_or("certs/dev/tls.key", String::as_str);
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(cert, key)?));
    let app = Router::new()
        .route("/mutate", post(echo))
        .route("/validate", post(echo));
    let listener = TcpListener::bind(addr).await?;
    eprintln!("baseline listening on https://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        // As dbhook does: without it Nagle's algorithm adds ~40 ms to HTTP/2 responses.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let mut builder = Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
