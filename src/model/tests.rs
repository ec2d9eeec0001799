//! The decoded model's own logic: labels and annotations, names, pairing, CNPG plugin entries.

use super::*;
use crate::testing::object;

#[test]
fn marks_are_sorted_deduplicated_and_know_when_they_are_empty() {
    assert!(Marks::default().is_empty());
    let marks: Marks = [("b", "2"), ("a", "1"), ("b", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(!marks.is_empty());
    assert_eq!(marks.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    assert_eq!((marks.get("a"), marks.get("c")), (Some("1"), None));
}

fn job(meta: &str) -> Object {
    object(&format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {meta}\nspec:\n  template:\n    spec:\n      containers: [{{name: m, image: ghcr.io/acme/web:1}}]\n"
    ))
}

fn app(kind: &str, labels: &str) -> Object {
    let api = if kind == "Rollout" {
        "argoproj.io/v1alpha1"
    } else {
        "apps/v1"
    };
    object(&format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: web, namespace: shop, labels: {labels}}}\nspec:\n  template:\n    spec:\n      containers: [{{name: web, image: ghcr.io/acme/web:1}}]\n"
    ))
}

#[test]
fn the_display_name_is_the_name_or_else_the_generate_name_prefix() {
    let named = job("{name: web-migrate, generateName: web-migrate-, namespace: shop}");
    assert_eq!(named.display_name(), "web-migrate");
    let generated = job("{generateName: web-migrate-, namespace: shop}");
    assert_eq!(generated.display_name(), "web-migrate-*");
    let neither = job("{generateName: '', namespace: shop}");
    assert_eq!(neither.display_name(), "");
}

#[test]
fn only_labelled_rollouts_deployments_and_statefulsets_are_app_workloads() {
    let labelled = "{dbhook.io/cluster: shop-pg}";
    for kind in ["Rollout", "Deployment", "StatefulSet"] {
        assert!(app(kind, labelled).is_app_workload(), "{kind}");
        assert!(!app(kind, "{}").is_app_workload(), "unlabelled {kind}");
    }
    assert!(!job("{name: m, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}").is_app_workload());
}

#[test]
fn a_job_pairs_by_its_rollout_annotation_or_else_by_the_same_cluster_label() {
    let web = app("Rollout", "{dbhook.io/cluster: shop-pg}");
    let same = job("{name: m, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}");
    let other = job("{name: m, namespace: shop, labels: {dbhook.io/cluster: billing-pg}}");
    let unlabelled = job("{name: m, namespace: shop}");
    let named = job(
        "{name: m, namespace: shop, labels: {dbhook.io/cluster: billing-pg}, annotations: {dbhook.io/rollout: 'api, web'}}",
    );
    let elsewhere = job("{name: m, namespace: billing, labels: {dbhook.io/cluster: shop-pg}}");
    assert!(same.job_pairs_with(&web));
    assert!(!other.job_pairs_with(&web), "another cluster");
    assert!(!unlabelled.job_pairs_with(&web));
    assert!(
        named.job_pairs_with(&web),
        "named in the annotation, whatever its cluster"
    );
    assert!(!elsewhere.job_pairs_with(&web), "another namespace");
    assert!(!same.job_pairs_with(&app("Rollout", "{}")), "an unlabelled app");
}

fn cluster_plugins(plugins: &str) -> ClusterSpec {
    let obj = object(&format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: shop-pg, namespace: shop}}\nspec:\n  instances: 1\n  plugins:\n{plugins}"
    ));
    match obj.spec {
        Spec::Cluster(c) => *c,
        other => panic!("not a Cluster: {other:?}"),
    }
}

#[test]
fn the_barman_plugin_is_the_enabled_barman_entry_that_archives_wal() {
    let c = cluster_plugins(
        "    - {name: pgbackrest.dalibo.com, isWALArchiver: true}\n    - {name: barman-cloud.cloudnative-pg.io, isWALArchiver: false}\n",
    );
    assert!(
        c.barman_plugin().is_none(),
        "another archiver, and a Barman entry that does not archive"
    );
    assert_eq!(c.wal_archiver().map(|p| p.name.as_str()), Some("pgbackrest.dalibo.com"));
    let c = cluster_plugins(
        "    - {name: barman-cloud.cloudnative-pg.io, isWALArchiver: true, enabled: false}\n    - {name: barman-cloud.cloudnative-pg.io, isWALArchiver: true, parameters: {barmanObjectName: b}}\n",
    );
    assert_eq!(c.barman_plugin().and_then(|p| p.barman_object_name()), Some("b"));
}

#[test]
fn barman_plugins_are_the_barman_entries_not_disabled() {
    let c = cluster_plugins(
        "    - {name: pgbackrest.dalibo.com, isWALArchiver: true}\n    - {name: barman-cloud.cloudnative-pg.io, enabled: false}\n    - {name: barman-cloud.cloudnative-pg.io}\n",
    );
    let indexes: Vec<usize> = c.barman_plugins().map(|(i, _)| i).collect();
    assert_eq!(indexes, [2]);
}
