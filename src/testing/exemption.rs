use chrono::{DateTime, TimeZone, Utc};
use kube::core::admission::Operation;

use super::*;
use crate::engine::{Change, review};
use crate::testing::{object, rollout};
use crate::view::EmptyView;

/// The fixed "now" of these tests.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 10, 12, 0, 0).unwrap()
}

const PLAINTEXT: &str = "        - name: web\n          image: ghcr.io/acme/web:sha-1a2b3c4\n          env: [{name: OLD_URL, value: 'postgres://app:s3cret@db/app'}]\n";

fn allowing(extra: &str) -> Policy {
    Policy::from_yaml(&format!(
        "rules: {{db-url-plaintext: {{allowExemption: true}}}}\n{extra}"
    ))
    .unwrap()
}

fn exempt(until: Option<&str>) -> Object {
    let mut annotations =
        "{dbhook.io/exempt: db-url-plaintext, dbhook.io/exempt-reason: 'TICKET-42 rotate by Q1'".to_string();
    if let Some(u) = until {
        annotations.push_str(&format!(", dbhook.io/exempt-until: '{u}'"));
    }
    annotations.push('}');
    object(&rollout("{dbhook.io/cluster: shop-pg}", &annotations, PLAINTEXT))
}

fn decide(obj: &Object, policy: &Policy) -> crate::engine::Decision {
    review(&Change::state(obj, Operation::Create), &EmptyView, policy, now())
}

#[test]
fn dates_and_timestamps_parse_and_a_date_covers_its_day() {
    let d = parse_expiry("2027-01-31").unwrap();
    assert_eq!(d.at, Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
    let t = parse_expiry(" 2027-01-31T18:00:00+02:00 ").unwrap();
    assert_eq!(t.at, Utc.with_ymd_and_hms(2027, 1, 31, 16, 0, 0).unwrap());
    assert_eq!(t.written, "2027-01-31T18:00:00+02:00");
    for bad in ["31.01.2027", "2027-13-01", "tomorrow", "2027-01-31 18:00"] {
        assert!(parse_expiry(bad).is_none(), "{bad}");
    }
}

#[test]
fn an_expiry_far_ahead_applies_silently() {
    let d = decide(&exempt(Some("2030-06-30")), &allowing(""));
    assert!(d.allowed, "{:?}", d.message);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.exempted.len(), 1);
    let e = d.exempted[0].exemption.as_ref().unwrap();
    assert_eq!(e.state, State::Active);
    assert_eq!(e.reason.as_deref(), Some("TICKET-42 rotate by Q1"));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let annotation = &d.audit_annotations["exempted"];
    assert!(annotation.contains(r#""exemptUntil":"2030-06-30""#), "{annotation}");
    assert!(
        annotation.contains(r#""exemptReason":"TICKET-42 rotate by Q1""#),
        "{annotation}"
    );
}

#[test]
fn an_expiry_within_warn_days_applies_with_a_warning() {
    let d = decide(&exempt(Some("2027-01-20")), &allowing(""));
    assert!(d.allowed);
    assert_eq!(d.exempted[0].exemption.as_ref().unwrap().state, State::Expiring);
    assert_eq!(
        d.warnings,
        ["dbhook: exemption of [db-url-plaintext] expires on 2027-01-20"]
    );
    // A shorter warning period: the same date is not yet close.
    let d = decide(&exempt(Some("2027-01-20")), &allowing("exemptions: {warnDays: 5}"));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_past_expiry_no_longer_applies_and_the_finding_says_so() {
    let d = decide(&exempt(Some("2027-01-09")), &allowing(""));
    assert!(!d.allowed);
    assert!(d.exempted.is_empty());
    assert_eq!(d.findings.len(), 1);
    let f = &d.findings[0];
    assert!(
        f.message.ends_with("(exemption expired on 2027-01-09)"),
        "{}",
        f.message
    );
    assert_eq!(f.exemption.as_ref().unwrap().state, State::Expired);
    assert!(
        d.message
            .as_deref()
            .unwrap()
            .contains("exemption expired on 2027-01-09"),
        "{:?}",
        d.message
    );
    // A timestamp passed an hour ago.
    let d = decide(&exempt(Some("2027-01-10T11:00:00Z")), &allowing(""));
    assert!(!d.allowed);
}

#[test]
fn require_expiry_ignores_an_exemption_without_a_date() {
    let policy = allowing("exemptions: {requireExpiry: true}");
    let d = decide(&exempt(None), &policy);
    assert!(!d.allowed);
    assert_eq!(
        d.notices,
        [
            "exemption from [db-url-plaintext] ignored: the policy requires dbhook.io/exempt-until (exemptions.requireExpiry)"
        ]
    );
    assert!(decide(&exempt(Some("2027-03-01")), &policy).allowed);
    // Without requireExpiry an undated exemption applies indefinitely.
    assert!(decide(&exempt(None), &allowing("")).allowed);
}

#[test]
fn an_expiry_beyond_max_days_does_not_apply() {
    let policy = allowing("exemptions: {maxDays: 90}");
    let d = decide(&exempt(Some("2027-12-31")), &policy);
    assert!(!d.allowed);
    assert_eq!(
        d.notices,
        [
            "exemption from [db-url-plaintext] ignored: dbhook.io/exempt-until 2027-12-31 is more than 90 days ahead (exemptions.maxDays)"
        ]
    );
    assert!(decide(&exempt(Some("2027-03-01")), &policy).allowed);
}

#[test]
fn an_unparsable_expiry_does_not_apply() {
    let d = decide(&exempt(Some("next sprint")), &allowing(""));
    assert!(!d.allowed);
    assert!(
        d.notices[0]
            .starts_with("exemption from [db-url-plaintext] ignored: dbhook.io/exempt-until \"next sprint\" is not"),
        "{:?}",
        d.notices
    );
}

#[test]
fn the_policy_block_rejects_unknown_keys_and_bad_values() {
    let e = Policy::from_yaml("exemptions: {warnDay: 3}").unwrap_err().to_string();
    assert!(e.contains("exemptions.warnDay"), "{e}");
    let e = Policy::from_yaml("exemptions: {maxDays: -1}").unwrap_err().to_string();
    assert!(e.contains("exemptions.maxDays"), "{e}");
    let p = Policy::from_yaml("exemptions: {maxDays: null}").unwrap();
    assert_eq!(p.exemptions, crate::policy::Exemptions::default());
    assert_eq!(p.exemptions.warn_days, 14);
}

#[test]
fn check_reports_the_exemption_with_its_date_and_reason_on_its_clock() {
    let yaml = rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{dbhook.io/exempt: db-url-plaintext, dbhook.io/exempt-until: '2027-01-31', dbhook.io/exempt-reason: OPS-7}",
        PLAINTEXT,
    );
    let docs = crate::manifest::parse("app.yaml", &yaml).unwrap();
    let at = |now| crate::offline::check_documents(&docs, &allowing(""), false, now).unwrap();
    let before = at(now());
    assert_eq!(before.exit_code(), 0);
    let notes: Vec<&str> = before.notes.iter().map(|n| n.message.as_str()).collect();
    assert!(
        notes.iter().any(|n| n.starts_with(
            "[db-url-plaintext] exempted by dbhook.io/exempt (until 2027-01-31, reason: OPS-7): container web env OLD_URL"
        )),
        "{notes:?}"
    );
    let after = at(Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
    assert_eq!(after.exit_code(), 1);
    let f = &after.report.findings[0];
    assert!(
        f.message.ends_with("(exemption expired on 2027-01-31)"),
        "{}",
        f.message
    );
    assert_eq!(
        serde_json::to_value(&f.exemption).unwrap(),
        serde_json::json!({"state": "expired", "until": "2027-01-31", "reason": "OPS-7"})
    );
}
