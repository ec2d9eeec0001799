//! What `dbhook explain <rule-id>` prints beyond the catalog entry: parameters with defaults,
//! how to fix, and a passing and a failing example. One entry per catalog id (a test keeps them
//! in step); the examples are checked by the engine in tests, so they cannot rot.

mod entries;

pub use entries::EXPLAINED;

/// A rule parameter in the policy (`rules.<id>.<name>`).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// The explain entry of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Explain {
    pub id: &'static str,
    /// Parameters besides the common `action`, `allowExemption` and `allowExistingViolations`.
    pub params: &'static [Param],
    pub fix: &'static str,
    /// Manifests (multi-document YAML) the rule accepts, checked as a complete input.
    pub passing: &'static str,
    /// Manifests the rule reports, checked as a complete input.
    pub failing: &'static str,
}

/// The keys every rule takes.
pub const COMMON_PARAMS: &[Param] = &[
    Param {
        name: "action",
        default: "(the rule's default)",
        meaning: "deny, warn or \"off\"",
    },
    Param {
        name: "allowExemption",
        default: "false",
        meaning: "honour dbhook.io/exempt on an object (bounded by dbhook.io/exempt-until)",
    },
    Param {
        name: "allowExistingViolations",
        default: "true",
        meaning: "on UPDATE, a denial the old object already had is only a warning",
    },
];

pub fn find(id: &str) -> Option<&'static Explain> {
    EXPLAINED.iter().find(|e| e.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::check_documents;
    use crate::policy::Policy;
    use crate::rules::CATALOG;

    fn rules_reported(yaml: &str) -> Vec<&'static str> {
        let docs = crate::manifest::parse("example.yaml", yaml).expect("the example parses");
        let checked =
            check_documents(&docs, &Policy::default(), true, chrono::Utc::now()).expect("the example decodes");
        checked.report.findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn every_catalog_rule_has_explain_content_and_nothing_else_does() {
        for r in CATALOG {
            let e = find(r.id).unwrap_or_else(|| panic!("{} has no explain entry", r.id));
            assert_eq!(e.id, r.id, "the entry found is the rule's own");
            assert!(
                !e.fix.trim().is_empty() && !e.passing.is_empty() && !e.failing.is_empty(),
                "{}",
                r.id
            );
        }
        assert!(find("no-such-rule").is_none());
        for e in EXPLAINED {
            assert!(
                crate::rules::catalog::find(e.id).is_some(),
                "{} is not in the catalog",
                e.id
            );
        }
    }

    #[test]
    fn each_failing_example_breaks_its_rule_and_each_passing_example_does_not() {
        for e in EXPLAINED {
            assert!(
                rules_reported(e.failing).contains(&e.id),
                "{}: the failing example passes",
                e.id
            );
            let passing = rules_reported(e.passing);
            assert!(
                !passing.contains(&e.id),
                "{}: the passing example fails: {passing:?}",
                e.id
            );
        }
    }

    #[test]
    fn documented_parameters_are_parameters_the_policy_accepts() {
        for e in EXPLAINED {
            for param in e.params {
                // An unknown key is an error naming it; a known one with a bad value names it too,
                // so probe with null, which every optional parameter accepts or rejects by name.
                let yaml = format!("rules: {{{}: {{{}: null}}}}", e.id, param.name);
                if let Err(err) = Policy::from_yaml(&yaml) {
                    assert!(!err.to_string().contains("unknown"), "{}.{}: {err}", e.id, param.name);
                }
            }
        }
    }
}
