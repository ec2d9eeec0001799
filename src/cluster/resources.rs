//! The resources the cluster view watches: their API coordinates, selectors and metric names.

use kube::api::{ApiResource, GroupVersionKind};

use crate::model::keys;

/// One watched resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Res {
    Jobs,
    Rollouts,
    Deployments,
    StatefulSets,
    Clusters,
    ScheduledBackups,
    ObjectStores,
    Namespaces,
}

impl Res {
    /// Every watched resource.
    pub const ALL: [Res; 8] = [
        Res::Jobs,
        Res::Rollouts,
        Res::Deployments,
        Res::StatefulSets,
        Res::Clusters,
        Res::ScheduledBackups,
        Res::ObjectStores,
        Res::Namespaces,
    ];

    /// The resources whose objects the view caches and reports on: all but Namespaces, which
    /// only lend their mode label.
    pub const OBJECTS: &'static [Res] = match Res::ALL.split_last() {
        Some((Res::Namespaces, objects)) => objects,
        _ => panic!("Namespaces must stay the last of Res::ALL"),
    };

    /// `(group, version, kind, plural)`.
    pub fn coordinates(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Res::Jobs => ("batch", "v1", "Job", "jobs"),
            Res::Rollouts => ("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
            Res::Deployments => ("apps", "v1", "Deployment", "deployments"),
            Res::StatefulSets => ("apps", "v1", "StatefulSet", "statefulsets"),
            Res::Clusters => ("postgresql.cnpg.io", "v1", "Cluster", "clusters"),
            Res::ScheduledBackups => ("postgresql.cnpg.io", "v1", "ScheduledBackup", "scheduledbackups"),
            Res::ObjectStores => ("barmancloud.cnpg.io", "v1", "ObjectStore", "objectstores"),
            Res::Namespaces => ("", "v1", "Namespace", "namespaces"),
        }
    }

    pub fn api_resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.coordinates();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    /// Served by a CRD that may not be installed; built-in kinds are always served.
    pub fn is_crd(self) -> bool {
        matches!(
            self,
            Res::Rollouts | Res::Clusters | Res::ScheduledBackups | Res::ObjectStores
        )
    }

    /// Server-side label selector: only labelled workloads are cached, so memory does not grow
    /// with unrelated workloads.
    pub fn label_selector(self) -> Option<&'static str> {
        match self {
            Res::Jobs | Res::Rollouts | Res::Deployments | Res::StatefulSets => Some(keys::CLUSTER),
            _ => None,
        }
    }

    /// The `resource` label of `dbhook_view_synced`, as kubectl names it (`jobs.batch`).
    pub fn name(self) -> &'static str {
        match self {
            Res::Jobs => "jobs.batch",
            Res::Rollouts => "rollouts.argoproj.io",
            Res::Deployments => "deployments.apps",
            Res::StatefulSets => "statefulsets.apps",
            Res::Clusters => "clusters.postgresql.cnpg.io",
            Res::ScheduledBackups => "scheduledbackups.postgresql.cnpg.io",
            Res::ObjectStores => "objectstores.barmancloud.cnpg.io",
            Res::Namespaces => "namespaces",
        }
    }

    /// Position in [`Res::ALL`], for per-resource arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, r) in Res::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert!(Res::OBJECTS.iter().all(|r| *r != Res::Namespaces));
    }

    #[test]
    fn api_resources_carry_the_pinned_versions() {
        let ar = Res::Rollouts.api_resource();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("argoproj.io/v1alpha1", "rollouts")
        );
        assert_eq!(Res::Namespaces.api_resource().api_version, "v1");
    }
}
