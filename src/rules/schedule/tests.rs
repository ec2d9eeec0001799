use super::*;
use crate::policy::Policy;
use crate::testing::{At, run_rule};

fn backup(spec: &str) -> String {
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {{name: shop-pg-daily, namespace: shop}}\nspec:\n{spec}---\n"
    )
}

fn with_schedule(schedule: &str) -> String {
    backup(&format!(
        "  schedule: '{schedule}'\n  cluster: {{name: shop-pg}}\n  method: plugin\n  pluginConfiguration: {{name: barman-cloud.cloudnative-pg.io}}\n"
    ))
}

const PLUGIN_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  plugins:\n    - name: barman-cloud.cloudnative-pg.io\n      isWALArchiver: true\n      parameters: {barmanObjectName: shop-backups}\n---\n";
const IN_TREE_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  backup:\n    retentionPolicy: 30d\n    barmanObjectStore: {destinationPath: 's3://b/p'}\n---\n";
const SNAPSHOT_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  backup:\n    volumeSnapshot: {className: csi-snapclass}\n---\n";
const BARE_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  instances: 1\n---\n";

fn schedule_messages(schedule_yaml: &str, policy: &Policy) -> Vec<String> {
    run_rule(
        schedule,
        schedule_yaml,
        "ScheduledBackup/shop-pg-daily",
        At::Offline,
        policy,
    )
    .into_iter()
    .map(|v| v.message)
    .collect()
}

#[test]
fn five_field_schedule_is_denied_with_hint() {
    let got = schedule_messages(&with_schedule("0 2 * * *"), &Policy::default());
    assert_eq!(
        got,
        vec![
            "\"0 2 * * *\" runs hourly at minute 2 — did you mean \"0 0 2 * * *\"? (CloudNativePG schedules have six fields, seconds first)"
        ]
    );
}

#[test]
fn five_field_schedules_are_described_as_cnpg_runs_them() {
    let cases = [
        (
            "30 4 * * *",
            "\"30 4 * * *\" runs hourly at minute 4, second 30 — did you mean \"0 30 4 * * *\"?",
        ),
        (
            "0 2 3 * *",
            "\"0 2 3 * *\" runs daily at 03:02:00 — did you mean \"0 0 2 3 * *\", which would still leave Cluster \
             shop-pg up to 31 days without a base backup (over maxIntervalHours 24)?",
        ),
        (
            "5 * * * *",
            "\"5 * * * *\" runs every minute — did you mean \"0 5 * * * *\"?",
        ),
        (
            "0 2 * * 0",
            "\"0 2 * * 0\" is read seconds first by CNPG (second 0, minute 2, hour *, day *, month 0) and rejected: month field \"0\": value 0 out of range 1-12 — did you mean \"0 0 2 * * 0\", which would still leave Cluster shop-pg up to 7 days without a base backup (over maxIntervalHours 24)?",
        ),
        (
            "0 2 1,15 * *",
            "\"0 2 1,15 * *\" is read seconds first by CNPG (second 0, minute 2, hour 1,15, day *, month *) — did you mean \"0 0 2 1,15 * *\", which would still leave Cluster shop-pg up to 17 days without a base backup (over maxIntervalHours 24)?",
        ),
        ("CRON_TZ=Europe/Berlin 0 2 * * *", "has no CRON_TZ= time zone prefix"),
        // Daily only when day and month are both any; hourly or every minute likewise.
        (
            "0 2 3 1 *",
            "\"0 2 3 1 *\" is read seconds first by CNPG (second 0, minute 2, hour 3, day 1, month *) — did you \
             mean \"0 0 2 3 1 *\"",
        ),
        (
            "0 2 * * 6",
            "\"0 2 * * 6\" is read seconds first by CNPG (second 0, minute 2, hour *, day *, month 6) — did you \
             mean \"0 0 2 * * 6\"",
        ),
        (
            "5 */2 * * *",
            "\"5 */2 * * *\" is read seconds first by CNPG (second 5, minute */2, hour *, day *, month *) — did \
             you mean \"0 5 */2 * * *\"?",
        ),
    ];
    for (expr, want) in cases {
        let got = schedule_messages(&with_schedule(expr), &Policy::default());
        assert_eq!(got.len(), 1, "{expr}");
        assert!(got[0].contains(want), "{expr}: {}", got[0]);
    }
}

#[test]
fn six_field_schedules_must_parse_and_fire_but_their_interval_is_judged_per_cluster() {
    let default = Policy::default();
    // (schedule, expected message part)
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("0 0 2 * * *", None),
        ("0 30 1 * * *", None),
        ("0 0 */6 * * *", None),
        ("@daily", None),
        ("@every 12h", None),
        // Weekly, weekdays-only and long @every schedules are fine here: together with the
        // Cluster's other ScheduledBackups they may cover it (scheduled-backup-coverage).
        ("0 0 2 * * 0", None),
        ("@weekly", None),
        ("0 0 2 * * 1-5", None),
        ("@every 25h", None),
        ("0 0 0 30 2 *", Some("never fires")),
        ("0 0 0 31 4 *", Some("never fires")),
        ("nonsense", Some("is invalid: expected 6 fields")),
        ("0 0 25 * * *", Some("\"0 0 25 * * *\" is invalid: ")),
        ("0 0 2 * * 7", Some("robfig/cron does not accept 7")),
        ("0 0 2 * * * *", Some("found 7")),
    ];
    for (expr, want) in cases {
        let got = schedule_messages(&with_schedule(expr), &default);
        match want {
            None => assert!(got.is_empty(), "{expr}: {got:?}"),
            Some(w) => {
                assert_eq!(got.len(), 1, "{expr}: {got:?}");
                assert!(got[0].contains(w), "{expr}: {}", got[0]);
            }
        }
    }
}

#[test]
fn a_policy_still_setting_max_interval_hours_on_the_schedule_rule_loads_with_a_note() {
    let old = Policy::from_yaml("rules: {scheduled-backup-schedule: {maxIntervalHours: 168}}").unwrap();
    assert_eq!(old.params.coverage_max_interval_hours(), 168);
    assert_eq!(old.params.deprecations.len(), 1);
    assert!(
        old.params.deprecations[0].contains("scheduled-backup-coverage"),
        "{:?}",
        old.params.deprecations
    );
    // The new key wins over the old one, and alone carries no note.
    let both = Policy::from_yaml(
        "rules: {scheduled-backup-schedule: {maxIntervalHours: 168}, scheduled-backup-coverage: {maxIntervalHours: 48}}",
    )
    .unwrap();
    assert_eq!(both.params.coverage_max_interval_hours(), 48);
    let new = Policy::from_yaml("rules: {scheduled-backup-coverage: {maxIntervalHours: 48}}").unwrap();
    assert_eq!(new.params.coverage_max_interval_hours(), 48);
    assert!(new.params.deprecations.is_empty());
    assert_eq!(Policy::default().params.coverage_max_interval_hours(), 24);
    assert!(Policy::default().params.deprecations.is_empty());
    let zero = Policy::from_yaml("rules: {scheduled-backup-coverage: {maxIntervalHours: 0}}").unwrap_err();
    assert!(
        zero.to_string()
            .contains("rules.scheduled-backup-coverage.maxIntervalHours"),
        "{zero}"
    );
}

#[test]
fn the_five_field_hint_says_when_the_literal_conversion_leaves_the_cluster_uncovered() {
    let weekly = with_schedule("0 2 * * 0");
    let daily = "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: shop-pg-nightly, namespace: shop}\nspec:\n  schedule: '0 0 3 * * *'\n  cluster: {name: shop-pg}\n  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n---\n";
    let alone = format!("{weekly}{PLUGIN_CLUSTER}");
    let got = schedule_messages(&alone, &Policy::default());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].ends_with(
            "— did you mean \"0 0 2 * * 0\", which would still leave Cluster shop-pg up to 7 days without a base \
             backup (over maxIntervalHours 24)?"
        ),
        "{}",
        got[0]
    );
    // With a daily ScheduledBackup beside it the conversion is enough: the plain hint.
    let with_daily = format!("{weekly}{daily}{PLUGIN_CLUSTER}");
    let got = schedule_messages(&with_daily, &Policy::default());
    assert!(got[0].ends_with("— did you mean \"0 0 2 * * 0\"?"), "{}", got[0]);
    // The conversion stays literal: a daily five-field schedule converts to a daily one.
    let got = schedule_messages(
        &format!("{}{PLUGIN_CLUSTER}", with_schedule("0 2 * * *")),
        &Policy::default(),
    );
    assert!(got[0].contains("did you mean \"0 0 2 * * *\"?"), "{}", got[0]);
    // A daily one with a method the Cluster lacks takes no backups, so it does not help.
    let in_tree_daily = daily.replace(
        "  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n",
        "  method: barmanObjectStore\n",
    );
    let got = schedule_messages(&format!("{weekly}{in_tree_daily}{PLUGIN_CLUSTER}"), &Policy::default());
    assert!(
        got[0].ends_with(
            "which would still leave Cluster shop-pg up to 7 days without a base backup (over maxIntervalHours 24)?"
        ),
        "{}",
        got[0]
    );
    // At admission the reviewed schedule replaces the view's copy of the same ScheduledBackup:
    // the daily it used to be no longer counts.
    let was_daily = format!("{}{PLUGIN_CLUSTER}", with_schedule("0 0 2 * * *"));
    let got = crate::rules::fixture::check_against(
        schedule,
        &weekly,
        "ScheduledBackup/shop-pg-daily",
        &was_daily,
        crate::rules::fixture::ADMIT_UPDATE,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].message.ends_with(
            "which would still leave Cluster shop-pg up to 7 days without a base backup (over maxIntervalHours 24)?"
        ),
        "{}",
        got[0].message
    );
    // A larger limit makes the weekly conversion enough.
    let weekly_ok = Policy::from_yaml("rules: {scheduled-backup-coverage: {maxIntervalHours: 168}}").unwrap();
    let got = schedule_messages(&alone, &weekly_ok);
    assert!(got[0].ends_with("— did you mean \"0 0 2 * * 0\"?"), "{}", got[0]);
}

#[test]
fn missing_schedule_and_suspended_backups() {
    let missing = backup("  cluster: {name: shop-pg}\n  method: plugin\n");
    let got = schedule_messages(&missing, &Policy::default());
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("spec.schedule is not set"));
    let empty = with_schedule("  ");
    assert_eq!(schedule_messages(&empty, &Policy::default()).len(), 1);
    // Suspended: still checked, it runs as written once resumed.
    let suspended = with_schedule("0 2 * * *").replace("  method: plugin\n", "  method: plugin\n  suspend: true\n");
    assert_eq!(schedule_messages(&suspended, &Policy::default()).len(), 1);
}

fn present_at(yaml: &str, at: At) -> Vec<crate::rules::Violation> {
    run_rule(present, yaml, "Cluster/shop-pg", at, &Policy::default())
}

#[test]
fn a_replica_cluster_without_scheduled_backup_is_only_warned() {
    let replicas = [
        PLUGIN_CLUSTER.replace("spec:\n", "spec:\n  replica: {enabled: true, source: origin}\n"),
        PLUGIN_CLUSTER.replace(
            "spec:\n",
            "spec:\n  replica: {primary: shop-pg-east, source: shop-pg-east}\n",
        ),
    ];
    for cluster in &replicas {
        for at in [At::Complete, At::Update] {
            let got = present_at(cluster, at);
            assert_eq!(got.len(), 1, "{at:?}");
            assert!(got[0].warn_only, "{at:?}: a replica is warned, never denied");
            assert!(got[0].message.contains("a replica cluster"), "{}", got[0].message);
        }
    }
    // The primary of a distributed topology is no replica.
    let primary = PLUGIN_CLUSTER.replace(
        "spec:\n",
        "spec:\n  replica: {primary: shop-pg, source: shop-pg-east}\n",
    );
    assert!(!present_at(&primary, At::Update)[0].warn_only);
}

#[test]
fn scheduled_backup_present_follows_the_admission_order() {
    let sb = with_schedule("0 0 2 * * *");
    for cluster in [PLUGIN_CLUSTER, IN_TREE_CLUSTER, SNAPSHOT_CLUSTER] {
        let with = format!("{cluster}{sb}");
        for at in [At::Offline, At::Complete, At::Create, At::Update] {
            assert!(present_at(&with, at).is_empty(), "{at:?}");
        }
        assert!(present_at(cluster, At::Offline).is_empty(), "incomplete input: unknown");
        let complete = present_at(cluster, At::Complete);
        assert_eq!(complete.len(), 1);
        assert!(!complete[0].warn_only, "offline --complete denies");
        let create = present_at(cluster, At::Create);
        assert!(create[0].warn_only, "a new Cluster only gets a warning");
        let update = present_at(cluster, At::Update);
        assert!(!update[0].warn_only, "UPDATE denies");
    }
    assert!(
        present_at(PLUGIN_CLUSTER, At::Complete)[0]
            .message
            .contains("add one with spec.cluster.name: shop-pg, schedule \"0 0 2 * * *\", method plugin")
    );
    assert!(
        present_at(PLUGIN_CLUSTER, At::Complete)[0]
            .message
            .contains("WAL alone cannot be restored")
    );
    let snapshot = &present_at(SNAPSHOT_CLUSTER, At::Complete)[0].message;
    assert!(
        snapshot.contains("so no volume snapshot is ever taken: add one with spec.cluster.name: shop-pg, schedule \"0 0 2 * * *\", method volumeSnapshot"),
        "{snapshot}"
    );
    // No backup configured at all: backup-configured's finding, not this one.
    assert!(present_at(BARE_CLUSTER, At::Complete).is_empty());
}

#[test]
fn scheduled_backups_for_other_clusters_or_namespaces_do_not_count_and_suspended_ones_warn() {
    let other = with_schedule("0 0 2 * * *").replace("cluster: {name: shop-pg}", "cluster: {name: other-pg}");
    assert_eq!(present_at(&format!("{PLUGIN_CLUSTER}{other}"), At::Complete).len(), 1);
    let elsewhere = with_schedule("0 0 2 * * *").replace("namespace: shop", "namespace: ops");
    assert_eq!(
        present_at(&format!("{PLUGIN_CLUSTER}{elsewhere}"), At::Complete).len(),
        1
    );
    let suspended = with_schedule("0 0 2 * * *").replace("  method: plugin\n", "  method: plugin\n  suspend: true\n");
    let got = present_at(&format!("{PLUGIN_CLUSTER}{suspended}"), At::Update);
    assert_eq!(got.len(), 1);
    assert!(got[0].warn_only);
    assert!(
        got[0]
            .message
            .starts_with("every ScheduledBackup of this Cluster is suspended (shop-pg-daily)")
    );
    let active = with_schedule("0 0 3 * * *").replace("name: shop-pg-daily", "name: shop-pg-nightly");
    assert!(present_at(&format!("{PLUGIN_CLUSTER}{suspended}{active}"), At::Update).is_empty());
}

fn target_messages(yaml: &str, at: At) -> Vec<String> {
    run_rule(target, yaml, "ScheduledBackup/shop-pg-daily", at, &Policy::default())
        .into_iter()
        .map(|v| v.message)
        .collect()
}

#[test]
fn scheduled_backup_target_method_must_fit_the_cluster() {
    let plugin = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n";
    let unset = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n";
    let in_tree = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: barmanObjectStore\n";
    let snapshot = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: volumeSnapshot\n";
    let typo = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: plugin\n  pluginConfiguration: {name: barman-cloud.cnpg.io}\n";
    let other_plugin = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: plugin\n  pluginConfiguration: {name: pgbackrest.dalibo.com}\n";
    let no_plugin_name = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: plugin\n";
    let bad_method = "  schedule: '0 0 2 * * *'\n  cluster: {name: shop-pg}\n  method: pgdump\n";
    let disabled_plugin_cluster =
        PLUGIN_CLUSTER.replace("isWALArchiver: true", "isWALArchiver: true\n      enabled: false");
    // (case, cluster, ScheduledBackup spec, expected)
    let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
        ("plugin on plugin cluster", PLUGIN_CLUSTER, plugin, None),
        (
            "unset method on plugin cluster",
            PLUGIN_CLUSTER,
            unset,
            Some(
                "spec.method is unset (barmanObjectStore) but Cluster shop-pg uses the Barman Cloud plugin: set method: plugin and pluginConfiguration.name: barman-cloud.cloudnative-pg.io",
            ),
        ),
        ("unset method on in-tree cluster", IN_TREE_CLUSTER, unset, None),
        ("barmanObjectStore on in-tree cluster", IN_TREE_CLUSTER, in_tree, None),
        (
            "barmanObjectStore on plugin cluster",
            PLUGIN_CLUSTER,
            in_tree,
            Some("spec.method is barmanObjectStore but Cluster shop-pg uses the Barman Cloud plugin"),
        ),
        (
            "plugin on in-tree cluster",
            IN_TREE_CLUSTER,
            plugin,
            Some(
                "spec.pluginConfiguration.name barman-cloud.cloudnative-pg.io is not a plugin enabled on Cluster shop-pg: add it to the Cluster's spec.plugins",
            ),
        ),
        ("volumeSnapshot on snapshot cluster", SNAPSHOT_CLUSTER, snapshot, None),
        (
            "unset method on a snapshot-only cluster",
            SNAPSHOT_CLUSTER,
            unset,
            Some(
                "spec.method is unset (barmanObjectStore) but Cluster shop-pg backs up with volume snapshots only (spec.backup.volumeSnapshot): set method: volumeSnapshot",
            ),
        ),
        (
            "plugin listed but disabled",
            &disabled_plugin_cluster,
            plugin,
            Some(
                "spec.pluginConfiguration.name barman-cloud.cloudnative-pg.io is not a plugin enabled on Cluster shop-pg: its spec.plugins entry has enabled: false; enable it or suspend this ScheduledBackup",
            ),
        ),
        (
            "volumeSnapshot on plugin cluster",
            PLUGIN_CLUSTER,
            snapshot,
            Some(
                "spec.method volumeSnapshot needs spec.backup.volumeSnapshot on Cluster shop-pg, which has none: add it (with a VolumeSnapshotClass) or use method plugin",
            ),
        ),
        (
            "plugin name typo",
            PLUGIN_CLUSTER,
            typo,
            Some(
                "spec.pluginConfiguration.name barman-cloud.cnpg.io is not a plugin enabled on Cluster shop-pg: did you mean barman-cloud.cloudnative-pg.io?",
            ),
        ),
        (
            "another plugin on in-tree cluster",
            IN_TREE_CLUSTER,
            other_plugin,
            Some(
                "spec.pluginConfiguration.name pgbackrest.dalibo.com is not a plugin enabled on Cluster shop-pg: add it to the Cluster's spec.plugins",
            ),
        ),
        (
            "plugin without name",
            PLUGIN_CLUSTER,
            no_plugin_name,
            Some("spec.method is plugin but spec.pluginConfiguration.name is not set"),
        ),
        (
            "unknown method",
            PLUGIN_CLUSTER,
            bad_method,
            Some("spec.method \"pgdump\" is not a backup method: use one of barmanObjectStore, volumeSnapshot, plugin"),
        ),
    ];
    for (case, cluster, spec, want) in cases {
        let yaml = format!("{cluster}{}", backup(spec));
        let got = target_messages(&yaml, At::Complete);
        match want {
            None => assert!(got.is_empty(), "{case}: {got:?}"),
            Some(w) => {
                assert_eq!(got.len(), 1, "{case}: {got:?}");
                assert!(got[0].starts_with(w), "{case}: {}", got[0]);
            }
        }
    }
}

#[test]
fn scheduled_backup_target_cluster_must_exist() {
    let sb = with_schedule("0 0 2 * * *");
    assert!(target_messages(&sb, At::Offline).is_empty(), "unknown never reports");
    assert_eq!(
        target_messages(&sb, At::Complete),
        vec![
            "spec.cluster.name names Cluster shop-pg, which does not exist in namespace shop: fix the name or create the Cluster"
        ]
    );
    let create = run_rule(
        target,
        &sb,
        "ScheduledBackup/shop-pg-daily",
        At::Create,
        &Policy::default(),
    );
    assert!(create[0].warn_only);
    let update = run_rule(
        target,
        &sb,
        "ScheduledBackup/shop-pg-daily",
        At::Update,
        &Policy::default(),
    );
    assert!(!update[0].warn_only);
    let nameless = backup(
        "  schedule: '0 0 2 * * *'\n  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n",
    );
    assert_eq!(
        target_messages(&nameless, At::Offline),
        vec!["spec.cluster.name is not set: name the CNPG Cluster to back up"]
    );
}

#[test]
fn durations_read_naturally() {
    assert_eq!(human(TimeDelta::days(7)), "7 days");
    assert_eq!(human(TimeDelta::hours(1)), "1 hour");
    assert_eq!(human(TimeDelta::hours(36)), "36 hours");
    assert_eq!(human(TimeDelta::minutes(90)), "90 minutes");
    assert_eq!(human(TimeDelta::seconds(61)), "61 seconds");
}

#[test]
fn a_wrongly_typed_field_is_named_by_its_full_path() {
    let yaml = backup("  schedule: '0 0 0 * * *'\n  suspend: 'true'\n  cluster: {name: shop-pg}\n");
    let value: serde_json::Value = serde_yaml_ng::from_str(yaml.trim_end_matches("---\n")).unwrap();
    let err = crate::model::Object::from_value(&value).unwrap_err().to_string();
    assert!(err.contains("spec.suspend: invalid type"), "{err}");
}
