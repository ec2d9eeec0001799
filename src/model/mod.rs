//! Typed, read-only access to the objects dbhook reviews, decoded once at the edge.

pub mod cnpg;
pub mod error;
pub mod image;
pub mod meta;
pub mod names;
pub mod workload;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

pub use cnpg::{ClusterSpec, ObjectStoreSpec, ScheduledBackupSpec};
pub use error::FieldError;
pub use image::ImageRef;
pub use meta::Meta;
use meta::{Text, shared};
pub use workload::{Workload, WorkloadKind};

/// Label and annotation keys of README.md, "Labels and annotations".
pub mod keys {
    pub const CLUSTER: &str = "dbhook.io/cluster";
    pub const ENV_NAME: &str = "dbhook.io/env-name";
    pub const SECRET_KEY: &str = "dbhook.io/secret-key";
    pub const SECRET_NAME: &str = "dbhook.io/secret-name";
    pub const CONTAINERS: &str = "dbhook.io/containers";
    pub const ROLE: &str = "dbhook.io/role";
    pub const ROLLOUT: &str = "dbhook.io/rollout";
    pub const EXEMPT: &str = "dbhook.io/exempt";
    pub const EXEMPT_UNTIL: &str = "dbhook.io/exempt-until";
    pub const EXEMPT_REASON: &str = "dbhook.io/exempt-reason";
    pub const MODE: &str = "dbhook.io/mode";
    pub const LOCKSTEP: &str = "dbhook.io/lockstep";
    pub const LOCKSTEP_CONTAINERS: &str = "dbhook.io/lockstep-containers";
    pub const ARGOCD_HOOK: &str = "argocd.argoproj.io/hook";
    pub const ARGOCD_HOOK_DELETE: &str = "argocd.argoproj.io/hook-delete-policy";
    pub const HELM_HOOK: &str = "helm.sh/hook";
    pub const HELM_HOOK_DELETE: &str = "helm.sh/hook-delete-policy";
    pub const ARGOCD_SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
    pub const ARGOCD_SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
    /// Argo CD reads it as the sync wave when `sync-wave` is missing or not a number.
    pub const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
    /// dbhook's own keys start with this.
    pub const PREFIX: &str = "dbhook.io/";
    /// Every annotation outside [`PREFIX`] that dbhook reads. The cluster cache keeps only these
    /// and dbhook's own: a key read anywhere must be listed here.
    pub const FOREIGN_ANNOTATIONS: [&str; 7] = [
        ARGOCD_HOOK,
        ARGOCD_HOOK_DELETE,
        HELM_HOOK,
        HELM_HOOK_DELETE,
        ARGOCD_SYNC_WAVE,
        ARGOCD_SYNC_OPTIONS,
        HELM_HOOK_WEIGHT,
    ];
}

/// One Kubernetes object, decoded into what the rules need.
///
/// Labels and annotations live in [`Object::labels`] and [`Object::annotations`] (read them with
/// [`Object::label`] and [`Object::annotation`]).
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub meta: Meta,
    pub labels: Marks,
    pub annotations: Marks,
    pub spec: Spec,
}

/// Labels or annotations, sorted by key, in one allocation for the entries and none when
/// empty: the cluster view holds tens of thousands of objects, and a `BTreeMap` costs a 540-byte
/// node even for one entry. Keys and values dbhook knows (its own keys, the hook annotations and
/// their usual values) are shared static text rather than a heap string per object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks(Box<[(Text, Text)]>);

impl Marks {
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok()?;
        self.0.get(i).map(|(_, v)| v.as_ref())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for Marks {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Marks {
        let mut v: Vec<(Text, Text)> = entries.into_iter().map(|(k, v)| (shared(k), shared(v))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Marks(v.into_boxed_slice())
    }
}

#[derive(Debug, Clone)]
pub enum Spec {
    Workload(Box<Workload>),
    Cluster(Box<ClusterSpec>),
    ScheduledBackup(Box<ScheduledBackupSpec>),
    ObjectStore(Box<ObjectStoreSpec>),
    Namespace,
    Other,
    /// A handled kind whose body does not have the expected shape, with the reason: the engine
    /// refuses it (audit mode: warns) rather than letting it pass unjudged. Boxed like the
    /// others so that `Spec` stays two words.
    Undecodable(Box<String>),
}

/// Which handled kind a `(apiVersion, kind)` pair is. Any version of a group is accepted: the
/// webhooks use `matchPolicy: Equivalent` and CRDs move between versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindId {
    Workload(WorkloadKind),
    Cluster,
    ScheduledBackup,
    ObjectStore,
    Namespace,
}

impl KindId {
    pub fn of(api_version: &str, kind: &str) -> Option<KindId> {
        KindId::in_group(api_version.rsplit_once('/').map_or("", |(g, _)| g), kind)
    }

    /// The same from the API group alone (an AdmissionReview names group and version apart).
    pub fn in_group(group: &str, kind: &str) -> Option<KindId> {
        Some(match (group, kind) {
            ("argoproj.io", "Rollout") => KindId::Workload(WorkloadKind::Rollout),
            ("apps", "Deployment") => KindId::Workload(WorkloadKind::Deployment),
            ("apps", "StatefulSet") => KindId::Workload(WorkloadKind::StatefulSet),
            ("batch", "Job") => KindId::Workload(WorkloadKind::Job),
            ("batch", "CronJob") => KindId::Workload(WorkloadKind::CronJob),
            ("postgresql.cnpg.io", "Cluster") => KindId::Cluster,
            ("postgresql.cnpg.io", "ScheduledBackup") => KindId::ScheduledBackup,
            ("barmancloud.cnpg.io", "ObjectStore") => KindId::ObjectStore,
            ("", "Namespace") => KindId::Namespace,
            _ => return None,
        })
    }
}

/// A handled kind whose body does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// An object whose metadata does not decode has no name to show: no "Cluster : …".
#[error("cannot decode {kind}{}: {reason}", if .name.is_empty() { String::new() } else { format!(" {}", .name) })]
pub struct DecodeError {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

impl Object {
    /// Decodes a whole object (`apiVersion`, `kind`, `metadata`, …).
    pub fn from_value(v: &Value) -> Result<Object, DecodeError> {
        let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        let meta = match v.get("metadata") {
            None | Some(Value::Null) => ObjectMeta::default(),
            Some(m) => ObjectMeta::deserialize(m).map_err(|e| DecodeError {
                kind: kind.to_string(),
                name: m.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                reason: crate::redact::input_error(&format!("metadata: {e}")),
            })?,
        };
        Object::from_parts(api_version, kind, meta, v)
    }

    /// Decodes from parts already split off, as kube's `DynamicObject` holds them; `root` is the
    /// object (or its remaining fields) holding `spec`.
    pub fn from_parts(
        api_version: &str,
        kind: &str,
        mut meta: ObjectMeta,
        root: &Value,
    ) -> Result<Object, DecodeError> {
        // Parser messages quote the offending value, which may be a credential.
        let err = |reason: FieldError| DecodeError {
            kind: kind.to_string(),
            name: meta.name.clone().unwrap_or_default(),
            reason: crate::redact::input_error(&reason.to_string()),
        };
        let spec = match KindId::of(api_version, kind) {
            None => Spec::Other,
            Some(KindId::Namespace) => Spec::Namespace,
            Some(KindId::Workload(k)) => Spec::Workload(Box::new(Workload::decode(k, root).map_err(err)?)),
            Some(KindId::Cluster) => Spec::Cluster(Box::new(decode_spec(root).map_err(err)?)),
            Some(KindId::ScheduledBackup) => Spec::ScheduledBackup(Box::new(decode_spec(root).map_err(err)?)),
            Some(KindId::ObjectStore) => Spec::ObjectStore(Box::new(decode_spec(root).map_err(err)?)),
        };
        Ok(Object {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            labels: meta.labels.take().into_iter().flatten().collect(),
            annotations: meta.annotations.take().into_iter().flatten().collect(),
            meta: meta.into(),
            spec,
        })
    }

    pub fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("")
    }
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }
    /// `dbhook.io/cluster`, when set to a non-empty value.
    pub fn db_cluster(&self) -> Option<&str> {
        self.label(keys::CLUSTER).map(str::trim).filter(|s| !s.is_empty())
    }
    pub fn workload(&self) -> Option<&Workload> {
        match &self.spec {
            Spec::Workload(w) => Some(w),
            _ => None,
        }
    }
    /// The name, or `<generateName>*` for an object whose name the API server has yet to pick
    /// (Argo CD hook Jobs often have only `generateName`).
    pub fn display_name(&self) -> std::borrow::Cow<'_, str> {
        match self.meta.generate_name.as_deref() {
            Some(prefix) if self.name().is_empty() && !prefix.is_empty() => format!("{prefix}*").into(),
            _ => self.name().into(),
        }
    }
    /// `namespace/name` (just the name for cluster-scoped objects), with [`Object::display_name`].
    pub fn qualified_name(&self) -> String {
        match self.namespace() {
            "" => self.display_name().into_owned(),
            ns => format!("{ns}/{}", self.display_name()),
        }
    }
    /// Creation time in seconds since the epoch; objects not yet created sort as newest.
    pub fn created_at(&self) -> i64 {
        self.meta
            .creation_timestamp
            .as_ref()
            .map_or(i64::MAX, |t| t.0.as_second())
    }

    /// A Job labelled `dbhook.io/cluster`.
    pub fn is_labelled_job(&self) -> bool {
        self.db_cluster().is_some() && self.workload().is_some_and(|w| w.kind == WorkloadKind::Job)
    }

    /// A labelled Job marked as a schema migration on its own: role label, or an Argo CD or
    /// Helm pre-release hook. A Job can also be one for a given app by sync wave, see
    /// [`Object::is_migration_job_for`].
    pub fn is_migration_job(&self) -> bool {
        if !self.is_labelled_job() {
            return false;
        }
        let listed = |key: &str, wanted: &[&str]| {
            self.annotation(key)
                .is_some_and(|v| v.split(',').map(str::trim).any(|h| wanted.contains(&h)))
        };
        self.label(keys::ROLE) == Some("migration")
            || listed(keys::ARGOCD_HOOK, &["PreSync", "Sync"])
            || listed(keys::HELM_HOOK, &["pre-install", "pre-upgrade"])
    }

    /// A labelled Job that migrates before app workload `app`: marked as a migration
    /// ([`Object::is_migration_job`]), or in an earlier Argo CD sync wave than `app`.
    pub fn is_migration_job_for(&self, app: &Object) -> bool {
        self.is_labelled_job() && (self.is_migration_job() || self.sync_wave() < app.sync_wave())
    }

    /// The Argo CD sync wave, read as Argo CD reads it: `argocd.argoproj.io/sync-wave` as a
    /// base-10 integer (Go's `strconv.Atoi`: optional sign, digits only, no spaces); when it is
    /// missing or not such a number, `helm.sh/hook-weight` the same way; else 0.
    pub fn sync_wave(&self) -> i64 {
        let wave = |key: &str| self.annotation(key).and_then(|v| v.parse::<i64>().ok());
        wave(keys::ARGOCD_SYNC_WAVE)
            .or_else(|| wave(keys::HELM_HOOK_WEIGHT))
            .unwrap_or(0)
    }

    /// An Argo CD or Helm hook of any phase: Argo CD deletes and recreates hooks on each sync.
    pub fn is_hook(&self) -> bool {
        [keys::ARGOCD_HOOK, keys::HELM_HOOK]
            .iter()
            .any(|k| self.annotation(k).is_some_and(|v| !v.trim().is_empty()))
    }

    /// A Job with condition `Failed=True`.
    pub fn is_failed_job(&self) -> bool {
        self.workload().is_some_and(|w| w.failed)
    }

    /// `dbhook.io/lockstep`; `Err` holds a value that is neither `repository` nor `tag`.
    pub fn lockstep_mode(&self) -> Result<LockstepMode, &str> {
        match self.annotation(keys::LOCKSTEP).map(str::trim) {
            None | Some("repository") => Ok(LockstepMode::Repository),
            Some("tag") => Ok(LockstepMode::Tag),
            Some(other) => Err(other),
        }
    }

    /// A labelled Rollout, Deployment or StatefulSet (README.md, "Labels and annotations").
    pub fn is_app_workload(&self) -> bool {
        self.db_cluster().is_some()
            && self.workload().is_some_and(|w| {
                matches!(
                    w.kind,
                    WorkloadKind::Rollout | WorkloadKind::Deployment | WorkloadKind::StatefulSet
                )
            })
    }

    /// Whether migration Job `self` pairs with app workload `app` (docs/rules.md, migration-image-lockstep): named by
    /// `dbhook.io/rollout`, or else sharing the `dbhook.io/cluster` value, in one namespace.
    pub fn job_pairs_with(&self, app: &Object) -> bool {
        if self.namespace() != app.namespace() || !app.is_app_workload() {
            return false;
        }
        match self.annotation(keys::ROLLOUT).map(str::trim).filter(|s| !s.is_empty()) {
            Some(names) => names.split(',').map(str::trim).any(|n| n == app.name()),
            None => self.db_cluster().is_some() && self.db_cluster() == app.db_cluster(),
        }
    }
}

/// How a migration Job's images are compared with its app's (`dbhook.io/lockstep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockstepMode {
    /// Images of a shared repository must be the same version.
    Repository,
    /// Every compared image must carry the app's tag, whatever its repository (a separate
    /// migrations image built from the same commit).
    Tag,
}

impl LockstepMode {
    pub const ALLOWED: &str = "repository, tag";
}

fn decode_spec<T: for<'de> Deserialize<'de> + Default>(root: &Value) -> Result<T, FieldError> {
    match root.get("spec") {
        None | Some(Value::Null) => Ok(T::default()),
        Some(spec) => deserialize_at("spec", spec),
    }
}

/// Deserializes `value`, found at the dotted path `at`, naming the exact field that is wrong
/// (`spec.suspend: invalid type: …`, not just `spec: …`).
pub(crate) fn deserialize_at<T: for<'de> Deserialize<'de>>(at: &str, value: &Value) -> Result<T, FieldError> {
    // Tracking the path costs more than the decoding itself: it is done only to name the field
    // of an error, so by a second pass over a value that failed (same input, same error).
    if let Ok(decoded) = T::deserialize(value) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if path == "." {
            FieldError::new(at, message)
        } else {
            FieldError::new(format!("{at}.{path}"), message)
        }
    })
}

#[cfg(test)]
mod tests;
