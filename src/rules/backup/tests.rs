use super::*;
use crate::policy::Policy;
use crate::rules::Check;
use crate::testing::{At, run_rule};

/// A plugin-based Cluster (as in examples/shop.yaml); `extra` is appended under `spec:`.
pub(super) fn plugin_cluster(extra: &str) -> String {
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: shop-pg, namespace: shop}}\nspec:\n  instances: 3\n  plugins:\n    - name: barman-cloud.cloudnative-pg.io\n      isWALArchiver: true\n      parameters: {{barmanObjectName: shop-backups}}\n{extra}---\n"
    )
}

/// An in-tree Cluster; `store` is the barmanObjectStore body (indented by 6), `extra` goes under `spec:`.
pub(super) fn in_tree_cluster(retention: &str, store: &str, extra: &str) -> String {
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: shop-pg, namespace: shop}}\nspec:\n  instances: 3\n{extra}  backup:\n    {retention}\n    barmanObjectStore:\n      destinationPath: s3://bucket/shop-pg\n{store}---\n"
    )
}

/// An ObjectStore; `config` is the body of spec.configuration (indented by 4), `extra` goes under `spec:`.
pub(super) fn object_store(retention: &str, config: &str, extra: &str) -> String {
    format!(
        "apiVersion: barmancloud.cnpg.io/v1\nkind: ObjectStore\nmetadata: {{name: shop-backups, namespace: shop}}\nspec:\n  {retention}\n  configuration:\n    destinationPath: s3://bucket/shop-pg\n{config}{extra}---\n"
    )
}

pub(super) const GZIP: &str = "    wal: {compression: gzip}\n    data: {compression: gzip}\n";
pub(super) const GZIP_IN_TREE: &str = "      wal: {compression: gzip}\n      data: {compression: gzip}\n";

pub(super) fn found(check: Check, yaml: &str, target: &str, policy: &str) -> Vec<String> {
    let policy = if policy.is_empty() {
        Policy::default()
    } else {
        Policy::from_yaml(policy).unwrap()
    };
    run_rule(check, yaml, target, At::Complete, &policy)
        .into_iter()
        .map(|v| v.message)
        .collect()
}

/// (message part, path, warn only)
type Expected<'a> = (&'a str, &'a str, bool);

#[test]
fn backup_configured_accepts_in_tree_and_any_wal_archiver_plugin() {
    let none = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  instances: 1\n";
    let snapshots = format!("{none}  backup:\n    volumeSnapshot: {{className: csi-snap}}\n");
    let pgbackrest = plugin_cluster("").replace("barman-cloud.cloudnative-pg.io", "pgbackrest.dalibo.com");
    let allow = "rules: {backup-configured: {allowVolumeSnapshotOnly: true}}";
    // (case, cluster, policy, expected message part, path, warn only)
    let cases: Vec<(&str, String, &str, Option<Expected>)> = vec![
        ("plugin", plugin_cluster(""), "", None),
        (
            "in-tree",
            in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, ""),
            "",
            None,
        ),
        ("pgBackRest archives WAL", pgbackrest.clone(), "", None),
        (
            "an archiver next to other plugins",
            plugin_cluster("").replace(
                "  plugins:\n",
                "  plugins:\n    - name: cnpg-i-hello-world.cloudnative-pg.io\n",
            ),
            "",
            None,
        ),
        (
            "nothing",
            none.to_string(),
            "",
            Some((
                "WAL is not archived, so there is no point-in-time recovery: add the barman-cloud.cloudnative-pg.io plugin to spec.plugins with isWALArchiver: true and parameters.barmanObjectName: <ObjectStore>",
                "spec.plugins",
                false,
            )),
        ),
        (
            "plugin without isWALArchiver",
            plugin_cluster("").replace("      isWALArchiver: true\n", ""),
            "",
            Some((
                "WAL is not archived: plugin barman-cloud.cloudnative-pg.io is enabled but not the designated WAL archiver (CNPG treats archiving as inactive): set isWALArchiver: true on the entry that archives",
                "spec.plugins[0].isWALArchiver",
                false,
            )),
        ),
        (
            "pgBackRest with isWALArchiver false",
            pgbackrest.replace("isWALArchiver: true", "isWALArchiver: false"),
            "",
            Some((
                "plugin pgbackrest.dalibo.com is enabled but not the designated WAL archiver (CNPG treats archiving as inactive)",
                "spec.plugins[0].isWALArchiver",
                false,
            )),
        ),
        (
            "plugin disabled",
            plugin_cluster("").replace("isWALArchiver: true", "isWALArchiver: true\n      enabled: false"),
            "",
            Some((
                "the barman-cloud.cloudnative-pg.io plugin entry is disabled (enabled: false)",
                "spec.plugins[0].enabled",
                false,
            )),
        ),
        (
            "volume snapshots only",
            snapshots.clone(),
            "",
            Some((
                "volume snapshots only: no point-in-time recovery",
                "spec.backup.volumeSnapshot",
                false,
            )),
        ),
        (
            "volume snapshots only, allowed",
            snapshots.clone(),
            allow,
            Some((
                "volume snapshots only: no point-in-time recovery",
                "spec.backup.volumeSnapshot",
                true,
            )),
        ),
        (
            "replica cluster",
            format!("{none}  replica: {{enabled: true, source: origin}}\n"),
            "",
            Some((
                "replica cluster without its own WAL archive: fine while it follows its source, but configure \
                 archiving before promoting it. WAL is not archived, so",
                "spec.plugins",
                true,
            )),
        ),
        (
            "replica by primary naming another cluster",
            format!("{none}  replica: {{primary: shop-pg-east, source: shop-pg-east}}\n"),
            "",
            Some(("replica cluster without its own WAL archive", "spec.plugins", true)),
        ),
        (
            "primary of a distributed topology",
            format!("{none}  replica: {{primary: shop-pg, source: shop-pg-east}}\n"),
            "",
            Some(("WAL is not archived, so", "spec.plugins", false)),
        ),
        (
            "replica explicitly disabled",
            format!("{none}  replica: {{enabled: false, primary: other, source: other}}\n"),
            "",
            Some(("WAL is not archived, so", "spec.plugins", false)),
        ),
    ];
    for (case, yaml, policy, want) in cases {
        let p = if policy.is_empty() {
            Policy::default()
        } else {
            Policy::from_yaml(policy).unwrap()
        };
        let got = run_rule(configured, &yaml, "Cluster/shop-pg", At::Complete, &p);
        match want {
            None => assert!(got.is_empty(), "{case}: {got:?}"),
            Some((message, path, warn_only)) => {
                assert_eq!(got.len(), 1, "{case}");
                assert!(got[0].message.contains(message), "{case}: {}", got[0].message);
                assert_eq!(got[0].path.as_deref(), Some(path), "{case}");
                assert_eq!(got[0].warn_only, warn_only, "{case}");
            }
        }
    }
}

#[test]
fn replica_detection_follows_cnpg_is_replica() {
    let spec = |replica: &str| -> ClusterSpec {
        serde_json::from_value(
            serde_json::json!({"replica": serde_json::from_str::<serde_json::Value>(replica).unwrap()}),
        )
        .unwrap()
    };
    let cases = [
        (r#"{"enabled": true}"#, true),
        (r#"{"enabled": false, "primary": "x"}"#, false),
        (r#"{"primary": "other"}"#, true),
        (r#"{"primary": "shop-pg"}"#, false),
        (r#"{"primary": "east", "self": "east"}"#, false),
        (r#"{"primary": "east", "self": "west"}"#, true),
        // A stanza with neither field: CNPG compares its own name with an empty primary.
        (r#"{"source": "origin"}"#, true),
    ];
    for (replica, want) in cases {
        assert_eq!(spec(replica).is_replica("shop-pg"), want, "{replica}");
    }
    assert!(!ClusterSpec::default().is_replica("shop-pg"));
}

#[test]
fn retention_days_follow_cnpg_units() {
    let cases = [
        ("7d", Some(7)),
        ("30d", Some(30)),
        ("1w", Some(7)),
        ("4w", Some(28)),
        ("1m", Some(30)),
        ("12m", Some(360)),
        ("0d", None),
        ("07d", None),
        ("30", None),
        ("d", None),
        ("30 d", None),
        ("30D", None),
        ("1y", None),
        ("-1d", None),
        ("30dd", None),
        ("", None),
        ("99999999999999999999999m", Some(u64::MAX)),
    ];
    for (input, want) in cases {
        assert_eq!(retention_days(input), want, "{input}");
    }
}

#[test]
fn retention_is_checked_where_it_lives() {
    let store_ok = object_store("retentionPolicy: 30d", GZIP, "");
    // (case, yaml, target, policy, expected message part)
    let cases: Vec<(&str, String, &str, &str, Option<&str>)> = vec![
        (
            "object store 30d",
            store_ok.clone(),
            "ObjectStore/shop-backups",
            "",
            None,
        ),
        (
            "object store without retention",
            object_store("", GZIP, ""),
            "ObjectStore/shop-backups",
            "",
            Some("spec.retentionPolicy is not set, so backups are never deleted: set it, e.g. \"30d\""),
        ),
        (
            "object store 3d",
            object_store("retentionPolicy: 3d", GZIP, ""),
            "ObjectStore/shop-backups",
            "",
            Some("spec.retentionPolicy \"3d\" keeps backups 3 days, less than the policy minimum of 7 days: raise it"),
        ),
        (
            "object store 1w meets the default minimum",
            object_store("retentionPolicy: 1w", GZIP, ""),
            "ObjectStore/shop-backups",
            "",
            None,
        ),
        (
            "object store garbage",
            object_store("retentionPolicy: 30 days", GZIP, ""),
            "ObjectStore/shop-backups",
            "",
            Some("is not a retention CNPG understands"),
        ),
        (
            "object store with a space CNPG's pattern rejects",
            object_store("retentionPolicy: \" 30d\"", GZIP, ""),
            "ObjectStore/shop-backups",
            "",
            Some("spec.retentionPolicy \" 30d\" is not a retention CNPG understands"),
        ),
        (
            "cluster with a trailing space",
            in_tree_cluster("retentionPolicy: \"30d \"", GZIP_IN_TREE, ""),
            "Cluster/shop-pg",
            "",
            Some("spec.backup.retentionPolicy \"30d \" is not a retention CNPG understands"),
        ),
        (
            "object store beyond counting",
            object_store("retentionPolicy: 99999999999999999999d", GZIP, ""),
            "ObjectStore/shop-backups",
            "rules: {backup-retention: {minDays: 7, maxDays: 90}}",
            Some("keeps backups practically forever, more than the policy maximum of 90 days"),
        ),
        (
            "object store above maxDays",
            object_store("retentionPolicy: 2m", GZIP, ""),
            "ObjectStore/shop-backups",
            "rules: {backup-retention: {minDays: 7, maxDays: 45}}",
            Some("keeps backups 60 days, more than the policy maximum of 45 days"),
        ),
        (
            "object store at maxDays exactly",
            object_store("retentionPolicy: 6w", GZIP, ""),
            "ObjectStore/shop-backups",
            "rules: {backup-retention: {minDays: 7, maxDays: 42}}",
            None,
        ),
        (
            "object store below a raised minimum",
            object_store("retentionPolicy: 2w", GZIP, ""),
            "ObjectStore/shop-backups",
            "rules: {backup-retention: {minDays: 30}}",
            Some("less than the policy minimum of 30 days"),
        ),
        (
            "plugin cluster is not judged (its ObjectStore is)",
            plugin_cluster(""),
            "Cluster/shop-pg",
            "",
            None,
        ),
        (
            "plugin cluster with a leftover in-tree retention",
            plugin_cluster("  backup:\n    retentionPolicy: 30d\n"),
            "Cluster/shop-pg",
            "",
            Some(
                "spec.backup.retentionPolicy \"30d\" has no effect with the Barman Cloud plugin: move it to spec.retentionPolicy of ObjectStore shop-backups",
            ),
        ),
        (
            "in-tree cluster 30d",
            in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, ""),
            "Cluster/shop-pg",
            "",
            None,
        ),
        (
            "in-tree cluster without retention",
            in_tree_cluster("", GZIP_IN_TREE, ""),
            "Cluster/shop-pg",
            "",
            Some("spec.backup.retentionPolicy is not set"),
        ),
        (
            "in-tree cluster 5d",
            in_tree_cluster("retentionPolicy: '5d'", GZIP_IN_TREE, ""),
            "Cluster/shop-pg",
            "",
            Some("spec.backup.retentionPolicy \"5d\" keeps backups 5 days"),
        ),
    ];
    let leftover = plugin_cluster("  backup:\n    retentionPolicy: 30d\n");
    let v = run_rule(retention, &leftover, "Cluster/shop-pg", At::Update, &Policy::default());
    assert!(v[0].warn_only, "dead configuration warns, never denies");
    for (case, yaml, target, policy, want) in cases {
        let got = found(retention, &yaml, target, policy);
        match want {
            None => assert!(got.is_empty(), "{case}: {got:?}"),
            Some(w) => {
                assert_eq!(got.len(), 1, "{case}: {got:?}");
                assert!(got[0].contains(w), "{case}: {}", got[0]);
            }
        }
    }
}

#[test]
fn compression_is_set_valid_and_allowed() {
    // (case, wal, data, policy, expected message parts)
    let cases: Vec<(&str, &str, &str, &str, Vec<&str>)> = vec![
        ("gzip both", "gzip", "gzip", "", vec![]),
        ("zstd wal, snappy data", "zstd", "snappy", "", vec![]),
        ("lz4 both", "lz4", "lz4", "", vec![]),
        (
            "wal missing",
            "",
            "gzip",
            "",
            vec!["wal.compression is not set, so WAL files are stored uncompressed"],
        ),
        (
            "both missing",
            "",
            "",
            "",
            vec![
                "wal.compression is not set",
                "data.compression is not set, so base backups",
            ],
        ),
        (
            "zstd is not valid for data",
            "zstd",
            "zstd",
            "",
            vec![
                "data.compression \"zstd\" is not a compression CNPG supports for base backups (bzip2, gzip, lz4, snappy)",
            ],
        ),
        (
            "garbage",
            "brotli",
            "gzip",
            "",
            vec!["wal.compression \"brotli\" is not a compression CNPG supports"],
        ),
        (
            "not in allowed",
            "gzip",
            "bzip2",
            "rules: {backup-compression: {allowed: [zstd, lz4]}}",
            vec![
                "wal.compression \"gzip\" is not allowed by the policy (zstd, lz4): use e.g. zstd",
                "data.compression \"bzip2\" is not allowed by the policy (zstd, lz4): use e.g. lz4",
            ],
        ),
        (
            "in allowed",
            "zstd",
            "lz4",
            "rules: {backup-compression: {allowed: [zstd, lz4]}}",
            vec![],
        ),
    ];
    for (case, wal, data, policy, want) in cases {
        let section = |name: &str, v: &str, indent: &str| {
            if v.is_empty() {
                String::new()
            } else {
                format!("{indent}{name}: {{compression: {v}}}\n")
            }
        };
        let store_cfg = section("wal", wal, "    ") + &section("data", data, "    ");
        let tree_cfg = section("wal", wal, "      ") + &section("data", data, "      ");
        let objects = [
            (
                object_store("retentionPolicy: 30d", &store_cfg, ""),
                "ObjectStore/shop-backups",
                "spec.configuration.",
            ),
            (
                in_tree_cluster("retentionPolicy: 30d", &tree_cfg, ""),
                "Cluster/shop-pg",
                "spec.backup.barmanObjectStore.",
            ),
        ];
        for (yaml, target, prefix) in objects {
            let got = found(compression, &yaml, target, policy);
            assert_eq!(got.len(), want.len(), "{case} {target}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(prefix) && g.contains(w), "{case} {target}: {g}");
            }
        }
    }
    // The plugin Cluster's compression lives on its ObjectStore.
    assert!(found(compression, &plugin_cluster(""), "Cluster/shop-pg", "").is_empty());
}

#[test]
fn in_tree_backup_is_deprecated_with_a_migration_hint() {
    let got = found(
        in_tree_deprecated,
        &in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, ""),
        "Cluster/shop-pg",
        "",
    );
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(
            "spec.backup.barmanObjectStore is deprecated since CNPG 1.26 (removal currently announced for 1.31)"
        ),
        "{}",
        got[0]
    );
    assert!(got[0].contains("barmancloud.cnpg.io/v1 ObjectStore"));
    assert!(found(in_tree_deprecated, &plugin_cluster(""), "Cluster/shop-pg", "").is_empty());
}

#[test]
fn in_tree_external_clusters_and_minimal_images_are_flagged() {
    let external = "  externalClusters:\n    - name: origin\n      barmanObjectStore: {destinationPath: 's3://old/origin'}\n    - name: live\n      connectionParameters: {host: origin-rw}\n";
    let run = |yaml: &str| {
        run_rule(
            in_tree_deprecated,
            yaml,
            "Cluster/shop-pg",
            At::Complete,
            &Policy::default(),
        )
    };
    let got = run(&plugin_cluster(external));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].path.as_deref(),
        Some("spec.externalClusters[0].barmanObjectStore")
    );
    assert!(
        got[0].message.starts_with(
            "spec.externalClusters[0].barmanObjectStore is deprecated since CNPG 1.26 (removal currently announced for 1.31): move it to an ObjectStore"
        ),
        "{}",
        got[0].message
    );
    // (image, flagged)
    let images = [
        ("ghcr.io/cloudnative-pg/postgresql:17.5-minimal-bookworm", true),
        ("ghcr.io/cloudnative-pg/postgresql:17-standard-trixie", true),
        (
            "ghcr.io/cloudnative-pg/postgresql:17.5-202506020807-minimal-bookworm@sha256:abc",
            true,
        ),
        ("ghcr.io/cloudnative-pg/postgresql:17-minimal", true),
        ("ghcr.io/cloudnative-pg/postgresql:17.5-system-bookworm", false),
        ("ghcr.io/cloudnative-pg/postgresql:17.5", false),
        ("registry.example.com/minimal-images/postgresql:17.5", false),
        ("ghcr.io/acme/postgresql:17-minimalist", false),
    ];
    for (image, flagged) in images {
        let extra = format!("  imageName: {image}\n");
        let got = run(&in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, &extra));
        let image_findings: Vec<_> = got
            .iter()
            .filter(|v| v.path.as_deref() == Some("spec.imageName"))
            .collect();
        assert_eq!(image_findings.len(), usize::from(flagged), "{image}: {got:?}");
        if flagged {
            assert!(
                image_findings[0].message.contains("without barman-cloud"),
                "{}",
                image_findings[0].message
            );
        }
        // With the plugin there is no in-tree backup to break.
        assert!(run(&plugin_cluster(&extra)).is_empty(), "{image}");
    }
}

#[test]
fn the_plugin_object_store_must_exist() {
    let store = object_store("retentionPolicy: 30d", GZIP, "");
    let cluster = plugin_cluster("");
    let p = Policy::default();
    let run = |yaml: &str, at: At| run_rule(store_exists, yaml, "Cluster/shop-pg", at, &p);
    assert!(run(&format!("{cluster}{store}"), At::Complete).is_empty());
    assert!(run(&cluster, At::Offline).is_empty(), "unknown never reports");
    let absent = run(&cluster, At::Complete);
    assert_eq!(
        absent[0].message,
        "barmanObjectName shop-backups names no barmancloud.cnpg.io/v1 ObjectStore in namespace shop: create it or fix the name, or WAL piles up on the volumes"
    );
    assert_eq!(
        absent[0].path.as_deref(),
        Some("spec.plugins[0].parameters.barmanObjectName")
    );
    assert!(!absent[0].warn_only);
    assert!(
        run(&cluster, At::Create)[0].warn_only,
        "a new Cluster may precede its ObjectStore"
    );
    assert!(!run(&cluster, At::Update)[0].warn_only);
    // An ObjectStore in another namespace does not count.
    let elsewhere = format!("{cluster}{}", store.replace("namespace: shop", "namespace: backups"));
    assert_eq!(run(&elsewhere, At::Complete).len(), 1);
    // A missing barmanObjectName is a finding even when nothing else is known.
    let unnamed = cluster.replace("      parameters: {barmanObjectName: shop-backups}\n", "");
    let got = run(&unnamed, At::Offline);
    assert_eq!(got.len(), 1);
    assert!(got[0].message.contains("has no parameters.barmanObjectName"));
}

/// Every message of the backup and schedule rules fits kube-apiserver's 256-character warning,
/// even as an audit-mode would-be denial, for real-shaped (long) names.
#[test]
fn messages_fit_an_admission_warning_for_real_names() {
    use crate::rules::schedule;
    let p = Policy::from_yaml("rules: {backup-compression: {allowed: [zstd, lz4]}}").unwrap();
    let oci = "    endpointURL: https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com\n";
    let long = |s: &str| {
        s.replace("shop-pg", "payments-ledger-pg")
            .replace("shop-backups", "payments-ledger-backups-prod")
            .replace("namespace: shop", "namespace: payments-production")
    };
    let bare = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: shop-pg, namespace: shop}\nspec:\n  instances: 1\n";
    let tree = in_tree_cluster(
        "retentionPolicy: 2d",
        &format!("  {oci}      wal: {{compression: brotli}}\n      data: {{compression: xz}}\n"),
        "  env: [{name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_supported}, {name: AWS_RESPONSE_CHECKSUM_VALIDATION, value: WHEN_SUPPORTED}]\n",
    );
    let disabled = plugin_cluster("").replace("isWALArchiver: true", "isWALArchiver: true\n      enabled: false");
    let store = object_store("retentionPolicy: 30 days", oci, "");
    let mut inputs: Vec<(Check, String, &str)> = vec![
        (configured, bare.to_string(), "Cluster/shop-pg"),
        (configured, disabled, "Cluster/shop-pg"),
        (retention, tree.clone(), "Cluster/shop-pg"),
        (compression, tree.clone(), "Cluster/shop-pg"),
        (s3_compat_checksums, tree.clone(), "Cluster/shop-pg"),
        (in_tree_deprecated, tree.clone(), "Cluster/shop-pg"),
        (store_exists, plugin_cluster(""), "Cluster/shop-pg"),
        (schedule::present, plugin_cluster(""), "Cluster/shop-pg"),
        (retention, store.clone(), "ObjectStore/shop-backups"),
        (compression, store.clone(), "ObjectStore/shop-backups"),
        (
            s3_compat_checksums,
            format!("{}{store}", plugin_cluster("")),
            "Cluster/shop-pg",
        ),
    ];
    let cluster = plugin_cluster("");
    for (expr, method) in [
        ("0 2 * * *", "plugin"),
        ("0 2 * * 0", ""),
        ("30 1 1-7,15-21 * *", "barmanObjectStore"),
        ("0 0 2 * * 0", "volumeSnapshot"),
        ("every day at two", "pgdump"),
        (
            "0 0 0 30 2 *",
            "plugin\n  pluginConfiguration: {name: barman-cloud.cnpg.io}",
        ),
    ] {
        let sb = format!(
            "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {{name: shop-pg-daily, namespace: shop}}\nspec:\n  schedule: '{expr}'\n  cluster: {{name: shop-pg}}\n  method: {method}\n---\n{cluster}"
        );
        inputs.push((schedule::schedule, sb.clone(), "ScheduledBackup/shop-pg-daily"));
        inputs.push((schedule::target, sb, "ScheduledBackup/shop-pg-daily"));
    }
    let mut seen = 0;
    for (check, yaml, target) in inputs {
        let yaml = long(&yaml);
        let target = long(target);
        for v in run_rule(check, &yaml, &target, At::Complete, &p) {
            let warning = format!("dbhook: audit: would deny: [{}] {}", v.rule, v.message);
            assert!(
                warning.chars().count() <= 256,
                "{} chars: {warning}",
                warning.chars().count()
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "{seen}");
}

#[test]
fn retention_evidence_quotes_the_value_or_says_it_is_unset() {
    let p = Policy::default();
    let evidence = |yaml: &str| {
        let v = run_rule(retention, yaml, "ObjectStore/shop-backups", At::Complete, &p);
        assert_eq!(v.len(), 1, "{v:?}");
        (v[0].observed.clone().unwrap(), v[0].expected.clone().unwrap())
    };
    let (observed, expected) = evidence(&object_store("retentionPolicy: 3d", GZIP, ""));
    assert_eq!(observed, "spec.retentionPolicy \"3d\"");
    assert_eq!(
        expected,
        "spec.retentionPolicy matching ^[1-9][0-9]*[dwm]$, at least 7 days"
    );
    for unset in ["", "retentionPolicy: ''"] {
        let (observed, _) = evidence(&object_store(unset, GZIP, ""));
        assert_eq!(observed, "spec.retentionPolicy unset", "{unset:?}");
    }
}

#[test]
fn a_disabled_plugin_is_not_called_enabled_and_other_plugins_need_no_object_store() {
    let disabled = plugin_cluster("").replace("      isWALArchiver: true\n", "      enabled: false\n");
    let got = found(configured, &disabled, "Cluster/shop-pg", "");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].contains("is enabled but not"), "{}", got[0]);
    assert!(
        got[0].starts_with("WAL is not archived, so there is no point-in-time recovery"),
        "{}",
        got[0]
    );
    let p = Policy::default();
    for (case, cluster) in [
        (
            "a disabled Barman entry without a store name",
            disabled.replace("      parameters: {barmanObjectName: shop-backups}\n", ""),
        ),
        (
            "another plugin",
            plugin_cluster("")
                .replace("barman-cloud.cloudnative-pg.io", "pgbackrest.dalibo.com")
                .replace("      parameters: {barmanObjectName: shop-backups}\n", ""),
        ),
    ] {
        let got = run_rule(store_exists, &cluster, "Cluster/shop-pg", At::Complete, &p);
        assert!(got.is_empty(), "{case}: {got:?}");
    }
}
