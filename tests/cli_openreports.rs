//! `check -o openreports`: the documents validate against the OpenReports CRDs' schemas
//! (vendored under tests/data/openreports, unknown fields rejected), one Report per namespace,
//! bounded, and a snapshot of the YAML.

use crate::cli_support::*;

use dbhook::evidence::Evidence;
use dbhook::openreports;
use dbhook::policy::Action;
use dbhook::report::{ObjectRef, Report, ReportFinding};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `openAPIV3Schema` of a vendored CRD, made strict: every object schema that lists its
/// properties rejects others (the API server would prune them silently).
fn crd_schema(file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(format!("{ROOT}/tests/data/openreports/{file}")).unwrap();
    let crd: Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    fn strict(v: &mut Value) {
        if let Some(o) = v.as_object_mut() {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in o.values_mut() {
                strict(child);
            }
        } else if let Some(a) = v.as_array_mut() {
            a.iter_mut().for_each(strict);
        }
    }
    strict(&mut schema);
    jsonschema::validator_for(&schema).unwrap()
}

fn validate(doc: &Value) {
    let file = match doc["kind"].as_str() {
        Some("Report") => "openreports.io_reports.yaml",
        Some("ClusterReport") => "openreports.io_clusterreports.yaml",
        other => panic!("unexpected kind {other:?}"),
    };
    let schema = crd_schema(file);
    let errors: Vec<String> = schema
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    assert_eq!(doc["apiVersion"], "openreports.io/v1alpha1");
}

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect()
}

const INPUT: [&str; 2] = ["tests/data/real/helm-shop.yaml", "tests/data/real/argocd-billing.yaml"];

#[test]
fn openreports_output_validates_against_the_report_crd_and_matches_the_json_findings() {
    let args: Vec<&str> = ["check", "--complete", "-o", "openreports"]
        .into_iter()
        .chain(INPUT)
        .collect();
    let out = dbhook(&args, None);
    assert_eq!(out.status.code(), Some(1), "the exit code follows the findings");
    let docs = documents(&stdout(&out));
    let json_args: Vec<&str> = ["check", "--complete", "-o", "json"].into_iter().chain(INPUT).collect();
    let report: Value = serde_json::from_str(&stdout(&dbhook(&json_args, None))).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let mut results = 0;
    for doc in &docs {
        validate(doc);
        assert_eq!(doc["source"], "dbhook");
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or("");
        for r in doc["results"].as_array().unwrap() {
            results += 1;
            assert_eq!(r["policy"], "dbhook");
            let resource = &r["resources"][0];
            assert_eq!(
                resource["namespace"].as_str().unwrap_or(""),
                ns,
                "one Report per namespace"
            );
            let f = findings
                .iter()
                .find(|f| {
                    f["rule"] == r["rule"] && f["object"]["name"] == resource["name"] && f["message"] == r["message"]
                })
                .unwrap_or_else(|| panic!("no JSON finding for {r}"));
            assert_eq!(r["result"], if f["action"] == "deny" { "fail" } else { "warn" });
            assert_eq!(r["properties"]["observed"], f["evidence"]["observed"]);
            assert_eq!(r["properties"]["expected"], f["evidence"]["expected"]);
        }
        let s = &doc["summary"];
        let n = doc["results"].as_array().unwrap().len() as u64;
        assert_eq!(s["fail"].as_u64().unwrap() + s["warn"].as_u64().unwrap(), n);
    }
    assert_eq!(results, findings.len());
    let namespaces: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["namespace"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        namespaces,
        ["", "billing"],
        "the chart's unplaced objects, then billing"
    );
}

#[test]
fn no_findings_print_no_documents() {
    let out = dbhook(&["check", "--complete", "-o", "openreports", "examples/"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

fn finding(kind: &str, api_version: &str, ns: &str, name: &str, action: Action) -> ReportFinding {
    ReportFinding {
        rule: "migration-image-lockstep",
        action,
        object: ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
        },
        file: None,
        line: None,
        message: format!("{name} is wrong"),
        exemption: None,
        evidence: Evidence {
            observed: "ghcr.io/acme/web:2".into(),
            expected: "ghcr.io/acme/web:1".into(),
            objects: Vec::new(),
        },
    }
}

#[test]
fn cluster_scoped_objects_get_a_cluster_report_and_reports_are_bounded() {
    let mut report = Report::default();
    report.findings.push(finding(
        "ClusterRole",
        "rbac.authorization.k8s.io/v1",
        "",
        "x",
        Action::Warn,
    ));
    for i in 0..5 {
        let action = if i % 2 == 0 { Action::Warn } else { Action::Deny };
        report.findings.push(finding(
            "Rollout",
            "argoproj.io/v1alpha1",
            "shop",
            &format!("web-{i}"),
            action,
        ));
    }
    let built = openreports::build_all(&report, 3);
    assert_eq!(built.len(), 2);
    let (cluster, shop) = (&built[1].1, &built[0].1);
    assert_eq!(cluster["kind"], "ClusterReport");
    assert!(cluster["metadata"].get("namespace").is_none());
    validate(cluster);
    assert_eq!(shop["kind"], "Report");
    validate(shop);
    let results = shop["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "maxResults bounds the results");
    assert!(
        results[..2].iter().all(|r| r["result"] == "fail"),
        "denials are kept first"
    );
    assert_eq!(shop["summary"]["fail"], 2);
    assert_eq!(shop["summary"]["warn"], 3, "the summary counts what was left out too");
    assert_eq!(shop["metadata"]["annotations"]["dbhook.io/omitted-results"], "2");
    // The strict schema does catch what the API server would prune or reject.
    let schema = crd_schema("openreports.io_reports.yaml");
    let mut bad = shop.clone();
    bad["results"][0]["evidence"] = serde_json::json!("x");
    assert!(!schema.is_valid(&bad));
    let mut bad = shop.clone();
    bad["results"][0]["result"] = serde_json::json!("deny");
    assert!(!schema.is_valid(&bad));
    let mut bad = shop.clone();
    bad["results"][0]["properties"]["line"] = serde_json::json!(3);
    assert!(!schema.is_valid(&bad), "properties are strings");
}

#[test]
fn openreports_output_snapshot() {
    let args: Vec<&str> = ["check", "--complete", "-o", "openreports"]
        .into_iter()
        .chain(INPUT)
        .collect();
    insta::assert_snapshot!("check_openreports", stdout(&dbhook(&args, None)));
}
