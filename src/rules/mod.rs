//! The rule registry: each rule is a pure check over one object and the view, paired in
//! [`RULES`] with its entry of the policy's catalog.

pub mod backup;
pub mod credentials;
pub mod cron;
pub mod explain;
pub mod images;
pub mod injection;
pub mod lockstep;
pub mod references;
pub mod schedule;

use chrono::{DateTime, Utc};
use kube::core::admission::Operation;

pub use crate::evidence::Consulted;
use crate::model::Object;
use crate::mutate::{self, Resolved};
use crate::policy::Policy;
pub use crate::policy::catalog::{self, CATALOG, RuleInfo};
use crate::view::{Origin, View};

/// What a rule check sees besides the object.
pub struct Ctx<'a> {
    pub view: &'a dyn View,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    pub operation: &'a Operation,
    /// The injection settings of the object being checked ([`mutate::resolve`]), resolved once
    /// for the mutation and every rule. A `Ctx` serves one object only.
    pub injection: Option<Resolved>,
}

impl<'a> Ctx<'a> {
    /// The context for checking `obj`.
    pub fn new(
        obj: &Object,
        view: &'a dyn View,
        policy: &'a Policy,
        now: DateTime<Utc>,
        operation: &'a Operation,
    ) -> Ctx<'a> {
        Ctx {
            view,
            policy,
            now,
            operation,
            injection: mutate::resolve(obj, policy),
        }
    }
}

impl Ctx<'_> {
    pub fn origin(&self) -> Origin {
        self.view.origin()
    }
    pub fn is_create(&self) -> bool {
        matches!(self.operation, Operation::Create)
    }
    /// A CREATE at admission: objects applied in the same sync may not be in the view yet, so
    /// "does not exist" findings are only warnings then (docs/rules.md: unknown never denies).
    pub fn is_admission_create(&self) -> bool {
        self.origin() == Origin::Admission && self.is_create()
    }
    /// `v`, as a warning only at admission CREATE ([`Ctx::is_admission_create`]).
    pub fn lenient_on_create(&self, v: Violation) -> Violation {
        if self.is_admission_create() { v.warn_only() } else { v }
    }
}

/// A rule's complaint about an object, before policy and mode turn it into an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
    /// Where in the object, dotted (`spec.template.spec.containers[0].image`), when it helps.
    pub path: Option<String>,
    /// Report at most as a warning whatever the policy says (e.g. a Cluster whose
    /// ScheduledBackup has not been applied yet at CREATE).
    pub warn_only: bool,
    /// The value the rule judged, where the message does not carry it. On UPDATE a finding is
    /// pre-existing when the old object yields the same rule, path and judged value (the
    /// message when this is unset). Never a secret: see [`fingerprint`].
    pub judged: Option<String>,
    /// What the rule saw and what would pass, when it says so; the engine falls back to the
    /// message and the rule's summary.
    pub observed: Option<String>,
    pub expected: Option<String>,
    /// Other objects the rule read to reach this finding.
    pub consulted: Vec<Consulted>,
}

impl Violation {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Violation {
        Violation {
            rule,
            message: message.into(),
            path: None,
            warn_only: false,
            judged: None,
            observed: None,
            expected: None,
            consulted: Vec::new(),
        }
    }
    /// What the rule saw and what would pass (evidence). Quote values as written; the engine
    /// redacts credentials.
    pub fn evidence(mut self, observed: impl Into<String>, expected: impl Into<String>) -> Violation {
        self.observed = Some(observed.into());
        self.expected = Some(expected.into());
        self
    }
    /// Records another object read to reach the finding (with its resourceVersion when it came
    /// from the cluster).
    pub fn consulted(mut self, obj: &Object) -> Violation {
        let c = Consulted::of(obj);
        if !self.consulted.contains(&c) {
            self.consulted.push(c);
        }
        self
    }
    pub fn at(mut self, path: impl Into<String>) -> Violation {
        self.path = Some(path.into());
        self
    }
    pub fn warn_only(mut self) -> Violation {
        self.warn_only = true;
        self
    }
    /// Keys the finding on `value` instead of the message (see [`Violation::judged`]).
    pub fn judged(mut self, value: impl Into<String>) -> Violation {
        self.judged = Some(value.into());
        self
    }
}

/// A stand-in for a value that must not be kept (a credential): equal values give equal
/// fingerprints within this process, and the process-random key makes them useless elsewhere.
pub fn fingerprint(value: &str) -> String {
    use std::hash::BuildHasher as _;
    static KEY: std::sync::LazyLock<std::hash::RandomState> = std::sync::LazyLock::new(std::hash::RandomState::new);
    format!("{:016x}", KEY.hash_one(value))
}

pub type Check = fn(&Object, &Ctx<'_>, &mut Vec<Violation>);

/// A rule: its catalog entry (id, default action, texts, parameters) and its check.
pub struct Rule {
    pub info: &'static RuleInfo,
    pub check: Check,
}

const fn rule(info: &'static RuleInfo, check: Check) -> Rule {
    Rule { info, check }
}

/// Every rule, in catalog order (the order findings are reported in). Adding a rule: its entry
/// in `policy::catalog`, its check here.
pub const RULES: &[Rule] = {
    use catalog::entry as e;
    &[
        rule(&e::INJECTION_CONFIG, injection::check),
        rule(&e::MIGRATION_IMAGE_LOCKSTEP, lockstep::check),
        rule(&e::IMAGE_TAG_PINNED, images::tag_pinned),
        rule(&e::DB_URL_PLAINTEXT, credentials::plaintext),
        rule(&e::DB_URL_SOURCE, credentials::source),
        rule(&e::MIGRATION_JOB_REPLACEABLE, lockstep::replaceable::check),
        rule(&e::CLUSTER_EXISTS, references::cluster_exists),
        rule(&e::APP_SECRET_HAS_KEY, references::app_secret_has_key),
        rule(&e::BACKUP_CONFIGURED, backup::configured),
        rule(&e::BACKUP_RETENTION, backup::retention),
        rule(&e::BACKUP_COMPRESSION, backup::compression),
        rule(&e::BACKUP_S3_COMPAT_CHECKSUMS, backup::s3_compat_checksums),
        rule(&e::BACKUP_IN_TREE_DEPRECATED, backup::in_tree_deprecated),
        rule(&e::BACKUP_STORE_EXISTS, backup::store_exists),
        rule(&e::SCHEDULED_BACKUP_PRESENT, schedule::present),
        rule(&e::SCHEDULED_BACKUP_SCHEDULE, schedule::schedule),
        rule(&e::SCHEDULED_BACKUP_COVERAGE, schedule::coverage),
        rule(&e::SCHEDULED_BACKUP_TARGET, schedule::target),
    ]
};

// Every catalog entry has exactly one check, in catalog order: a rule without a check, or a
// check without a rule, does not compile.
const _: () = assert!(in_catalog_order(RULES, CATALOG), "RULES is not CATALOG, in order");

/// `rules` pairs a check with each entry of `catalog`, in its order (a `const` check of [`RULES`]).
const fn in_catalog_order(rules: &[Rule], catalog: &[RuleInfo]) -> bool {
    if rules.len() != catalog.len() {
        return false;
    }
    let mut i = 0;
    while i < rules.len() {
        if !catalog::same_id(rules[i].info.id, catalog[i].id) {
            return false;
        }
        i += 1;
    }
    true
}

/// Every rule in catalog order.
pub fn registry() -> &'static [Rule] {
    RULES
}

/// The namespace of `obj` for messages; objects without one (rendered charts) read "(unset)".
pub(crate) fn ns_label(obj: &Object) -> &str {
    match obj.namespace() {
        "" => "(unset)",
        ns => ns,
    }
}

/// Shortens a message to `max` characters on a char boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn every_catalog_id_has_exactly_one_check_in_catalog_order() {
        for info in CATALOG {
            let checks = RULES.iter().filter(|r| r.info.id == info.id).count();
            assert_eq!(checks, 1, "{} has {checks} checks", info.id);
        }
        let table: Vec<&str> = registry().iter().map(|r| r.info.id).collect();
        let catalog: Vec<&str> = CATALOG.iter().map(|r| r.id).collect();
        assert_eq!(table, catalog);
    }

    #[test]
    fn the_order_check_rejects_a_missing_an_extra_or_a_swapped_rule() {
        assert!(in_catalog_order(RULES, CATALOG));
        assert!(!in_catalog_order(&RULES[1..], CATALOG), "a rule missing");
        assert!(!in_catalog_order(RULES, &CATALOG[1..]), "a check too many");
        let swapped = [rule(RULES[1].info, RULES[1].check), rule(RULES[0].info, RULES[0].check)];
        assert!(!in_catalog_order(&swapped, &CATALOG[..2]), "two rules swapped");
        assert!(in_catalog_order(&RULES[..2], &CATALOG[..2]));
    }

    #[test]
    fn the_table_holds_the_catalog_entries_themselves() {
        for (rule, info) in RULES.iter().zip(CATALOG) {
            assert_eq!(
                (rule.info.default_action, rule.info.summary, rule.info.why),
                (info.default_action, info.summary, info.why),
                "{}",
                info.id
            );
        }
    }
}
