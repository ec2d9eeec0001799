//! What the rules may know about other objects: the `View` trait, and its offline form over a
//! set of manifests.

use std::sync::Arc;

use crate::model::{KindId, Object, Spec, WorkloadKind, keys};

/// The answer to "does this object exist?". `Absent` only when the view is complete; anything
/// the view cannot see is `Unknown`, and `Unknown` never denies.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    Present(T),
    Absent,
    Unknown,
}

impl<T> Lookup<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Lookup::Absent)
    }
    pub fn present(self) -> Option<T> {
        match self {
            Lookup::Present(t) => Some(t),
            _ => None,
        }
    }
}

/// Objects matching a query. `complete` says whether an empty list means "there are none".
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub items: Vec<Arc<Object>>,
    pub complete: bool,
}

impl Listing {
    /// No matching object, and the view can say so.
    pub fn is_absent(&self) -> bool {
        self.complete && self.items.is_empty()
    }
}

/// Where the review happens; some rules behave differently at admission (docs/rules.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    Admission,
    #[default]
    Offline,
}

/// Synchronous, in-memory lookups. Implementations never block or await the network.
pub trait View: Send + Sync {
    fn origin(&self) -> Origin;
    /// The CNPG Cluster `ns/name`.
    fn cluster(&self, ns: &str, name: &str) -> Lookup<Arc<Object>>;
    /// The Barman Cloud ObjectStore `ns/name`.
    fn object_store(&self, ns: &str, name: &str) -> Lookup<Arc<Object>>;
    /// ScheduledBackups in `ns` whose `spec.cluster.name` is `cluster`.
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> Listing;
    /// Migration Jobs paired with app workload `app` ([`Object::job_pairs_with`]) that migrate
    /// before it ([`Object::is_migration_job_for`]: marked, or in an earlier sync wave); at
    /// admission this includes recently deleted hook Jobs the view still remembers.
    fn migration_jobs_for(&self, app: &Object) -> Listing;
    /// App workloads a labelled Job pairs with ([`Object::job_pairs_with`]), whatever their sync
    /// waves: the caller decides with [`Object::is_migration_job_for`].
    fn app_workloads_for(&self, job: &Object) -> Listing;
    /// The Deployment `ns/name` (the template of a Rollout with `spec.workloadRef`). Views that
    /// see only labelled Deployments answer unknown, never absent, for one they do not hold.
    fn deployment(&self, _ns: &str, _name: &str) -> Lookup<Arc<Object>> {
        Lookup::Unknown
    }
    /// The value of the `dbhook.io/mode` label of Namespace `ns`, if the view knows it.
    fn namespace_mode_label(&self, ns: &str) -> Option<String>;
}

/// A view that knows nothing: `--standalone` serving, where every lookup is unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyView;

impl View for EmptyView {
    fn origin(&self) -> Origin {
        Origin::Admission
    }
    fn cluster(&self, _: &str, _: &str) -> Lookup<Arc<Object>> {
        Lookup::Unknown
    }
    fn object_store(&self, _: &str, _: &str) -> Lookup<Arc<Object>> {
        Lookup::Unknown
    }
    fn scheduled_backups_for(&self, _: &str, _: &str) -> Listing {
        Listing::default()
    }
    fn migration_jobs_for(&self, _: &Object) -> Listing {
        Listing::default()
    }
    fn app_workloads_for(&self, _: &Object) -> Listing {
        Listing::default()
    }
    fn namespace_mode_label(&self, _: &str) -> Option<String> {
        None
    }
}

/// The offline view: the objects of the input files. Absent only when the user says the input
/// is the whole picture (`--complete`). Namespaces compare exactly: an object without
/// `metadata.namespace` is in the namespace `""` (`dbhook check` first places such objects in
/// the one namespace their file names).
#[derive(Debug, Clone, Default)]
pub struct ManifestView {
    objects: Vec<Arc<Object>>,
    complete: bool,
    origin: Origin,
}

impl ManifestView {
    pub fn new(objects: Vec<Arc<Object>>, complete: bool) -> ManifestView {
        ManifestView {
            objects,
            complete,
            origin: Origin::Offline,
        }
    }

    /// The same objects answered as a synced cluster view answers at admission (complete, and
    /// with admission's leniency at CREATE): benchmarks and tests judge admission without a
    /// cluster this way.
    pub fn at_admission(objects: Vec<Arc<Object>>) -> ManifestView {
        ManifestView {
            objects,
            complete: true,
            origin: Origin::Admission,
        }
    }

    /// This view answering as at admission, keeping its completeness.
    pub fn answering_as_admission(mut self) -> ManifestView {
        self.origin = Origin::Admission;
        self
    }

    pub fn objects(&self) -> &[Arc<Object>] {
        &self.objects
    }

    fn find(&self, kind: KindId, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        let hit = self
            .objects
            .iter()
            .find(|o| KindId::of(&o.api_version, &o.kind) == Some(kind) && o.namespace() == ns && o.name() == name);
        match hit {
            Some(o) => Lookup::Present(o.clone()),
            None if self.complete => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    fn list(&self, pred: impl Fn(&Object) -> bool) -> Listing {
        Listing {
            items: self.objects.iter().filter(|o| pred(o)).cloned().collect(),
            complete: self.complete,
        }
    }
}

impl View for ManifestView {
    fn origin(&self) -> Origin {
        self.origin
    }
    fn cluster(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.find(KindId::Cluster, ns, name)
    }
    fn object_store(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.find(KindId::ObjectStore, ns, name)
    }
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> Listing {
        self.list(|o| {
            o.namespace() == ns
                && matches!(&o.spec, Spec::ScheduledBackup(s)
                    if s.cluster.as_ref().is_some_and(|c| c.name == cluster))
        })
    }
    fn migration_jobs_for(&self, app: &Object) -> Listing {
        self.list(|o| o.is_migration_job_for(app) && o.job_pairs_with(app))
    }
    fn app_workloads_for(&self, job: &Object) -> Listing {
        if !job.is_labelled_job() {
            return Listing {
                items: Vec::new(),
                complete: self.complete,
            };
        }
        self.list(|o| job.job_pairs_with(o))
    }
    fn deployment(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        self.find(KindId::Workload(WorkloadKind::Deployment), ns, name)
    }
    fn namespace_mode_label(&self, ns: &str) -> Option<String> {
        self.objects
            .iter()
            .find(|o| matches!(o.spec, Spec::Namespace) && o.name() == ns)
            .and_then(|o| o.label(keys::MODE).map(str::to_string))
    }
}
