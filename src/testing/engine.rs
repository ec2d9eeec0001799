use kube::core::admission::Operation;

use super::*;
use crate::policy::Policy;
use crate::testing::{now, object, rollout};
use crate::view::{EmptyView, ManifestView};

const PLAINTEXT: &str = "        - name: web\n          image: ghcr.io/acme/web:latest\n          env: [{name: DB_URL, value: 'postgres://app:s3cret@db/app'}]\n";
const CLEAN: &str = "        - name: web\n          image: ghcr.io/acme/web:sha-1a2b3c4\n";

fn run(yaml: &str, policy: &Policy, scope: Scope) -> Decision {
    review_scoped(
        &Change::state(&object(yaml), Operation::Create),
        &EmptyView,
        policy,
        now(),
        scope,
    )
}

#[test]
fn enforce_denies_with_every_deny_finding_in_the_message_and_warns_the_rest() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let d = run(&yaml, &Policy::default(), Scope::Validate);
    assert!(!d.allowed);
    // One deny finding, so the message holds exactly one reason (several: the test below).
    assert_eq!(d.denies(), 1, "{:?}", d.findings);
    let msg = d.message.as_deref().unwrap();
    assert!(
        msg.starts_with("dbhook denied Rollout shop/web: [db-url-plaintext] container web env DB_URL"),
        "{msg}"
    );
    assert_eq!(msg.matches("; [").count(), 0, "{msg}");
    assert!(!msg.contains("s3cret"), "the password never appears: {msg}");
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(d.warnings[0].starts_with("dbhook: [image-tag-pinned] container web image ghcr.io/acme/web:latest"));
    assert!(d.warnings[1].starts_with("dbhook: [db-url-source] container web sets DB_URL from a literal value"));
    // Every finding with its configured action, denials first, in enforce mode too.
    let violations: serde_json::Value = serde_json::from_str(&d.audit_annotations["violations"]).unwrap();
    let listed: Vec<(&str, &str)> = violations
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["rule"].as_str().unwrap(), v["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("db-url-plaintext", "deny"),
            ("image-tag-pinned", "warn"),
            ("db-url-source", "warn")
        ]
    );
    assert!(!d.audit_annotations["violations"].contains("s3cret"));
}

#[test]
fn several_deny_findings_are_joined_into_one_message_in_rule_order() {
    let yaml = rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{dbhook.io/env-name: 'db-url'}",
        PLAINTEXT,
    );
    let d = run(&yaml, &Policy::default(), Scope::Validate);
    assert_eq!(d.denies(), 2, "{:?}", d.findings);
    assert_eq!(d.message.as_deref(), Some(MULTI_DENIAL));
}

/// The denial of a Rollout with a bad env-name annotation and a plaintext credential: every
/// reason as `[<rule>] <message> (<short evidence>)`, joined by `; `, in catalog order. The
/// server test of the documented format reads the same text.
const MULTI_DENIAL: &str = include_str!("../../tests/data/denials/env-name-and-plaintext.txt");

#[test]
fn an_object_named_by_generate_name_is_shown_by_its_prefix() {
    let yaml =
        rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT).replace("  name: web\n", "  generateName: web-\n");
    let d = run(&yaml, &Policy::default(), Scope::Validate);
    let msg = d.message.as_deref().unwrap();
    assert!(
        msg.starts_with("dbhook denied Rollout shop/web-*: [db-url-plaintext]"),
        "{msg}"
    );
}

#[test]
fn audit_never_denies_and_reports_would_be_denials() {
    let policy = Policy::from_yaml("mode: audit").unwrap();
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let d = run(&yaml, &policy, Scope::Validate);
    assert!(d.allowed && d.message.is_none());
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: audit: would deny: [db-url-plaintext] "))
    );
    let violations: serde_json::Value = serde_json::from_str(&d.audit_annotations["violations"]).unwrap();
    assert_eq!(violations[0]["rule"], "db-url-plaintext");
    assert_eq!(violations[0]["action"], "deny");
    assert!(violations[0]["message"].as_str().unwrap().contains("container web"));
}

#[test]
fn the_violations_annotation_is_bounded_and_counts_what_it_leaves_out() {
    let policy = Policy::from_yaml("mode: audit").unwrap();
    let long = "x".repeat(2000);
    let containers: String = (0..40)
        .map(|i| {
            format!(
                "        - name: c{i}{long}\n          image: ghcr.io/acme/web:sha-1\n          \
                 env: [{{name: DB_URL, value: 'postgres://app:s3cret@db/app'}}]\n"
            )
        })
        .collect();
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", &containers);
    let d = run(&yaml, &policy, Scope::Validate);
    let denials = d.findings.iter().filter(|f| f.action == Action::Deny).count();
    assert!(denials > MAX_ANNOTATED_FINDINGS, "{denials} would-be denials");
    let listed = d.findings.len();
    let violations: serde_json::Value = serde_json::from_str(&d.audit_annotations["violations"]).unwrap();
    let list = violations.as_array().unwrap();
    assert_eq!(list.len(), MAX_ANNOTATED_FINDINGS + 1);
    assert_eq!(
        list[MAX_ANNOTATED_FINDINGS],
        serde_json::json!({"omitted": listed - MAX_ANNOTATED_FINDINGS})
    );
    // Denials come first: the bound leaves out warnings before any of them.
    for v in &list[..MAX_ANNOTATED_FINDINGS] {
        assert_eq!(v["rule"], "db-url-plaintext");
        let message = v["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), MAX_ANNOTATED_MESSAGE_CHARS, "cut: {message}");
        assert!(message.ends_with('…'));
    }
    assert!(!d.audit_annotations["violations"].contains("s3cret"));
}

#[test]
fn audit_mutation_returns_no_patch_but_a_warning_and_the_would_patch_annotation() {
    let policy = Policy::from_yaml("mode: audit").unwrap();
    let containers = "        - {name: web, image: 'x:1'}\n        - {name: migrate, image: 'x:1'}\n";
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", containers);
    let d = run(&yaml, &policy, Scope::Mutate);
    assert!(d.allowed && d.patch.is_empty());
    assert_eq!(d.planned_patch.len(), 2);
    assert!(
        d.warnings
            .contains(&"dbhook: would inject DB_URL into containers web, migrate".to_string())
    );
    let patch: serde_json::Value = serde_json::from_str(&d.audit_annotations["would-patch"]).unwrap();
    assert_eq!(patch[0]["op"], "add");
    assert_eq!(patch[0]["path"], "/spec/template/spec/containers/0/env");
}

#[test]
fn enforce_mutation_returns_the_patch_and_no_findings() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let d = run(&yaml, &Policy::default(), Scope::Mutate);
    // DB_URL already set (badly): mutation leaves it and warns; judging it is /validate's job.
    assert!(d.allowed && d.patch.is_empty() && d.findings.is_empty());
    let clean = rollout("{dbhook.io/cluster: shop-pg}", "{}", CLEAN);
    let d = run(&clean, &Policy::default(), Scope::Mutate);
    assert_eq!(d.patch.len(), 1);
    assert!(d.warnings.is_empty());
}

#[test]
fn namespace_label_switches_mode_when_the_policy_allows_it() {
    let ns = object("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {dbhook.io/mode: audit}}\n");
    let view = ManifestView::new(vec![std::sync::Arc::new(ns)], true);
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let obj = object(&yaml);
    let d = review_scoped(
        &Change::state(&obj, Operation::Create),
        &view,
        &Policy::default(),
        now(),
        Scope::Validate,
    );
    assert_eq!(d.mode, Mode::Audit);
    assert!(d.allowed);
    let locked = Policy::from_yaml("allowNamespaceMode: false").unwrap();
    let d = review_scoped(
        &Change::state(&obj, Operation::Create),
        &view,
        &locked,
        now(),
        Scope::Validate,
    );
    assert_eq!(d.mode, Mode::Enforce);
    assert!(!d.allowed);
}

#[test]
fn exemptions_are_honoured_only_where_the_policy_allows_them() {
    let ann = "{dbhook.io/exempt: 'db-url-plaintext, image-tag-pinned, no-such-rule'}";
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", ann, PLAINTEXT);
    let strict = run(&yaml, &Policy::default(), Scope::Validate);
    assert!(!strict.allowed, "default policy allows no exemption");
    assert!(
        strict
            .warnings
            .iter()
            .any(|w| w.contains("exemption from [db-url-plaintext] ignored"))
    );
    assert!(
        strict
            .warnings
            .iter()
            .any(|w| w.contains("unknown rule \"no-such-rule\""))
    );

    let lenient = Policy::from_yaml("rules:\n  db-url-plaintext: {allowExemption: true}\n").unwrap();
    let d = run(&yaml, &lenient, Scope::Validate);
    assert!(d.allowed);
    assert!(d.findings.iter().all(|f| f.rule != "db-url-plaintext"));
    assert!(
        d.findings.iter().any(|f| f.rule == "image-tag-pinned"),
        "not exempted: still reported"
    );
}

#[test]
fn rules_set_to_off_do_not_report_and_warn_rules_can_be_raised_to_deny() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let p =
        Policy::from_yaml("rules:\n  db-url-plaintext: off\n  db-url-source: off\n  image-tag-pinned: deny\n").unwrap();
    let d = run(&yaml, &p, Scope::Validate);
    assert_eq!(d.findings.len(), 1);
    assert_eq!(
        (d.findings[0].rule, d.findings[0].action),
        ("image-tag-pinned", Action::Deny)
    );
    assert!(!d.allowed);
}

#[test]
fn invalid_injection_annotations_deny_in_enforce_and_warn_in_audit() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{dbhook.io/env-name: 'db-url'}", CLEAN);
    let d = run(&yaml, &Policy::default(), Scope::All);
    assert!(!d.allowed && d.patch.is_empty() && d.planned_patch.is_empty());
    assert!(
        d.message
            .unwrap()
            .contains("[injection-config] annotation dbhook.io/env-name")
    );
    let d = run(&yaml, &Policy::from_yaml("mode: audit").unwrap(), Scope::All);
    assert!(d.allowed);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: audit: would deny: [injection-config]"))
    );
}

#[test]
fn excluded_namespaces_deletes_and_unlabelled_objects_are_left_alone() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let p = Policy::from_yaml("excludeNamespaces: [shop]").unwrap();
    let d = run(&yaml, &p, Scope::All);
    assert!(d.allowed && d.findings.is_empty() && d.patch.is_empty());
    let obj = object(&yaml);
    let d = review(
        &Change::state(&obj, Operation::Delete),
        &EmptyView,
        &Policy::default(),
        now(),
    );
    assert!(d.allowed && d.findings.is_empty());
    let unlabelled = rollout("{app: web}", "{}", PLAINTEXT);
    let d = run(&unlabelled, &Policy::default(), Scope::All);
    assert!(d.allowed && d.findings.is_empty() && d.patch.is_empty());
}

#[test]
fn warnings_are_capped_at_256_characters() {
    let long = "x".repeat(400);
    let c = format!("        - name: web\n          image: ghcr.io/acme/{long}:latest\n");
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", &c);
    let d = run(&yaml, &Policy::default(), Scope::Validate);
    assert!(!d.warnings.is_empty());
    assert!(d.warnings.iter().all(|w| w.chars().count() <= MAX_WARNING_CHARS));
    assert!(d.warnings[0].ends_with('…'));
}

#[test]
fn objects_being_deleted_are_neither_judged_nor_patched() {
    let yaml = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT).replace(
        "  name: web\n",
        "  name: web\n  deletionTimestamp: '2026-11-23T08:00:00Z'\n  finalizers: [example.com/cleanup]\n",
    );
    let obj = object(&yaml);
    assert!(obj.meta.deletion_timestamp.is_some());
    let d = review(
        &Change::state(&obj, Operation::Update),
        &EmptyView,
        &Policy::default(),
        now(),
    );
    assert!(d.allowed && d.findings.is_empty() && d.patch.is_empty());
}

const BACKED_UP_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  plugins:\n    - name: barman-cloud.cloudnative-pg.io\n      isWALArchiver: true\n      parameters: {barmanObjectName: shop-backups}\n";

fn at_admission(yaml: &str) -> (Object, ManifestView) {
    let objs = crate::testing::objects(yaml);
    let obj = (*objs[0]).clone();
    (obj, ManifestView::at_admission(objs))
}

#[test]
fn a_new_cluster_without_scheduled_backup_is_warned_and_an_update_is_denied() {
    let (obj, view) = at_admission(BACKED_UP_CLUSTER);
    let policy = Policy::default();
    let create = review_scoped(
        &Change::state(&obj, Operation::Create),
        &view,
        &policy,
        now(),
        Scope::Validate,
    );
    assert!(create.allowed, "{:?}", create.message);
    let finding = create
        .findings
        .iter()
        .find(|f| f.rule == "scheduled-backup-present")
        .unwrap();
    assert_eq!(finding.action, Action::Warn);
    assert!(
        create
            .warnings
            .iter()
            .any(|w| w.starts_with("dbhook: [scheduled-backup-present] no ScheduledBackup targets this Cluster"))
    );
    let update = review_scoped(
        &Change::state(&obj, Operation::Update),
        &view,
        &policy,
        now(),
        Scope::Validate,
    );
    assert!(!update.allowed);
    assert!(
        update
            .message
            .unwrap()
            .starts_with("dbhook denied Cluster shop/shop-pg: [scheduled-backup-present] no ScheduledBackup")
    );
}

#[test]
fn an_allowed_exemption_skips_a_cnpg_rule_and_a_disallowed_one_is_reported_as_ignored() {
    let exempt = BACKED_UP_CLUSTER.replace(
        "namespace: shop}",
        "namespace: shop, annotations: {dbhook.io/exempt: scheduled-backup-present}}",
    );
    let (obj, view) = at_admission(&exempt);
    let strict = review_scoped(
        &Change::state(&obj, Operation::Update),
        &view,
        &Policy::default(),
        now(),
        Scope::Validate,
    );
    assert!(!strict.allowed);
    assert!(
        strict.warnings.contains(
            &"dbhook: exemption from [scheduled-backup-present] ignored: the policy does not allow exempting this rule (allowExemption)"
                .to_string()
        )
    );
    let lenient =
        Policy::from_yaml("rules:\n  scheduled-backup-present: {action: deny, allowExemption: true}\n").unwrap();
    let d = review_scoped(
        &Change::state(&obj, Operation::Update),
        &view,
        &lenient,
        now(),
        Scope::Validate,
    );
    assert!(d.allowed && d.findings.iter().all(|f| f.rule != "scheduled-backup-present"));
    assert!(d.warnings.iter().all(|w| !w.contains("exemption")), "{:?}", d.warnings);
    assert_eq!(d.exempted.len(), 1);
    let trail: serde_json::Value = serde_json::from_str(&d.audit_annotations["exempted"]).unwrap();
    assert_eq!(trail[0]["rule"], "scheduled-backup-present");
    assert_eq!(trail[0]["action"], "deny");
    // Audit mode: the exempted rule is not even a would-be denial.
    let audit = Policy::from_yaml("mode: audit\nrules:\n  scheduled-backup-present: {allowExemption: true}\n").unwrap();
    let d = review_scoped(
        &Change::state(&obj, Operation::Update),
        &view,
        &audit,
        now(),
        Scope::Validate,
    );
    assert!(
        d.allowed && !d.audit_annotations["violations"].contains("scheduled-backup-present"),
        "{:?}",
        d.audit_annotations
    );
}

/// `yaml` with `extra` inserted under `metadata:` (after the name line).
fn with_meta(yaml: &str, extra: &str) -> String {
    yaml.replace("  name: web\n", &format!("  name: web\n{extra}"))
}

fn validate(change: &Change<'_>, policy: &Policy) -> Decision {
    review_scoped(change, &EmptyView, policy, now(), Scope::Validate)
}

#[test]
fn an_update_that_keeps_a_violation_warns_that_it_is_pre_existing_in_both_modes() {
    let old = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let new = object(&rollout(
        "{dbhook.io/cluster: shop-pg, app.kubernetes.io/version: '2'}",
        "{}",
        PLAINTEXT,
    ));
    for policy in [Policy::default(), Policy::from_yaml("mode: audit").unwrap()] {
        let d = validate(&Change::update(&new, &old), &policy);
        assert!(d.allowed && d.message.is_none(), "{:?}", d.message);
        let plaintext = d.findings.iter().find(|f| f.rule == "db-url-plaintext").unwrap();
        assert!(plaintext.pre_existing && plaintext.action == Action::Deny);
        assert_eq!(d.denies(), 0);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.starts_with("dbhook: [db-url-plaintext] pre-existing: container web env DB_URL")),
            "{:?}",
            d.warnings
        );
        assert!(d.warnings.iter().all(|w| !w.contains("would deny")), "{:?}", d.warnings);
        let violations: serde_json::Value = serde_json::from_str(&d.audit_annotations["violations"]).unwrap();
        assert_eq!(violations[0]["rule"], "db-url-plaintext");
        assert_eq!(violations[0]["action"], "deny", "the configured action");
        assert_eq!(violations[0]["state"], "pre-existing");
        assert!(violations[1].get("state").is_none(), "{violations}");
    }
    // The same object judged as a CREATE, or as a state, is denied.
    assert!(!validate(&Change::create(&new), &Policy::default()).allowed);
    assert!(!validate(&Change::state(&new, Operation::Update), &Policy::default()).allowed);
}

#[test]
fn a_different_credential_at_the_same_place_is_a_new_violation() {
    let old = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let new = object(&rollout(
        "{dbhook.io/cluster: shop-pg}",
        "{}",
        &PLAINTEXT.replace("s3cret", "0ther"),
    ));
    let d = validate(&Change::update(&new, &old), &Policy::default());
    assert!(!d.allowed);
    let message = d.message.unwrap();
    assert!(
        message.starts_with("dbhook denied Rollout shop/web: [db-url-plaintext] "),
        "{message}"
    );
    assert!(!message.contains("0ther") && !message.contains("s3cret"), "{message}");
    // The key holds no credential either.
    let mut found = Vec::new();
    let policy = Policy::default();
    let ctx = Ctx::new(&new, &EmptyView, &policy, now(), &Operation::Update);
    crate::rules::credentials::plaintext(&new, &ctx, &mut found);
    let judged = found[0].judged.as_deref().unwrap();
    assert!(!judged.contains("0ther") && !judged.contains("postgres"), "{judged}");
}

#[test]
fn a_violation_added_next_to_an_existing_one_is_denied_alone() {
    let two = format!(
        "{PLAINTEXT}        - name: worker\n          image: ghcr.io/acme/web:sha-1a2b3c4\n          env: [{{name: DB_URL, value: 'postgres://app:s3cret@db/app'}}]\n"
    );
    let old = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let new = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", &two));
    let d = validate(&Change::update(&new, &old), &Policy::default());
    let message = d.message.unwrap();
    assert!(message.contains("container worker env DB_URL"), "{message}");
    assert!(
        !message.contains("container web env"),
        "the old one is not a reason: {message}"
    );
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: [db-url-plaintext] pre-existing: container web env DB_URL"))
    );
}

#[test]
fn a_rule_without_allow_existing_violations_judges_every_update_strictly() {
    let old = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let new = object(&rollout("{dbhook.io/cluster: shop-pg, team: a}", "{}", PLAINTEXT));
    let strict = Policy::from_yaml("rules:\n  db-url-plaintext: {allowExistingViolations: false}\n").unwrap();
    let d = validate(&Change::update(&new, &old), &strict);
    assert!(!d.allowed);
    assert!(d.findings.iter().all(|f| !f.pre_existing));
    assert!(
        d.warnings.iter().all(|w| !w.contains("pre-existing")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn updates_of_terminating_objects_and_finalizer_removals_are_never_denied() {
    let strict = Policy::from_yaml("rules:\n  db-url-plaintext: {allowExistingViolations: false}\n").unwrap();
    let plain = rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT);
    let finalized = object(&with_meta(
        &plain,
        "  finalizers: [argocd.argoproj.io/hook-finalizer]\n",
    ));
    let released = object(&plain);
    let d = validate(
        &Change::update(&released, &finalized).only_removes_finalizers(true),
        &strict,
    );
    assert!(d.allowed, "{:?}", d.message);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: [db-url-plaintext] pre-existing: "))
    );
    let deleting = object(&with_meta(&plain, "  deletionTimestamp: '2026-11-23T08:00:00Z'\n"));
    for change in [
        Change::update(&released, &deleting),
        Change::update(&deleting, &released),
    ] {
        let d = review(&change, &EmptyView, &strict, now());
        assert!(d.allowed && d.findings.is_empty() && d.patch.is_empty());
    }
}

#[test]
fn an_unusable_old_object_is_named_and_the_update_judged_without_it() {
    let old_reason = "oldObject is a v1 ConfigMap, not a argoproj.io/v1alpha1 Rollout".to_string();
    let new = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let change = Change::state(&new, Operation::Update).with_old(Old::Unusable(old_reason.clone()));
    let d = validate(&change, &Policy::default());
    assert!(!d.allowed);
    assert!(d.warnings.contains(&format!(
        "dbhook: {old_reason}: judged without it, so no finding counts as pre-existing"
    )));
}

const LOCKSTEP: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  namespace: shop\n  labels: {dbhook.io/cluster: shop-pg}\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - {name: migrate, image: 'ghcr.io/acme/web:sha-1111111'}\n";

fn lockstep_rollout(tag: &str, labels: &str) -> Object {
    object(&rollout(
        labels,
        "{}",
        &format!("        - name: web\n          image: ghcr.io/acme/web:{tag}\n"),
    ))
}

#[test]
fn a_dry_run_only_warns_about_lockstep_and_an_unchanged_mismatch_is_pre_existing() {
    let (_, view) = at_admission(LOCKSTEP);
    let policy = Policy::default();
    let run = |change: &Change<'_>| review_scoped(change, &view, &policy, now(), Scope::Validate);
    let labels = "{dbhook.io/cluster: shop-pg}";
    let wrong = lockstep_rollout("sha-2222222", labels);
    let denied = run(&Change::create(&wrong));
    assert!(!denied.allowed, "the view pairs the Job: {:?}", denied.findings);
    let dry = run(&Change::create(&wrong).dry_run(true));
    assert!(dry.allowed, "{:?}", dry.message);
    assert!(
        dry.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: [migration-image-lockstep] image ghcr.io/acme/web")),
        "{:?}",
        dry.warnings
    );
    // A controller touching only metadata: the same app image against the same Job image.
    let touched = lockstep_rollout(
        "sha-2222222",
        "{dbhook.io/cluster: shop-pg, rollouts-pod-template-hash: x}",
    );
    assert!(run(&Change::update(&touched, &wrong)).allowed);
    // Moving from one wrong image to another is a new mismatch.
    let other = lockstep_rollout("sha-3333333", labels);
    assert!(!run(&Change::update(&other, &wrong)).allowed);
    // And fixing it leaves nothing to report.
    let fixed = lockstep_rollout("sha-1111111", labels);
    let d = run(&Change::update(&fixed, &wrong));
    assert!(d.allowed && d.findings.iter().all(|f| f.rule != "migration-image-lockstep"));
}

#[test]
fn a_cluster_update_removing_wal_archiving_is_denied_and_a_label_change_is_not() {
    let sb = "---\napiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: shop-pg-daily, namespace: shop}\nspec: {schedule: '0 0 2 * * *', cluster: {name: shop-pg}, method: plugin, pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}}\n";
    let (old, view) = at_admission(&format!("{BACKED_UP_CLUSTER}{sb}"));
    let run = |change: &Change<'_>| review_scoped(change, &view, &Policy::default(), now(), Scope::Validate);
    let stripped = object(&BACKED_UP_CLUSTER.replace("isWALArchiver: true", "isWALArchiver: false"));
    let d = run(&Change::update(&stripped, &old));
    assert!(!d.allowed);
    assert!(d.message.unwrap().contains("[backup-configured]"));
    // A Cluster that never archived: a label change is no reason to block it.
    let relabelled = object(
        &BACKED_UP_CLUSTER
            .replace("isWALArchiver: true", "isWALArchiver: false")
            .replace("namespace: shop}", "namespace: shop, labels: {team: db}}"),
    );
    let d = run(&Change::update(&relabelled, &stripped));
    assert!(d.allowed, "{:?}", d.message);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("dbhook: [backup-configured] pre-existing: ")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_create_that_carries_an_old_object_is_judged_as_a_create() {
    // kube-apiserver sends no oldObject with a CREATE; a client that does cannot launder a
    // violation through the ratchet.
    let obj = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let create = Change::state(&obj, Operation::Create).with_old(Old::Object(&obj));
    let d = validate(&create, &Policy::default());
    assert!(!d.allowed, "{:?}", d.findings);
    assert!(d.findings.iter().all(|f| !f.pre_existing), "{:?}", d.findings);
    // The same pair as an UPDATE is ratcheted: the test above can tell the two apart.
    assert!(validate(&Change::update(&obj, &obj), &Policy::default()).allowed);
}

/// A view that fails the test when asked for a namespace's mode label.
struct NoNamespaceLookups;

impl View for NoNamespaceLookups {
    fn origin(&self) -> crate::view::Origin {
        EmptyView.origin()
    }
    fn cluster(&self, ns: &str, name: &str) -> crate::view::Lookup<std::sync::Arc<Object>> {
        EmptyView.cluster(ns, name)
    }
    fn object_store(&self, ns: &str, name: &str) -> crate::view::Lookup<std::sync::Arc<Object>> {
        EmptyView.object_store(ns, name)
    }
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> crate::view::Listing {
        EmptyView.scheduled_backups_for(ns, cluster)
    }
    fn migration_jobs_for(&self, app: &Object) -> crate::view::Listing {
        EmptyView.migration_jobs_for(app)
    }
    fn app_workloads_for(&self, job: &Object) -> crate::view::Listing {
        EmptyView.app_workloads_for(job)
    }
    fn namespace_mode_label(&self, ns: &str) -> Option<String> {
        panic!("namespace {ns:?} looked up")
    }
}

#[test]
fn the_namespace_is_not_looked_up_when_its_label_cannot_change_the_mode() {
    let locked = Policy::from_yaml("allowNamespaceMode: false\nmode: audit\n").unwrap();
    assert_eq!(mode_for("shop", &NoNamespaceLookups, &locked), Mode::Audit);
    let open = Policy::default();
    assert_eq!(mode_for("", &NoNamespaceLookups, &open), Mode::Enforce);
    let obj = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let d = review_scoped(
        &Change::state(&obj, Operation::Create),
        &NoNamespaceLookups,
        &locked,
        now(),
        Scope::Validate,
    );
    assert_eq!(d.mode, Mode::Audit);
}

#[test]
fn a_finding_without_evidence_of_its_own_shows_its_message_and_the_rule_summary() {
    let cluster = object(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  instances: 1\n  plugins:\n    - {name: barman-cloud.cloudnative-pg.io, isWALArchiver: true}\n",
    );
    let d = validate(&Change::state(&cluster, Operation::Create), &Policy::default());
    let f = d.findings.iter().find(|f| f.rule == "backup-store-exists").unwrap();
    assert!(
        f.message.contains("has no parameters.barmanObjectName"),
        "{}",
        f.message
    );
    assert_eq!(f.evidence.observed, f.message);
    assert_eq!(
        f.evidence.expected,
        catalog::find("backup-store-exists").unwrap().summary
    );
    assert!(!f.specific_evidence);
    assert_eq!(denial_reason(f), format!("[backup-store-exists] {}", f.message));
    // One with evidence of its own has the short form.
    let plaintext = object(&rollout("{dbhook.io/cluster: shop-pg}", "{}", PLAINTEXT));
    let d = validate(&Change::state(&plaintext, Operation::Create), &Policy::default());
    let f = d.findings.iter().find(|f| f.rule == "db-url-plaintext").unwrap();
    assert!(f.specific_evidence);
    assert_eq!(
        f.evidence.observed,
        "container web env DB_URL: value (a literal connection URI with a password)"
    );
}
