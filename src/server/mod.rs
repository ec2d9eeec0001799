//! The HTTPS admission webhook and its admin server (README.md, "The webhook server"): `dbhook serve`, and
//! [`Server::bind`] for running it in-process.

pub mod admin;
pub mod auth;
pub mod certs;
pub mod dev;
mod listen;
mod log_format;
mod log_writer;
pub mod reload;
mod serve;
pub mod shutdown;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster::LiveView;
use crate::metrics::{Metrics, ResultLabels};
use crate::policy::Policy;
use crate::view::EmptyView;

pub use listen::ConnLimits;
pub use serve::{LogFormat, ServeConfig, Stopped, build_view, init_tracing, load_policy, main};
pub use tls::TlsPaths;

/// kube-apiserver's own limit on an admission request is 3 MiB of object; 7 MiB leaves room for
/// `oldObject` on updates.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// Everything a running server needs; [`Config::new`] has the defaults of `dbhook serve`.
pub struct Config {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub tls: TlsPaths,
    /// Watched and reloaded; its content replaces `policy` at bind.
    pub policy_path: Option<PathBuf>,
    pub policy: Arc<ArcSwap<Policy>>,
    pub view: Arc<dyn LiveView>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// Deadline for receiving a review's body (`--request-timeout`).
    pub request_timeout: Duration,
    pub conn: ConnLimits,
    /// How long in-flight requests may take to finish after shutdown (`--shutdown-timeout`).
    pub shutdown_timeout: Duration,
    /// Fallback poll of the watched files.
    pub reload_interval: Duration,
    /// Watch the files' directories for changes; without it only the poll notices them.
    pub watch_files: bool,
    /// Who may read `/report` and `/metrics` (default: open, as in standalone mode).
    pub admin_access: Arc<auth::AdminAccess>,
    /// Serve the admin port over TLS with the webhook's serving certificate (`--admin-tls`).
    pub admin_tls: bool,
}

impl Config {
    pub fn new(tls: TlsPaths) -> Config {
        Config {
            addr: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls,
            policy_path: None,
            policy: Arc::new(ArcSwap::from_pointee(Policy::default())),
            view: Arc::new(EmptyView),
            metrics: Arc::new(Metrics::new()),
            max_body_bytes: MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(4),
            conn: ConnLimits::default(),
            shutdown_timeout: Duration::from_secs(20),
            reload_interval: Duration::from_secs(10),
            watch_files: true,
            admin_access: Arc::new(auth::AdminAccess::open()),
            admin_tls: false,
        }
    }
}

/// Why the server did not start. [`StartError::is_environment`] tells what the user can fix
/// in flags and files from what the environment refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::PolicyFileError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dev certificate: {0}")]
    Certs(#[from] certs::CertsError),
    #[error("--tls-cert and --tls-key are required (or --dev)")]
    NoTls,
    #[error("{flag} {addr:?}: not a host:port ({source})")]
    NotAnAddress {
        flag: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {addr:?}: resolves to no address")]
    NoAddress { flag: &'static str, addr: String },
    /// The message carries the whole chain of causes: kube's own say which file or variable.
    #[error("kubernetes: {}; {hint}", chain(source))]
    Kube {
        #[source]
        source: crate::cluster::ClientError,
        hint: &'static str,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl StartError {
    /// The environment failed (an address in use, no API server, no threads), not the
    /// configuration.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            StartError::Bind { .. } | StartError::Kube { .. } | StartError::Runtime(_)
        )
    }
}

/// `error: cause: its cause`, one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Starts servers from a [`Config`].
pub struct Server;

/// A server accepting connections; [`RunningServer::shutdown`] begins the drain,
/// [`RunningServer::join`] waits for it. Dropping it also shuts the server down.
pub struct RunningServer {
    /// The bound webhook (HTTPS) address, useful with port 0.
    pub addr: SocketAddr,
    /// The bound admin (HTTP) address.
    pub admin_addr: SocketAddr,
    trigger: shutdown::Trigger,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Readiness goes false, the listener stops accepting, open connections finish what they
    /// are doing (bounded by the shutdown timeout).
    pub fn shutdown(&self) {
        self.trigger.trigger();
    }

    /// A handle that can start the shutdown from elsewhere.
    pub fn trigger(&self) -> shutdown::Trigger {
        self.trigger.clone()
    }

    /// Waits until both listeners have stopped.
    pub async fn join(self) {
        let RunningServer { trigger, task, .. } = self;
        if let Err(e) = task.await {
            tracing::error!(error = %e, "server task failed");
        }
        drop(trigger);
    }
}

impl Server {
    /// Loads TLS material and the policy, binds both listeners, and starts serving. Fails
    /// before binding anything if the files are unusable.
    pub async fn bind(config: Config) -> Result<RunningServer, StartError> {
        // For anything in the process (kube's client) that asks rustls for its default provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let Config {
            addr,
            admin_addr,
            tls: tls_paths,
            policy_path,
            policy,
            view,
            metrics,
            max_body_bytes,
            request_timeout,
            conn,
            shutdown_timeout,
            reload_interval,
            watch_files,
            admin_access,
            admin_tls,
        } = config;
        let reload = reload::Every {
            poll: reload_interval,
            watch: watch_files,
        };

        let pair_files = vec![tls_paths.cert.clone(), tls_paths.key.clone()];
        let pair = reload::read(&pair_files).await;
        let ca_files: Option<Vec<PathBuf>> = tls_paths.client_ca.clone().map(|p| vec![p]);
        let ca = match &ca_files {
            Some(files) => Some(reload::read(files).await),
            None => None,
        };
        let tls = Arc::new(tls::Tls::new(tls_paths, &pair, ca.as_ref(), metrics.clone())?);
        for result in [ResultLabels::SUCCESS, ResultLabels::ERROR] {
            // Present from the start, so `increase()` sees the first error.
            metrics.policy_reloads.get_or_create(&result).inc_by(0);
        }
        let policy_seen = match &policy_path {
            Some(path) => {
                let contents = reload::read(std::slice::from_ref(path)).await;
                policy.store(Arc::new(reload::parse_policy(path, &contents)?));
                Some(reload::fingerprint(&contents))
            }
            None => None,
        };

        let listener = bind("webhook", addr).await?;
        let admin_listener = bind("admin", admin_addr).await?;
        let addr = local_addr("webhook", &listener)?;
        let admin_addr = local_addr("admin", &admin_listener)?;

        let (trigger, signal) = shutdown::channel();
        let mut background = Vec::new();
        {
            let tls = tls.clone();
            background.push(reload::spawn(
                "tls",
                pair_files,
                reload::fingerprint(&pair),
                reload,
                signal.clone(),
                move |c| tls.apply_pair(c),
            ));
        }
        if let (Some(files), Some(ca)) = (ca_files, &ca) {
            let tls = tls.clone();
            background.push(reload::spawn(
                "client-ca",
                files,
                reload::fingerprint(ca),
                reload,
                signal.clone(),
                move |c| tls.apply_client_ca(c),
            ));
        }
        if let (Some(path), Some(seen)) = (policy_path, policy_seen) {
            let (slot, metrics) = (policy.clone(), metrics.clone());
            let files = vec![path.clone()];
            background.push(reload::spawn("policy", files, seen, reload, signal.clone(), move |c| {
                reload::apply_policy(&path, &slot, &metrics, c)
            }));
        }
        background.push(spawn_expiry_checks(tls.clone(), signal.clone()));

        let webhook_app = webhook::router(Arc::new(webhook::WebhookState {
            policy,
            view: view.clone(),
            metrics: metrics.clone(),
            max_body_bytes,
            request_timeout,
        }));
        let admin_app = admin::router(Arc::new(admin::AdminState {
            view,
            metrics,
            shutdown: signal.clone(),
            access: admin_access.clone(),
        }));
        let webhook = tokio::spawn(listen::serve_tls(
            listener,
            tls.clone(),
            webhook_app,
            conn.clone(),
            signal.clone(),
            shutdown_timeout,
        ));
        // The admin port outlives the webhook drain so probes see 503, not a refused connection.
        let (admin_trigger, admin_signal) = shutdown::channel();
        let admin_conn = ConnLimits {
            max_connections: 64,
            ..conn
        };
        let admin = if admin_tls {
            tokio::spawn(listen::serve_admin_tls(
                admin_listener,
                tls,
                admin_app,
                admin_conn,
                admin_signal,
                Duration::from_secs(1),
            ))
        } else {
            tokio::spawn(listen::serve_plain(
                admin_listener,
                admin_app,
                admin_conn,
                admin_signal,
                Duration::from_secs(1),
            ))
        };
        let task = tokio::spawn(async move {
            if let Err(e) = webhook.await {
                tracing::error!(error = %e, "webhook listener failed");
            }
            admin_trigger.trigger();
            if let Err(e) = admin.await {
                tracing::error!(error = %e, "admin listener failed");
            }
            for task in background {
                let _ = task.await;
            }
        });
        let admin_scheme = if admin_tls { "https" } else { "http" };
        tracing::info!(%addr, %admin_addr, "dbhook serving: webhook on https://{addr}, admin on {admin_scheme}://{admin_addr}");
        tracing::info!(admin_tls, "admin endpoints: {}", admin_access.describe());
        Ok(RunningServer {
            addr,
            admin_addr,
            trigger,
            task,
        })
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
        what,
        addr: addr.to_string(),
        source,
    })
}

fn local_addr(what: &'static str, listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        what,
        addr: "?".into(),
        source,
    })
}

/// Expiry is logged at every load; this repeats the warning for a certificate nobody rotates.
fn spawn_expiry_checks(tls: Arc<tls::Tls>, shutdown: shutdown::Signal) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        hourly.tick().await;
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = hourly.tick() => tls.check_expiry(),
            }
        }
    })
}
