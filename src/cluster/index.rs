//! The cache of one watched resource: objects by namespace and name, plus the secondary indexes
//! the lookups need, so each lookup costs O(1) plus the matching objects.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;

use super::resources::Res;
use crate::model::{Object, Spec, keys};

/// The annotation `kubectl apply` leaves behind: a second copy of the object, never read.
#[cfg(test)]
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `namespace → key → names`.
type Multi = HashMap<String, HashMap<String, BTreeSet<String>>>;

/// Objects of one resource.
#[derive(Debug, Default)]
pub struct ObjectIndex {
    objects: HashMap<String, HashMap<String, Arc<Object>>>,
    /// Labelled Jobs (any of them can be a migration by sync wave) and app workloads by
    /// `dbhook.io/cluster`; ScheduledBackups by `spec.cluster.name`.
    by_cluster: Multi,
    /// Migration Jobs by each name in `dbhook.io/rollout`.
    by_rollout: Multi,
    len: usize,
}

/// The secondary keys an object is filed under: `(cluster keys, rollout keys)`.
fn secondary_keys(obj: &Object) -> (Vec<&str>, Vec<&str>) {
    match &obj.spec {
        Spec::ScheduledBackup(s) => {
            let cluster = s.cluster.as_ref().map(|c| c.name.as_str()).filter(|n| !n.is_empty());
            (cluster.into_iter().collect(), Vec::new())
        }
        Spec::Workload(_) if obj.is_labelled_job() => {
            let rollouts = obj
                .annotation(keys::ROLLOUT)
                .map(|v| v.split(',').map(str::trim).filter(|n| !n.is_empty()).collect())
                .unwrap_or_default();
            (obj.db_cluster().into_iter().collect(), rollouts)
        }
        Spec::Workload(_) if obj.is_app_workload() => (obj.db_cluster().into_iter().collect(), Vec::new()),
        _ => (Vec::new(), Vec::new()),
    }
}

fn file(multi: &mut Multi, ns: &str, key: &str, name: &str) {
    multi
        .entry(ns.to_string())
        .or_default()
        .entry(key.to_string())
        .or_default()
        .insert(name.to_string());
}

fn unfile(multi: &mut Multi, ns: &str, key: &str, name: &str) {
    let Some(keys) = multi.get_mut(ns) else { return };
    if let Some(names) = keys.get_mut(key) {
        names.remove(name);
        if names.is_empty() {
            keys.remove(key);
        }
    }
    if keys.is_empty() {
        multi.remove(ns);
    }
}

impl ObjectIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<Object>> {
        self.objects.get(ns)?.get(name).cloned()
    }

    /// Inserts or replaces an object; returns the one it replaced.
    pub fn upsert(&mut self, obj: Arc<Object>) -> Option<Arc<Object>> {
        let old = self.remove(obj.namespace(), obj.name());
        let (clusters, rollouts) = secondary_keys(&obj);
        for key in clusters {
            file(&mut self.by_cluster, obj.namespace(), key, obj.name());
        }
        for key in rollouts {
            file(&mut self.by_rollout, obj.namespace(), key, obj.name());
        }
        self.objects
            .entry(obj.namespace().to_string())
            .or_default()
            .insert(obj.name().to_string(), obj);
        self.len += 1;
        old
    }

    pub fn remove(&mut self, ns: &str, name: &str) -> Option<Arc<Object>> {
        let names = self.objects.get_mut(ns)?;
        let old = names.remove(name)?;
        if names.is_empty() {
            self.objects.remove(ns);
        }
        self.len -= 1;
        let (clusters, rollouts) = secondary_keys(&old);
        for key in clusters {
            unfile(&mut self.by_cluster, ns, key, name);
        }
        for key in rollouts {
            unfile(&mut self.by_rollout, ns, key, name);
        }
        Some(old)
    }

    /// Builds an index from a complete listing.
    pub fn from_objects(objects: impl IntoIterator<Item = Arc<Object>>) -> ObjectIndex {
        let mut index = ObjectIndex::default();
        for obj in objects {
            index.upsert(obj);
        }
        index
    }

    fn lookup(&self, multi: &Multi, ns: &str, key: &str) -> Vec<Arc<Object>> {
        let Some(names) = multi.get(ns).and_then(|keys| keys.get(key)) else {
            return Vec::new();
        };
        names.iter().filter_map(|n| self.get(ns, n)).collect()
    }

    /// Objects filed under cluster `key` in `ns`.
    pub fn by_cluster(&self, ns: &str, key: &str) -> Vec<Arc<Object>> {
        self.lookup(&self.by_cluster, ns, key)
    }

    /// Migration Jobs naming `rollout` in `dbhook.io/rollout` in `ns`.
    pub fn by_rollout(&self, ns: &str, rollout: &str) -> Vec<Arc<Object>> {
        self.lookup(&self.by_rollout, ns, rollout)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Object>> {
        self.objects.values().flat_map(|names| names.values())
    }
}

/// Drops what no rule reads, so the cache holds little more than the decoded spec: managed
/// fields, owner references, finalizers, and every label and annotation but dbhook's own and the
/// hook annotations (Argo CD tracking ids, Helm metadata and last-applied copies add up over
/// 10,000 Jobs).
pub fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let ours = |k: &String| k.starts_with(keys::PREFIX);
    if let Some(labels) = meta.labels.as_mut() {
        labels.retain(|k, _| ours(k));
    }
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| ours(k) || keys::FOREIGN_ANNOTATIONS.contains(&k.as_str()));
    }
    if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
        meta.labels = None;
    }
    if meta.annotations.as_ref().is_some_and(|a| a.is_empty()) {
        meta.annotations = None;
    }
}

/// Decodes a watched object. A body that does not have the expected shape is kept as an
/// object of its kind without a decoded spec (it exists, which is what most lookups ask) and
/// logged.
pub fn to_object(res: Res, obj: DynamicObject) -> Arc<Object> {
    let ar = res.api_resource();
    let DynamicObject { mut metadata, data, .. } = obj;
    strip(&mut metadata);
    match Object::from_parts(&ar.api_version, &ar.kind, metadata.clone(), &data) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            tracing::warn!(resource = res.name(), error = %e, "cached without its spec");
            Arc::new(Object {
                api_version: ar.api_version,
                kind: ar.kind,
                meta: metadata,
                spec: Spec::Other,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::object;

    fn arc(yaml: &str) -> Arc<Object> {
        Arc::new(object(yaml))
    }

    fn job(name: &str, cluster: &str, rollout: Option<&str>) -> Arc<Object> {
        let ann = rollout.map_or(String::new(), |r| format!(", dbhook.io/rollout: '{r}'"));
        arc(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {{dbhook.io/cluster: {cluster}}}\n  annotations: {{argocd.argoproj.io/hook: PreSync{ann}}}\nspec:\n  template:\n    spec:\n      containers: [{{name: m, image: 'x:1'}}]\n"
        ))
    }

    fn names(objs: Vec<Arc<Object>>) -> Vec<String> {
        objs.iter().map(|o| o.name().to_string()).collect()
    }

    #[test]
    fn migration_jobs_are_filed_by_cluster_and_by_rollout_annotation() {
        let mut idx = ObjectIndex::default();
        idx.upsert(job("m1", "shop-pg", None));
        idx.upsert(job("m2", "shop-pg", Some("web, worker")));
        idx.upsert(job("m3", "other-pg", None));
        assert_eq!(names(idx.by_cluster("shop", "shop-pg")), ["m1", "m2"]);
        assert_eq!(names(idx.by_rollout("shop", "worker")), ["m2"]);
        assert!(idx.by_cluster("prod", "shop-pg").is_empty());
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn replacing_and_removing_keeps_the_indexes_consistent() {
        let mut idx = ObjectIndex::default();
        idx.upsert(job("m1", "shop-pg", Some("web")));
        let old = idx.upsert(job("m1", "other-pg", None));
        assert!(old.is_some());
        assert!(idx.by_cluster("shop", "shop-pg").is_empty());
        assert!(idx.by_rollout("shop", "web").is_empty());
        assert_eq!(names(idx.by_cluster("shop", "other-pg")), ["m1"]);
        assert!(idx.remove("shop", "m1").is_some());
        assert!(idx.len() == 0 && idx.by_cluster.is_empty() && idx.objects.is_empty());
        assert!(idx.remove("shop", "m1").is_none());
    }

    #[test]
    fn scheduled_backups_are_filed_by_their_cluster() {
        let sb = arc(
            "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: daily, namespace: shop}\nspec: {cluster: {name: shop-pg}, schedule: '0 0 2 * * *'}\n",
        );
        let idx = ObjectIndex::from_objects([sb]);
        assert_eq!(names(idx.by_cluster("shop", "shop-pg")), ["daily"]);
    }

    #[test]
    fn stripping_drops_managed_fields_and_the_last_applied_copy() {
        let v = serde_json::json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "shop-pg", "namespace": "shop",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED: "{}"}},
            "spec": {"instances": 3}, "status": {"phase": "healthy"}
        });
        let obj: DynamicObject = serde_json::from_value(v).unwrap();
        let o = to_object(Res::Clusters, obj);
        assert!(o.meta.managed_fields.is_none() && o.meta.annotations.is_none());
        assert!(o.meta.labels.is_none());
        assert!(matches!(o.spec, Spec::Cluster(_)));
        assert_eq!(
            (o.api_version.as_str(), o.kind.as_str()),
            ("postgresql.cnpg.io/v1", "Cluster")
        );
    }

    #[test]
    fn stripping_keeps_the_labels_and_annotations_rules_read() {
        let v = serde_json::json!({
            "metadata": {"name": "web-migrate", "namespace": "shop", "uid": "u-1",
                "labels": {"dbhook.io/cluster": "shop-pg", "app.kubernetes.io/instance": "web",
                           "batch.kubernetes.io/controller-uid": "c0ffee"},
                "annotations": {"argocd.argoproj.io/hook": "PreSync",
                                "argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
                                "argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/web-migrate",
                                "helm.sh/hook": "pre-upgrade", "helm.sh/hook-delete-policy": "hook-succeeded",
                                "dbhook.io/rollout": "web",
                                "dbhook.io/exempt": "image-tag-pinned", LAST_APPLIED: "{}"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "x", "uid": "u-0"}],
                "finalizers": ["batch.kubernetes.io/job-tracking"]},
            "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "web:1"}]}}}
        });
        let o = to_object(Res::Jobs, serde_json::from_value(v).unwrap());
        let keys = |m: &Option<std::collections::BTreeMap<String, String>>| -> Vec<String> {
            m.iter().flat_map(|m| m.keys().cloned()).collect()
        };
        assert_eq!(keys(&o.meta.labels), ["dbhook.io/cluster"]);
        assert_eq!(
            keys(&o.meta.annotations),
            [
                "argocd.argoproj.io/hook",
                "argocd.argoproj.io/hook-delete-policy",
                "dbhook.io/exempt",
                "dbhook.io/rollout",
                "helm.sh/hook",
                "helm.sh/hook-delete-policy"
            ]
        );
        assert!(o.meta.owner_references.is_none() && o.meta.finalizers.is_none());
        assert_eq!(
            o.meta.uid.as_deref(),
            Some("u-1"),
            "the uid tells a recreated Job apart"
        );
        assert!(o.is_migration_job());
    }

    #[test]
    fn an_undecodable_body_is_kept_without_its_spec() {
        let v = serde_json::json!({
            "metadata": {"name": "shop-pg", "namespace": "shop"},
            "spec": {"backup": "not an object"}
        });
        let o = to_object(Res::Clusters, serde_json::from_value(v).unwrap());
        assert!(matches!(o.spec, Spec::Other));
        assert_eq!(o.name(), "shop-pg");
    }

    #[test]
    fn a_sync_wave_job_keeps_what_lockstep_reads_and_is_filed_by_cluster() {
        let v = serde_json::json!({
            "metadata": {"name": "shop-migrate", "namespace": "shop",
                "labels": {"dbhook.io/cluster": "shop-pg"},
                "annotations": {"argocd.argoproj.io/sync-wave": "-1",
                                "argocd.argoproj.io/sync-options": "Replace=true",
                                "helm.sh/hook-weight": "-2",
                                "dbhook.io/lockstep": "tag",
                                "dbhook.io/lockstep-containers": "migrate",
                                "argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/shop-migrate"}},
            "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "ghcr.io/acme/shop-migrations:sha-1"}]}}},
            "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
        });
        let o = to_object(Res::Jobs, serde_json::from_value(v).unwrap());
        let kept: Vec<&String> = o.meta.annotations.iter().flat_map(|m| m.keys()).collect();
        assert_eq!(
            kept,
            [
                "argocd.argoproj.io/sync-options",
                "argocd.argoproj.io/sync-wave",
                "dbhook.io/lockstep",
                "dbhook.io/lockstep-containers",
                "helm.sh/hook-weight"
            ]
        );
        assert_eq!(o.sync_wave(), -1);
        assert!(o.is_failed_job());
        assert!(!o.is_migration_job(), "only by wave, against an app");
        let idx = ObjectIndex::from_objects([o]);
        assert_eq!(names(idx.by_cluster("shop", "shop-pg")), ["shop-migrate"]);
    }
}
