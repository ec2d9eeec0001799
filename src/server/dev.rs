//! `serve --dev`: a self-signed CA and a localhost serving certificate in `certs/dev/`, reused
//! while they are valid so a browser or curl trust set up once keeps working.

use std::path::{Path, PathBuf};

use chrono::{TimeDelta, Utc};

use super::certs::{self, CertsError};
use super::tls::{TlsError, TlsPaths, parse_pair, provider};

/// Where `--dev` keeps its material, relative to the working directory.
pub const DEV_DIR: &str = "certs/dev";

/// Days a dev certificate is valid.
const DEV_DAYS: u32 = 365;

/// Certificates with less than this left are replaced rather than reused.
const RENEW_BEFORE: TimeDelta = TimeDelta::days(1);

/// The dev CA and serving pair on disk.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Whether they were created now rather than reused.
    pub created: bool,
}

impl DevCerts {
    pub fn tls_paths(&self) -> TlsPaths {
        TlsPaths {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: None,
        }
    }
}

/// Names the dev certificate is valid for.
pub fn dev_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// Reuses `dir`'s CA and pair while they parse, match and stay valid for a day; otherwise
/// writes new ones.
pub fn ensure(dir: &Path) -> Result<DevCerts, CertsError> {
    let dev = DevCerts {
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        created: false,
    };
    match reusable(&dev) {
        Ok(()) => return Ok(dev),
        Err(why) if dev.cert.exists() || dev.key.exists() => {
            tracing::info!(dir = %dir.display(), reason = %why, "replacing the dev certificate");
        }
        Err(_) => {}
    }
    let bundle = certs::generate("dbhook dev CA", &dev_names(), certs::Validity::days_from_now(DEV_DAYS))?;
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    certs::write_file(dir, "ca.crt", &bundle.ca_cert, false)?;
    certs::write_file(dir, "tls.crt", &bundle.cert, false)?;
    certs::write_file(dir, "tls.key", &bundle.key, true)?;
    Ok(DevCerts { created: true, ..dev })
}

/// Why the certificates in `certs/dev/` are not reused.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pair(#[from] TlsError),
    #[error("expires {0}")]
    Expiring(String),
    #[error("{cert} does not verify against {ca}: {source}")]
    Unverified {
        cert: PathBuf,
        ca: PathBuf,
        #[source]
        source: VerifyError,
    },
}

/// Why a certificate does not verify the way a client holding only the CA checks it.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a PEM certificate: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("unusable CA certificate: {0}")]
    Ca(#[source] rustls::Error),
    #[error("no certificate")]
    NoCertificate,
    #[error("cannot build a verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("{0:?} is not a DNS name or IP address")]
    Name(String),
    #[error(transparent)]
    Rejected(rustls::Error),
}

fn reusable(dev: &DevCerts) -> Result<(), DevError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| DevError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let (ca, cert, key) = (read(&dev.ca)?, read(&dev.cert)?, read(&dev.key)?);
    let pair = parse_pair(&dev.tls_paths(), &cert, &key, &provider())?;
    if pair.not_after() - Utc::now() < RENEW_BEFORE {
        return Err(DevError::Expiring(pair.not_after().to_rfc3339()));
    }
    // Verified the way curl will: chain to the CA, name `localhost`, validity now.
    verify_server_cert(&ca, &cert, "localhost").map_err(|source| DevError::Unverified {
        cert: dev.cert.clone(),
        ca: dev.ca.clone(),
        source,
    })
}

/// Verifies the PEM chain `cert_pem` as a TLS client that trusts only `ca_pem` does when it
/// dials `name` now: the chain leads to the CA, the leaf names `name`, and it is valid.
pub fn verify_server_cert(ca_pem: &[u8], cert_pem: &[u8], name: &str) -> Result<(), VerifyError> {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(ca?).map_err(VerifyError::Ca)?;
    }
    let chain = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
    let (leaf, intermediates) = chain.split_first().ok_or(VerifyError::NoCertificate)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider()).build()?;
    let name = ServerName::try_from(name.to_string()).map_err(|_| VerifyError::Name(name.to_string()))?;
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(VerifyError::Rejected)
}

/// What `serve --dev` prints: where the CA is, where the cluster view comes from, and a request
/// to paste.
pub fn banner(dev: &DevCerts, port: u16, view: &str) -> String {
    let state = if dev.created { "created" } else { "reusing" };
    format!(
        "dbhook serve --dev: {state} a development CA and certificate for localhost in {dir}/\n\
         {view}\n\
         try:\n  curl --cacert {ca} -H 'Content-Type: application/json' \
         --data @examples/review-rollout.json https://localhost:{port}/mutate\n",
        dir = dev.ca.parent().map_or_else(|| ".".into(), |d| d.display().to_string()),
        ca = dev.ca.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type IsVerifyError = fn(&VerifyError) -> bool;
    type IsDevError = fn(&DevError) -> bool;
    type Spoil = Box<dyn Fn(&Path)>;

    fn bundle(names: &[String], validity: certs::Validity) -> certs::Bundle {
        certs::generate("test dev CA", names, validity).unwrap()
    }

    fn write(dir: &Path, b: &certs::Bundle) {
        std::fs::write(dir.join("ca.crt"), &b.ca_cert).unwrap();
        std::fs::write(dir.join("tls.crt"), &b.cert).unwrap();
        std::fs::write(dir.join("tls.key"), &b.key).unwrap();
    }

    #[test]
    fn a_dev_certificate_verifies_for_its_names_only_and_against_its_own_ca() {
        let b = bundle(&dev_names(), certs::Validity::days_from_now(2));
        let (ca, cert) = (b.ca_cert.as_bytes(), b.cert.as_bytes());
        for name in ["localhost", "127.0.0.1", "::1"] {
            verify_server_cert(ca, cert, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other = bundle(&dev_names(), certs::Validity::days_from_now(2));
        let cases: [(&[u8], &[u8], &str, IsVerifyError); 5] = [
            (ca, cert, "example.com", |e| matches!(e, VerifyError::Rejected(_))),
            (other.ca_cert.as_bytes(), cert, "localhost", |e| {
                matches!(e, VerifyError::Rejected(_))
            }),
            (ca, b"", "localhost", |e| matches!(e, VerifyError::NoCertificate)),
            (b"", cert, "localhost", |e| matches!(e, VerifyError::Verifier(_))),
            (ca, cert, "not a name", |e| matches!(e, VerifyError::Name(_))),
        ];
        for (ca, cert, name, expected) in cases {
            let err = verify_server_cert(ca, cert, name).expect_err(name);
            assert!(expected(&err), "{name}: {err:?}");
        }
    }

    #[test]
    fn ensure_creates_then_reuses_and_replaces_what_it_cannot_reuse() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs/dev");
        let first = ensure(&dir).unwrap();
        assert!(first.created);
        let cert = std::fs::read(&first.cert).unwrap();
        let again = ensure(&dir).unwrap();
        assert!(!again.created);
        assert_eq!(std::fs::read(&again.cert).unwrap(), cert);

        let now = Utc::now();
        let expiring = bundle(
            &dev_names(),
            certs::Validity {
                not_before: now - TimeDelta::days(30),
                not_after: now + TimeDelta::hours(1),
            },
        );
        let unrelated = bundle(&dev_names(), certs::Validity::days_from_now(2));
        let not_localhost = bundle(&["dbhook.dbhook.svc".into()], certs::Validity::days_from_now(2));
        let cases: [(&str, Spoil, IsDevError); 5] = [
            (
                "missing key",
                Box::new(|d| std::fs::remove_file(d.join("tls.key")).unwrap()),
                |e| matches!(e, DevError::Read { .. }),
            ),
            (
                "garbage",
                Box::new(|d| std::fs::write(d.join("tls.crt"), "not a certificate").unwrap()),
                |e| matches!(e, DevError::Pair(_)),
            ),
            ("expiring", Box::new(move |d| write(d, &expiring)), |e| {
                matches!(e, DevError::Expiring(_))
            }),
            (
                "another CA",
                Box::new(move |d| std::fs::write(d.join("ca.crt"), &unrelated.ca_cert).unwrap()),
                |e| matches!(e, DevError::Unverified { .. }),
            ),
            ("not for localhost", Box::new(move |d| write(d, &not_localhost)), |e| {
                matches!(e, DevError::Unverified { .. })
            }),
        ];
        for (what, spoil, reason) in cases {
            spoil(&dir);
            let dev = DevCerts {
                ca: dir.join("ca.crt"),
                cert: dir.join("tls.crt"),
                key: dir.join("tls.key"),
                created: false,
            };
            let why = reusable(&dev).expect_err(what);
            assert!(reason(&why), "{what}: {why:?}");
            let replaced = ensure(&dir).unwrap();
            assert!(replaced.created, "{what}");
            assert!(reusable(&replaced).is_ok(), "{what}: the replacement is reusable");
        }
    }
}
