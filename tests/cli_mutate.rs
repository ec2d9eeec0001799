//! `dbhook mutate`, `policy` and `rules` as a user runs them: the built binary as a subprocess.

use serde_json::Value;

use crate::cli_support::{dbhook, stdout};

fn docs(yaml: &str) -> Vec<Value> {
    dbhook::manifest::parse("out", yaml)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect()
}

#[test]
fn mutate_injects_db_url_into_the_rollout_and_job_and_leaves_the_rest_unchanged() {
    let out = dbhook(&["mutate", "examples/shop.yaml"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let input = docs(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop.yaml")).unwrap());
    let output = docs(&stdout(&out));
    assert_eq!(input.len(), output.len());
    let expected =
        serde_json::json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}});
    for (before, after) in input.iter().zip(&output) {
        match after["kind"].as_str().unwrap() {
            "Rollout" | "Job" => {
                let env = after
                    .pointer("/spec/template/spec/containers/0/env")
                    .unwrap()
                    .as_array()
                    .unwrap();
                assert_eq!(env.last().unwrap(), &expected);
                // Only the env list changed.
                let mut restored = after.clone();
                let list = restored.pointer_mut("/spec/template/spec/containers/0/env").unwrap();
                list.as_array_mut().unwrap().pop();
                if list.as_array().unwrap().is_empty() {
                    restored["spec"]["template"]["spec"]["containers"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("env");
                }
                assert_eq!(&restored, before);
            }
            _ => assert_eq!(after, before),
        }
    }
}

#[test]
fn mutating_the_output_again_changes_nothing() {
    let first = stdout(&dbhook(&["mutate", "examples/shop.yaml"], None));
    let second = dbhook(&["mutate", "-"], Some(&first));
    assert!(second.status.success());
    assert_eq!(stdout(&second), first);
}

#[test]
fn mutate_reads_stdin_by_default_and_can_write_json() {
    let input = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: m, labels: {dbhook.io/cluster: pg}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: 'x:1'}]\n";
    let out = dbhook(&["mutate", "-o", "json"], Some(input));
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        "pg-app"
    );
}

#[test]
fn mutate_reports_conflicts_and_bad_annotations_on_stderr_without_failing() {
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a, labels: {dbhook.io/cluster: pg}, annotations: {dbhook.io/containers: nope}}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1'}]\n";
    let out = dbhook(&["mutate"], Some(input));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<stdin>:1: Deployment a/d: [injection-config]"), "{err}");
    assert!(err.contains("no container named nope"), "{err}");
    assert!(!stdout(&out).contains("DB_URL"));
}

#[test]
fn input_errors_exit_2_with_file_and_line() {
    let bad_yaml = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n";
    for cmd in ["mutate", "check"] {
        let out = dbhook(&[cmd, "-"], Some(bad_yaml));
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("<stdin>:"), "{cmd}: {err}");

        let out = dbhook(&[cmd, "-"], Some("metadata: {name: a}\n"));
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no apiVersion and kind"));

        let out = dbhook(&[cmd, "does/not/exist.yaml"], None);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist.yaml"));
    }
}

#[test]
fn check_exits_0_on_the_example_and_1_on_a_plaintext_credential() {
    let ok = dbhook(&["check", "--complete", "examples/"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1', env: [{name: DB_URL, value: 'postgresql://u:p@h/db'}]}]\n";
    let out = dbhook(&["check", "-"], Some(bad));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("[db-url-plaintext]"));
    let audit = dbhook(&["check", "--mode", "audit", "-"], Some(bad));
    assert_eq!(audit.status.code(), Some(0));
}

#[test]
fn policy_prints_a_policy_that_parses_and_rules_lists_every_rule() {
    let out = dbhook(&["policy"], None);
    assert!(out.status.success());
    dbhook::policy::Policy::from_yaml(&stdout(&out)).expect("printed policy parses");
    let rules = stdout(&dbhook(&["rules"], None));
    for r in dbhook::rules::CATALOG {
        assert!(rules.contains(r.id), "{}", r.id);
    }
    let env = crate::cli_support::command()
        .args(["check", "examples/shop.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DBHOOK_OUTPUT", "json")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&env.stdout).expect("DBHOOK_OUTPUT=json selects JSON");
    assert_eq!(v["summary"]["objects"], 5);
}
