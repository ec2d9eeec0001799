use super::*;
use crate::policy::Policy;
use crate::rules::fixture::{self, ADMIT_CREATE, ADMIT_UPDATE, COMPLETE, OFFLINE, Run};
use crate::testing::{At, run_rule};
use kube::core::admission::Operation;

const PLUGIN_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  plugins:\n    - name: barman-cloud.cloudnative-pg.io\n      isWALArchiver: true\n      parameters: {barmanObjectName: shop-backups}\n---\n";

/// A ScheduledBackup of shop-pg; `extra` goes under `spec:` (method plugin unless it says otherwise).
fn sb(name: &str, schedule: &str, extra: &str) -> String {
    let method = if extra.contains("method:") {
        String::new()
    } else {
        "  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n".to_string()
    };
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  schedule: '{schedule}'\n  cluster: {{name: shop-pg}}\n{method}{extra}---\n"
    )
}

fn daily() -> String {
    sb("shop-pg-daily", "0 0 2 * * *", "")
}

fn weekly() -> String {
    sb("shop-pg-weekly", "0 0 3 * * 0", "")
}

fn on_cluster(yaml: &str, at: At, policy: &Policy) -> Vec<Violation> {
    run_rule(coverage, yaml, "Cluster/shop-pg", at, policy)
}

#[test]
fn the_union_of_a_clusters_scheduled_backups_is_judged() {
    let default = Policy::default();
    let weekly_ok = Policy::from_yaml("rules: {scheduled-backup-coverage: {maxIntervalHours: 168}}").unwrap();
    let twelve = Policy::from_yaml("rules: {scheduled-backup-coverage: {maxIntervalHours: 12}}").unwrap();
    let suspended = sb("shop-pg-daily", "0 0 2 * * *", "  suspend: true\n");
    let in_tree_method = sb("shop-pg-daily", "0 0 2 * * *", "  method: barmanObjectStore\n");
    let five_fields = sb("shop-pg-daily", "0 2 * * *", "");
    // (case, backups, policy, expected message part; None = covered)
    let cases: Vec<(&str, String, &Policy, Option<&str>)> = vec![
        ("daily", daily(), &default, None),
        (
            "weekly alone",
            weekly(),
            &default,
            Some(
                "ScheduledBackups of Cluster shop-pg (shop-pg-weekly) leave up to 7 days without a base backup, over \
                 maxIntervalHours 24: add or resume a daily one, e.g. \"0 0 2 * * *\"",
            ),
        ),
        ("daily and weekly", format!("{}{}", daily(), weekly()), &default, None),
        (
            "weekly, daily suspended",
            format!("{suspended}{}", weekly()),
            &default,
            Some("up to 7 days without a base backup, over maxIntervalHours 24; not counted: shop-pg-daily: suspended"),
        ),
        (
            "weekly, daily with a method the Cluster lacks",
            format!("{in_tree_method}{}", weekly()),
            &default,
            Some("not counted: shop-pg-daily: method barmanObjectStore not configured on the Cluster"),
        ),
        (
            "weekly, daily unparseable",
            format!("{five_fields}{}", weekly()),
            &default,
            Some("not counted: shop-pg-daily: five-field schedule, see scheduled-backup-schedule"),
        ),
        (
            "weekly, daily garbage",
            format!("{}{}", sb("shop-pg-daily", "0 0 2 * * * *x", ""), weekly()),
            &default,
            Some("not counted: shop-pg-daily: schedule does not parse"),
        ),
        ("weekly with a weekly limit", weekly(), &weekly_ok, None),
        (
            "weekdays only",
            sb("shop-pg-weekdays", "0 0 3 * * 1-5", ""),
            &default,
            Some("leave up to 3 days"),
        ),
        (
            "weekdays plus a weekend backup",
            format!(
                "{}{}",
                sb("shop-pg-weekdays", "0 0 3 * * 1-5", ""),
                sb("shop-pg-weekend", "0 0 3 * * SAT,SUN", "")
            ),
            &default,
            None,
        ),
        (
            "@every within the limit",
            sb("shop-pg-often", "@every 6h", ""),
            &default,
            None,
        ),
        (
            "@every over the limit never counts",
            sb("shop-pg-often", "@every 48h", ""),
            &default,
            Some(
                "no ScheduledBackup of Cluster shop-pg takes base backups (shop-pg-often: @every longer than the limit)",
            ),
        ),
        (
            "@every over the limit next to a daily one",
            format!("{}{}", sb("shop-pg-often", "@every 48h", ""), daily()),
            &default,
            None,
        ),
        (
            "never fires, next to a daily one",
            format!("{}{}", sb("shop-pg-feb30", "0 0 0 30 2 *", ""), daily()),
            &default,
            None,
        ),
        (
            "never fires alone",
            sb("shop-pg-feb30", "0 0 0 30 2 *", ""),
            &default,
            Some("(shop-pg-feb30: never fires)"),
        ),
        (
            "immediate does not count",
            sb("shop-pg-weekly", "0 0 3 * * 0", "  immediate: true\n"),
            &default,
            Some("leave up to 7 days"),
        ),
        (
            "two a day within 12 hours",
            format!("{}{}", daily(), sb("shop-pg-noon", "0 0 14 * * *", "")),
            &twelve,
            None,
        ),
        ("daily over 12 hours", daily(), &twelve, Some("leave up to 1 day")),
        (
            "daily plus a monthly one",
            format!("{}{}", daily(), sb("shop-pg-monthly", "0 0 4 1 * *", "")),
            &default,
            None,
        ),
        // scheduled-backup-present reports these.
        ("every one suspended", suspended.clone(), &default, None),
        ("none", String::new(), &default, None),
    ];
    for (case, backups, policy, want) in cases {
        let yaml = format!("{backups}{PLUGIN_CLUSTER}");
        let got = on_cluster(&yaml, At::Complete, policy);
        match want {
            None => assert!(got.is_empty(), "{case}: {got:?}"),
            Some(w) => {
                assert_eq!(got.len(), 1, "{case}: {got:?}");
                assert!(got[0].message.contains(w), "{case}: {}", got[0].message);
                assert!(!got[0].warn_only, "{case}: offline --complete denies");
                assert_eq!(got[0].path, None, "{case}");
            }
        }
    }
}

#[test]
fn clusters_without_backup_and_replicas() {
    let bare = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  instances: 1\n---\n";
    let default = Policy::default();
    assert!(on_cluster(&format!("{}{bare}", weekly()), At::Complete, &default).is_empty());
    let replica = PLUGIN_CLUSTER.replace("spec:\n", "spec:\n  replica: {enabled: true, source: origin}\n");
    let got = on_cluster(&format!("{}{replica}", weekly()), At::Complete, &default);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].warn_only, "a replica cluster is warned, never denied");
    // Volume snapshots only: a weekly volumeSnapshot ScheduledBackup is judged like any other.
    let snapshots = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  backup:\n    volumeSnapshot: {className: csi}\n---\n";
    let snap_weekly = sb("shop-pg-weekly", "0 0 3 * * 0", "  method: volumeSnapshot\n");
    let got = on_cluster(&format!("{snap_weekly}{snapshots}"), At::Complete, &default);
    assert!(got[0].message.contains("leave up to 7 days"), "{got:?}");
}

#[test]
fn a_gap_warns_on_create_and_offline_and_denies_on_update_and_complete() {
    let yaml = format!("{}{PLUGIN_CLUSTER}", weekly());
    let default = Policy::default();
    for (at, warn_only) in [
        (At::Create, true),
        (At::Offline, true),
        (At::Update, false),
        (At::Complete, false),
    ] {
        let got = on_cluster(&yaml, at, &default);
        assert_eq!(got.len(), 1, "{at:?}");
        assert_eq!(got[0].warn_only, warn_only, "{at:?}");
    }
}

/// The reviewed ScheduledBackup (`subject`) against a view holding `world`.
fn on_backup(subject: &str, name: &str, world: &str, run: Run<'_>) -> Vec<Violation> {
    fixture::check_against(coverage, subject, &format!("ScheduledBackup/{name}"), world, run)
}

#[test]
fn a_scheduled_backup_change_is_judged_with_the_cluster_it_targets() {
    let world = format!("{}{PLUGIN_CLUSTER}", daily());
    // A weekly full backup admitted while the daily one exists: fine.
    assert!(on_backup(&weekly(), "shop-pg-weekly", &world, ADMIT_CREATE).is_empty());
    let world = format!("{}{}{PLUGIN_CLUSTER}", daily(), weekly());
    assert!(on_backup(&weekly(), "shop-pg-weekly", &world, ADMIT_UPDATE).is_empty());
    // Suspending the only daily one leaves the weekly one alone: denied.
    let suspended = sb("shop-pg-daily", "0 0 2 * * *", "  suspend: true\n");
    let got = on_backup(&suspended, "shop-pg-daily", &world, ADMIT_UPDATE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].warn_only);
    assert_eq!(got[0].path.as_deref(), Some("spec.cluster.name"));
    assert!(
        got[0].message.contains("shop-pg-daily: suspended"),
        "{}",
        got[0].message
    );
    // So is moving it to a weekly schedule.
    let moved = sb("shop-pg-daily", "0 0 2 * * 6", "");
    assert_eq!(on_backup(&moved, "shop-pg-daily", &world, ADMIT_UPDATE).len(), 1);
    // Creating a weekly one where nothing is daily yet only warns: the gap was there before.
    let lonely = on_backup(&weekly(), "shop-pg-weekly", PLUGIN_CLUSTER, ADMIT_CREATE);
    assert!(lonely.len() == 1 && lonely[0].warn_only, "{lonely:?}");
    // Offline the Cluster carries the finding, once.
    assert!(on_backup(&weekly(), "shop-pg-weekly", PLUGIN_CLUSTER, COMPLETE).is_empty());
    assert!(on_backup(&weekly(), "shop-pg-weekly", PLUGIN_CLUSTER, OFFLINE).is_empty());
    // A Cluster the view does not have is not judged.
    assert!(on_backup(&weekly(), "shop-pg-weekly", "", ADMIT_UPDATE).is_empty());
}

#[test]
fn an_unrelated_change_yields_the_same_finding_for_the_old_and_the_new_object() {
    let world = format!("{}{PLUGIN_CLUSTER}", weekly());
    let relabelled = weekly().replace("namespace: shop}", "namespace: shop, labels: {team: db}}");
    let old = on_backup(&weekly(), "shop-pg-weekly", &world, ADMIT_UPDATE);
    let new = on_backup(&relabelled, "shop-pg-weekly", &world, ADMIT_UPDATE);
    assert_eq!(old.len(), 1);
    assert_eq!(old, new);
    // The Cluster's own finding reads the same, whatever order the view lists backups in.
    let a = on_cluster(
        &format!("{}{}{PLUGIN_CLUSTER}", weekly(), sb("a-monthly", "0 0 0 1 * *", "")),
        At::Update,
        &Policy::default(),
    );
    let b = on_cluster(
        &format!("{}{}{PLUGIN_CLUSTER}", sb("a-monthly", "0 0 0 1 * *", ""), weekly()),
        At::Update,
        &Policy::default(),
    );
    assert_eq!(a, b);
    assert!(a[0].message.contains("(a-monthly, shop-pg-weekly)"), "{}", a[0].message);
}

#[test]
fn unparseable_and_hostile_schedules_never_break_coverage() {
    let hostile = [
        "",
        "ü ü ü ü ü ü",
        "@every",
        "@every 99999999999999999h",
        "0 0 0 30 2 *",
        "CRON_TZ=UTC 0 0 2 * * *",
        "* * * * * * * * * *",
        "0 */0 * * * *",
        "'",
    ];
    let mut yaml = String::new();
    for (i, expr) in hostile.iter().enumerate() {
        yaml.push_str(&sb(&format!("bad-{i}"), &expr.replace('\'', "''"), ""));
    }
    yaml.push_str("apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: no-schedule, namespace: shop}\nspec:\n  cluster: {name: shop-pg}\n  method: plugin\n  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}\n---\n");
    let got = on_cluster(&format!("{yaml}{PLUGIN_CLUSTER}"), At::Complete, &Policy::default());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]
            .message
            .starts_with("no ScheduledBackup of Cluster shop-pg takes base backups ("),
        "{}",
        got[0].message
    );
    assert!(got[0].message.contains(" more)"), "{}", got[0].message);
    // With a daily one beside them the Cluster is covered.
    let got = on_cluster(
        &format!("{yaml}{}{PLUGIN_CLUSTER}", daily()),
        At::Complete,
        &Policy::default(),
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_lone_backup_with_a_long_name_still_says_why_it_does_not_count() {
    // As the cloudnative-pg/charts cluster chart renders it: a method the plugin Cluster lacks.
    let yaml = format!(
        "{}{PLUGIN_CLUSTER}",
        sb("shop-pg-daily-backup", "0 0 0 * * *", "  method: barmanObjectStore\n")
    );
    let got = on_cluster(&yaml, At::Complete, &Policy::default());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]
            .message
            .contains("(shop-pg-daily-backup: method barmanObjectStore not configured on the Cluster)"),
        "{}",
        got[0].message
    );
}

#[test]
fn messages_fit_a_warning_for_real_names_and_stay_bounded_for_many() {
    let long = |yaml: &str| yaml.replace("shop-pg", "payments-ledger-pg");
    let realistic = long(&format!(
        "{}{}{}{PLUGIN_CLUSTER}",
        sb("shop-pg-daily", "0 0 2 * * *", "  suspend: true\n"),
        sb("shop-pg-weekly-full", "0 0 3 * * 0", ""),
        sb("shop-pg-monthly", "0 0 3 1 * *", "  method: barmanObjectStore\n"),
    ));
    let mut many = String::new();
    for i in 0..40 {
        let extra = if i % 2 == 0 { "  suspend: true\n" } else { "" };
        many.push_str(&sb(
            &format!("shop-pg-production-weekly-full-backup-{i:02}"),
            "0 0 3 * * 0",
            extra,
        ));
    }
    let many = long(&format!("{many}{PLUGIN_CLUSTER}"));
    // The API server may cut a warning at 256 characters: what is kept must still say how long
    // the gap is and why a ScheduledBackup does not count; the hint may be cut.
    let got = run_rule(
        coverage,
        &realistic,
        "Cluster/payments-ledger-pg",
        At::Complete,
        &Policy::default(),
    );
    let warning = format!("dbhook: audit: would deny: [{}] {}", got[0].rule, got[0].message);
    let kept: String = warning.chars().take(256).collect();
    for part in [
        "leave up to 7 days without a base backup",
        "not counted: payments-ledger-pg-daily: suspended",
    ] {
        assert!(
            kept.contains(part),
            "{part:?} not in the first 256 characters: {warning}"
        );
    }
    let got = run_rule(
        coverage,
        &many,
        "Cluster/payments-ledger-pg",
        At::Complete,
        &Policy::default(),
    );
    let warning = format!("dbhook: audit: would deny: [{}] {}", got[0].rule, got[0].message);
    assert!(
        warning.chars().count() <= 320,
        "{} chars: {warning}",
        warning.chars().count()
    );
}

#[test]
fn the_operation_does_not_matter_offline() {
    let yaml = format!("{}{PLUGIN_CLUSTER}", weekly());
    let update = Run {
        operation: &Operation::Update,
        ..COMPLETE
    };
    let got = fixture::check(coverage, &yaml, "Cluster/shop-pg", update);
    assert!(got.len() == 1 && !got[0].warn_only);
}

#[test]
fn an_every_schedule_of_exactly_the_limit_counts() {
    let got = on_cluster(
        &format!("{}{PLUGIN_CLUSTER}", sb("shop-pg-often", "@every 24h", "")),
        At::Complete,
        &Policy::default(),
    );
    assert!(got.is_empty(), "@every D counts when D is at most the limit: {got:?}");
}

#[test]
fn an_in_tree_store_counts_barman_object_store_backups_only() {
    let in_tree = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  backup:\n    barmanObjectStore: {destinationPath: 's3://backups/shop'}\n---\n";
    let daily_in_tree = sb("shop-pg-daily", "0 0 2 * * *", "  method: barmanObjectStore\n");
    let default = Policy::default();
    assert!(on_cluster(&format!("{daily_in_tree}{in_tree}"), At::Complete, &default).is_empty());
    // The plugin method on a Cluster without the plugin does not count.
    let got = on_cluster(&format!("{}{in_tree}", daily()), At::Complete, &default);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]
            .message
            .contains("(shop-pg-daily: method plugin not configured on the Cluster)"),
        "{}",
        got[0].message
    );
}

fn consulted_names(v: &Violation) -> Vec<String> {
    v.consulted.iter().map(|c| c.describe()).collect()
}

#[test]
fn the_evidence_lists_the_scheduled_backups_read_but_not_the_reviewed_one() {
    let world = format!("{}{}{PLUGIN_CLUSTER}", daily(), weekly());
    let suspended = sb("shop-pg-daily", "0 0 2 * * *", "  suspend: true\n");
    let got = on_backup(&suspended, "shop-pg-daily", &world, ADMIT_UPDATE);
    assert_eq!(
        consulted_names(&got[0]),
        ["Cluster shop/shop-pg", "ScheduledBackup shop/shop-pg-weekly"]
    );
    let got = on_cluster(
        &format!("{}{}{PLUGIN_CLUSTER}", weekly(), sb("a-monthly", "0 0 0 1 * *", "")),
        At::Update,
        &Policy::default(),
    );
    assert_eq!(
        consulted_names(&got[0]),
        ["ScheduledBackup shop/a-monthly", "ScheduledBackup shop/shop-pg-weekly"]
    );
}

#[test]
fn durations_are_named_in_the_largest_unit_that_divides_them() {
    // Singulars and the fall-through to seconds (scheduled-backup-schedule's tests have more).
    let cases = [
        (TimeDelta::days(1), "1 day"),
        (TimeDelta::minutes(1), "1 minute"),
        (TimeDelta::seconds(1), "1 second"),
        (TimeDelta::seconds(86_401), "86401 seconds"),
    ];
    for (d, want) in cases {
        assert_eq!(human(d), want);
    }
}

#[test]
fn lists_keep_names_while_they_fit_and_count_the_rest() {
    let list = |names: &[&str], keep_first: bool| listed(names.iter().map(|n| n.to_string()), keep_first);
    let (n18, n19, n20) = ("a".repeat(18), "b".repeat(19), "c".repeat(20));
    let long = "d".repeat(LIST_BUDGET + 1);
    // "n18, n20" is exactly the budget; "n19, n20" is one over.
    assert_eq!(list(&[&n18, &n20], false), format!("{n18}, {n20}"));
    assert_eq!(list(&[&n19, &n20], false), format!("{n19} and 1 more"));
    assert_eq!(list(&["x", "y", "z"], false), "x, y, z");
    assert_eq!(list(&[&n18, &n20, "z"], false), format!("{n18}, {n20} and 1 more"));
    // Not even the first fits: a count, unless the first must be kept.
    assert_eq!(list(&[&long], false), "1 of them");
    assert_eq!(list(&[&long, "x"], false), "2 of them");
    assert_eq!(list(&[&long], true), long);
    assert_eq!(list(&[&long, "x"], true), format!("{long} and 1 more"));
}
