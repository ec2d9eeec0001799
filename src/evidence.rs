//! Evidence of a finding: what dbhook saw, what would pass, and which other objects it read.

use serde::Serialize;

use crate::model::Object;

/// Another object a rule read to reach its finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consulted {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Set when the object was read from the cluster (the input files carry none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl Consulted {
    pub fn of(obj: &Object) -> Consulted {
        Consulted {
            api_version: obj.api_version.clone(),
            kind: obj.kind.clone(),
            namespace: obj.namespace().to_string(),
            name: obj.display_name().into_owned(),
            resource_version: obj.meta.resource_version.clone().filter(|v| !v.is_empty()),
        }
    }

    /// `Kind ns/name`, or `Kind name` without a namespace.
    pub fn describe(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// What a finding rests on. Never holds a credential: the engine redacts both texts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// What dbhook saw (e.g. the Rollout's image).
    pub observed: String,
    /// What would pass (e.g. the migration Job's image).
    pub expected: String,
    /// Other objects consulted.
    pub objects: Vec<Consulted>,
}

/// Longest observed/expected text in a denial message's short form.
const SHORT_PART_CHARS: usize = 96;

impl Evidence {
    /// `expected …, observed …` for denial messages, each part bounded.
    pub fn short(&self) -> String {
        format!(
            "expected {}, observed {}",
            crate::rules::truncate(&self.expected, SHORT_PART_CHARS),
            crate::rules::truncate(&self.observed, SHORT_PART_CHARS)
        )
    }

    /// The evidence as flat string properties (`observed`, `expected`, `objects`), as SARIF and
    /// OpenReports carry it.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("observed", self.observed.clone()), ("expected", self.expected.clone())];
        if !self.objects.is_empty() {
            let objects: Vec<String> = self
                .objects
                .iter()
                .map(|o| match &o.resource_version {
                    Some(rv) => format!("{} {} (resourceVersion {rv})", o.api_version, o.describe()),
                    None => format!("{} {}", o.api_version, o.describe()),
                })
                .collect();
            out.push(("objects", objects.join("; ")));
        }
        out
    }
}
