//! The one home of test fixtures for unit tests: objects from YAML literals, the real-shaped
//! shop example and edits of it, offline and admission views over them, a fixed clock, and one
//! rule run against one object. (`rules::fixture` re-exports it for the rule tests.)

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kube::core::admission::Operation;
use serde_json::Value;

use crate::model::Object;
use crate::policy::Policy;
use crate::rules::{Check, Ctx, Violation};
use crate::view::{ManifestView, Origin};

/// The good example: every rule passes on it.
pub const SHOP: &str = include_str!("../examples/shop.yaml");

/// The fixed "now" of unit tests: rules that read the time (lockstep memory, exemption dates,
/// cron gaps) see the same instant on every run.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

pub fn value(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).expect("test YAML parses")
}

pub fn object(yaml: &str) -> Object {
    Object::from_value(&value(yaml)).expect("test object decodes")
}

/// A labelled Rollout with the given containers block (YAML list items indented by 8).
pub fn rollout(labels: &str, annotations: &str, containers: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n  namespace: shop\n  labels: {labels}\n  annotations: {annotations}\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
    )
}

/// Every object of a multi-document YAML text.
pub fn objects(yaml: &str) -> Vec<Arc<Object>> {
    crate::manifest::parse("test.yaml", yaml)
        .expect("test YAML parses")
        .iter()
        .map(|d| Arc::new(Object::from_value(&d.value).expect("test object decodes")))
        .collect()
}

/// `text` with `from` replaced by `to`; panics when `from` does not occur, so a fixture edit
/// that silently stops applying is caught.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture edit: {from:?} not found");
    text.replacen(from, to, 1)
}

/// How a rule is run in a test.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub complete: bool,
    pub origin: Origin,
    pub operation: &'a Operation,
    pub policy: Option<&'a Policy>,
}

/// `dbhook check` without `--complete`.
pub const OFFLINE: Run<'static> = Run {
    complete: false,
    origin: Origin::Offline,
    operation: &Operation::Create,
    policy: None,
};
/// `dbhook check --complete`.
pub const COMPLETE: Run<'static> = Run {
    complete: true,
    ..OFFLINE
};
/// Admission CREATE with a synced cluster view.
pub const ADMIT_CREATE: Run<'static> = Run {
    complete: true,
    origin: Origin::Admission,
    operation: &Operation::Create,
    policy: None,
};
/// Admission UPDATE with a synced cluster view.
pub const ADMIT_UPDATE: Run<'static> = Run {
    operation: &Operation::Update,
    ..ADMIT_CREATE
};

/// Runs `check` on the object `kind/name` of `yaml`, with every object of `yaml` in the view.
pub fn check(check: Check, yaml: &str, target: &str, run: Run<'_>) -> Vec<Violation> {
    check_against(check, yaml, target, yaml, run)
}

/// Runs `check` on `kind/name` of `subject` against a view holding the objects of `world`.
pub fn check_against(check: Check, subject: &str, target: &str, world: &str, run: Run<'_>) -> Vec<Violation> {
    let (kind, name) = target.split_once('/').expect("target is Kind/name");
    let obj = objects(subject)
        .into_iter()
        .find(|o| o.kind == kind && o.name() == name)
        .unwrap_or_else(|| panic!("no {target} in the fixture"));
    let manifest = ManifestView::new(objects(world), run.complete);
    let view = match run.origin {
        Origin::Offline => manifest,
        Origin::Admission => manifest.answering_as_admission(),
    };
    let default = Policy::default();
    let ctx = Ctx::new(&obj, &view, run.policy.unwrap_or(&default), now(), run.operation);
    let mut out = Vec::new();
    check(&obj, &ctx, &mut out);
    out
}

/// The messages of `violations`, for readable assertions.
pub fn messages(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|v| v.message.as_str()).collect()
}

/// Where a rule test runs: a shorthand for the [`Run`] constants, kept for the table-driven
/// tests written with [`run_rule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Offline,
    Complete,
    Create,
    Update,
}

impl At {
    pub fn run(self) -> Run<'static> {
        match self {
            At::Offline => OFFLINE,
            At::Complete => COMPLETE,
            At::Create => ADMIT_CREATE,
            At::Update => ADMIT_UPDATE,
        }
    }
}

/// [`check`] at `at` under `policy`.
pub fn run_rule(check_fn: Check, yaml: &str, target: &str, at: At, policy: &Policy) -> Vec<Violation> {
    let run = Run {
        policy: Some(policy),
        ..at.run()
    };
    check(check_fn, yaml, target, run)
}
