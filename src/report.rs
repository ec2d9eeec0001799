//! The findings report shared by `check --output json` and the server's `GET /report`.

use serde::Serialize;

use crate::engine::{Decision, Finding};
use crate::model::Object;
use crate::policy::Action;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub objects: usize,
    pub deny: usize,
    pub warn: usize,
    pub patched: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn of(obj: &Object) -> ObjectRef {
        ObjectRef {
            api_version: obj.api_version.clone(),
            kind: obj.kind.clone(),
            namespace: obj.namespace().to_string(),
            name: obj.display_name().into_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportFinding {
    pub rule: &'static str,
    pub action: Action,
    pub object: ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    /// An expired exemption from this rule: when it ended and why it was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemption: Option<crate::exemption::Exemption>,
    pub evidence: crate::evidence::Evidence,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub summary: Summary,
    pub findings: Vec<ReportFinding>,
    /// Exemptions of the reviewed objects per state (`dbhook_exemptions`); one per object and
    /// rule the policy allows exempting.
    #[serde(skip)]
    pub exemptions: [usize; 3],
}

impl Report {
    /// Adds one reviewed object; `source` is its file and line when it came from a file.
    pub fn add(&mut self, obj: &Object, decision: &Decision, source: Option<(&str, usize)>) {
        self.summary.objects += 1;
        if !decision.planned_patch.is_empty() {
            self.summary.patched += 1;
        }
        for f in &decision.findings {
            self.push(obj, f, source);
        }
    }

    /// Counts the exemptions of `obj` at `now` (see [`Report::exemptions`]).
    pub fn count_exemptions(
        &mut self,
        obj: &Object,
        policy: &crate::policy::Policy,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        for e in crate::exemption::judge(obj, policy, now).rules {
            self.exemptions[e.state as usize] += 1;
        }
    }

    fn push(&mut self, obj: &Object, f: &Finding, source: Option<(&str, usize)>) {
        match f.action {
            Action::Deny => self.summary.deny += 1,
            Action::Warn => self.summary.warn += 1,
            Action::Off => return,
        }
        self.findings.push(ReportFinding {
            rule: f.rule,
            action: f.action,
            object: ObjectRef::of(obj),
            file: source.map(|(f, _)| f.to_string()),
            line: source.map(|(_, l)| l),
            message: f.message.clone(),
            exemption: f.exemption.clone(),
            evidence: f.evidence.clone(),
        });
    }
}
