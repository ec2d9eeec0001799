use super::catalog::{self, CATALOG};
use super::*;

fn err(yaml: &str) -> String {
    Policy::from_yaml(yaml)
        .expect_err("policy should be rejected")
        .to_string()
}

#[test]
fn embedded_default_parses_and_matches_the_catalog_defaults() {
    let parsed = Policy::from_yaml(DEFAULT_POLICY_YAML).expect("default policy parses");
    let built_in = Policy::default();
    for rule in CATALOG {
        assert_eq!(parsed.setting(rule.id), built_in.setting(rule.id), "{}", rule.id);
        assert_eq!(parsed.action(rule.id), rule.default_action, "{}", rule.id);
        assert!(
            DEFAULT_POLICY_YAML.contains(&format!("  {}:", rule.id)),
            "{} listed",
            rule.id
        );
    }
    assert_eq!(parsed.mode, Mode::Enforce);
    assert!(parsed.allow_namespace_mode);
    assert_eq!(parsed.injection, Injection::default());
    assert_eq!(parsed.exclude_namespaces, vec!["kube-system"]);
    assert_eq!(parsed.params.backup_retention.min_days, 7);
    assert_eq!(parsed.params.scheduled_backup_schedule.max_interval_hours, 24);
    assert_eq!(parsed.params.migration_image_lockstep.lockstep_memory_minutes, 60);
    assert_eq!(parsed.params.image_tag_pinned.forbidden_tags, vec!["latest"]);
}

#[test]
fn the_spec_example_policy_is_accepted() {
    let p = Policy::from_yaml(
        r#"
apiVersion: dbhook.io/v1alpha1
kind: Policy
mode: enforce
allowNamespaceMode: true
injection: {envName: DB_URL, secretKey: uri}
excludeNamespaces: [kube-system]
rules:
  backup-retention: {action: deny, minDays: 7}
  image-tag-pinned: {action: warn, forbiddenTags: [latest], tagPattern: "^sha-[0-9a-f]{7,40}$"}
  cluster-exists: {action: off}
  scheduled-backup-present: {action: deny, allowExemption: true}
"#,
    )
    .expect("the README example parses");
    assert_eq!(p.action(catalog::CLUSTER_EXISTS), Action::Off);
    assert!(p.setting(catalog::SCHEDULED_BACKUP_PRESENT).allow_exemption);
    assert!(!p.setting(catalog::BACKUP_RETENTION).allow_exemption);
    let re = p.params.image_tag_pinned.tag_pattern.as_ref().unwrap();
    assert!(re.is_match("sha-1a2b3c4") && !re.is_match("v1.2.3"));
    // Rules the file does not mention keep their defaults.
    assert_eq!(p.action(catalog::DB_URL_PLAINTEXT), Action::Deny);
}

#[test]
fn errors_name_the_offending_key() {
    let cases = [
        ("mode: enforce\nmodee: audit\n", "modee"),
        ("mode: permissive\n", "mode"),
        ("injection: {envName: DB_URL, secretkey: uri}\n", "secretkey"),
        ("injection: {envName: 'DB-URL'}\n", "injection.envName"),
        ("injection: {secretKey: ''}\n", "injection.secretKey"),
        ("rules:\n  backup-retenton: {action: deny}\n", "rules.backup-retenton"),
        (
            "rules:\n  backup-retention: {action: block}\n",
            "rules.backup-retention.action",
        ),
        (
            "rules:\n  backup-retention: {minDays: seven}\n",
            "rules.backup-retention.minDays",
        ),
        (
            "rules:\n  backup-retention: {minDays: 7, maxdays: 30}\n",
            "rules.backup-retention.maxdays",
        ),
        (
            "rules:\n  backup-retention: {minDays: 30, maxDays: 7}\n",
            "rules.backup-retention.maxDays",
        ),
        (
            "rules:\n  image-tag-pinned: {tagPattern: '(['}\n",
            "rules.image-tag-pinned.tagPattern",
        ),
        (
            "rules:\n  cluster-exists: {action: off, minDays: 3}\n",
            "rules.cluster-exists.minDays",
        ),
        (
            "rules:\n  backup-compression: {allowed: [brotli]}\n",
            "rules.backup-compression.allowed",
        ),
        (
            "rules:\n  scheduled-backup-schedule: {maxIntervalHours: 0}\n",
            "rules.scheduled-backup-schedule.maxIntervalHours",
        ),
        (
            "rules:\n  db-url-source: {allowExemption: maybe}\n",
            "rules.db-url-source.allowExemption",
        ),
        (
            "rules:\n  backup-configured: {allowExistingViolations: 1}\n",
            "rules.backup-configured.allowExistingViolations",
        ),
        ("apiVersion: dbhook.io/v2\n", "apiVersion"),
        ("kind: ConfigMap\n", "kind"),
        ("excludeNamespaces: kube-system\n", "excludeNamespaces"),
    ];
    for (yaml, key) in cases {
        let e = err(yaml);
        assert!(e.contains(key), "error for {yaml:?} should name {key}: {e}");
    }
}

#[test]
fn invalid_yaml_and_empty_documents_are_errors() {
    assert!(err("mode: [").contains("not valid YAML"));
    assert!(err("").contains("empty"));
    assert!(err("- a\n- b\n").contains("policy"));
}

#[test]
fn a_rule_can_be_given_as_just_its_action() {
    let p = Policy::from_yaml("rules:\n  image-tag-pinned: deny\n").unwrap();
    assert_eq!(p.action(catalog::IMAGE_TAG_PINNED), Action::Deny);
}

#[test]
fn namespace_label_overrides_mode_only_when_allowed() {
    let allowed = Policy::from_yaml("mode: enforce\nallowNamespaceMode: true\n").unwrap();
    assert_eq!(allowed.mode_for(Some("audit")), Mode::Audit);
    assert_eq!(allowed.mode_for(Some(" enforce ")), Mode::Enforce);
    assert_eq!(allowed.mode_for(Some("bogus")), Mode::Enforce);
    assert_eq!(allowed.mode_for(None), Mode::Enforce);
    let audit = Policy::from_yaml("mode: audit\n").unwrap();
    assert_eq!(audit.mode_for(Some("enforce")), Mode::Enforce);
    let locked = Policy::from_yaml("mode: enforce\nallowNamespaceMode: false\n").unwrap();
    assert_eq!(locked.mode_for(Some("audit")), Mode::Enforce);
}

#[test]
fn top_level_lockstep_memory_is_accepted_and_the_rule_parameter_wins() {
    let top = Policy::from_yaml("lockstepMemoryMinutes: 15\n").unwrap();
    assert_eq!(top.params.migration_image_lockstep.lockstep_memory_minutes, 15);
    let both = Policy::from_yaml(
        "lockstepMemoryMinutes: 15\nrules:\n  migration-image-lockstep: {lockstepMemoryMinutes: 90}\n",
    )
    .unwrap();
    assert_eq!(both.params.migration_image_lockstep.lockstep_memory_minutes, 90);
}

#[test]
fn excluded_namespaces() {
    let p = Policy::from_yaml("excludeNamespaces: [kube-system, monitoring]\n").unwrap();
    assert!(p.is_excluded("monitoring"));
    assert!(!p.is_excluded("shop"));
}

#[test]
fn existing_violations_are_allowed_by_default_and_each_rule_can_be_made_strict() {
    let p = Policy::from_yaml(
        "rules:\n  backup-configured: {allowExistingViolations: false}\n  backup-retention: {minDays: 3, allowExistingViolations: true}\n",
    )
    .unwrap();
    assert!(!p.setting(catalog::BACKUP_CONFIGURED).allow_existing_violations);
    assert_eq!(
        p.action(catalog::BACKUP_CONFIGURED),
        Action::Deny,
        "the action keeps its default"
    );
    assert!(p.setting(catalog::BACKUP_RETENTION).allow_existing_violations);
    assert_eq!(p.params.backup_retention.min_days, 3);
    for rule in CATALOG {
        assert!(
            Policy::default().setting(rule.id).allow_existing_violations,
            "{}",
            rule.id
        );
    }
}

/// Helm and kubectl read values as YAML 1.1, where a bare `off` is the boolean `false`: the
/// policy the chart renders then says `action: false` (or `rule-id: false`), and means off.
#[test]
fn yaml_1_1_false_is_off_as_action_and_as_shorthand() {
    let p = Policy::from_yaml(
        "rules:\n  cluster-exists: {action: false}\n  backup-compression: false\n  image-tag-pinned: \"off\"\n",
    )
    .unwrap();
    assert_eq!(p.action(catalog::CLUSTER_EXISTS), Action::Off);
    assert_eq!(p.action(catalog::BACKUP_COMPRESSION), Action::Off);
    assert_eq!(p.action(catalog::IMAGE_TAG_PINNED), Action::Off);
    // Other rules keep their defaults.
    assert_eq!(p.action(catalog::BACKUP_CONFIGURED), Action::Deny);
}

#[test]
fn yaml_1_1_true_is_not_an_action() {
    let e = err("rules:\n  cluster-exists: {action: true}\n");
    assert!(e.contains("rules.cluster-exists.action") && e.contains("quote"), "{e}");
    let e = err("rules:\n  cluster-exists: true\n");
    assert!(e.contains("rules.cluster-exists"), "{e}");
}

#[test]
fn ignore_repositories_takes_globs_and_names_a_bad_one() {
    let p = Policy::from_yaml(
        "rules:\n  migration-image-lockstep: {ignoreRepositories: ['gcr.io/cloud-sql-connectors/*', '*/istio/proxyv2']}\n",
    )
    .unwrap();
    let globs = &p.params.migration_image_lockstep.ignore_repositories;
    assert_eq!(globs.len(), 2);
    assert!(globs[0].matches("gcr.io/cloud-sql-connectors/cloud-sql-proxy"));
    assert!(
        Policy::default()
            .params
            .migration_image_lockstep
            .ignore_repositories
            .is_empty()
    );
    let err = Policy::from_yaml("rules:\n  migration-image-lockstep: {ignoreRepositories: ['ok/*', 'bad/[x']}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("migration-image-lockstep"), "{err}");
    assert!(err.contains("ignoreRepositories[1]: invalid glob \"bad/[x\""), "{err}");
    let err = Policy::from_yaml("rules:\n  migration-image-lockstep: {ignoreRepositories: 'ok/*'}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ignoreRepositories"), "{err}");
}

#[test]
fn an_unknown_key_is_named_with_its_path_and_what_was_expected_and_a_wrong_shape_is_said_as_such() {
    let e = err("rules:\n  backup-retention: {minDays: 7, maxdays: 30}\n");
    assert!(
        e.contains("rules.backup-retention.maxdays: unknown field `maxdays`, expected `minDays` or `maxDays`"),
        "{e}"
    );
    let e = err("- a\n- b\n");
    assert!(
        e.starts_with("policy: invalid length 2"),
        "the shape, with no key to name: {e}"
    );
}

#[test]
fn retention_bounds_may_be_equal_but_not_inverted() {
    let p = Policy::from_yaml("rules:\n  backup-retention: {minDays: 7, maxDays: 7}\n").unwrap();
    assert_eq!(
        (p.params.backup_retention.min_days, p.params.backup_retention.max_days),
        (7, Some(7))
    );
    assert!(err("rules:\n  backup-retention: {minDays: 7, maxDays: 6}\n").contains("maxDays: 6 is below minDays 7"));
}

#[test]
fn modes_have_the_names_of_the_policy_file_and_the_metrics() {
    for (mode, name) in [(Mode::Enforce, "enforce"), (Mode::Audit, "audit")] {
        assert_eq!(mode.as_str(), name);
        assert_eq!(Mode::parse(name), Some(mode));
    }
}

#[test]
fn a_policy_file_is_read_and_its_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "mode: audit\nexcludeNamespaces: [scratch]\n").unwrap();
    let p = Policy::from_file(&path).unwrap();
    assert_eq!(p.mode, Mode::Audit);
    assert!(p.is_excluded("scratch"));

    let e = Policy::from_file_contents(&path, b"mode: \xff\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: not UTF-8", path.display())), "{e}");
    let e = Policy::from_file_contents(&path, b"mode: sometimes\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&path.display().to_string()) && e.contains("mode"), "{e}");
    let missing = dir.path().join("missing.yaml");
    let e = Policy::from_file(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&missing.display().to_string()), "{e}");
}

#[test]
fn the_uniqueness_check_of_rule_ids_rejects_a_duplicate() {
    assert!(catalog::ids_are_unique(CATALOG));
    assert!(catalog::ids_are_unique(&CATALOG[..1]) && catalog::ids_are_unique(&[]));
    let twice = [CATALOG[0], CATALOG[1], CATALOG[0]];
    assert!(!catalog::ids_are_unique(&twice));
    let adjacent = [CATALOG[2], CATALOG[1], CATALOG[1]];
    assert!(!catalog::ids_are_unique(&adjacent));
}
