//! For the `server_*` tests: certificates from `dbhook certs`, an in-process server on
//! ephemeral ports, and clients that call it the way kube-apiserver does (CA bundle, SNI
//! `dbhook.dbhook.svc`, ALPN).

mod probe_view;
#[allow(unused_imports)] // `secrecy` shares this module and does not use it
pub use probe_view::ProbeView;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dbhook::server::certs::{self, Bundle, Validity};
use dbhook::server::{Config, RunningServer, Server, TlsPaths};
use reqwest::{StatusCode, Version};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[allow(unused_imports)] // the `server_*` tests reach the polling helper through here
pub use super::wait::{PATIENCE, eventually, until};

/// The name kube-apiserver uses for Service `dbhook` in namespace `dbhook`.
pub const SERVICE_NAME: &str = "dbhook.dbhook.svc";

/// A CA and serving pair for the webhook Service, as `dbhook certs` makes them.
pub fn bundle() -> Bundle {
    certs::generate(
        "test CA",
        &certs::service_names("dbhook", "dbhook"),
        Validity::days_from_now(30),
    )
    .unwrap()
}

/// A temp directory holding a bundle written by `dbhook certs`' library function.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub bundle: Bundle,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle();
        certs::write_bundle(dir.path(), &bundle).unwrap();
        Pki { dir, bundle }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn tls_paths(&self) -> TlsPaths {
        TlsPaths {
            cert: self.path("tls.crt"),
            key: self.path("tls.key"),
            client_ca: None,
        }
    }
}

/// `Config::new` on loopback ephemeral ports, with quick file polling. The deadlines on a
/// client's request are as patient as the tests' own hang bound: a burst of clients in the same
/// process, starved on a busy 2-core machine, can take longer than the production 4 s to send a
/// body, and no test here is about that deadline unless it sets one itself.
pub fn config(tls: TlsPaths) -> Config {
    let mut config = Config::new(tls);
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.request_timeout = super::wait::PATIENCE;
    config.conn.header_read_timeout = super::wait::PATIENCE;
    config.reload_interval = Duration::from_millis(500);
    config.shutdown_timeout = Duration::from_secs(10);
    config
}

pub async fn start(config: Config) -> RunningServer {
    Server::bind(config).await.unwrap()
}

/// A client like kube-apiserver's: trusts only `ca_pem`, reaches `addr` by the Service name.
/// `h1` pins HTTP/1.1; otherwise ALPN chooses (and the server should pick h2).
pub fn client(ca_pem: &str, addr: SocketAddr, h1: bool) -> reqwest::Client {
    client_builder(ca_pem, addr, h1).build().unwrap()
}

pub fn client_builder(ca_pem: &str, addr: SocketAddr, h1: bool) -> reqwest::ClientBuilder {
    let builder = client_for(ca_pem.as_bytes(), SERVICE_NAME, addr);
    if h1 { builder.http1_only() } else { builder }
}

/// A client that trusts only `ca_pem` and reaches `name` at `addr`; ALPN chooses the protocol.
pub fn client_for(ca_pem: &[u8], name: &str, addr: SocketAddr) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .resolve(name, addr)
        .tls_info(true)
        .timeout(Duration::from_secs(30))
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://{SERVICE_NAME}:{}{path}", addr.port())
}

/// A reply as it came off the wire.
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub content_type: String,
    pub text: String,
    pub peer_cert: Option<Vec<u8>>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Reply {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

/// The `content-type` header's value, or "" if absent or not text.
pub fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let version = response.version();
    let content_type = content_type(response.headers());
    let peer_cert = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec);
    let text = response.text().await.unwrap();
    Reply {
        status,
        version,
        content_type,
        text,
        peer_cert,
    }
}

pub async fn post(client: &reqwest::Client, addr: SocketAddr, path: &str, review: &Value) -> Reply {
    send(client, &url(addr, path), serde_json::to_vec(review).unwrap()).await
}

/// `GET http://admin_addr/path` → (status, body).
pub async fn admin_get(admin_addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{admin_addr}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The value of the sample whose text before the value is exactly `series`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

pub async fn metrics(admin_addr: SocketAddr) -> String {
    admin_get(admin_addr, "/metrics").await.1
}

/// An example AdmissionReview from `examples/`.
pub fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The example AdmissionReview `name` with `edit` applied to its `request.object`.
pub fn example_edited(name: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut review = example(name);
    edit(&mut review["request"]["object"]);
    review
}

/// The Rollout example's review with `edit` applied to the Rollout.
pub fn rollout_edited(edit: impl FnOnce(&mut Value)) -> Value {
    example_edited("review-rollout.json", edit)
}

/// The Rollout example's review with `uri` (a connection URI with a password) as the literal
/// value of DB_URL: `db-url-plaintext` denies it.
pub fn rollout_with_plaintext_db_url(uri: &str) -> Value {
    rollout_edited(|o| container0(o)["env"] = serde_json::json!([{"name": "DB_URL", "value": uri}]))
}

/// The `/metrics` answer (content type, text) of a standalone server that has patched
/// `patched` reviews of the Rollout example and denied one with a plaintext credential.
pub async fn metrics_after_patches_and_a_denial(patched: usize) -> (String, String) {
    let pki = Pki::new();
    let server = start(config(pki.tls_paths())).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    for _ in 0..patched {
        post(&h2, server.addr, "/mutate", &example("review-rollout.json")).await;
    }
    let denied = rollout_with_plaintext_db_url("postgresql://app:hunter2@db/app");
    post(&h2, server.addr, "/validate", &denied).await;
    let response = reqwest::get(format!("http://{}/metrics", server.admin_addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = content_type(response.headers());
    (content_type, response.text().await.unwrap())
}

/// The first container of a pod-template workload.
pub fn container0(o: &mut Value) -> &mut Value {
    &mut o["spec"]["template"]["spec"]["containers"][0]
}

/// The JSON Patch in a response, decoded from the base64 string kube-apiserver expects.
pub fn patch_of(review: &Value) -> Option<json_patch::Patch> {
    let response = &review["response"];
    let encoded = response.get("patch")?;
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = encoded.as_str().expect("patch is a base64 string, as Go's []byte is");
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Root store from PEM CA certificates.
pub fn roots(cas: &[&str]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    roots
}

/// A raw TLS connection to the webhook (SNI `dbhook.dbhook.svc`), for what reqwest hides:
/// byte-level HTTP/1.1 and the served certificate.
pub async fn raw_tls(addr: SocketAddr, cas: &[&str], alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(cas))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(SERVICE_NAME).unwrap(), tcp)
        .await
}

/// The leaf certificate (DER) a new connection is served.
pub async fn served_cert(addr: SocketAddr, cas: &[&str]) -> Vec<u8> {
    let stream = raw_tls(addr, cas, &[b"http/1.1"]).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

pub fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// Reads until the peer closes; returns what it sent.
pub async fn read_to_close(stream: &mut TlsStream<TcpStream>) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf))
        .await
        .expect("the server should close the connection");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Writes `bytes` and flushes.
pub async fn write(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

/// Kubelet's Secret/ConfigMap volume layout: `dir/..<version>/<files>`, `dir/..data` →
/// `..<version>`, and `dir/<file>` → `..data/<file>`. [`Volume::update`] swaps `..data`
/// atomically, as kubelet's AtomicWriter does; the top-level files are never written.
pub struct Volume {
    pub dir: PathBuf,
    version: u32,
}

impl Volume {
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Volume {
        let mut volume = Volume {
            dir: dir.to_path_buf(),
            version: 0,
        };
        volume.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
        volume
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn update(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let version = format!("..2026_11_23_09_00_00.{}", self.version);
        let versioned = self.dir.join(&version);
        std::fs::create_dir(&versioned).unwrap();
        for (name, contents) in files {
            std::fs::write(versioned.join(name), contents).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}
