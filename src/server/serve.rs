//! `dbhook serve` itself: its [`ServeConfig`] to a running [`Config`], the view, logging, the
//! runtime, and signals.

use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::cluster::{ClusterOptions, LiveView};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::view::EmptyView;

use super::auth::{AdminAccess, AuthOptions};
use super::{Config, Server, StartError, TlsPaths, dev, shutdown};

/// How `dbhook serve` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// What `dbhook serve` is asked to do: its flags, as plain values (the CLI maps them).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `host:port` of the webhook endpoints; a name is resolved at start.
    pub addr: String,
    /// `host:port` of the admin endpoints.
    pub admin_addr: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    /// The policy file; `None` serves the embedded default.
    pub policy: Option<PathBuf>,
    /// No Kubernetes API: every lookup of another object is unknown.
    pub standalone: bool,
    /// Self-signed localhost certificate; standalone unless a kubeconfig is named.
    pub dev: bool,
    /// `None`: JSON unless stderr is a terminal.
    pub log_format: Option<LogFormat>,
    pub shutdown_timeout: Duration,
    pub kubeconfig: Option<PathBuf>,
    pub request_timeout: Duration,
    /// Bearer tokens on `/metrics` too.
    pub metrics_auth: bool,
    /// The admin port over HTTPS with the serving certificate.
    pub admin_tls: bool,
    /// The cluster view's settings (staleness, sync timeout, OpenReports).
    pub cluster: ClusterOptions,
}

/// How a server that started came to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// In-flight requests finished after the signal.
    Drained,
    /// A second signal cut the drain short.
    Interrupted,
}

/// Where the cluster view comes from, decided from the flags and `KUBECONFIG` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewSource {
    /// No Kubernetes API: every lookup of another object is unknown.
    Standalone { dev: bool },
    /// The kubeconfig `--kubeconfig` names, or the one `KUBECONFIG` names (as kubectl reads it).
    Kubeconfig { path: Option<PathBuf>, shown: String },
    /// In a cluster: the service account; elsewhere `KUBECONFIG` or `~/.kube/config`.
    Discovered,
}

impl ViewSource {
    /// `--standalone`, or `--dev` without a kubeconfig named by `--kubeconfig` or `KUBECONFIG`:
    /// `--dev` runs on laptops whose `~/.kube/config` may point at production, so it never
    /// picks that up by itself.
    pub fn of(args: &ServeConfig, kubeconfig_env: Option<&OsStr>) -> ViewSource {
        if args.standalone {
            return ViewSource::Standalone { dev: false };
        }
        if let Some(path) = &args.kubeconfig {
            return ViewSource::Kubeconfig {
                path: Some(path.clone()),
                shown: path.display().to_string(),
            };
        }
        if !args.dev {
            return ViewSource::Discovered;
        }
        match kubeconfig_env.filter(|v| !v.is_empty()) {
            None => ViewSource::Standalone { dev: true },
            Some(list) => {
                let paths: Vec<PathBuf> = std::env::split_paths(list).collect();
                // A single file is read as given, even in a pod; a list is merged as kubectl does.
                let path = match paths.as_slice() {
                    [one] => Some(one.clone()),
                    _ => None,
                };
                ViewSource::Kubeconfig {
                    path,
                    shown: format!("KUBECONFIG={}", list.to_string_lossy()),
                }
            }
        }
    }

    /// One line for the `--dev` banner and the log.
    pub fn describe(&self) -> String {
        match self {
            ViewSource::Standalone { dev: true } => "cluster view: none, standalone (--dev reads no ~/.kube/config; \
                pass --kubeconfig or set KUBECONFIG to watch a cluster): lookups of other objects are unknown"
                .into(),
            ViewSource::Standalone { dev: false } => {
                "cluster view: none, standalone: lookups of other objects are unknown".into()
            }
            ViewSource::Kubeconfig { shown, .. } => {
                format!("cluster view: the cluster of {shown}, ready once every watch has synced")
            }
            ViewSource::Discovered => {
                "cluster view: in-cluster configuration or KUBECONFIG / ~/.kube/config, ready once every watch has synced"
                    .into()
            }
        }
    }
}

/// The view the server judges against: [`EmptyView`] when standalone, where every lookup of
/// another object is unknown and never denies; otherwise the cluster view's watch caches, fed
/// from the API server with read-only access.
pub async fn build_view(
    args: &ServeConfig,
    policy: &Arc<ArcSwap<Policy>>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn LiveView>, StartError> {
    let source = ViewSource::of(args, std::env::var_os("KUBECONFIG").as_deref());
    tracing::info!("{}", source.describe());
    let kubeconfig = match &source {
        ViewSource::Standalone { .. } => {
            if args.cluster.reports.is_some() {
                tracing::warn!("--reports needs the cluster view; standalone, no Reports are written");
            }
            return Ok(Arc::new(EmptyView));
        }
        ViewSource::Kubeconfig { path, .. } => path.as_deref(),
        ViewSource::Discovered => None,
    };
    let client = crate::cluster::client(kubeconfig)
        .await
        .map_err(|source| StartError::Kube {
            source,
            hint: "pass --kubeconfig, run in a cluster, or use --standalone to serve without the cluster view",
        })?;
    let options = args.cluster.clone();
    let sync_timeout = options.sync_timeout;
    let view = crate::cluster::start(client, policy.clone(), metrics.clone(), options).await;
    tracing::info!(
        sync_timeout_s = sync_timeout.as_secs(),
        "cluster view started: ready once every watch has synced, or after the sync timeout with the unsynced resources degraded"
    );
    Ok(view)
}

/// Who may read `/report` and `/metrics`: with a cluster, bearer tokens reviewed by its API
/// server (a client of its own, so the view's watches never queue behind a review); standalone
/// (the same [`ViewSource`] as [`build_view`]: `--dev` never reads `~/.kube/config` or the
/// in-cluster environment by itself), everyone.
pub async fn build_admin_access(args: &ServeConfig) -> Result<Arc<AdminAccess>, StartError> {
    let kubeconfig = match ViewSource::of(args, std::env::var_os("KUBECONFIG").as_deref()) {
        ViewSource::Standalone { .. } => return Ok(Arc::new(AdminAccess::open())),
        ViewSource::Kubeconfig { path, .. } => path,
        ViewSource::Discovered => None,
    };
    let client = crate::cluster::client(kubeconfig.as_deref())
        .await
        .map_err(|source| StartError::Kube {
            source,
            hint: "the admin port checks tokens with the API server",
        })?;
    let options = AuthOptions {
        metrics: args.metrics_auth,
        ..AuthOptions::default()
    };
    Ok(Arc::new(AdminAccess::reviewed(client, options)))
}

/// Loads `--policy` (or the embedded default) for startup; the error names the file.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, StartError> {
    match path {
        None => Ok(Policy::default()),
        Some(path) => {
            let policy = Policy::from_file(path)?;
            super::reload::log_deprecations(path, &policy);
            Ok(policy)
        }
    }
}

/// Sets up `tracing`: JSON when asked or when stderr is not a terminal (a cluster), text
/// otherwise. `RUST_LOG` overrides the level (default `info`).
pub fn init_tracing(format: Option<LogFormat>) {
    use tracing_subscriber::EnvFilter;
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(super::log_writer::make_writer);
    // Fails only if a subscriber is already installed (tests), which is fine.
    let _ = if json {
        builder.event_format(super::log_format::JsonLine).try_init()
    } else {
        // Colour codes only help a terminal; in a file or `kubectl logs` they are noise.
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// `dbhook serve`: runs until a signal, then drains.
pub fn main(args: ServeConfig) -> Result<Stopped, StartError> {
    init_tracing(args.log_format);
    super::log_writer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let stopped = runtime.block_on(run(args));
    // The last lines (the drain, "stopped") before the caller's own messages and the exit.
    super::log_writer::flush();
    stopped
}

async fn run(args: ServeConfig) -> Result<Stopped, StartError> {
    let (config, dev) = configure(&args).await?;
    let server = Server::bind(config).await?;
    if let Some(dev) = dev {
        let source = ViewSource::of(&args, std::env::var_os("KUBECONFIG").as_deref());
        print!("{}", dev::banner(&dev, server.addr.port(), &source.describe()));
    }
    let signal = shutdown::os_signal().await;
    tracing::info!(
        signal,
        "shutting down: readiness off, no new connections, finishing in-flight requests"
    );
    server.shutdown();
    Ok(tokio::select! {
        () = server.join() => {
            tracing::info!("stopped");
            Stopped::Drained
        }
        // Impatience (a second Ctrl-C) skips the drain.
        second = shutdown::os_signal() => {
            tracing::warn!(signal = second, "second signal: exiting without finishing in-flight requests");
            Stopped::Interrupted
        }
    })
}

async fn configure(args: &ServeConfig) -> Result<(Config, Option<dev::DevCerts>), StartError> {
    let addr = resolve("--addr", &args.addr).await?;
    let admin_addr = resolve("--admin-addr", &args.admin_addr).await?;
    let (tls, dev) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (
            TlsPaths {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.client_ca.clone(),
            },
            None,
        ),
        _ if args.dev => {
            let dev = dev::ensure(Path::new(dev::DEV_DIR))?;
            let tls = TlsPaths {
                client_ca: args.client_ca.clone(),
                ..dev.tls_paths()
            };
            (tls, Some(dev))
        }
        _ => {
            return Err(StartError::NoTls);
        }
    };
    let policy = Arc::new(ArcSwap::from_pointee(load_policy(args.policy.as_deref())?));
    // A bad certificate is the user's to fix: say so before trying to reach the cluster.
    precheck_tls(&tls)?;
    let mut config = Config::new(tls);
    config.metrics = Arc::new(Metrics::new());
    config.view = build_view(args, &policy, &config.metrics).await?;
    config.admin_access = build_admin_access(args).await?;
    config.admin_tls = args.admin_tls;
    config.addr = addr;
    config.admin_addr = admin_addr;
    config.policy_path.clone_from(&args.policy);
    config.policy = policy;
    config.request_timeout = args.request_timeout.max(Duration::from_secs(1));
    config.shutdown_timeout = args.shutdown_timeout;
    Ok((config, dev))
}

fn precheck_tls(paths: &TlsPaths) -> Result<(), StartError> {
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|e| super::tls::TlsError::File {
            path: path.clone(),
            problem: super::tls::FileProblem::Io(e),
        })
    };
    let (cert, key) = (read(&paths.cert)?, read(&paths.key)?);
    super::tls::parse_pair(paths, &cert, &key, &super::tls::provider())?;
    Ok(())
}

/// Accepts `host:port` with a name as well as an IP address.
async fn resolve(flag: &'static str, addr: &str) -> Result<SocketAddr, StartError> {
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| StartError::NotAnAddress {
            flag,
            addr: addr.to_string(),
            source,
        })?;
    addrs.next().ok_or_else(|| StartError::NoAddress {
        flag,
        addr: addr.to_string(),
    })
}
