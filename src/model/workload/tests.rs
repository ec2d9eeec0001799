//! Pod templates as the rules read them.

use crate::model::Object;
use crate::testing::value;

fn decode_error(pod_spec: &str) -> String {
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop, labels: {{dbhook.io/cluster: shop-pg}}}}\nspec:\n  template:\n    spec:\n{pod_spec}"
    );
    match Object::from_value(&value(&yaml)) {
        Ok(_) => panic!("{pod_spec:?} should not decode"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn containers_must_be_mappings_in_a_list() {
    // serde would read a list as a struct's fields by position; Kubernetes never sends that.
    let err = decode_error("      containers: [[web, 'ghcr.io/acme/web:1']]\n");
    assert!(
        err.contains("spec.template.spec.containers[0]: expected a container mapping"),
        "{err}"
    );
    let err = decode_error("      initContainers: {name: migrate}\n      containers: []\n");
    assert!(
        err.contains("spec.template.spec.initContainers: expected a list of containers"),
        "{err}"
    );
}
