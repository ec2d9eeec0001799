use json_patch::PatchOperation;
use kube::core::admission::Operation;
use serde_json::{Value, json};

use super::*;
use crate::policy::Policy;
use crate::testing::{object, value};

const WEB: &str = "        - name: web\n          image: ghcr.io/acme/web:sha-1a2b3c4\n";

fn manifest(kind: &str, labels: &str, annotations: &str, pod: &str) -> String {
    let (api, template) = match kind {
        "Rollout" => ("argoproj.io/v1alpha1", "spec:\n  template:\n    spec:\n"),
        "Deployment" | "StatefulSet" => ("apps/v1", "spec:\n  template:\n    spec:\n"),
        "Job" => ("batch/v1", "spec:\n  template:\n    spec:\n"),
        "CronJob" => (
            "batch/v1",
            "spec:\n  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
        ),
        _ => ("v1", "spec:\n  template:\n    spec:\n"),
    };
    // CronJob nests two levels deeper; re-indent the pod block to match.
    let pod = if kind == "CronJob" {
        pod.lines().map(|l| format!("    {l}\n")).collect::<String>()
    } else {
        pod.to_string()
    };
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: web\n  namespace: shop\n  labels: {labels}\n  annotations: {annotations}\n{template}{pod}"
    )
}

fn pod(containers: &str) -> String {
    format!("      containers:\n{containers}")
}

fn plan_for(yaml: &str, op: Operation) -> Mutation {
    plan(&object(yaml), &op, &Policy::default())
}

fn apply(yaml: &str, m: &Mutation) -> Value {
    let mut doc = value(yaml);
    json_patch::patch(&mut doc, &m.patch).expect("patch applies");
    doc
}

fn paths(m: &Mutation) -> Vec<String> {
    m.patch
        .iter()
        .map(|op| match op {
            PatchOperation::Add(a) => a.path.to_string(),
            other => panic!("unexpected op {other:?}"),
        })
        .collect()
}

fn expected_env(secret: &str, key: &str) -> Value {
    json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

#[test]
fn every_workload_kind_gets_db_url_at_its_pod_template_path() {
    let cases = [
        ("Rollout", "/spec/template/spec/containers/0/env"),
        ("Deployment", "/spec/template/spec/containers/0/env"),
        ("StatefulSet", "/spec/template/spec/containers/0/env"),
        ("Job", "/spec/template/spec/containers/0/env"),
        ("CronJob", "/spec/jobTemplate/spec/template/spec/containers/0/env"),
    ];
    for (kind, path) in cases {
        let yaml = manifest(kind, "{dbhook.io/cluster: shop-pg}", "{}", &pod(WEB));
        let m = plan_for(&yaml, Operation::Create);
        assert_eq!(paths(&m), vec![path.to_string()], "{kind}");
        let doc = apply(&yaml, &m);
        let env = doc.pointer(path).expect("env exists");
        assert_eq!(env, &json!([expected_env("shop-pg-app", "uri")]), "{kind}");
    }
}

#[test]
fn existing_env_list_is_appended_to_with_dash() {
    let c = "        - name: web\n          image: x:1\n          env:\n          - {name: LOG_LEVEL, value: info}\n";
    let yaml = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", "{}", &pod(c));
    let m = plan_for(&yaml, Operation::Create);
    assert_eq!(paths(&m), vec!["/spec/template/spec/containers/0/env/-"]);
    let doc = apply(&yaml, &m);
    let env = doc.pointer("/spec/template/spec/containers/0/env").unwrap();
    assert_eq!(env[0]["name"], "LOG_LEVEL");
    assert_eq!(env[1], expected_env("shop-pg-app", "uri"));
}

#[test]
fn init_containers_are_injected_too() {
    let p = "      initContainers:\n        - {name: wait, image: busybox:1.36}\n      containers:\n        - {name: web, image: x:1}\n        - {name: sidecar, image: y:1, env: []}\n";
    let yaml = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", "{}", p);
    let m = plan_for(&yaml, Operation::Create);
    assert_eq!(
        paths(&m),
        vec![
            "/spec/template/spec/initContainers/0/env",
            "/spec/template/spec/containers/0/env",
            "/spec/template/spec/containers/1/env/-",
        ]
    );
    assert_eq!(m.injected, vec!["wait", "web", "sidecar"]);
}

#[test]
fn annotations_choose_env_name_secret_key_and_containers() {
    let p = "      containers:\n        - {name: web, image: x:1}\n        - {name: worker, image: x:1}\n        - {name: proxy, image: envoy:1}\n";
    let ann = "{dbhook.io/env-name: DATABASE_URL, dbhook.io/secret-key: fqdn-jdbc-uri, dbhook.io/secret-name: shop-pg-ro, dbhook.io/containers: ' web , worker'}";
    let yaml = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", ann, p);
    let m = plan_for(&yaml, Operation::Create);
    assert_eq!(m.injected, vec!["web", "worker"]);
    let doc = apply(&yaml, &m);
    let env = &doc.pointer("/spec/template/spec/containers/1/env").unwrap()[0];
    assert_eq!(
        env,
        &json!({"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-ro", "key": "fqdn-jdbc-uri"}}})
    );
    assert!(doc.pointer("/spec/template/spec/containers/2/env").is_none());
}

#[test]
fn policy_injection_defaults_apply_without_annotations() {
    let policy = Policy::from_yaml("injection: {envName: PG_URL, secretKey: jdbc-uri}").unwrap();
    let yaml = manifest("Job", "{dbhook.io/cluster: shop-pg}", "{}", &pod(WEB));
    let m = plan(&object(&yaml), &Operation::Create, &policy);
    let doc = apply(&yaml, &m);
    assert_eq!(
        doc.pointer("/spec/template/spec/containers/0/env/0").unwrap(),
        &json!({"name": "PG_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "jdbc-uri"}}})
    );
}

#[test]
fn applying_the_patch_and_admitting_again_yields_no_patch() {
    for kind in ["Rollout", "Deployment", "StatefulSet", "Job", "CronJob"] {
        let p = "      initContainers:\n        - {name: wait, image: busybox:1.36}\n      containers:\n        - {name: web, image: x:1, env: [{name: A, value: b}]}\n";
        let yaml = manifest(kind, "{dbhook.io/cluster: shop-pg}", "{}", p);
        let first = plan_for(&yaml, Operation::Create);
        assert!(!first.patch.is_empty(), "{kind}");
        let patched = apply(&yaml, &first);
        let again = plan(
            &crate::model::Object::from_value(&patched).unwrap(),
            &Operation::Update,
            &Policy::default(),
        );
        assert!(again.patch.is_empty(), "{kind}: {:?}", again.patch);
        assert!(again.warnings.is_empty(), "{kind}: {:?}", again.warnings);
    }
}

#[test]
fn an_existing_variable_is_never_clobbered_and_a_difference_is_warned() {
    let cases = [
        // (env entry, expect warning)
        (
            "{name: DB_URL, valueFrom: {secretKeyRef: {name: shop-pg-app, key: uri}}}",
            false,
        ),
        (
            "{name: DB_URL, valueFrom: {secretKeyRef: {name: other-app, key: uri}}}",
            true,
        ),
        (
            "{name: DB_URL, valueFrom: {secretKeyRef: {name: shop-pg-app, key: jdbc-uri}}}",
            true,
        ),
        ("{name: DB_URL, value: 'postgres://app@db/app'}", true),
        (
            "{name: DB_URL, valueFrom: {configMapKeyRef: {name: cfg, key: url}}}",
            true,
        ),
    ];
    for (entry, warn) in cases {
        let c = format!("        - name: web\n          image: x:1\n          env: [{entry}]\n");
        let yaml = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", "{}", &pod(&c));
        let m = plan_for(&yaml, Operation::Create);
        assert!(m.patch.is_empty(), "{entry}");
        assert_eq!(m.warnings.len(), usize::from(warn), "{entry}: {:?}", m.warnings);
        if warn {
            assert!(m.warnings[0].contains("left unchanged"), "{:?}", m.warnings);
            assert!(
                !m.warnings[0].contains("postgres://"),
                "never echo values: {:?}",
                m.warnings
            );
        }
    }
}

#[test]
fn job_update_gets_no_patch_but_job_create_does() {
    let yaml = manifest("Job", "{dbhook.io/cluster: shop-pg}", "{}", &pod(WEB));
    assert!(plan_for(&yaml, Operation::Update).patch.is_empty());
    assert!(!plan_for(&yaml, Operation::Create).patch.is_empty());
    let cron = manifest("CronJob", "{dbhook.io/cluster: shop-pg}", "{}", &pod(WEB));
    assert!(
        !plan_for(&cron, Operation::Update).patch.is_empty(),
        "a CronJob template is mutable"
    );
}

#[test]
fn rollout_with_workload_ref_gets_a_warning_and_no_patch() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}\nspec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web-base}\n";
    let m = plan_for(yaml, Operation::Create);
    assert!(m.patch.is_empty());
    assert_eq!(m.warnings.len(), 1);
    assert!(m.warnings[0].contains("web-base") && m.warnings[0].contains("dbhook.io/cluster=shop-pg"));
}

#[test]
fn unlabelled_objects_other_kinds_and_other_operations_get_nothing() {
    let unlabelled = manifest("Deployment", "{app: web}", "{}", &pod(WEB));
    assert!(plan_for(&unlabelled, Operation::Create).patch.is_empty());
    let empty_label = manifest("Deployment", "{dbhook.io/cluster: ''}", "{}", &pod(WEB));
    assert!(plan_for(&empty_label, Operation::Create).patch.is_empty());
    let pod_kind = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {dbhook.io/cluster: shop-pg}}\nspec: {containers: [{name: a, image: b}]}\n";
    assert!(plan_for(pod_kind, Operation::Create).patch.is_empty());
    let labelled = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", "{}", &pod(WEB));
    for op in [Operation::Delete, Operation::Connect] {
        assert!(plan_for(&labelled, op).patch.is_empty());
    }
}

#[test]
fn invalid_annotations_produce_no_patch_and_say_exactly_what_is_wrong() {
    let cases = [
        ("{dbhook.io/env-name: 1DB_URL}", "dbhook.io/env-name"),
        ("{dbhook.io/env-name: DB-URL}", "not a valid environment variable name"),
        ("{dbhook.io/secret-name: ''}", "dbhook.io/secret-name"),
        ("{dbhook.io/secret-name: Shop_PG}", "not a valid Secret name"),
        ("{dbhook.io/secret-key: ''}", "dbhook.io/secret-key"),
        (
            "{dbhook.io/containers: 'api'}",
            "no container named api (the pod has web)",
        ),
        ("{dbhook.io/containers: ' , '}", "names no container"),
    ];
    for (ann, needle) in cases {
        let yaml = manifest("Deployment", "{dbhook.io/cluster: shop-pg}", ann, &pod(WEB));
        let m = plan_for(&yaml, Operation::Create);
        assert!(m.patch.is_empty(), "{ann}");
        assert!(
            m.config_errors.iter().any(|e| e.contains(needle)),
            "{ann}: {:?}",
            m.config_errors
        );
    }
    let bad_cluster = manifest("Deployment", "{dbhook.io/cluster: Shop_PG}", "{}", &pod(WEB));
    let m = plan_for(&bad_cluster, Operation::Create);
    assert!(
        m.config_errors[0].contains("derived from label"),
        "{:?}",
        m.config_errors
    );
}

#[test]
fn name_checks_follow_kubernetes_rules() {
    for ok in ["DB_URL", "_x", "a1"] {
        assert!(is_c_identifier(ok), "{ok}");
    }
    for bad in ["", "1a", "a-b", "a b", "é"] {
        assert!(!is_c_identifier(bad), "{bad}");
    }
    for ok in ["shop-pg-app", "a.b-c", "x"] {
        assert!(is_dns1123_subdomain(ok), "{ok}");
    }
    let long = "a".repeat(254);
    for bad in ["", "-a", "a-", "A", "a_b", "a..b", long.as_str()] {
        assert!(!is_dns1123_subdomain(bad), "{bad}");
    }
}
