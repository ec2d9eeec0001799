//! TLS for the webhook listener: the serving pair behind a lock-free, hot-swappable
//! `ResolvesServerCert`, optional client-certificate auth, and the expiry metric.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, TimeDelta, Utc};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::metrics::{Metrics, ResultLabels};

use super::reload::Contents;

/// Certificates expiring sooner than this are logged as warnings.
const EXPIRY_WARNING: TimeDelta = TimeDelta::days(7);

/// The PEM files the listener serves.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate this CA bundle signed.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {problem}")]
    File {
        path: PathBuf,
        #[source]
        problem: FileProblem,
    },
    #[error("{cert} and {key} do not belong together: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error("TLS configuration: client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("TLS configuration: expected a certificate and a key")]
    NotAPair,
}

/// What is wrong with one PEM file; shown after its path.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// A read by the reloader, which names the file it could not read.
    #[error("{0}")]
    Read(#[source] super::reload::ReadError),
    #[error("not read")]
    NotRead,
    #[error("client CA not read")]
    ClientCaNotRead,
    #[error("not a PEM certificate chain: {0}")]
    NotAChain(#[source] rustls::pki_types::pem::Error),
    #[error("no CERTIFICATE block")]
    NoCertificate,
    #[error("{0}")]
    Leaf(#[source] LeafError),
    #[error("not a PEM private key: {0}")]
    NotAKey(#[source] rustls::pki_types::pem::Error),
    #[error("unusable private key: {0}")]
    UnusableKey(#[source] rustls::Error),
    #[error("not a PEM certificate bundle: {0}")]
    NotABundle(#[source] rustls::pki_types::pem::Error),
    #[error("unusable CA certificate: {0}")]
    UnusableCa(#[source] rustls::Error),
}

/// The ring provider, always: the build carries no other, and depending on a process-wide
/// default would make the choice implicit.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A serving pair that parsed and matched, with its leaf's expiry.
pub struct Pair {
    key: Arc<CertifiedKey>,
    not_after: DateTime<Utc>,
}

impl Pair {
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
}

/// Parses a PEM chain and key and checks that the key belongs to the leaf certificate.
pub fn parse_pair(
    paths: &TlsPaths,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Pair, TlsError> {
    let file_err = |path: &PathBuf, problem: FileProblem| TlsError::File {
        path: path.clone(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(&paths.cert, FileProblem::NotAChain(e)))?;
    let leaf = chain
        .first()
        .ok_or_else(|| file_err(&paths.cert, FileProblem::NoCertificate))?;
    let not_after = leaf_not_after(leaf).map_err(|e| file_err(&paths.cert, FileProblem::Leaf(e)))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| file_err(&paths.key, FileProblem::NotAKey(e)))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_err(&paths.key, FileProblem::UnusableKey(e)))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A key type whose public half the provider cannot derive is not evidence of a mismatch.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(source) => {
            return Err(TlsError::Mismatch {
                cert: paths.cert.clone(),
                key: paths.key.clone(),
                source,
            });
        }
    }
    Ok(Pair {
        key: Arc::new(certified),
        not_after,
    })
}

/// Why a leaf certificate's expiry cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("not an X.509 certificate: {0}")]
    NotX509(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    #[error("certificate expiry out of range")]
    ExpiryOutOfRange,
}

fn leaf_not_after(der: &CertificateDer<'_>) -> Result<DateTime<Utc>, LeafError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(LeafError::NotX509)?;
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).ok_or(LeafError::ExpiryOutOfRange)
}

/// Hands every handshake the current pair; swapping it affects new handshakes only, so
/// established connections are never dropped by a rotation.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The listener's TLS state: the resolver, the server configuration built around it (rebuilt
/// only when the client CA changes), and the metrics that describe both.
pub struct Tls {
    paths: TlsPaths,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    config: ArcSwap<ServerConfig>,
    /// The admin port's configuration: same resolver (so the same reloads), no client auth.
    admin_config: Arc<ServerConfig>,
    not_after: ArcSwap<DateTime<Utc>>,
    metrics: Arc<Metrics>,
}

impl Tls {
    /// Builds the state from the files' first contents; any problem is a startup error.
    pub fn new(
        paths: TlsPaths,
        pair: &Contents,
        client_ca: Option<&Contents>,
        metrics: Arc<Metrics>,
    ) -> Result<Tls, TlsError> {
        let provider = provider();
        let pair = pair_from_contents(&paths, pair, &provider)?;
        let resolver = Arc::new(CertResolver {
            current: ArcSwap::new(pair.key.clone()),
        });
        let roots = match (&paths.client_ca, client_ca) {
            (Some(path), Some(contents)) => Some(client_roots(path, contents)?),
            (Some(path), None) => {
                return Err(TlsError::File {
                    path: path.clone(),
                    problem: FileProblem::ClientCaNotRead,
                });
            }
            (None, _) => None,
        };
        let config = server_config(&provider, &resolver, roots)?;
        let admin_config = Arc::new(server_config(&provider, &resolver, None)?);
        for result in ["success", "error"] {
            metrics.tls_reloads.get_or_create(&ResultLabels { result }).inc_by(0);
        }
        let tls = Tls {
            paths,
            provider,
            resolver,
            config: ArcSwap::from_pointee(config),
            admin_config,
            not_after: ArcSwap::from_pointee(pair.not_after),
            metrics,
        };
        tls.record_expiry(pair.not_after);
        Ok(tls)
    }

    pub fn paths(&self) -> &TlsPaths {
        &self.paths
    }

    /// An acceptor with the current configuration, for one connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// An acceptor for one admin connection: the current pair, no client certificate.
    pub fn admin_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.admin_config.clone())
    }

    /// Expiry of the pair being served.
    pub fn not_after(&self) -> DateTime<Utc> {
        **self.not_after.load()
    }

    /// The reload callback for the cert and key files: swap on a good pair, keep the old one
    /// (and say why) on anything else.
    pub fn apply_pair(&self, contents: &Contents) {
        match pair_from_contents(&self.paths, contents, &self.provider) {
            Ok(pair) => {
                self.resolver.current.store(pair.key.clone());
                self.not_after.store(Arc::new(pair.not_after));
                self.count("success");
                tracing::info!(
                    cert = %self.paths.cert.display(),
                    not_after = %pair.not_after.to_rfc3339(),
                    "serving certificate reloaded"
                );
                self.record_expiry(pair.not_after);
            }
            Err(e) => {
                self.count("error");
                tracing::error!(error = %e, "serving certificate not reloaded; the previous pair stays in use");
            }
        }
    }

    /// The reload callback for `--client-ca`.
    pub fn apply_client_ca(&self, contents: &Contents) {
        let Some(path) = self.paths.client_ca.as_ref() else {
            return;
        };
        let rebuilt =
            client_roots(path, contents).and_then(|roots| server_config(&self.provider, &self.resolver, Some(roots)));
        match rebuilt {
            Ok(config) => {
                self.config.store(Arc::new(config));
                self.count("success");
                tracing::info!(client_ca = %path.display(), "client CA bundle reloaded");
            }
            Err(e) => {
                self.count("error");
                tracing::error!(error = %e, "client CA bundle not reloaded; the previous one stays in use");
            }
        }
    }

    /// Warns when the served certificate is about to expire (also called periodically, since
    /// a certificate nobody rotates never triggers a reload).
    pub fn check_expiry(&self) {
        let not_after = self.not_after();
        let left = not_after - Utc::now();
        if left < TimeDelta::zero() {
            tracing::error!(not_after = %not_after.to_rfc3339(), cert = %self.paths.cert.display(), "serving certificate has expired");
        } else if left < EXPIRY_WARNING {
            tracing::warn!(
                not_after = %not_after.to_rfc3339(),
                days_left = left.num_days(),
                cert = %self.paths.cert.display(),
                "serving certificate expires soon"
            );
        }
    }

    fn record_expiry(&self, not_after: DateTime<Utc>) {
        self.metrics.tls_cert_expiry.set(not_after.timestamp());
        self.check_expiry();
    }

    fn count(&self, result: &'static str) {
        self.metrics.tls_reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

fn pair_from_contents(paths: &TlsPaths, contents: &Contents, provider: &CryptoProvider) -> Result<Pair, TlsError> {
    match contents {
        Ok(files) => match files.as_slice() {
            [cert, key] => parse_pair(paths, cert, key, provider),
            _ => Err(TlsError::NotAPair),
        },
        Err(e) => Err(TlsError::File {
            path: paths.cert.clone(),
            problem: FileProblem::Read(e.clone()),
        }),
    }
}

fn client_roots(path: &Path, contents: &Contents) -> Result<Arc<RootCertStore>, TlsError> {
    let file_err = |problem: FileProblem| TlsError::File {
        path: path.to_path_buf(),
        problem,
    };
    let pem = match contents {
        Ok(files) => files.first().ok_or_else(|| file_err(FileProblem::NotRead))?,
        Err(e) => return Err(file_err(FileProblem::Read(e.clone()))),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| file_err(FileProblem::NotABundle(e)))?;
        roots.add(cert).map_err(|e| file_err(FileProblem::UnusableCa(e)))?;
    }
    if roots.is_empty() {
        return Err(file_err(FileProblem::NoCertificate));
    }
    Ok(Arc::new(roots))
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<CertResolver>,
    client_roots: Option<Arc<RootCertStore>>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(TlsError::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let resolver: Arc<dyn ResolvesServerCert> = resolver.clone();
    let mut config = builder.with_cert_resolver(resolver);
    // kube-apiserver prefers h2; both on one port, chosen by ALPN.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
