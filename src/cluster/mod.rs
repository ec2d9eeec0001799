//! The live cluster view (docs/rules.md: unknown never denies): kube watch caches of labelled workloads, CNPG and Barman
//! Cloud resources and Namespace labels, answering the [`View`] lookups from memory; CRDs that are
//! not installed make their kind unknown; lockstep memory of deleted hook Jobs; the background
//! report. Read-only, except the opt-in OpenReports writer (`serve --reports`, see
//! `docs/rbac.md`).

pub(crate) mod decode;
mod discovery;
mod health;
mod index;
mod live;
mod memory;
mod openreports;
mod report;
mod resources;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, TimeDelta, Utc};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::metrics::{Metrics, ResourceLabels};
use crate::model::Object;
use crate::policy::Policy;
use crate::report::Report;
use crate::view::{Listing, Lookup, Origin, View};
use discovery::Watches;
pub use health::{Answer, Served};
use index::ObjectIndex;
pub use live::{LiveView, ResourceState};
use memory::Memory;
pub use openreports::ReportsOptions;
pub use resources::Res;

/// How long readiness waits for the watches by default (`--sync-timeout`).
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// "Now", injectable so tests can move time (lockstep memory, report).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Settings of the cluster view.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Without contact with the API server for this long, "absent" answers become "unknown"
    /// (`--view-staleness`).
    pub staleness: Duration,
    /// How often to re-check which CRDs are installed.
    pub discovery_interval: Duration,
    /// Quiet time after the last change before the report is recomputed.
    pub report_debounce: Duration,
    /// The report is recomputed at least this often.
    pub report_refresh: Duration,
    /// A resource not synced this long after start is served as unknown and reported degraded,
    /// and readiness no longer waits for it (`--sync-timeout`).
    pub sync_timeout: Duration,
    pub clock: Clock,
    /// Write the report as OpenReports (`serve --reports`).
    pub reports: Option<ReportsOptions>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            staleness: Duration::from_secs(300),
            discovery_interval: Duration::from_secs(60),
            report_debounce: Duration::from_secs(2),
            report_refresh: Duration::from_secs(300),
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            clock: system_clock(),
            reports: None,
        }
    }
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("staleness", &self.staleness)
            .field("discovery_interval", &self.discovery_interval)
            .field("report_debounce", &self.report_debounce)
            .field("report_refresh", &self.report_refresh)
            .field("sync_timeout", &self.sync_timeout)
            .finish_non_exhaustive()
    }
}

/// State shared by the view, its watch tasks and the report task.
pub(crate) struct Shared {
    health: [health::Health; Res::ALL.len()],
    indexes: [RwLock<ObjectIndex>; Res::ALL.len()],
    /// Namespace name → its `dbhook.io/mode` label (labelled Namespaces only).
    namespaces: RwLock<HashMap<String, String>>,
    memory: Memory,
    policy: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
    clock: Clock,
    staleness: Duration,
    discovered: AtomicBool,
    /// Why the last API discovery failed, while it has not succeeded since.
    discovery_error: std::sync::Mutex<Option<String>>,
    ready: AtomicBool,
    sync_timeout: Duration,
    /// The sync timeout has passed: readiness waits no more.
    timed_out: AtomicBool,
    changed: Notify,
    report: ArcSwap<Report>,
    /// A report computed over the synced view has been published.
    report_complete: AtomicBool,
    /// Bumped by every published report: the OpenReports writer notices a new one without
    /// holding on to the old.
    report_generation: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn new(policy: Arc<ArcSwap<Policy>>, metrics: Arc<Metrics>, opts: &ClusterOptions) -> Shared {
        Shared {
            health: std::array::from_fn(|i| {
                let crd = Res::ALL.get(i).is_some_and(|r| r.is_crd());
                health::Health::new(if crd { Served::Undetermined } else { Served::Yes })
            }),
            indexes: std::array::from_fn(|_| RwLock::default()),
            namespaces: RwLock::default(),
            memory: Memory::default(),
            policy,
            metrics,
            clock: opts.clock.clone(),
            staleness: opts.staleness,
            discovered: AtomicBool::new(false),
            discovery_error: std::sync::Mutex::new(None),
            ready: AtomicBool::new(false),
            sync_timeout: opts.sync_timeout,
            timed_out: AtomicBool::new(false),
            changed: Notify::new(),
            report: ArcSwap::default(),
            report_complete: AtomicBool::new(false),
            report_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether the published report covers the synced view.
    fn report_published(&self) -> bool {
        self.report_complete.load(Ordering::Acquire)
    }

    fn health(&self, res: Res) -> &health::Health {
        &self.health[res.index()]
    }

    fn read(&self, res: Res) -> RwLockReadGuard<'_, ObjectIndex> {
        self.indexes[res.index()].read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, res: Res) -> RwLockWriteGuard<'_, ObjectIndex> {
        self.indexes[res.index()]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn namespaces_mut(&self) -> RwLockWriteGuard<'_, HashMap<String, String>> {
        self.namespaces.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn memory_window(&self) -> TimeDelta {
        memory::window(
            self.policy
                .load()
                .params
                .migration_image_lockstep
                .lockstep_memory_minutes,
        )
    }

    fn answer(&self, res: Res) -> Answer {
        self.health(res).answer(self.staleness)
    }

    fn set_synced(&self, res: Res, synced: bool) {
        if self.health(res).set_synced(synced) {
            tracing::info!(
                resource = res.name(),
                "resource synced after the sync timeout: no longer degraded, judged normally again"
            );
        }
        self.metrics
            .view_synced
            .get_or_create(&ResourceLabels { resource: res.name() })
            .set(i64::from(synced));
    }

    fn set_discovered(&self) {
        self.discovered.store(true, Ordering::Release);
        *self.discovery_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn discovery_failed(&self, error: &dyn std::fmt::Display) {
        let text = crate::rules::truncate(&error.to_string(), 300);
        *self.discovery_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    }

    /// Where `res` stands, for `/readyz?verbose`.
    fn state(&self, res: Res) -> ResourceState {
        let h = self.health(res);
        let degraded = h.degraded();
        let (ok, state) = match (h.served(), h.synced()) {
            (Served::No, _) => (
                true,
                "not served (its CRD is not installed): its kind is unknown".to_string(),
            ),
            (_, true) => match self.answer(res) {
                Answer::Fresh => (true, "synced".to_string()),
                _ => (
                    true,
                    with_error("synced, stale: absent objects are unknown", h.last_error()),
                ),
            },
            (served, false) => {
                let why = if served == Served::Undetermined {
                    let e = self
                        .discovery_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    with_error("API discovery has not answered", e)
                } else {
                    with_error("watch not synced", h.last_error())
                };
                if degraded {
                    let secs = self.sync_timeout.as_secs_f64();
                    (
                        false,
                        format!(
                            "degraded: not synced within the sync timeout ({secs}s), served as unknown (never denies); {why}"
                        ),
                    )
                } else {
                    (false, format!("syncing: {why}"))
                }
            }
        };
        ResourceState {
            resource: res.name(),
            ok,
            degraded: degraded && !ok,
            state,
        }
    }

    /// The sync timeout has passed: every resource that has not synced is degraded from now
    /// until it syncs (its lookups are unknown, as for any unsynced cache), and readiness no
    /// longer waits for it.
    fn degrade_unsynced(&self) {
        self.timed_out.store(true, Ordering::Release);
        for res in Res::ALL {
            let h = self.health(res);
            if h.served() == Served::No || h.synced() || !h.degrade() {
                continue;
            }
            // Not served yet as far as anyone knows (discovery never answered): still a 0.
            let _ = self
                .metrics
                .view_synced
                .get_or_create(&ResourceLabels { resource: res.name() });
            let state = self.state(res);
            tracing::warn!(
                resource = res.name(),
                state = %state.state,
                "resource not synced within the sync timeout: serving without it, its lookups are unknown until it syncs"
            );
        }
        self.changed();
    }

    /// A resource that is no longer served: its cache and gauge go, its kind is unknown.
    fn forget(&self, res: Res) {
        self.health(res).set_synced(false);
        *self.write(res) = ObjectIndex::default();
        self.metrics
            .view_synced
            .remove(&ResourceLabels { resource: res.name() });
        self.changed();
    }

    fn changed(&self) {
        self.changed.notify_one();
    }

    async fn changed_notified(&self) {
        self.changed.notified().await;
    }

    /// Initial discovery answered and every served resource synced once. Latches: a watch
    /// started later (a CRD installed while running) leaves its kind unknown until it syncs
    /// but does not take a serving webhook out of rotation.
    fn synced(&self) -> bool {
        if self.ready.load(Ordering::Acquire) {
            return true;
        }
        let all = self.timed_out.load(Ordering::Acquire)
            || self.discovered.load(Ordering::Acquire)
                && Res::ALL.iter().all(|&r| {
                    let h = self.health(r);
                    h.served() != Served::Yes || h.synced()
                });
        if all {
            self.ready.store(true, Ordering::Release);
        }
        all
    }

    fn find(&self, res: Res, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        let answer = self.answer(res);
        if answer == Answer::Unknown {
            return Lookup::Unknown;
        }
        match self.read(res).get(ns, name) {
            Some(o) => Lookup::Present(o),
            None if answer == Answer::Fresh => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    /// Objects of `res` matching, with completeness from the cache state.
    fn listing(&self, res: &[Res], items: Vec<Arc<Object>>) -> Listing {
        Listing {
            items,
            complete: res.iter().all(|&r| self.answer(r) == Answer::Fresh),
        }
    }
}

fn with_error(what: &str, error: Option<String>) -> String {
    match error {
        Some(e) => format!("{what} (last error: {e})"),
        None => what.to_string(),
    }
}

fn dedup_by_name(items: &mut Vec<Arc<Object>>) {
    items.sort_by(|a, b| a.name().cmp(b.name()));
    items.dedup_by(|a, b| a.name() == b.name());
}

impl View for Shared {
    fn origin(&self) -> Origin {
        Origin::Admission
    }

    fn cluster(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.find(Res::Clusters, ns, name)
    }

    fn object_store(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.find(Res::ObjectStores, ns, name)
    }

    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> Listing {
        let items = if self.answer(Res::ScheduledBackups) == Answer::Unknown {
            Vec::new()
        } else {
            self.read(Res::ScheduledBackups).by_cluster(ns, cluster)
        };
        self.listing(&[Res::ScheduledBackups], items)
    }

    fn migration_jobs_for(&self, app: &Object) -> Listing {
        let mut items = Vec::new();
        if app.is_app_workload() && self.answer(Res::Jobs) != Answer::Unknown {
            let jobs = self.read(Res::Jobs);
            items.extend(jobs.by_rollout(app.namespace(), app.name()));
            if let Some(cluster) = app.db_cluster() {
                items.extend(jobs.by_cluster(app.namespace(), cluster));
            }
        }
        items.retain(|j| j.is_migration_job_for(app) && j.job_pairs_with(app));
        dedup_by_name(&mut items);
        // Remembered Jobs are deleted: a live Job of the same name is another one.
        let mut remembered = self.memory.jobs_for(app, self.now(), self.memory_window());
        remembered.retain(|r| !items.iter().any(|l| l.meta.uid.is_some() && l.meta.uid == r.meta.uid));
        items.extend(remembered);
        self.listing(&[Res::Jobs], items)
    }

    fn app_workloads_for(&self, job: &Object) -> Listing {
        const APPS: [Res; 3] = [Res::Rollouts, Res::Deployments, Res::StatefulSets];
        let named: Vec<&str> = job
            .annotation(crate::model::keys::ROLLOUT)
            .map(|v| v.split(',').map(str::trim).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default();
        let mut items = Vec::new();
        for res in APPS {
            if self.answer(res) == Answer::Unknown {
                continue;
            }
            let idx = self.read(res);
            if !named.is_empty() {
                items.extend(named.iter().filter_map(|n| idx.get(job.namespace(), n)));
            } else if let Some(cluster) = job.db_cluster() {
                items.extend(idx.by_cluster(job.namespace(), cluster));
            }
        }
        items.retain(|o| job.job_pairs_with(o));
        self.listing(&APPS, items)
    }

    fn deployment(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        // Only labelled Deployments are watched: one not in the cache may exist unlabelled.
        match self.find(Res::Deployments, ns, name) {
            Lookup::Absent => Lookup::Unknown,
            other => other,
        }
    }

    fn namespace_mode_label(&self, ns: &str) -> Option<String> {
        self.namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ns)
            .cloned()
    }
}

/// The view the server reads at admission: [`View`] lookups from the watch caches, readiness
/// and the background report. Dropping the last handle stops its background tasks.
pub struct ClusterView {
    shared: Arc<Shared>,
    watches: Arc<Watches>,
    tasks: Vec<AbortHandle>,
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterView")
            .field("synced", &self.shared.synced())
            .finish_non_exhaustive()
    }
}

impl Drop for ClusterView {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.watches.stop_all();
    }
}

/// Starts the cluster view: the watches of the built-in kinds and Namespaces at once, the CRD
/// watches as discovery finds their CRDs, and the report task. Returns at once; `synced()`
/// tells when the caches are complete.
pub async fn start(
    client: kube::Client,
    policy: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
    opts: ClusterOptions,
) -> Arc<ClusterView> {
    let shared = Arc::new(Shared::new(policy, metrics, &opts));
    let watches = Arc::new(Watches::default());
    for res in Res::ALL.into_iter().filter(|r| !r.is_crd()) {
        watches.start(&shared, &client, res);
    }
    let mut tasks = Vec::new();
    if let Some(reports) = opts.reports.clone() {
        tasks.push(tokio::spawn(openreports::run(shared.clone(), client.clone(), reports)).abort_handle());
    }
    let discovery = tokio::spawn(discovery::run(
        shared.clone(),
        client,
        watches.clone(),
        opts.discovery_interval,
    ));
    let timing = report::Timing {
        debounce: opts.report_debounce,
        refresh: opts.report_refresh,
    };
    let report = tokio::spawn(report::run(shared.clone(), timing));
    let deadline = {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(shared.sync_timeout).await;
            if !shared.synced() {
                shared.degrade_unsynced();
            }
        })
    };
    Arc::new(ClusterView {
        shared,
        watches,
        tasks: [discovery.abort_handle(), report.abort_handle(), deadline.abort_handle()]
            .into_iter()
            .chain(tasks)
            .collect(),
    })
}

impl ClusterView {
    /// What a lookup of `res` can conclude now (for diagnostics and tests).
    pub fn answer(&self, res: Res) -> Answer {
        self.shared.answer(res)
    }

    /// Whether the API server serves `res`, as far as discovery knows.
    pub fn served(&self, res: Res) -> Served {
        self.shared.health(res).served()
    }

    /// Objects currently cached for `res` (0 for Namespaces).
    pub fn cached(&self, res: Res) -> usize {
        self.shared.read(res).len()
    }

    /// Deleted hook Jobs currently remembered.
    pub fn remembered_jobs(&self) -> usize {
        self.shared.memory.len()
    }
}

impl View for ClusterView {
    fn origin(&self) -> Origin {
        Origin::Admission
    }
    fn cluster(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.shared.cluster(ns, name)
    }
    fn object_store(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.shared.object_store(ns, name)
    }
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> Listing {
        self.shared.scheduled_backups_for(ns, cluster)
    }
    fn migration_jobs_for(&self, app: &Object) -> Listing {
        self.shared.migration_jobs_for(app)
    }
    fn app_workloads_for(&self, job: &Object) -> Listing {
        self.shared.app_workloads_for(job)
    }
    fn deployment(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.shared.deployment(ns, name)
    }
    fn namespace_mode_label(&self, ns: &str) -> Option<String> {
        self.shared.namespace_mode_label(ns)
    }
}

impl LiveView for ClusterView {
    fn synced(&self) -> bool {
        self.shared.synced()
    }
    fn resource_states(&self) -> Vec<ResourceState> {
        Res::ALL.iter().map(|&r| self.shared.state(r)).collect()
    }
    fn report(&self) -> Report {
        Report::clone(&self.shared.report.load())
    }
    fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }
}

/// Why no client for the API server could be built; the causes stay attached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {}", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("loading kubeconfig {}", path.display())]
    LoadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("loading the in-cluster configuration")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("loading the kubeconfig (KUBECONFIG or ~/.kube/config)")]
    Discover(#[source] kube::config::KubeconfigError),
    #[error("building the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// A client for the cluster view: the explicit kubeconfig if given, else the in-cluster
/// service account, else `KUBECONFIG` / `~/.kube/config`.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ClientError> {
    // kube's rustls setup uses the process-wide provider; ring is the one this build carries.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
                path: path.to_path_buf(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::LoadKubeconfig {
                    path: path.to_path_buf(),
                    source,
                })?
        }
        None if in_cluster_env() => kube::Config::incluster().map_err(ClientError::InCluster)?,
        None => kube::Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .map_err(ClientError::Discover)?,
    };
    kube::Client::try_from(config).map_err(ClientError::Build)
}

fn in_cluster_env() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
        && std::env::var_os("KUBERNETES_SERVICE_PORT").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
