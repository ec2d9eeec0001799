//! `review()`: the gate (what is reviewed at all, what is refused unread), then mutation plus
//! the enabled rules, with exemptions and mode applied once. No I/O.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use json_patch::PatchOperation;
use kube::core::admission::Operation;
use serde::Serialize;

use crate::evidence::Evidence;
use crate::exemption::{self, Exemption, State};
use crate::model::{Object, Spec};
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
    /// An UPDATE's old object already had it, and the rule allows existing violations: reported
    /// as a warning, never denied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pre_existing: bool,
    /// The object's exemption from this rule: one that applies (the finding is in
    /// [`Decision::exempted`]) or one that expired (the finding stands and says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemption: Option<Exemption>,
    pub evidence: Evidence,
    /// The rule said what it saw and expected (rather than the generic fallback): the denial
    /// message then carries the short form.
    #[serde(skip)]
    pub specific_evidence: bool,
}

/// How pre-existing findings are marked in warnings, audit annotations and metrics.
pub const PRE_EXISTING: &str = "pre-existing";

impl Finding {
    /// Whether this finding denies the request (in audit mode: would deny it).
    pub fn denies(&self) -> bool {
        self.action == Action::Deny && !self.pre_existing
    }
}

/// Why a change was let through without being looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// A DELETE or CONNECT: nothing to inject into or judge.
    Operation,
    /// A subresource (`status`, `scale`): no pod template worth judging. The chart never sends
    /// them, but a hand-written configuration matching `*/*` might.
    Subresource,
    /// The object, or the request, is in a namespace the policy excludes.
    ExcludedNamespace,
    /// Being deleted: it then only receives updates that remove finalizers, and judging or
    /// patching it could only block the deletion.
    Terminating,
}

/// Everything a front door needs to answer.
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    pub mode: Mode,
    /// Set when the change was not reviewed at all (then allowed, with nothing else set).
    pub skipped: Option<Skipped>,
    /// The patch to return; empty in audit mode.
    pub patch: Vec<PatchOperation>,
    /// What the injection would change, whatever the mode.
    pub planned_patch: Vec<PatchOperation>,
    /// Containers that get (or would get) the env var.
    pub injected: Vec<String>,
    pub env_name: String,
    /// Why the object's dbhook annotations are unusable, so nothing is injected; rule
    /// `injection-config` reports each as a finding.
    pub config_errors: Vec<String>,
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
            skipped: None,
            patch: Vec::new(),
            planned_patch: Vec::new(),
            injected: Vec::new(),
            env_name: String::new(),
            config_errors: Vec::new(),
            findings: Vec::new(),
            exempted: Vec::new(),
            warnings: Vec::new(),
            notices: Vec::new(),
            audit_annotations: BTreeMap::new(),
            message: None,
        }
    }

    pub fn denies(&self) -> usize {
        self.findings.iter().filter(|f| f.denies()).count()
    }
}

/// What is being admitted: the object, on UPDATE the object it replaces, and how the request
/// was made. Ratcheting (judging what an UPDATE introduces) needs all of it.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub object: &'a Object,
    pub operation: Operation,
    pub old: Old<'a>,
    /// `dryRun: true`: Argo CD's server-side diff dry-runs a new Rollout before its PreSync
    /// migration Job exists, so lockstep findings only warn.
    pub dry_run: bool,
    /// The update removes finalizers and changes nothing else (`managedFields`,
    /// `resourceVersion` and `generation` aside). Only a front door holding the raw objects can
    /// tell, so it says so here.
    pub only_removes_finalizers: bool,
    /// The request is for a subresource of the object.
    pub subresource: bool,
    /// The namespace the request was made in, where the front door has one besides the
    /// object's (an AdmissionReview's `namespace`): excluded if either is.
    pub request_namespace: Option<&'a str>,
    /// The request's raw object or old object carries a `deletionTimestamp`. Only consulted for
    /// an object that did not decode: a decoded one is judged by its own metadata.
    pub deleting: bool,
}

/// The object an UPDATE replaces.
#[derive(Debug, Clone)]
pub enum Old<'a> {
    /// Nothing to compare with: a CREATE, or a state judged as it is (`dbhook check`,
    /// `/report`).
    None,
    Object(&'a Object),
    /// The request's old object could not be used (missing, undecodable, of another kind): the
    /// object is judged without it, every finding counting as introduced, and this reason
    /// becomes a warning.
    Unusable(String),
}

impl<'a> Change<'a> {
    /// A new object, as the CLI judges every manifest.
    pub fn create(object: &'a Object) -> Change<'a> {
        Change::state(object, Operation::Create)
    }

    /// `object` judged as it is under `operation`, with no old object to ratchet against.
    pub fn state(object: &'a Object, operation: Operation) -> Change<'a> {
        Change {
            object,
            operation,
            old: Old::None,
            dry_run: false,
            only_removes_finalizers: false,
            subresource: false,
            request_namespace: None,
            deleting: false,
        }
    }

    /// An UPDATE of `old` into `object`.
    pub fn update(object: &'a Object, old: &'a Object) -> Change<'a> {
        Change {
            old: Old::Object(old),
            ..Change::state(object, Operation::Update)
        }
    }

    pub fn with_old(mut self, old: Old<'a>) -> Change<'a> {
        self.old = old;
        self
    }

    pub fn dry_run(mut self, dry_run: bool) -> Change<'a> {
        self.dry_run = dry_run;
        self
    }

    pub fn only_removes_finalizers(mut self, only: bool) -> Change<'a> {
        self.only_removes_finalizers = only;
        self
    }

    pub fn subresource(mut self, subresource: bool) -> Change<'a> {
        self.subresource = subresource;
        self
    }

    pub fn request_namespace(mut self, namespace: &'a str) -> Change<'a> {
        self.request_namespace = Some(namespace);
        self
    }

    pub fn deleting(mut self, deleting: bool) -> Change<'a> {
        self.deleting = deleting;
        self
    }

    /// The object is being deleted ([`Skipped::Terminating`]). One that did not decode is let
    /// go as well when the update only removes finalizers: there is nothing to ratchet against.
    fn terminating(&self) -> bool {
        if let Spec::Undecodable(_) = self.object.spec {
            return self.deleting || self.only_removes_finalizers;
        }
        let old = match self.old {
            Old::Object(o) => o.meta.deletion_timestamp.is_some(),
            _ => false,
        };
        old || self.object.meta.deletion_timestamp.is_some()
    }

    fn excluded(&self, policy: &Policy) -> bool {
        policy.is_excluded(self.object.namespace()) || self.request_namespace.is_some_and(|ns| policy.is_excluded(ns))
    }

    /// Why the change is not to be reviewed, if it is not.
    fn skipped(&self, policy: &Policy) -> Option<Skipped> {
        if !matches!(self.operation, Operation::Create | Operation::Update) {
            Some(Skipped::Operation)
        } else if self.subresource {
            Some(Skipped::Subresource)
        } else if self.excluded(policy) {
            Some(Skipped::ExcludedNamespace)
        } else if self.terminating() {
            Some(Skipped::Terminating)
        } else {
            None
        }
    }

    fn is_update(&self) -> bool {
        matches!(self.operation, Operation::Update)
    }
}

/// Reviews a change with both mutation and validation, as the CLI does.
pub fn review(change: &Change<'_>, view: &dyn View, policy: &Policy, now: DateTime<Utc>) -> Decision {
    review_scoped(change, view, policy, now, Scope::All)
}

/// The mode for an object in namespace `ns` (policy, then namespace label where allowed).
pub fn mode_for(ns: &str, view: &dyn View, policy: &Policy) -> Mode {
    if !policy.allow_namespace_mode || ns.is_empty() {
        return policy.mode;
    }
    policy.mode_for(view.namespace_mode_label(ns).as_deref())
}

pub fn review_scoped(
    change: &Change<'_>,
    view: &dyn View,
    policy: &Policy,
    now: DateTime<Utc>,
    scope: Scope,
) -> Decision {
    let obj = change.object;
    let mode = mode_for(obj.namespace(), view, policy);
    let mut d = Decision::allow(mode);
    if let Some(skipped) = change.skipped(policy) {
        d.skipped = Some(skipped);
        return d;
    }
    if let Spec::Undecodable(reason) = &obj.spec {
        refuse_undecodable(&mut d, obj, reason);
        redact_decision(&mut d);
        return d;
    }
    let ctx = Ctx::new(obj, view, policy, now, &change.operation);
    if scope.mutates() {
        apply_mutation(&mut d, obj, &ctx);
    }
    if scope.validates() {
        let violations = run_rules(obj, &ctx);
        let mut notices = Vec::new();
        if let Old::Unusable(reason) = &change.old {
            notices.push(format!(
                "{reason}: judged without it, so no finding counts as pre-existing"
            ));
        }
        let exempt = exemption::judge(obj, policy, now);
        notices.extend(exempt.notices.iter().cloned());
        d.add_notices(notices);
        let (exempted, kept): (Vec<Violation>, Vec<Violation>) =
            violations.into_iter().partition(|v| exempt.applies(v.rule));
        let pre_existing = ratchet(change, &kept, &ctx);
        d.findings = kept
            .into_iter()
            .zip(pre_existing)
            .filter_map(|(v, pre)| {
                let e = exempt.get(v.rule);
                to_finding(v, change, policy, pre, e)
            })
            .collect();
        d.exempted = exempted
            .into_iter()
            .filter_map(|v| {
                let e = exempt.get(v.rule);
                to_finding(v, change, policy, false, e)
            })
            .collect();
        if !d.exempted.is_empty() {
            d.audit_annotations
                .insert("exempted".into(), findings_json(&d.exempted));
        }
        apply_mode(&mut d, obj);
    }
    redact_decision(&mut d);
    d
}

/// An object of a handled kind that dbhook cannot read is refused: letting it through would
/// skip the injection and every rule unseen.
fn refuse_undecodable(d: &mut Decision, obj: &Object, reason: &str) {
    let (ns, name) = (obj.namespace(), obj.name());
    let qualified = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    };
    let message = format!("dbhook cannot decode {} {qualified}: {reason}", obj.kind);
    match d.mode {
        Mode::Enforce => {
            d.allowed = false;
            d.message = Some(message);
        }
        Mode::Audit => d.warnings.push(format!("dbhook: audit: {message}")),
    }
}

/// Messages quote annotations, images and schedules, any of which may hold a credential.
fn redact_decision(d: &mut Decision) {
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
}

/// Which of `found` (the object's findings) are pre-existing: on UPDATE, a deny finding whose
/// rule allows existing violations and that the old object yields with the same rule, path and
/// judged value. Only the rules with such a finding judge the old object, so an UPDATE of a
/// compliant object costs what a CREATE does.
fn ratchet(change: &Change<'_>, found: &[Violation], ctx: &Ctx<'_>) -> Vec<bool> {
    let mut pre = vec![false; found.len()];
    if !change.is_update() {
        return pre;
    }
    let denies = |v: &Violation| effective_action(v, change, ctx.policy) == Action::Deny;
    if change.only_removes_finalizers {
        // Nothing the rules judge changed; denying would leave the object stuck (an Argo CD hook
        // Job keeps its hook finalizer until this update goes through).
        for (p, v) in pre.iter_mut().zip(found) {
            *p = denies(v);
        }
        return pre;
    }
    let Old::Object(old) = change.old else {
        return pre;
    };
    let candidate = |v: &Violation| denies(v) && ctx.policy.setting(v.rule).allow_existing_violations;
    let rules: BTreeSet<&str> = found.iter().filter(|v| candidate(v)).map(|v| v.rule).collect();
    if rules.is_empty() {
        return pre;
    }
    // The old object's own context: its annotations may resolve to other injection settings.
    let old_ctx = Ctx::new(old, ctx.view, ctx.policy, ctx.now, ctx.operation);
    let mut before = Vec::new();
    for rule in rules::registry().iter().filter(|r| rules.contains(r.info.id)) {
        (rule.check)(old, &old_ctx, &mut before);
    }
    let keys: HashSet<Key<'_>> = before.iter().map(key).collect();
    for (p, v) in pre.iter_mut().zip(found) {
        *p = candidate(v) && keys.contains(&key(v));
    }
    pre
}

/// What makes two findings the same: rule, path and judged value (the message when the rule
/// does not name one; findings about the whole object have no path).
type Key<'a> = (&'static str, Option<&'a str>, &'a str);

fn key(v: &Violation) -> Key<'_> {
    (v.rule, v.path.as_deref(), v.judged.as_deref().unwrap_or(&v.message))
}

fn apply_mutation(d: &mut Decision, obj: &Object, ctx: &Ctx<'_>) {
    let m = mutate::plan_resolved(obj, ctx.operation, ctx.injection.as_ref());
    d.config_errors = m.config_errors;
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

/// The policy's action for `v`, lowered to a warning where the rule or the request asks.
fn effective_action(v: &Violation, change: &Change<'_>, policy: &Policy) -> Action {
    let action = policy.action(v.rule);
    let lowered = v.warn_only || (change.dry_run && v.rule == catalog::MIGRATION_IMAGE_LOCKSTEP);
    if lowered && action == Action::Deny {
        Action::Warn
    } else {
        action
    }
}

fn to_finding(
    v: Violation,
    change: &Change<'_>,
    policy: &Policy,
    pre_existing: bool,
    exemption: Option<&Exemption>,
) -> Option<Finding> {
    let action = effective_action(&v, change, policy);
    if action == Action::Off {
        return None;
    }
    let mut message = redact::credentials(&v.message).into_owned();
    if let Some(Exemption {
        state: State::Expired,
        until: Some(until),
        ..
    }) = exemption
    {
        message.push_str(&format!(" (exemption expired on {until})"));
    }
    let (evidence, specific_evidence) = evidence(&v);
    Some(Finding {
        rule: v.rule,
        action,
        message,
        path: v.path,
        pre_existing,
        exemption: exemption.cloned(),
        evidence,
        specific_evidence,
    })
}

/// The rule's evidence, or one derived from what every finding has: what was seen is the
/// message, what passes is the rule's summary. Redacted: rules quote values as written. A
/// rule's judged value is never shown: where it is set it is a credential's fingerprint.
fn evidence(v: &Violation) -> (Evidence, bool) {
    // `Violation::evidence` sets both halves; a finding has the short form exactly then.
    let specific = v.observed.is_some();
    let observed = v.observed.clone().unwrap_or_else(|| v.message.clone());
    let expected = match &v.expected {
        Some(e) => e.clone(),
        None => catalog::find(v.rule).map_or_else(String::new, |r| r.summary.to_string()),
    };
    let evidence = Evidence {
        observed: redact::credentials(&observed).into_owned(),
        expected: redact::credentials(&expected).into_owned(),
        objects: v.consulted.clone(),
    };
    (evidence, specific)
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
            let mut entry = serde_json::json!({"rule": f.rule, "action": f.action, "message": message});
            if f.pre_existing {
                entry["state"] = PRE_EXISTING.into();
            }
            if let Some(e) = &f.exemption {
                if let Some(until) = &e.until {
                    entry["exemptUntil"] = until.as_str().into();
                }
                if let Some(reason) = &e.reason {
                    entry["exemptReason"] = rules::truncate(reason, 200).into();
                }
            }
            list.push(entry);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        list.push(serde_json::json!({ "omitted": omitted }));
    }
    serde_json::Value::Array(list).to_string()
}

/// `[rule] message (expected …, observed …)`: the short evidence where the rule gave one.
fn denial_reason(f: &Finding) -> String {
    if f.specific_evidence {
        format!("[{}] {} ({})", f.rule, f.message, f.evidence.short())
    } else {
        format!("[{}] {}", f.rule, f.message)
    }
}

fn apply_mode(d: &mut Decision, obj: &Object) {
    let denials: Vec<&Finding> = d.findings.iter().filter(|f| f.denies()).collect();
    match d.mode {
        Mode::Enforce => {
            if !denials.is_empty() {
                let reasons: Vec<String> = denials.iter().map(|f| denial_reason(f)).collect();
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
        }
    }
    for f in d.findings.iter().filter(|f| f.pre_existing) {
        d.warnings
            .push(format!("dbhook: [{}] {PRE_EXISTING}: {}", f.rule, f.message));
    }
    for f in d.findings.iter().filter(|f| f.action == Action::Warn) {
        d.warnings.push(format!("dbhook: [{}] {}", f.rule, f.message));
    }
    if !d.findings.is_empty() {
        // Denials first: the annotation is bounded, and they matter most.
        let mut listed: Vec<&Finding> = d.findings.iter().collect();
        listed.sort_by_key(|f| (f.action, f.pre_existing));
        d.audit_annotations.insert("violations".into(), findings_json(listed));
    }
}

#[cfg(test)]
#[path = "testing/engine.rs"]
mod tests;

#[cfg(test)]
#[path = "testing/engine_gate.rs"]
mod gate_tests;
