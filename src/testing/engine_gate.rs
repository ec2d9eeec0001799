//! The engine's gate: what it lets through unreviewed, what it refuses unread, and the
//! mutate-only scope `dbhook mutate` and the mutating webhook share.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::admission::Operation;

use super::*;
use crate::model::Marks;
use crate::policy::Policy;
use crate::testing::{object, rollout};
use crate::view::EmptyView;

const PLAINTEXT: &str = "        - name: web\n          image: ghcr.io/acme/web:latest\n          env: [{name: DB_URL, value: 'postgres://app:s3cret@db/app'}]\n";

fn review_as(change: &Change<'_>, policy: &Policy, scope: Scope) -> Decision {
    review_scoped(change, &EmptyView, policy, crate::testing::now(), scope)
}

/// A Rollout in `ns` whose body did not decode.
fn undecodable(ns: &str, reason: &str) -> Object {
    Object {
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        meta: crate::model::Meta {
            name: Some("web".into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        labels: Marks::default(),
        annotations: Marks::default(),
        spec: Spec::Undecodable(Box::new(reason.into())),
    }
}

fn assert_untouched(d: &Decision, skipped: Skipped) {
    assert_eq!(d.skipped, Some(skipped));
    assert!(d.allowed);
    assert!(d.patch.is_empty() && d.planned_patch.is_empty());
    assert!(d.findings.is_empty() && d.warnings.is_empty() && d.audit_annotations.is_empty());
    assert_eq!(d.message, None);
}

#[test]
fn an_undecodable_object_is_denied_in_enforce_and_warned_in_audit_in_both_scopes() {
    let obj = undecodable("shop", "spec.template: invalid type: integer, expected struct");
    for scope in [Scope::Mutate, Scope::Validate, Scope::All] {
        let d = review_as(&Change::create(&obj), &Policy::default(), scope);
        assert!(!d.allowed);
        assert_eq!(d.skipped, None);
        assert_eq!(
            d.message.as_deref(),
            Some("dbhook cannot decode Rollout shop/web: spec.template: invalid type: integer, expected struct")
        );
        assert!(d.warnings.is_empty() && d.findings.is_empty(), "{:?}", d.warnings);

        let d = review_as(&Change::create(&obj), &Policy::from_yaml("mode: audit").unwrap(), scope);
        assert!(d.allowed);
        assert_eq!(d.message, None);
        assert_eq!(
            d.warnings,
            [
                "dbhook: audit: dbhook cannot decode Rollout shop/web: spec.template: invalid type: integer, expected struct"
            ]
        );
    }
}

#[test]
fn an_undecodable_object_is_named_without_a_namespace_when_it_has_none_and_its_warning_is_bounded() {
    let long = "x".repeat(400);
    let obj = undecodable("", &long);
    let d = review_as(&Change::create(&obj), &Policy::default(), Scope::Validate);
    assert_eq!(d.message, Some(format!("dbhook cannot decode Rollout web: {long}")));
    let d = review_as(
        &Change::create(&obj),
        &Policy::from_yaml("mode: audit").unwrap(),
        Scope::Validate,
    );
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].chars().count(), MAX_WARNING_CHARS);
    assert!(d.warnings[0].starts_with("dbhook: audit: dbhook cannot decode Rollout web: xxx"));
}

#[test]
fn an_undecodable_object_being_deleted_or_losing_finalizers_is_let_go() {
    let obj = undecodable("shop", "bad");
    let update = || Change::state(&obj, Operation::Update);
    assert_untouched(
        &review_as(&update().deleting(true), &Policy::default(), Scope::Validate),
        Skipped::Terminating,
    );
    assert_untouched(
        &review_as(
            &update().only_removes_finalizers(true),
            &Policy::default(),
            Scope::Validate,
        ),
        Skipped::Terminating,
    );
}

#[test]
fn deletes_subresources_and_excluded_namespaces_are_not_reviewed_even_when_undecodable() {
    let policy = Policy::from_yaml("excludeNamespaces: [kube-system]").unwrap();
    let bad = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let readable = object(&bad);
    let excluded = object(&bad.replace("namespace: shop", "namespace: kube-system"));
    let unreadable = undecodable("shop", "bad");
    for obj in [&readable, &unreadable] {
        for op in [Operation::Delete, Operation::Connect] {
            assert_untouched(
                &review_as(&Change::state(obj, op), &policy, Scope::All),
                Skipped::Operation,
            );
        }
        let status = Change::create(obj).subresource(true);
        assert_untouched(&review_as(&status, &policy, Scope::All), Skipped::Subresource);
        // The request names an excluded namespace though the object names another.
        let elsewhere = Change::create(obj).request_namespace("kube-system");
        assert_untouched(&review_as(&elsewhere, &policy, Scope::All), Skipped::ExcludedNamespace);
        // A namespace that is not excluded changes nothing.
        let same = Change::create(obj).request_namespace("shop");
        assert!(!review_as(&same, &policy, Scope::All).allowed);
    }
    assert_untouched(
        &review_as(&Change::create(&excluded), &policy, Scope::All),
        Skipped::ExcludedNamespace,
    );
    assert!(!review_as(&Change::create(&readable), &policy, Scope::All).allowed);
}

#[test]
fn a_readable_object_is_judged_by_its_own_metadata_not_by_the_raw_deletion_flag() {
    // `deleting` speaks for objects the model could not read; a readable one says itself.
    let mut obj = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let flagged = review_as(&Change::create(&obj).deleting(true), &Policy::default(), Scope::All);
    assert_eq!(flagged.skipped, None);
    assert!(!flagged.allowed);
    obj.meta.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    assert_untouched(
        &review_as(&Change::create(&obj), &Policy::default(), Scope::All),
        Skipped::Terminating,
    );
}

#[test]
fn the_mutate_scope_patches_as_the_full_review_does_and_reports_no_findings() {
    let obj = object(&rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{}",
        PLAINTEXT.replace("DB_URL", "OTHER").as_str(),
    ));
    let mutate = review_as(&Change::create(&obj), &Policy::default(), Scope::Mutate);
    let all = review_as(&Change::create(&obj), &Policy::default(), Scope::All);
    assert!(!mutate.patch.is_empty());
    assert_eq!(mutate.patch, all.patch);
    assert_eq!(mutate.injected, ["web"]);
    assert!(mutate.allowed && mutate.findings.is_empty() && mutate.message.is_none());
    assert!(
        !all.findings.is_empty() && !all.allowed,
        "the full review judges the same object"
    );
}

#[test]
fn unusable_annotations_are_config_errors_of_the_mutation_and_findings_of_the_validation() {
    let obj = object(&rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{dbhook.io/env-name: db-url}",
        "        - name: web\n          image: ghcr.io/acme/web:sha-1a2b3c4\n",
    ));
    let d = review_as(&Change::create(&obj), &Policy::default(), Scope::Mutate);
    assert!(d.planned_patch.is_empty());
    assert_eq!(d.config_errors.len(), 1, "{:?}", d.config_errors);
    assert!(
        d.config_errors[0].starts_with("annotation dbhook.io/env-name: \"db-url\""),
        "{:?}",
        d.config_errors
    );
    assert!(d.findings.is_empty());
    let d = review_as(&Change::create(&obj), &Policy::default(), Scope::Validate);
    let rules: Vec<&str> = d.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["injection-config"]);
}

#[test]
fn an_update_judges_the_old_object_with_its_own_injection_settings() {
    // The new object reads OTHER and sets it wrongly; the old one read DB_URL, so its OTHER was
    // nobody's business: the finding is new on UPDATE, and denies.
    let policy = Policy::from_yaml("rules: {db-url-source: deny}").unwrap();
    let pod = "        - name: web\n          image: ghcr.io/acme/web:sha-1a2b3c4\n          env: [{name: OTHER, valueFrom: {secretKeyRef: {name: elsewhere, key: uri}}}]\n";
    let old = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", pod));
    let new = object(&rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{dbhook.io/env-name: OTHER}",
        pod,
    ));
    let d = review_as(&Change::update(&new, &old), &policy, Scope::Validate);
    let found: Vec<(&str, bool)> = d.findings.iter().map(|f| (f.rule, f.pre_existing)).collect();
    assert_eq!(found, [("db-url-source", false)]);
    assert!(!d.allowed);
    // Against an old object with the same settings the finding is pre-existing.
    let d = review_as(&Change::update(&new, &new), &policy, Scope::Validate);
    let found: Vec<(&str, bool)> = d.findings.iter().map(|f| (f.rule, f.pre_existing)).collect();
    assert_eq!(found, [("db-url-source", true)]);
    assert!(d.allowed);
}
