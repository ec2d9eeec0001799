//! Findings as OpenReports (`openreports.io/v1alpha1`): one `Report` per namespace, a
//! `ClusterReport` for cluster-scoped objects, one result per finding with its evidence as
//! string properties. Shared by `check -o openreports` and `serve --reports`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::KindId;
use crate::policy::Action;
use crate::report::{Report, ReportFinding};

pub const API_VERSION: &str = "openreports.io/v1alpha1";
pub const GROUP: &str = "openreports.io";
/// The name of dbhook's Report in each namespace (and of its ClusterReport).
pub const NAME: &str = "dbhook";
pub const SOURCE: &str = "dbhook";
/// Labels dbhook's Reports so it finds (and removes) only its own.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "dbhook");
/// How many results did not fit (`reports.maxResults`); the summary still counts them.
pub const OMITTED_ANNOTATION: &str = "dbhook.io/omitted-results";
/// Results per Report by default (`reports.maxResults`).
pub const DEFAULT_MAX_RESULTS: usize = 1000;

/// Where a Report lives: a namespace, or the cluster (`ClusterReport`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Namespace(String),
    Cluster,
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Namespace(_) => "Report",
            Scope::Cluster => "ClusterReport",
        }
    }
}

/// Which Report a finding belongs to. The kinds dbhook judges are namespaced, so one without a
/// namespace (a rendered chart, offline) still goes into a namespaced Report, which
/// `kubectl apply -n` places; only objects of other kinds without one are cluster-scoped.
fn scope_of(f: &ReportFinding) -> Scope {
    let o = &f.object;
    let namespaced = matches!(KindId::of(&o.api_version, &o.kind), Some(k) if k != KindId::Namespace);
    if o.namespace.is_empty() && !namespaced {
        Scope::Cluster
    } else {
        Scope::Namespace(o.namespace.clone())
    }
}

/// The findings grouped by Report scope, deny first within each (the bound keeps those).
pub fn group(report: &Report) -> BTreeMap<Scope, Vec<&ReportFinding>> {
    let mut by_scope: BTreeMap<Scope, Vec<&ReportFinding>> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.action != Action::Off) {
        by_scope.entry(scope_of(f)).or_default().push(f);
    }
    for findings in by_scope.values_mut() {
        findings.sort_by_key(|f| f.action);
    }
    by_scope
}

/// Every Report of `report`, at most `max_results` results each.
pub fn build_all(report: &Report, max_results: usize) -> Vec<(Scope, Value)> {
    group(report)
        .into_iter()
        .map(|(scope, findings)| {
            let doc = build(&scope, &findings, max_results);
            (scope, doc)
        })
        .collect()
}

/// One Report (or ClusterReport) for `findings` of one scope.
pub fn build(scope: &Scope, findings: &[&ReportFinding], max_results: usize) -> Value {
    let fail = findings.iter().filter(|f| f.action == Action::Deny).count();
    let warn = findings.iter().filter(|f| f.action == Action::Warn).count();
    let results: Vec<Value> = findings.iter().take(max_results).map(|f| result(f)).collect();
    let omitted = findings.len().saturating_sub(max_results);
    let mut metadata = json!({"name": NAME, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
    if let Scope::Namespace(ns) = scope
        && !ns.is_empty()
    {
        metadata["namespace"] = json!(ns);
    }
    if omitted > 0 {
        metadata["annotations"] = json!({OMITTED_ANNOTATION: omitted.to_string()});
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": scope.kind(),
        "metadata": metadata,
        "source": SOURCE,
        "summary": {"pass": 0, "fail": fail, "warn": warn, "error": 0, "skip": 0},
        "results": results,
    })
}

fn severity(action: Action) -> &'static str {
    match action {
        Action::Deny => "high",
        _ => "medium",
    }
}

fn result(f: &ReportFinding) -> Value {
    let o = &f.object;
    let mut resource = json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name});
    if !o.namespace.is_empty() {
        resource["namespace"] = json!(o.namespace);
    }
    let mut properties = Map::new();
    for (k, v) in f.evidence.properties() {
        properties.insert(k.to_string(), Value::String(v));
    }
    properties.insert("action".into(), json!(f.action.as_str()));
    if let (Some(file), Some(line)) = (&f.file, f.line) {
        properties.insert("file".into(), json!(file));
        properties.insert("line".into(), json!(line.to_string()));
    }
    if let Some(e) = &f.exemption {
        properties.insert("exemption".into(), json!(e.state.as_str()));
        if let Some(u) = &e.until {
            properties.insert("exemptUntil".into(), json!(u));
        }
        if let Some(r) = &e.reason {
            properties.insert("exemptReason".into(), json!(r));
        }
    }
    json!({
        "policy": "dbhook",
        "rule": f.rule,
        "result": if f.action == Action::Deny { "fail" } else { "warn" },
        "severity": severity(f.action),
        "scored": true,
        "message": f.message,
        "resources": [resource],
        "properties": properties,
    })
}
