//! The cache of one watched resource: objects by namespace and name, plus the secondary indexes
//! the lookups need, so each lookup costs O(1) plus the matching objects.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::model::{Object, Spec, keys};

/// An object filed by its name, which is read from the object rather than copied: with tens of
/// thousands of cached objects, a second copy of every name (and its allocation) per index adds
/// up.
#[derive(Debug, Clone)]
struct ByName(Arc<Object>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        self.0.name()
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &ByName) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for ByName {}

impl Hash for ByName {
    // As `str` hashes, so that lookups by `&str` find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl PartialOrd for ByName {
    fn partial_cmp(&self, other: &ByName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByName {
    fn cmp(&self, other: &ByName) -> std::cmp::Ordering {
        self.0.name().cmp(other.0.name())
    }
}

/// `namespace → key → objects`, by name.
type Multi = HashMap<String, HashMap<String, BTreeSet<ByName>>>;

/// Objects of one resource.
#[derive(Debug, Default)]
pub struct ObjectIndex {
    objects: HashMap<String, HashSet<ByName>>,
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

fn file(multi: &mut Multi, key: &str, obj: &Arc<Object>) {
    multi
        .entry(obj.namespace().to_string())
        .or_default()
        .entry(key.to_string())
        .or_default()
        .insert(ByName(obj.clone()));
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
        self.objects.get(ns)?.get(name).map(|o| o.0.clone())
    }

    /// Inserts or replaces an object; returns the one it replaced.
    pub fn upsert(&mut self, obj: Arc<Object>) -> Option<Arc<Object>> {
        let old = self.remove(obj.namespace(), obj.name());
        let (clusters, rollouts) = secondary_keys(&obj);
        for key in clusters {
            file(&mut self.by_cluster, key, &obj);
        }
        for key in rollouts {
            file(&mut self.by_rollout, key, &obj);
        }
        self.objects
            .entry(obj.namespace().to_string())
            .or_default()
            .insert(ByName(obj.clone()));
        self.len += 1;
        old
    }

    pub fn remove(&mut self, ns: &str, name: &str) -> Option<Arc<Object>> {
        let names = self.objects.get_mut(ns)?;
        let old = names.take(name)?.0;
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
        let Some(filed) = multi.get(ns).and_then(|keys| keys.get(key)) else {
            return Vec::new();
        };
        filed.iter().map(|o| o.0.clone()).collect()
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
        self.objects.values().flat_map(|names| names.iter().map(|o| &o.0))
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
}
