//! `dbhook explain <rule-id>` as a subprocess: every catalog rule explains itself, an unknown
//! one is a usage error naming it.

use crate::cli_support::*;
use dbhook::rules::CATALOG;

#[test]
fn every_rule_explains_its_purpose_parameters_fix_and_examples() {
    for r in CATALOG {
        let out = dbhook(&["explain", r.id], None);
        assert_eq!(out.status.code(), Some(0), "{}: {}", r.id, stderr(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("{} (default action: {})", r.id, r.default_action.as_str())),
            "{text}"
        );
        for part in [
            r.summary,
            r.why,
            "Parameters (policy: rules.",
            "allowExistingViolations",
            "How to fix:",
            "Passing example:",
            "Failing example:",
        ] {
            assert!(text.contains(part), "{}: no {part:?} in\n{text}", r.id);
        }
        // The failing example is reported by the engine under this rule.
        let reported = text.split("reports on it:").nth(1).unwrap_or_default();
        assert!(reported.contains(&format!("[{}]", r.id)), "{}: {text}", r.id);
    }
}

#[test]
fn an_unknown_rule_exits_2_naming_it() {
    let out = dbhook(&["explain", "migration-image-lokstep"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "dbhook: unknown rule \"migration-image-lokstep\" (see `dbhook rules`)"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn explain_output_snapshots() {
    for id in ["migration-image-lockstep", "scheduled-backup-schedule"] {
        let out = dbhook(&["explain", id], None);
        insta::assert_snapshot!(format!("explain_{id}"), stdout(&out));
    }
}
