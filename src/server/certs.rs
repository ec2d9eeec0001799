//! Certificate generation: `dbhook certs` (a CA and a serving certificate for the in-cluster
//! Service) and the building blocks `serve --dev` uses for its localhost certificate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("--days must be at least 1")]
    NoValidity,
}

/// What `dbhook certs` writes: for Service `service` in `namespace`, into `out`, valid `days`.
#[derive(Debug, Clone)]
pub struct CertsConfig {
    pub service: String,
    pub namespace: String,
    pub out: PathBuf,
    pub days: u32,
}

/// A CA and a serving certificate it signed, all PEM.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl Bundle {
    /// The CA certificate as kube-apiserver wants it in `caBundle`: base64 of the PEM.
    pub fn ca_bundle_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_cert.as_bytes())
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour ago (clocks in a cluster drift) for `days` days.
    pub fn days_from_now(days: u32) -> Validity {
        let now = Utc::now();
        Validity {
            not_before: now - TimeDelta::hours(1),
            not_after: now + TimeDelta::days(i64::from(days)),
        }
    }
}

/// The names kube-apiserver may use to reach Service `service` in `namespace`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A fresh CA (ECDSA P-256) and a serving certificate for `names` (DNS names or IP addresses);
/// the first name becomes the subject's common name.
pub fn generate(ca_name: &str, names: &[String], validity: Validity) -> Result<Bundle, CertsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = common_name(ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca_params, validity);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = common_name(names.first().map_or("dbhook", String::as_str));
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys only sign; KeyEncipherment is an RSA key-exchange usage.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Bundle {
        ca_cert: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    // rcgen takes `time`'s type; counting from its epoch keeps `time` out of our dependencies.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch = |t: DateTime<Utc>| Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0));
    params.not_before = epoch + since_epoch(validity.not_before);
    params.not_after = epoch + since_epoch(validity.not_after);
}

/// Writes `contents` to `dir/name` by a rename, so a reader never sees half a file; private
/// keys get mode 0600.
pub fn write_file(dir: &Path, name: &str, contents: &str, private: bool) -> Result<PathBuf, CertsError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |source| CertsError::Io {
        path: path.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        // `mode` only applies when the file is created; a leftover temp file keeps its own.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `dir` (created if needed).
pub fn write_bundle(dir: &Path, bundle: &Bundle) -> Result<(), CertsError> {
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(dir, "ca.crt", &bundle.ca_cert, false)?;
    write_file(dir, "ca.key", &bundle.ca_key, true)?;
    write_file(dir, "tls.crt", &bundle.cert, false)?;
    write_file(dir, "tls.key", &bundle.key, true)?;
    Ok(())
}

/// `dbhook certs` without the printing: generates and writes the bundle.
pub fn run(args: &CertsConfig) -> Result<Bundle, CertsError> {
    if args.days == 0 {
        return Err(CertsError::NoValidity);
    }
    let names = service_names(&args.service, &args.namespace);
    let bundle = generate(
        &format!("dbhook CA for {}.{}", args.service, args.namespace),
        &names,
        Validity::days_from_now(args.days),
    )?;
    write_bundle(&args.out, &bundle)?;
    Ok(bundle)
}
