//! `dbhook check` as a CI job runs it: the built binary as a subprocess, its exit codes and its
//! text, JSON and SARIF output.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use dbhook::rules::CATALOG;
use serde_json::Value;

use crate::cli_support::{ROOT, dbhook, stderr, stdout};

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

/// `tests/data/<dir>/*.yaml`, relative to the crate root, sorted.
fn fixtures(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("tests/data").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| format!("tests/data/{dir}/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

fn rules_in(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// A policy file raising every rule to deny.
fn strict_policy() -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    let mut text = String::from("apiVersion: dbhook.io/v1alpha1\nkind: Policy\nrules:\n");
    for r in CATALOG {
        text.push_str(&format!("  {}: deny\n", r.id));
    }
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn the_examples_pass_as_a_complete_input() {
    let out = dbhook(&["check", "--complete", "examples/"], None);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = dbhook(&["check", "--complete", "-o", "json", "examples/"], None);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(
        report["summary"],
        serde_json::json!({"objects": 10, "deny": 0, "warn": 0, "patched": 4})
    );
    assert_eq!(report["findings"], serde_json::json!([]));
}

#[test]
fn good_fixtures_have_no_deny_finding() {
    for file in fixtures("good") {
        let out = dbhook(&["check", "--complete", "-o", "json", &file], None);
        assert_eq!(code(&out), 0, "{file}: {}", stdout(&out));
        assert_eq!(json(&out)["summary"]["deny"], 0, "{file}");
    }
}

/// Every rule, through its broken fixture `tests/data/broken/<rule>.yaml`: the CLI finds that
/// rule and no other, at its default action and exit code, and fails the gate once the rule is
/// raised to deny. A rule without a fixture fails here, and so does a fixture naming no rule
/// (it would be checked by nothing).
#[test]
fn each_rule_is_broken_by_its_fixture_and_by_nothing_else_in_it() {
    let strict = strict_policy();
    let strict_path = strict.path().to_str().unwrap();
    let ids: BTreeSet<String> = CATALOG.iter().map(|r| r.id.to_string()).collect();
    let stray: Vec<String> = fixtures("broken")
        .into_iter()
        .filter(|f| !ids.contains(&Path::new(f).file_stem().unwrap().to_string_lossy().into_owned()))
        .collect();
    assert!(stray.is_empty(), "broken fixtures that name no rule: {stray:?}");
    for info in CATALOG {
        let id = info.id.to_string();
        let file = format!("tests/data/broken/{id}.yaml");
        assert!(Path::new(ROOT).join(&file).is_file(), "{file} is missing");
        let out = dbhook(&["check", "--complete", "-o", "json", &file], None);
        let report = json(&out);
        assert_eq!(
            rules_in(&report),
            BTreeSet::from([id.clone()]),
            "{file}: {}",
            serde_json::to_string_pretty(&report["findings"]).unwrap()
        );
        let want = if info.default_action == dbhook::policy::Action::Deny {
            1
        } else {
            0
        };
        assert_eq!(code(&out), want, "{file} at the default action");
        for f in report["findings"].as_array().unwrap() {
            assert_eq!(f["action"], info.default_action.as_str(), "{file}");
            assert_eq!(f["file"], file.as_str());
        }
        // With the rule raised to deny, every broken fixture fails the gate.
        let out = dbhook(&["check", "--complete", "--policy", strict_path, &file], None);
        assert_eq!(code(&out), 1, "{file} under a strict policy: {}", stdout(&out));
        assert!(stdout(&out).contains(&format!("[{id}]")), "{file}");
    }
}

#[test]
fn audit_mode_reports_deny_findings_and_exits_0() {
    let file = "tests/data/broken/migration-image-lockstep.yaml";
    let out = dbhook(&["check", "--complete", "--mode", "audit", "-o", "json", file], None);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(report["summary"]["deny"], 2);
    assert_eq!(report["findings"][0]["action"], "deny");
    let text = dbhook(&["check", "--complete", "--mode", "audit", file], None);
    assert_eq!(code(&text), 0);
    assert!(
        stdout(&text).ends_with(
            "5 objects checked: 2 deny, 0 warn, 2 would be patched; passed (audit mode: deny findings are reported, not enforced)\n"
        ),
        "{}",
        stdout(&text)
    );
    // The same through the environment, as a CI job would set it.
    let env = crate::cli_support::command()
        .args(["check", "--complete", file])
        .current_dir(ROOT)
        .env("DBHOOK_MODE", "audit")
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(0));
}

#[test]
fn an_audit_policy_file_does_not_fail_the_gate() {
    let mut policy = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    policy.write_all(b"mode: audit\n").unwrap();
    let out = dbhook(
        &[
            "check",
            "--policy",
            policy.path().to_str().unwrap(),
            "tests/data/broken/db-url-plaintext.yaml",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("deny   [db-url-plaintext]"), "{}", stdout(&out));
}

#[test]
fn unreadable_input_exits_2_and_names_the_file() {
    let out = dbhook(&["check", "does/not/exist.yaml"], None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("does/not/exist.yaml"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let out = dbhook(&["check", binary.to_str().unwrap()], None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("binary.yaml"), "{}", stderr(&out));

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.md"), "not a manifest").unwrap();
    let out = dbhook(&["check", empty.path().to_str().unwrap()], None);
    assert_eq!(code(&out), 2, "a directory without manifests is a usage error");
    assert!(stderr(&out).contains("no *.yaml"), "{}", stderr(&out));
}

#[test]
fn invalid_yaml_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let text = "# Source: shop/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
    std::fs::write(&file, text).unwrap();
    let out = dbhook(&["check", file.to_str().unwrap()], None);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    let at = format!("{}:", file.display());
    let line: usize = err
        .split(&at)
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no file:line in {err:?}"));
    assert!((10..=11).contains(&line), "line {line}: {err}");
    assert!(out.stdout.is_empty(), "no report on an input error");
}

#[test]
fn a_document_without_kind_or_a_handled_kind_that_does_not_decode_exits_2() {
    let no_kind = "apiVersion: apps/v1\nmetadata: {name: web}\n";
    let out = dbhook(&["check", "-"], Some(no_kind));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("<stdin>:1:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("no apiVersion and kind"), "{}", stderr(&out));

    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: not-a-list\n";
    let out = dbhook(&["check", "-"], Some(broken));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("<stdin>:5:"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot decode Deployment web"),
        "{}",
        stderr(&out)
    );

    // Metadata that does not decode leaves no name: the message says so without a stray space.
    let bad_meta = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  [...]\nspec: {instances: 1}\n";
    let out = dbhook(&["check", "-"], Some(bad_meta));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("<stdin>:1: cannot decode Cluster: metadata"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stdin_is_read_with_dash_or_without_paths() {
    let shop = std::fs::read_to_string(Path::new(ROOT).join("examples/shop.yaml")).unwrap();
    for args in [
        &["check", "--complete", "-o", "json", "-"][..],
        &["check", "--complete", "-o", "json"][..],
    ] {
        let out = dbhook(args, Some(&shop));
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert_eq!(json(&out)["summary"]["objects"], 5);
    }
    let broken =
        std::fs::read_to_string(Path::new(ROOT).join("tests/data/broken/migration-image-lockstep.yaml")).unwrap();
    let out = dbhook(&["check", "-o", "json", "-"], Some(&broken));
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(report["findings"][0]["file"], "<stdin>");
    // JSON input, as `kubectl get -o json` prints a List.
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": dbhook::manifest::parse("x", &broken)
        .unwrap().into_iter().map(|d| d.value).collect::<Vec<_>>()});
    let out = dbhook(&["check", "-o", "json", "-"], Some(&list.to_string()));
    assert_eq!(code(&out), 1);
    assert_eq!(
        rules_in(&json(&out)),
        BTreeSet::from(["migration-image-lockstep".to_string()])
    );
}

#[test]
fn findings_carry_the_line_where_the_object_starts() {
    // Helm output: every document is preceded by a `# Source:` comment and has no namespace.
    let out = dbhook(
        &["check", "--complete", "-o", "json", "tests/data/real/helm-shop.yaml"],
        None,
    );
    assert_eq!(code(&out), 1);
    let report = json(&out);
    let text = std::fs::read_to_string(Path::new(ROOT).join("tests/data/real/helm-shop.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for f in report["findings"].as_array().unwrap() {
        let line = f["line"].as_u64().unwrap() as usize;
        assert!(lines[line - 1].starts_with("apiVersion:"), "{f}");
        assert!(lines[line - 2].starts_with("# Source:"), "{f}");
        let name = f["object"]["name"].as_str().unwrap();
        assert!(
            lines[line..].iter().take(4).any(|l| *l == format!("  name: {name}")),
            "{name} at {line}"
        );
        assert!(f["object"].get("namespace").is_none_or(|n| n == ""), "{f}");
    }
    let summary = &report["summary"];
    assert_eq!(summary["objects"], 9);
    assert_eq!(summary["patched"], 4, "Deployment, CronJob, migration Job and test Job");
}

/// The JSON report of `check --output json` (README.md, "CLI"), key for key.
#[test]
fn json_output_has_exactly_the_spec_shape() {
    let out = dbhook(
        &[
            "check",
            "--complete",
            "-o",
            "json",
            "tests/data/broken/migration-image-lockstep.yaml",
        ],
        None,
    );
    let report = json(&out);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&report), ["summary", "findings"]);
    assert_eq!(keys(&report["summary"]), ["objects", "deny", "warn", "patched"]);
    let f = &report["findings"][0];
    assert_eq!(
        keys(f),
        ["rule", "action", "object", "file", "line", "message", "evidence"]
    );
    assert_eq!(keys(&f["object"]), ["apiVersion", "kind", "namespace", "name"]);
    assert_eq!(f["object"]["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(f["file"], "tests/data/broken/migration-image-lockstep.yaml");
    assert!(f["line"].is_u64());
    // The Rollout's image, the Job's image and which Job: no resourceVersion offline.
    assert_eq!(
        f["evidence"],
        serde_json::json!({
            "observed": "ghcr.io/acme/shop-web:sha-1a2b3c4",
            "expected": "ghcr.io/acme/shop-web:sha-0000000",
            "objects": [{"apiVersion": "batch/v1", "kind": "Job", "namespace": "shop", "name": "web-migrate"}]
        })
    );
}

/// Every finding of every broken fixture has evidence: something observed and expected.
#[test]
fn every_finding_carries_evidence() {
    for file in fixtures("broken") {
        let out = dbhook(&["check", "--complete", "-o", "json", &file], None);
        for f in json(&out)["findings"].as_array().unwrap() {
            let e = &f["evidence"];
            for part in ["observed", "expected"] {
                assert!(
                    e[part].as_str().is_some_and(|s| !s.trim().is_empty()),
                    "{file}: {} has no {part}: {e}",
                    f["rule"]
                );
            }
            assert!(e["objects"].is_array(), "{file}: {e}");
        }
    }
    let plaintext = dbhook(&["check", "--explain", "tests/data/broken/db-url-plaintext.yaml"], None);
    let text = stdout(&plaintext);
    assert!(text.contains("expected  container"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("password@"), "{text}");
}

#[test]
fn explain_output_snapshot() {
    let args: Vec<&str> = ["check", "--complete", "--explain"]
        .into_iter()
        .chain(SNAPSHOT_INPUT)
        .collect();
    let out = dbhook(&args, None);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(text.contains("               expected  "), "{text}");
    insta::assert_snapshot!("check_explain", text);
}

fn sarif_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(Path::new(ROOT).join("tests/data/sarif-schema-2.1.0.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let schema = sarif_schema();
    let mut inputs: Vec<String> = fixtures("broken");
    inputs.extend(fixtures("real"));
    let args: Vec<&str> = ["check", "-o", "sarif"]
        .into_iter()
        .chain(inputs.iter().map(String::as_str))
        .collect();
    let out = dbhook(&args, None);
    assert_eq!(code(&out), 1);
    let sarif = json(&out);
    let errors: Vec<String> = schema
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        CATALOG.iter().map(|r| r.id).collect::<Vec<_>>(),
        "one rule per rule id"
    );
    for (r, info) in rules.iter().zip(CATALOG) {
        assert_eq!(r["shortDescription"]["text"], info.summary);
    }
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    // The same findings as the JSON report, with file and start line.
    let json_args: Vec<&str> = ["check", "-o", "json"]
        .into_iter()
        .chain(inputs.iter().map(String::as_str))
        .collect();
    let report = json(&dbhook(&json_args, None));
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    for (r, f) in results.iter().zip(findings) {
        assert_eq!(r["ruleId"], f["rule"]);
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"], f["rule"]);
        assert_eq!(r["level"], if f["action"] == "deny" { "error" } else { "warning" });
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], f["file"]);
        assert_eq!(loc["region"]["startLine"], f["line"]);
    }
}

#[test]
fn sarif_for_stdin_and_odd_paths_is_still_valid() {
    let schema = sarif_schema();
    let broken = std::fs::read_to_string(Path::new(ROOT).join("tests/data/broken/db-url-plaintext.yaml")).unwrap();
    let out = dbhook(&["check", "-o", "sarif", "-"], Some(&broken));
    let sarif = json(&out);
    assert!(schema.is_valid(&sarif));
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "stdin"
    );
    let dir = tempfile::tempdir().unwrap();
    let odd: PathBuf = dir.path().join("my app [prod].yaml");
    std::fs::write(&odd, &broken).unwrap();
    let sarif = json(&dbhook(&["check", "-o", "sarif", odd.to_str().unwrap()], None));
    assert!(schema.is_valid(&sarif), "{sarif}");
    let uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with("my%20app%20%5Bprod%5D.yaml"), "{uri}");
    // No findings: an empty results list, still valid.
    let clean = json(&dbhook(&["check", "--complete", "-o", "sarif", "examples/"], None));
    assert!(schema.is_valid(&clean));
    assert_eq!(clean["runs"][0]["results"], serde_json::json!([]));
}

/// The inputs of the snapshot tests: a Helm-rendered chart (no namespaces, `# Source:`
/// comments, Helm hooks, a CronJob) and an Argo CD application in an audited namespace (hook
/// Jobs, an ignored exemption, a DB_URL conflict), with deny, warn, patch and note lines.
const SNAPSHOT_INPUT: [&str; 2] = ["tests/data/real/helm-shop.yaml", "tests/data/real/argocd-billing.yaml"];

fn snapshot_run(format: &str) -> String {
    let args: Vec<&str> = ["check", "--complete", "-o", format]
        .into_iter()
        .chain(SNAPSHOT_INPUT)
        .collect();
    let out = dbhook(&args, None);
    assert_eq!(code(&out), 1);
    stdout(&out)
}

#[test]
fn text_output_snapshot() {
    // Not a terminal: no colour codes.
    let text = snapshot_run("text");
    assert!(!text.contains('\x1b'));
    insta::assert_snapshot!("check_text", text);
}

#[test]
fn json_output_snapshot() {
    insta::assert_snapshot!("check_json", snapshot_run("json"));
}

#[test]
fn sarif_output_snapshot() {
    let sarif = snapshot_run("sarif").replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"[version]\"",
    );
    insta::assert_snapshot!("check_sarif", sarif);
}
