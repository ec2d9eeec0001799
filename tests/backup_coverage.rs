//! `scheduled-backup-coverage` end to end: `dbhook check --complete` over manifests as a CI gate
//! runs it, and the webhook over TLS judging ScheduledBackup changes with the cluster view fed
//! by the fake API server.

use crate::cli_support::{dbhook, stdout};
use crate::server_support as server;
use crate::support::{
    ALL_CRDS, CLUSTERS, FakeApiServer, NAMESPACES, NS, OBJECT_STORES, SCHEDULED_BACKUPS, cnpg_cluster, eventually,
    namespace, object_store, scheduled_backup,
};

use serde_json::{Value, json};

const SHOP: &str = include_str!("../examples/shop.yaml");

/// A ScheduledBackup of shop-pg: name, schedule, extra lines under `spec:`.
type Backup<'a> = (&'a str, &'a str, &'a str);

/// examples/shop.yaml with its ScheduledBackup replaced by `backups`.
fn shop_with(backups: &[Backup]) -> String {
    let start = SHOP
        .find("apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup")
        .unwrap();
    let end = start + SHOP[start..].find("---\n").unwrap() + 4;
    let mut text = format!("{}{}", &SHOP[..start], &SHOP[end..]);
    for (name, schedule, extra) in backups {
        text.push_str(&format!(
            "---\napiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  schedule: \"{schedule}\"\n  cluster:\n    name: shop-pg\n  method: plugin\n  pluginConfiguration:\n    name: barman-cloud.cloudnative-pg.io\n{extra}"
        ));
    }
    text
}

/// The actions of `rule` in a `check -o json` report.
fn actions(report: &Value, rule: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            format!(
                "{} {}",
                f["action"].as_str().unwrap(),
                f["object"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn check_complete_judges_the_union_of_a_clusters_scheduled_backups() {
    const DAILY: Backup = ("shop-pg-daily", "0 0 2 * * *", "");
    const WEEKLY: Backup = ("shop-pg-weekly", "0 0 3 * * 0", "");
    const SUSPENDED_DAILY: Backup = ("shop-pg-daily", "0 0 2 * * *", "  suspend: true\n");
    // (case, backups, --complete, coverage finding); a deny finding makes the exit code 1
    let cases: Vec<(&str, Vec<Backup>, bool, Option<&str>)> = vec![
        ("daily and weekly", vec![DAILY, WEEKLY], true, None),
        ("weekly alone", vec![WEEKLY], true, Some("deny shop-pg")),
        (
            "weekly alone, input not complete",
            vec![WEEKLY],
            false,
            Some("warn shop-pg"),
        ),
        (
            "weekly, daily suspended",
            vec![SUSPENDED_DAILY, WEEKLY],
            true,
            Some("deny shop-pg"),
        ),
        (
            "weekdays and a weekend backup",
            vec![
                ("shop-pg-weekdays", "0 0 2 * * 1-5", ""),
                ("shop-pg-weekend", "0 0 2 * * 0,6", ""),
            ],
            true,
            None,
        ),
        (
            "@every within the limit",
            vec![("shop-pg-often", "@every 12h", "")],
            true,
            None,
        ),
        (
            "a monthly one and a daily one",
            vec![DAILY, ("shop-pg-monthly", "0 0 4 1 * *", "")],
            true,
            None,
        ),
    ];
    for (case, backups, complete, want) in cases {
        let code = if want.is_some_and(|w| w.starts_with("deny")) {
            1
        } else {
            0
        };
        let input = shop_with(&backups);
        let mut args = vec!["check", "-o", "json"];
        if complete {
            args.push("--complete");
        }
        args.push("-");
        let out = dbhook(&args, Some(&input));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(out.status.code(), Some(code), "{case}: {}", stdout(&out));
        let want: Vec<&str> = want.into_iter().collect();
        assert_eq!(actions(&report, "scheduled-backup-coverage"), want, "{case}: {report}");
    }
    // The text output says what is missing.
    let out = dbhook(
        &["check", "--complete", "-"],
        Some(&shop_with(&[SUSPENDED_DAILY, WEEKLY])),
    );
    let text = stdout(&out);
    assert!(
        text.contains(
            "ScheduledBackups of Cluster shop-pg (shop-pg-weekly) leave up to 7 days without a base backup, over \
             maxIntervalHours 24; not counted: shop-pg-daily: suspended"
        ),
        "{text}"
    );
}

#[test]
fn a_policy_with_the_old_max_interval_key_still_loads_with_a_note() {
    let mut policy = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::io::Write::write_all(
        &mut policy,
        b"apiVersion: dbhook.io/v1alpha1\nkind: Policy\nrules:\n  scheduled-backup-schedule: {maxIntervalHours: 168}\n",
    )
    .unwrap();
    let path = policy.path().to_str().unwrap();
    let weekly = shop_with(&[("shop-pg-weekly", "0 0 3 * * 0", "")]);
    let out = dbhook(&["check", "--complete", "--policy", path, "-"], Some(&weekly));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("maxIntervalHours is deprecated"), "{err}");
    assert!(err.contains("scheduled-backup-coverage"), "{err}");
}

/// An AdmissionReview for a ScheduledBackup as kube-apiserver sends it.
fn review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let options_kind = if operation == "CREATE" {
        "CreateOptions"
    } else {
        "UpdateOptions"
    };
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "postgresql.cnpg.io", "version": "v1", "kind": "ScheduledBackup"},
            "resource": {"group": "postgresql.cnpg.io", "version": "v1", "resource": "scheduledbackups"},
            "requestKind": {"group": "postgresql.cnpg.io", "version": "v1", "kind": "ScheduledBackup"},
            "requestResource": {"group": "postgresql.cnpg.io", "version": "v1", "resource": "scheduledbackups"},
            "name": object["metadata"]["name"], "namespace": NS, "operation": operation,
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
            "object": object, "oldObject": old.cloned().unwrap_or(Value::Null), "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind}
        }
    })
}

/// A ScheduledBackup of shop-pg as the API server returns it (apiVersion, kind, managedFields).
fn backup(name: &str, schedule: &str) -> Value {
    let mut b = scheduled_backup(name, "shop-pg");
    b["apiVersion"] = json!("postgresql.cnpg.io/v1");
    b["kind"] = json!("ScheduledBackup");
    b["spec"]["schedule"] = json!(schedule);
    b["metadata"]["managedFields"] = json!([{"manager": "argocd-controller", "operation": "Apply"}]);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_judges_scheduled_backup_changes_against_the_clusters_coverage() {
    let api = FakeApiServer::start(&ALL_CRDS).await;
    api.apply(
        NAMESPACES,
        namespace("shop", json!({"kubernetes.io/metadata.name": "shop"})),
    );
    api.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    api.apply(OBJECT_STORES, object_store("shop-pg-store"));
    let daily = api.apply(SCHEDULED_BACKUPS, backup("shop-pg-daily", "0 0 2 * * *"));
    let h = crate::support::start(&api).await;
    h.synced().await;

    let pki = server::Pki::new();
    let mut config = server::config(pki.tls_paths());
    config.view = h.view.clone();
    let running = server::start(config).await;
    let client = server::client(&pki.bundle.ca_cert, running.addr, false);
    let validate = |r: Value| {
        let client = client.clone();
        async move { server::post(&client, running.addr, "/validate", &r).await.json() }
    };

    // A weekly full backup admitted while the daily one exists: allowed, nothing to say.
    let weekly = backup("shop-pg-weekly", "0 0 3 * * 0");
    let answer = validate(review("u1", "CREATE", &weekly, None)).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        !answer["response"]["warnings"]
            .to_string()
            .contains("scheduled-backup-coverage"),
        "{answer}"
    );
    let weekly = api.apply(SCHEDULED_BACKUPS, weekly);
    eventually("the view lists both ScheduledBackups", || async {
        use dbhook::view::View;
        (h.view.scheduled_backups_for(NS, "shop-pg").items.len() == 2).then_some(())
    })
    .await;

    // An UPDATE that suspends the only daily one leaves a weekly backup alone: denied.
    let mut suspended = daily.clone();
    suspended["spec"]["suspend"] = json!(true);
    let answer = validate(review("u2", "UPDATE", &suspended, Some(&daily))).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["uid"], "u2");
    let message = answer["response"]["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("dbhook denied ScheduledBackup shop/shop-pg-daily: [scheduled-backup-coverage] "),
        "{message}"
    );
    assert!(
        message.contains("leave up to 7 days without a base backup"),
        "{message}"
    );
    assert!(message.contains("shop-pg-daily: suspended"), "{message}");

    // Unrelated changes to either of them stay allowed.
    let mut relabelled = daily.clone();
    relabelled["metadata"]["labels"] = json!({"team": "db"});
    let answer = validate(review("u3", "UPDATE", &relabelled, Some(&daily))).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let mut moved = weekly.clone();
    moved["spec"]["schedule"] = json!("0 0 4 * * 6");
    let answer = validate(review("u4", "UPDATE", &moved, Some(&weekly))).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

/// A Cluster shop-pg with `spec` (YAML under `spec:`) and a daily plugin ScheduledBackup.
fn cluster_with(spec: &str) -> String {
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: shop-pg, namespace: shop}}\nspec:\n{spec}---\napiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {{name: shop-pg-daily, namespace: shop}}\nspec:\n  schedule: '0 0 2 * * *'\n  cluster: {{name: shop-pg}}\n  method: plugin\n  pluginConfiguration: {{name: pgbackrest.dalibo.com}}\n"
    )
}

/// (case, Cluster spec, with the policy, rule, expected findings as "action object")
type Case<'a> = (&'a str, &'a str, bool, &'a str, Vec<&'a str>);

#[test]
fn check_complete_judges_backup_configuration_as_cnpg_runs_it() {
    let pgbackrest =
        "  plugins:\n    - name: pgbackrest.dalibo.com\n      isWALArchiver: true\n      parameters: {stanza: shop}\n";
    let not_archiver = "  plugins:\n    - name: pgbackrest.dalibo.com\n      parameters: {stanza: shop}\n";
    let replica = "  replica: {primary: shop-pg-east, source: shop-pg-east}\n  externalClusters:\n    - name: shop-pg-east\n      barmanObjectStore: {destinationPath: 's3://east/shop', endpointURL: 'https://Objects.Example.NET'}\n";
    let snapshots = "  backup:\n    volumeSnapshot: {className: csi-snapclass}\n";
    let minimal = "  imageName: ghcr.io/cloudnative-pg/postgresql:17.5-minimal-bookworm\n  backup:\n    retentionPolicy: 30d\n    barmanObjectStore:\n      destinationPath: s3://backups/shop\n      endpointURL: http://minio.minio:9000\n      wal: {compression: gzip}\n      data: {compression: gzip}\n";
    let allow = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nrules:\n  backup-configured: {allowVolumeSnapshotOnly: true}\n  backup-s3-compat-checksums: {ignoreEndpoints: ['*.example.net']}\n";
    let mut policy = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::io::Write::write_all(&mut policy, allow.as_bytes()).unwrap();
    let policy = policy.path().to_str().unwrap().to_string();
    let cases: Vec<Case> = vec![
        (
            "pgBackRest archives WAL",
            pgbackrest,
            false,
            "backup-configured",
            vec![],
        ),
        (
            "a plugin that is not the archiver",
            not_archiver,
            false,
            "backup-configured",
            vec!["deny shop-pg"],
        ),
        (
            "a replica cluster",
            replica,
            false,
            "backup-configured",
            vec!["warn shop-pg"],
        ),
        (
            "a replica's external in-tree store",
            replica,
            false,
            "backup-in-tree-deprecated",
            vec!["warn shop-pg"],
        ),
        (
            "the external store's host, as written",
            replica,
            false,
            "backup-s3-compat-checksums",
            vec!["warn shop-pg"],
        ),
        (
            "the external store's host, ignored",
            replica,
            true,
            "backup-s3-compat-checksums",
            vec![],
        ),
        (
            "volume snapshots only",
            snapshots,
            false,
            "backup-configured",
            vec!["deny shop-pg"],
        ),
        (
            "volume snapshots only, allowed",
            snapshots,
            true,
            "backup-configured",
            vec!["warn shop-pg"],
        ),
        (
            "in-tree on a minimal image",
            minimal,
            false,
            "backup-in-tree-deprecated",
            vec!["warn shop-pg", "warn shop-pg"],
        ),
    ];
    for (case, spec, with_policy, rule, want) in cases {
        let mut args = vec!["check", "--complete", "-o", "json"];
        if with_policy {
            args.extend(["--policy", policy.as_str()]);
        }
        args.push("-");
        let out = dbhook(&args, Some(&cluster_with(spec)));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(actions(&report, rule), want, "{case}: {report}");
        if rule == "backup-s3-compat-checksums" && !want.is_empty() {
            assert!(
                report.to_string().contains("fail against Objects.Example.NET"),
                "{case}: {report}"
            );
        }
    }
}
