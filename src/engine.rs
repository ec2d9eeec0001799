//! `review()`: mutation plus the enabled rules, with exemptions and mode applied once. No I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use json_patch::PatchOperation;
use kube::core::admission::Operation;
use serde::Serialize;

use crate::model::{Object, keys};
use crate::mutate;
use crate::policy::{Action, Mode, Policy};
use crate::redact;
use crate::rules::{self, Ctx, Violation, catalog};
use crate::view::View;

/// The most a single warning may hold; kube-apiserver truncates longer ones.
pub const MAX_WARNING_CHARS: usize = 256;

/// Findings listed in one audit annotation; see [`findings_json`].
pub const MAX_ANNOTATED_FINDINGS: usize = 32;
/// The most of one finding's message an audit annotation holds.
pub const MAX_ANNOTATED_MESSAGE_CHARS: usize = 1024;

/// Which webhook is asking: the mutating one only injects, the validating one only judges, the
/// CLI does both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mutate,
    Validate,
    All,
}

impl Scope {
    fn mutates(self) -> bool {
        matches!(self, Scope::Mutate | Scope::All)
    }
    fn validates(self) -> bool {
        matches!(self, Scope::Validate | Scope::All)
    }
}

/// A rule finding with the action the policy gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub action: Action,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Everything a front door needs to answer.
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    pub mode: Mode,
    /// The patch to return; empty in audit mode.
    pub patch: Vec<PatchOperation>,
    /// What the injection would change, whatever the mode.
    pub planned_patch: Vec<PatchOperation>,
    /// Containers that get (or would get) the env var.
    pub injected: Vec<String>,
    pub env_name: String,
    /// Findings with action deny or warn (rules set to off never report).
    pub findings: Vec<Finding>,
    /// Findings suppressed by an exemption the policy allows; kept so the exemption leaves a
    /// trail (audit annotation `exempted`, notes of `dbhook check`).
    pub exempted: Vec<Finding>,
    /// Messages for the API client, each prefixed `dbhook:` and at most 256 characters.
    pub warnings: Vec<String>,
    /// The warnings that are neither findings nor audit summaries (mutation conflicts, ignored
    /// exemptions), unprefixed: `dbhook check` prints them as notes.
    pub notices: Vec<String>,
    /// Keys without `/`: kube-apiserver prefixes them with the webhook name.
    pub audit_annotations: BTreeMap<String, String>,
    /// The denial message when `allowed` is false.
    pub message: Option<String>,
}

impl Decision {
    fn allow(mode: Mode) -> Decision {
        Decision {
            allowed: true,
            mode,
            patch: Vec::new(),
            planned_patch: Vec::new(),
            injected: Vec::new(),
            env_name: String::new(),
            findings: Vec::new(),
            exempted: Vec::new(),
            warnings: Vec::new(),
            notices: Vec::new(),
            audit_annotations: BTreeMap::new(),
            message: None,
        }
    }

    pub fn denies(&self) -> usize {
        self.findings.iter().filter(|f| f.action == Action::Deny).count()
    }
}

/// Reviews `obj` with both mutation and validation, as the CLI does.
pub fn review(obj: &Object, operation: &Operation, view: &dyn View, policy: &Policy, now: DateTime<Utc>) -> Decision {
    review_scoped(obj, operation, view, policy, now, Scope::All)
}

/// The mode for an object in namespace `ns` (policy, then namespace label where allowed).
pub fn mode_for(ns: &str, view: &dyn View, policy: &Policy) -> Mode {
    if !policy.allow_namespace_mode || ns.is_empty() {
        return policy.mode;
    }
    policy.mode_for(view.namespace_mode_label(ns).as_deref())
}

pub fn review_scoped(
    obj: &Object,
    operation: &Operation,
    view: &dyn View,
    policy: &Policy,
    now: DateTime<Utc>,
    scope: Scope,
) -> Decision {
    let mode = mode_for(obj.namespace(), view, policy);
    let mut d = Decision::allow(mode);
    // An object already being deleted only receives updates that remove finalizers: judging
    // or patching it then could only block the deletion.
    let terminating = obj.meta.deletion_timestamp.is_some();
    if !matches!(operation, Operation::Create | Operation::Update) || policy.is_excluded(obj.namespace()) || terminating
    {
        return d;
    }
    if scope.mutates() {
        apply_mutation(&mut d, obj, operation, policy);
    }
    if scope.validates() {
        let ctx = Ctx {
            view,
            policy,
            now,
            operation,
        };
        let violations = run_rules(obj, &ctx);
        let mut notices = Vec::new();
        let exempt = exemptions(obj, policy, &mut notices);
        d.add_notices(notices);
        let (exempted, kept): (Vec<Violation>, Vec<Violation>) =
            violations.into_iter().partition(|v| exempt.contains(&v.rule));
        d.findings = kept.into_iter().filter_map(|v| to_finding(v, policy)).collect();
        d.exempted = exempted.into_iter().filter_map(|v| to_finding(v, policy)).collect();
        if !d.exempted.is_empty() {
            d.audit_annotations
                .insert("exempted".into(), findings_json(&d.exempted));
        }
        apply_mode(&mut d, obj);
    }
    // Messages quote annotations, images and schedules, any of which may hold a credential.
    d.warnings = d
        .warnings
        .iter()
        .map(|w| rules::truncate(&redact::credentials(w), MAX_WARNING_CHARS))
        .collect();
    for n in &mut d.notices {
        if let Cow::Owned(redacted) = redact::credentials(n) {
            *n = redacted;
        }
    }
    if let Some(Cow::Owned(redacted)) = d.message.as_deref().map(redact::credentials) {
        d.message = Some(redacted);
    }
    for value in d.audit_annotations.values_mut() {
        if let Cow::Owned(redacted) = redact::credentials(value) {
            *value = redacted;
        }
    }
    d
}

fn apply_mutation(d: &mut Decision, obj: &Object, operation: &Operation, policy: &Policy) {
    let m = mutate::plan(obj, operation, policy);
    d.add_notices(m.warnings);
    d.env_name = m.env_name;
    d.injected = m.injected;
    d.planned_patch = m.patch;
    if d.planned_patch.is_empty() {
        return;
    }
    match d.mode {
        Mode::Enforce => d.patch = d.planned_patch.clone(),
        Mode::Audit => {
            d.warnings.push(format!(
                "dbhook: would inject {} into containers {}",
                d.env_name,
                d.injected.join(", ")
            ));
            if let Ok(json) = serde_json::to_string(&d.planned_patch) {
                d.audit_annotations.insert("would-patch".into(), json);
            }
        }
    }
}

fn run_rules(obj: &Object, ctx: &Ctx<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in rules::registry() {
        if ctx.policy.action(rule.info.id) != Action::Off {
            (rule.check)(obj, ctx, &mut out);
        }
    }
    out
}

impl Decision {
    fn add_notices(&mut self, notices: Vec<String>) {
        self.warnings.extend(notices.iter().map(|n| format!("dbhook: {n}")));
        self.notices.extend(notices);
    }
}

/// Rule ids the object may skip; warns about exemptions the policy does not honour.
fn exemptions(obj: &Object, policy: &Policy, warnings: &mut Vec<String>) -> Vec<&'static str> {
    let Some(list) = obj.annotation(keys::EXEMPT) else {
        return Vec::new();
    };
    let mut honoured = Vec::new();
    // Each name once: a list repeating a name thousands of times gets one warning, not thousands.
    let mut seen = std::collections::BTreeSet::new();
    for name in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && seen.insert(*s))
    {
        match catalog::id(name) {
            None => warnings.push(format!(
                "{} names unknown rule {name:?}; it is ignored (see `dbhook rules`)",
                keys::EXEMPT
            )),
            Some(id) if policy.setting(id).allow_exemption => honoured.push(id),
            Some(id) => warnings.push(format!(
                "exemption from [{id}] ignored: the policy does not allow exempting this rule (allowExemption)"
            )),
        }
    }
    honoured
}

fn to_finding(v: Violation, policy: &Policy) -> Option<Finding> {
    let mut action = policy.action(v.rule);
    if v.warn_only && action == Action::Deny {
        action = Action::Warn;
    }
    (action != Action::Off).then(|| Finding {
        rule: v.rule,
        action,
        message: redact::credentials(&v.message).into_owned(),
        path: v.path,
    })
}

/// The `violations`/`exempted` audit annotations: `[{rule, action, message}]`. Bounded like the
/// warnings, because one finding per env var or container would otherwise put megabytes into
/// every audit event: at most [`MAX_ANNOTATED_FINDINGS`] entries, each message cut at
/// [`MAX_ANNOTATED_MESSAGE_CHARS`]; what is left out is counted in a last entry `{"omitted": n}`.
fn findings_json<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> String {
    let mut list: Vec<serde_json::Value> = Vec::new();
    let mut omitted = 0usize;
    for f in findings {
        if list.len() < MAX_ANNOTATED_FINDINGS {
            let message = rules::truncate(&f.message, MAX_ANNOTATED_MESSAGE_CHARS);
            list.push(serde_json::json!({"rule": f.rule, "action": f.action, "message": message}));
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        list.push(serde_json::json!({ "omitted": omitted }));
    }
    serde_json::Value::Array(list).to_string()
}

fn apply_mode(d: &mut Decision, obj: &Object) {
    let denials: Vec<&Finding> = d.findings.iter().filter(|f| f.action == Action::Deny).collect();
    match d.mode {
        Mode::Enforce => {
            if !denials.is_empty() {
                let reasons: Vec<String> = denials.iter().map(|f| format!("[{}] {}", f.rule, f.message)).collect();
                d.allowed = false;
                d.message = Some(format!(
                    "dbhook denied {} {}: {}",
                    obj.kind,
                    obj.qualified_name(),
                    reasons.join("; ")
                ));
            }
        }
        Mode::Audit => {
            for f in &denials {
                d.warnings
                    .push(format!("dbhook: audit: would deny: [{}] {}", f.rule, f.message));
            }
            if !denials.is_empty() {
                d.audit_annotations.insert("violations".into(), findings_json(denials));
            }
        }
    }
    for f in d.findings.iter().filter(|f| f.action == Action::Warn) {
        d.warnings.push(format!("dbhook: [{}] {}", f.rule, f.message));
    }
}

#[cfg(test)]
#[path = "testing/engine.rs"]
mod tests;
