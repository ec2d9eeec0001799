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

// --- the slim env var against k8s-openapi's ---

mod env {
    use serde_json::json;

    use super::super::*;

    /// The slim env var reads what k8s-openapi's `EnvVar` reads, the same way: a missing or null
    /// name or key is empty, unknown fields are ignored.
    #[test]
    fn env_vars_decode_as_k8s_openapi_decodes_them() {
        use k8s_openapi::api::core::v1 as k8s;
        let cases = [
            json!({"name": "DB_URL", "value": "postgres://u:p@h/db"}),
            json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}),
            json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"key": "uri", "optional": true}}}),
            json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": null, "key": null}}}),
            json!({"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}),
            json!({"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
            json!({"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}),
            json!({"name": "EMPTY", "value": null, "valueFrom": null}),
            json!({"value": "no name"}),
            json!({"name": null, "value": "", "future": {"field": [1]}}),
        ];
        for case in cases {
            let ours: EnvVar = serde_json::from_value(case.clone()).unwrap();
            let theirs: k8s::EnvVar = serde_json::from_value(case.clone()).unwrap();
            let key = |r: Option<(&str, &str)>| r.map(|(n, k)| (n.to_string(), k.to_string()));
            let from = theirs.value_from.as_ref();
            assert_eq!(ours.name, theirs.name, "{case}");
            assert_eq!(ours.value.as_deref(), theirs.value.as_deref(), "{case}");
            let source = ours.value_from.as_deref();
            assert_eq!(source.is_some(), from.is_some(), "{case}");
            assert_eq!(
                key(source
                    .and_then(|f| f.secret_key_ref.as_ref())
                    .map(|r| (&*r.name, &*r.key))),
                key(from
                    .and_then(|f| f.secret_key_ref.as_ref())
                    .map(|r| (&*r.name, &*r.key))),
                "{case}"
            );
            assert_eq!(
                key(source
                    .and_then(|f| f.config_map_key_ref.as_ref())
                    .map(|r| (&*r.name, &*r.key))),
                key(from
                    .and_then(|f| f.config_map_key_ref.as_ref())
                    .map(|r| (&*r.name, &*r.key))),
                "{case}"
            );
            assert_eq!(
                source.map(|f| (f.field_ref.is_some(), f.resource_field_ref.is_some())),
                from.map(|f| (f.field_ref.is_some(), f.resource_field_ref.is_some())),
                "{case}"
            );
        }
        // Where the shapes the rules read are wrong, the errors read as k8s-openapi's did.
        for case in [json!(5), json!("A=b"), json!({"name": "A", "valueFrom": 5})] {
            let ours = serde_json::from_value::<EnvVar>(case.clone()).unwrap_err();
            let theirs = serde_json::from_value::<k8s::EnvVar>(case.clone()).unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string(), "{case}");
        }
    }

    /// A wrong type where the rules read is an error naming the field, as before.
    #[test]
    fn a_wrongly_typed_env_value_is_an_error_at_its_path() {
        let root = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1", "env": [{"name": "A", "value": 5}]}]}}}});
        let err = Workload::decode(WorkloadKind::Deployment, &root).unwrap_err();
        assert_eq!(err.at, "spec.template.spec.containers[0].env[0].value");
        assert!(err.message.starts_with("invalid type: integer `5`"), "{err}");
        let root = json!({"spec": {"template": {"spec": {"containers": ["web"]}}}});
        let err = Workload::decode(WorkloadKind::Deployment, &root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.template.spec.containers[0]: expected a container mapping"
        );
    }
}
