//! Helpers shared by unit tests: objects from YAML literals.

use serde_json::Value;

use crate::model::Object;

pub fn value(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).expect("test YAML parses")
}

pub fn object(yaml: &str) -> Object {
    Object::from_value(&value(yaml)).expect("test object decodes")
}

/// A labelled Rollout with the given containers block (YAML list items indented by 8).
pub fn rollout(labels: &str, annotations: &str, containers: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n  namespace: shop\n  labels: {labels}\n  annotations: {annotations}\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
    )
}

/// Every object of a multi-document YAML text.
pub fn objects(yaml: &str) -> Vec<std::sync::Arc<Object>> {
    crate::manifest::parse("test.yaml", yaml)
        .expect("test YAML parses")
        .iter()
        .map(|d| std::sync::Arc::new(Object::from_value(&d.value).expect("test object decodes")))
        .collect()
}

/// The offline view over `objs` answered as the cluster view would at admission.
pub struct AtAdmission(pub crate::view::ManifestView);

impl crate::view::View for AtAdmission {
    fn origin(&self) -> crate::view::Origin {
        crate::view::Origin::Admission
    }
    fn cluster(&self, ns: &str, name: &str) -> crate::view::Lookup<std::sync::Arc<Object>> {
        self.0.cluster(ns, name)
    }
    fn object_store(&self, ns: &str, name: &str) -> crate::view::Lookup<std::sync::Arc<Object>> {
        self.0.object_store(ns, name)
    }
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> crate::view::Listing {
        self.0.scheduled_backups_for(ns, cluster)
    }
    fn migration_jobs_for(&self, app: &Object) -> crate::view::Listing {
        self.0.migration_jobs_for(app)
    }
    fn app_workloads_for(&self, job: &Object) -> crate::view::Listing {
        self.0.app_workloads_for(job)
    }
    fn namespace_mode_label(&self, ns: &str) -> Option<String> {
        self.0.namespace_mode_label(ns)
    }
}

/// Where a rule test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `dbhook check` without `--complete`.
    Offline,
    /// `dbhook check --complete`.
    Complete,
    /// Admission CREATE with a synced cluster view.
    Create,
    /// Admission UPDATE with a synced cluster view.
    Update,
}

/// Runs one rule check on the object named `kind/name` of `yaml`, with the other objects as the
/// view (the checked object is part of it, as in `dbhook check` and the watch caches).
pub fn run_rule(
    check: crate::rules::Check,
    yaml: &str,
    target: &str,
    at: At,
    policy: &crate::policy::Policy,
) -> Vec<crate::rules::Violation> {
    use kube::core::admission::Operation;
    let objs = objects(yaml);
    let (kind, name) = target.split_once('/').expect("target is kind/name");
    let obj = objs
        .iter()
        .find(|o| o.kind == kind && o.name() == name)
        .unwrap_or_else(|| panic!("no {target} in the test input"))
        .clone();
    let complete = at != At::Offline;
    let manifest = crate::view::ManifestView::new(objs, complete);
    let admission = AtAdmission(manifest.clone());
    let (view, op): (&dyn crate::view::View, Operation) = match at {
        At::Offline | At::Complete => (&manifest, Operation::Create),
        At::Create => (&admission, Operation::Create),
        At::Update => (&admission, Operation::Update),
    };
    let ctx = crate::rules::Ctx::new(&obj, view, policy, chrono::Utc::now(), &op);
    let mut out = Vec::new();
    check(&obj, &ctx, &mut out);
    out
}
