//! The object metadata dbhook keeps: what the rules, evidence and reports read, nothing else.
//!
//! k8s-openapi's `ObjectMeta` is ~400 bytes of mostly empty options (managed fields, owner
//! references, finalizers, …) before any of its strings; the cluster view holds tens of
//! thousands of objects, so the model keeps this instead. Labels and annotations are kept apart,
//! in [`super::Marks`].

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::keys;

/// Name, namespace and the bookkeeping the rules and evidence read. Field names and types are
/// those of `ObjectMeta`, so code reading `obj.meta.uid` reads either.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// Set instead of `name` on objects whose name the API server picks (Argo CD hook Jobs).
    pub generate_name: Option<String>,
    /// Tells a re-created object from the one it replaces (lockstep memory).
    pub uid: Option<String>,
    /// Carried into evidence for objects read from the cluster.
    pub resource_version: Option<String>,
    /// Orders migration Jobs: the newest counts.
    pub creation_timestamp: Option<Time>,
    /// A terminating object is never denied.
    pub deletion_timestamp: Option<Time>,
}

impl From<ObjectMeta> for Meta {
    fn from(m: ObjectMeta) -> Meta {
        Meta {
            name: m.name,
            namespace: m.namespace,
            generate_name: m.generate_name,
            uid: m.uid,
            resource_version: m.resource_version,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
        }
    }
}

/// Label or annotation text: shared when dbhook knows it, owned otherwise.
pub(super) type Text = Cow<'static, str>;

/// Text that a cached object repeats often enough to share: every key in [`keys`] and the
/// values the hook annotations take in practice.
const SHARED: [&str; 32] = [
    keys::CLUSTER,
    keys::ENV_NAME,
    keys::SECRET_KEY,
    keys::SECRET_NAME,
    keys::CONTAINERS,
    keys::ROLE,
    keys::ROLLOUT,
    keys::EXEMPT,
    keys::EXEMPT_UNTIL,
    keys::EXEMPT_REASON,
    keys::MODE,
    keys::LOCKSTEP,
    keys::LOCKSTEP_CONTAINERS,
    keys::ARGOCD_HOOK,
    keys::ARGOCD_HOOK_DELETE,
    keys::HELM_HOOK,
    keys::HELM_HOOK_DELETE,
    keys::ARGOCD_SYNC_WAVE,
    keys::ARGOCD_SYNC_OPTIONS,
    keys::HELM_HOOK_WEIGHT,
    "migration",
    "PreSync",
    "Sync",
    "PostSync",
    "BeforeHookCreation",
    "HookSucceeded",
    "HookFailed",
    "pre-install",
    "pre-upgrade",
    "hook-succeeded",
    "before-hook-creation",
    "Replace=true",
];

pub(super) fn shared(mut text: String) -> Text {
    match SHARED.iter().find(|s| **s == text) {
        Some(s) => Cow::Borrowed(s),
        None => {
            text.shrink_to_fit();
            Cow::Owned(text)
        }
    }
}
