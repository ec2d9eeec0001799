use super::*;
use crate::rules::fixture::{
    ADMIT_CREATE, ADMIT_UPDATE, COMPLETE, OFFLINE, SHOP, check, check_against, edit, messages,
};

const ROLLOUT: &str = "Rollout/web";
const JOB: &str = "Job/web-migrate";

fn without_cluster() -> String {
    SHOP.split("---\n")
        .filter(|d| !d.contains("kind: Cluster"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The shop example with the Cluster bootstrapped from a user-supplied Secret.
fn user_secret(method: &str) -> String {
    let bootstrap = match method {
        "initdb" => {
            "  bootstrap:\n    initdb:\n      database: shop\n      owner: shop\n      secret:\n        name: shop-app-creds\n"
        }
        "recovery" => {
            "  bootstrap:\n    recovery:\n      source: old-pg\n      secret:\n        name: shop-app-creds\n"
        }
        "pg_basebackup" => {
            "  bootstrap:\n    pg_basebackup:\n      source: old-pg\n      secret:\n        name: shop-app-creds\n"
        }
        _ => unreachable!(),
    };
    edit(
        SHOP,
        "  bootstrap:\n    initdb:\n      database: shop\n      owner: shop\n",
        bootstrap,
    )
}

fn annotate(yaml: &str, annotations: &str) -> String {
    edit(
        yaml,
        "    app.kubernetes.io/name: web\n    dbhook.io/cluster: shop-pg\nspec:\n",
        &format!(
            "    app.kubernetes.io/name: web\n    dbhook.io/cluster: shop-pg\n  annotations: {annotations}\nspec:\n"
        ),
    )
}

#[test]
fn the_labelled_cluster_must_exist_when_the_view_can_tell() {
    assert!(check(cluster_exists, SHOP, ROLLOUT, COMPLETE).is_empty());
    assert!(check(cluster_exists, SHOP, JOB, COMPLETE).is_empty());
    let missing = without_cluster();
    for target in [ROLLOUT, JOB] {
        let v = check(cluster_exists, &missing, target, COMPLETE);
        assert_eq!(
            messages(&v),
            vec![
                "label dbhook.io/cluster=shop-pg names no CNPG Cluster in namespace shop: Secret shop-pg-app will never exist and the pods will not start; fix the label or create the Cluster"
            ],
            "{target}"
        );
        assert!(!v[0].warn_only);
        assert!(
            check(cluster_exists, &missing, target, OFFLINE).is_empty(),
            "unknown never reports"
        );
    }
    let typo = edit(
        SHOP,
        "    dbhook.io/cluster: shop-pg\nspec:\n  replicas",
        "    dbhook.io/cluster: shop-db\nspec:\n  replicas",
    );
    assert_eq!(check(cluster_exists, &typo, ROLLOUT, COMPLETE).len(), 1);
    // Same name in another namespace does not count.
    let other_ns = edit(
        SHOP,
        "  name: shop-pg\n  namespace: shop\n",
        "  name: shop-pg\n  namespace: db\n",
    );
    assert_eq!(check(cluster_exists, &other_ns, ROLLOUT, COMPLETE).len(), 1);
    // Unlabelled workloads and other kinds are not checked.
    assert!(check(cluster_exists, &missing, "ObjectStore/shop-backups", COMPLETE).is_empty());
}

#[test]
fn cluster_exists_only_warns_at_admission_create() {
    let missing = without_cluster();
    let v = check_against(cluster_exists, SHOP, ROLLOUT, &missing, ADMIT_CREATE);
    assert!(v.len() == 1 && v[0].warn_only);
    let v = check_against(cluster_exists, SHOP, ROLLOUT, &missing, ADMIT_UPDATE);
    assert!(v.len() == 1 && !v[0].warn_only);
}

#[test]
fn cluster_exists_covers_every_workload_kind() {
    let kinds = [
        (
            "apps/v1",
            "Deployment",
            "spec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        ),
        (
            "apps/v1",
            "StatefulSet",
            "spec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        ),
        (
            "batch/v1",
            "Job",
            "spec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        ),
        (
            "batch/v1",
            "CronJob",
            "spec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a, image: 'a:1'}]\n",
        ),
    ];
    for (api, kind, spec) in kinds {
        let yaml = format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: w, namespace: shop, labels: {{dbhook.io/cluster: nope}}}}\n{spec}"
        );
        assert_eq!(
            check(cluster_exists, &yaml, &format!("{kind}/w"), COMPLETE).len(),
            1,
            "{kind}"
        );
    }
}

#[test]
fn a_user_supplied_bootstrap_secret_has_only_username_and_password() {
    // (bootstrap method, workload annotations, expected fragment or "" for none)
    let cases = [
        (
            "initdb",
            "{}",
            "Cluster shop-pg bootstraps (initdb) with user Secret shop-app-creds: CNPG creates no shop-pg-app, and shop-app-creds has only username/password; set dbhook.io/secret-name: shop-app-creds, dbhook.io/secret-key: password",
        ),
        ("recovery", "{}", "bootstraps (recovery) with"),
        ("pg_basebackup", "{}", "bootstraps (pg_basebackup) with"),
        (
            "initdb",
            "{dbhook.io/secret-key: password}",
            "CNPG creates no shop-pg-app",
        ),
        (
            "initdb",
            "{dbhook.io/secret-name: shop-app-creds}",
            "which has only username/password: key uri does not exist; use dbhook.io/secret-key: password or a Secret that has key uri",
        ),
        (
            "initdb",
            "{dbhook.io/secret-name: shop-app-creds, dbhook.io/secret-key: jdbc-uri}",
            "key jdbc-uri does not exist",
        ),
        (
            "initdb",
            "{dbhook.io/secret-name: shop-app-creds, dbhook.io/secret-key: password}",
            "",
        ),
        (
            "initdb",
            "{dbhook.io/secret-name: shop-app-creds, dbhook.io/secret-key: username}",
            "",
        ),
        ("initdb", "{dbhook.io/secret-name: my-own-secret}", ""),
    ];
    for (method, annotations, want) in cases {
        let yaml = annotate(&user_secret(method), annotations);
        let v = check(app_secret_has_key, &yaml, ROLLOUT, OFFLINE);
        if want.is_empty() {
            assert!(v.is_empty(), "{method} {annotations}: {v:?}");
        } else {
            assert_eq!(v.len(), 1, "{method} {annotations}: {v:?}");
            assert!(v[0].message.contains(want), "{method} {annotations}: {}", v[0].message);
        }
    }
    // The plain example: CNPG generates shop-pg-app with every key.
    assert!(check(app_secret_has_key, SHOP, ROLLOUT, COMPLETE).is_empty());
    // A user Secret named like the default one.
    let same_name = edit(&user_secret("initdb"), "name: shop-app-creds", "name: shop-pg-app");
    let v = check(app_secret_has_key, &same_name, ROLLOUT, OFFLINE);
    assert!(v[0].message.contains("key uri does not exist"), "{v:?}");
    // The Job and the Rollout are both checked; the policy's default key counts.
    assert_eq!(check(app_secret_has_key, &user_secret("initdb"), JOB, OFFLINE).len(), 1);
    let policy = crate::policy::Policy::from_yaml("injection: {secretKey: password}\n").unwrap();
    let run = crate::rules::fixture::Run {
        policy: Some(&policy),
        ..OFFLINE
    };
    let yaml = annotate(&user_secret("initdb"), "{dbhook.io/secret-name: shop-app-creds}");
    assert!(check(app_secret_has_key, &yaml, ROLLOUT, run).is_empty());
    // Unknown cluster: nothing.
    assert!(
        check_against(
            app_secret_has_key,
            &user_secret("initdb"),
            ROLLOUT,
            &without_cluster(),
            COMPLETE
        )
        .is_empty()
    );
}

#[test]
fn warnings_fit_the_admission_limit_for_real_names() {
    let cases = [
        (
            user_secret("pg_basebackup"),
            ROLLOUT,
            app_secret_has_key as crate::rules::Check,
        ),
        (
            annotate(&user_secret("initdb"), "{dbhook.io/secret-name: shop-app-creds}"),
            ROLLOUT,
            app_secret_has_key,
        ),
        (without_cluster(), ROLLOUT, cluster_exists),
    ];
    for (yaml, target, rule) in cases {
        let found = check(rule, &yaml, target, COMPLETE);
        // Each case warns once: a case that stopped warning would pass the length check vacuously.
        assert_eq!(found.len(), 1, "{yaml}: {found:?}");
        for v in found {
            let warning = format!("dbhook: [{}] {}", v.rule, v.message);
            assert!(
                warning.chars().count() <= 256,
                "{} chars: {warning}",
                warning.chars().count()
            );
        }
    }
}
