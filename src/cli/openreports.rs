//! `check --output openreports`: the findings as OpenReports YAML documents, ready for
//! `kubectl apply -f -` (one `Report` per namespace, a `ClusterReport` for cluster-scoped
//! objects).

use crate::openreports::{DEFAULT_MAX_RESULTS, build_all};
use crate::report::Report;

/// The Reports as a multi-document YAML stream; empty when there is no finding.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for (_, doc) in build_all(report, DEFAULT_MAX_RESULTS) {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&doc).unwrap_or_default());
    }
    out
}
