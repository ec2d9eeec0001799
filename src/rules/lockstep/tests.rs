use crate::rules::fixture::{ADMIT_CREATE, ADMIT_UPDATE, COMPLETE, OFFLINE, SHOP, check, edit, messages};

const ROLLOUT: &str = "Rollout/web";
const JOB: &str = "Job/web-migrate";
const APP_IMAGE: &str = "          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n          ports:";
const JOB_IMAGE: &str = "          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n          command:";

fn app_image(image: &str) -> String {
    edit(SHOP, APP_IMAGE, &format!("          image: {image}\n          ports:"))
}

fn job_image(yaml: &str, image: &str) -> String {
    edit(
        yaml,
        JOB_IMAGE,
        &format!("          image: {image}\n          command:"),
    )
}

fn annotate_job(yaml: &str, annotation: &str) -> String {
    edit(
        yaml,
        "    argocd.argoproj.io/hook: PreSync\n",
        &format!("    argocd.argoproj.io/hook: PreSync\n    {annotation}\n"),
    )
}

#[test]
fn the_example_is_in_lockstep() {
    for target in [ROLLOUT, JOB] {
        for run in [OFFLINE, COMPLETE, ADMIT_CREATE, ADMIT_UPDATE] {
            assert!(check(check_fn, SHOP, target, run).is_empty(), "{target}");
        }
    }
}

use super::check as check_fn;

#[test]
fn offline_a_tag_mismatch_is_reported_on_both_sides() {
    let yaml = job_image(
        &app_image("ghcr.io/acme/shop-web:sha-2222222"),
        "ghcr.io/acme/shop-web:sha-1111111",
    );
    let on_app = check(check_fn, &yaml, ROLLOUT, OFFLINE);
    assert_eq!(
        messages(&on_app),
        vec![
            "image ghcr.io/acme/shop-web tag sha-2222222 differs from migration Job shop/web-migrate (sha-1111111): update both to the same tag"
        ]
    );
    assert_eq!(
        on_app[0].path.as_deref(),
        Some("spec.template.spec.containers[0].image")
    );
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(
        messages(&on_job),
        vec![
            "image ghcr.io/acme/shop-web tag sha-1111111 differs from Rollout shop/web (sha-2222222): update both to the same tag"
        ]
    );
}

#[test]
fn repositories_compare_canonically_and_versions_include_digests() {
    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    // (app image, job image, expected fragment on the app or "" for none)
    let cases = [
        (
            "ghcr.io/acme/shop-web:sha-1a2b3c4",
            "ghcr.io/acme/shop-web:sha-1a2b3c4",
            "",
        ),
        ("app:1", "docker.io/library/app:1", ""),
        (
            "app:2",
            "docker.io/library/app:1",
            "image app tag 2 differs from migration Job shop/web-migrate (1)",
        ),
        ("index.docker.io/acme/web:2", "acme/web:1", "tag 2 differs"),
        (
            &format!("ghcr.io/a/web@{D1}"),
            &format!("ghcr.io/a/web@{D2}"),
            "digest sha256:1111",
        ),
        (
            &format!("ghcr.io/a/web:v1@{D1}"),
            &format!("ghcr.io/a/web:v1@{D2}"),
            "digest sha256:1111",
        ),
        (
            &format!("ghcr.io/a/web:v1@{D1}"),
            "ghcr.io/a/web:v1",
            &format!("version v1@{D1} differs from migration Job shop/web-migrate (v1)"),
        ),
        (
            "ghcr.io/a/web:v1",
            "ghcr.io/a/web",
            "version v1 differs from migration Job shop/web-migrate (no tag)",
        ),
        (
            "localhost:5000/web:v2",
            "localhost:5000/web:v1",
            "image localhost:5000/web tag v2",
        ),
        // Different repositories are different programs (e.g. a flyway image): not compared.
        ("ghcr.io/acme/shop-web:sha-1a2b3c4", "flyway/flyway:10", ""),
        ("ghcr.io/acme/shop-web:1", "ghcr.io/other/shop-web:2", ""),
    ];
    for (app, job, want) in cases {
        let yaml = job_image(&app_image(app), job);
        let got = check(check_fn, &yaml, ROLLOUT, OFFLINE);
        if want.is_empty() {
            assert!(got.is_empty(), "{app} vs {job}: {got:?}");
        } else {
            assert_eq!(got.len(), 1, "{app} vs {job}: {got:?}");
            assert!(got[0].message.contains(want), "{app} vs {job}: {}", got[0].message);
        }
    }
}

#[test]
fn init_containers_and_sidecars_count() {
    // The Job runs the app image as an init container and a tool image as its main container.
    let yaml = edit(
        SHOP,
        "      containers:\n        - name: migrate\n          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n",
        "      initContainers:\n        - name: migrate\n          image: ghcr.io/acme/shop-web:sha-0000000\n      containers:\n        - name: notify\n          image: curlimages/curl:8.8.0\n",
    );
    let got = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].path.as_deref(),
        Some("spec.template.spec.initContainers[0].image")
    );
    // An app sidecar with another repository does not matter.
    let sidecar = edit(
        SHOP,
        "---\napiVersion: batch/v1",
        "        - name: proxy\n          image: envoyproxy/envoy:v1.31.0\n---\napiVersion: batch/v1",
    );
    assert!(check(check_fn, &sidecar, ROLLOUT, OFFLINE).is_empty());
}

#[test]
fn explicit_pairing_without_a_common_repository_is_a_violation() {
    let yaml = annotate_job(&job_image(SHOP, "flyway/flyway:10"), "dbhook.io/rollout: web");
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(
        messages(&on_job),
        vec![
            "migration Job shop/web-migrate names Rollout shop/web in dbhook.io/rollout but shares no image repository with it (Job: flyway/flyway:10; web: ghcr.io/acme/shop-web:sha-1a2b3c4): run the migration from the app's image"
        ]
    );
    assert_eq!(check(check_fn, &yaml, ROLLOUT, OFFLINE).len(), 1, "and on the Rollout");
    // The same Job paired only by cluster label: nothing to compare, nothing to say.
    assert!(check(check_fn, &job_image(SHOP, "flyway/flyway:10"), JOB, OFFLINE).is_empty());
}

#[test]
fn an_explicitly_named_app_workload_must_exist_in_a_complete_input() {
    let yaml = annotate_job(SHOP, "dbhook.io/rollout: web, api");
    assert!(check(check_fn, &yaml, JOB, OFFLINE).is_empty(), "unknown: nothing");
    assert_eq!(
        messages(&check(check_fn, &yaml, JOB, COMPLETE)),
        vec![
            "annotation dbhook.io/rollout=api: no Rollout, Deployment or StatefulSet api labelled dbhook.io/cluster exists in namespace shop, so the migration is paired with nothing: fix the name"
        ]
    );
    // The annotation overrides the cluster label: a Job naming another app is not paired with web.
    let other = annotate_job(&job_image(SHOP, "ghcr.io/acme/shop-web:old"), "dbhook.io/rollout: api");
    assert!(check(check_fn, &other, ROLLOUT, OFFLINE).is_empty());
}

#[test]
fn several_app_workloads_share_one_job() {
    let worker = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\n  namespace: shop\n  labels: {dbhook.io/cluster: shop-pg}\nspec:\n  template:\n    spec:\n      containers:\n        - {name: worker, image: 'ghcr.io/acme/shop-web:sha-9999999', args: [worker]}\n";
    let yaml = format!("{SHOP}\n{worker}");
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(
        messages(&on_job),
        vec![
            "image ghcr.io/acme/shop-web tag sha-1a2b3c4 differs from Deployment shop/worker (sha-9999999): update both to the same tag"
        ]
    );
    assert!(check(check_fn, &yaml, ROLLOUT, OFFLINE).is_empty());
    assert_eq!(check(check_fn, &yaml, "Deployment/worker", OFFLINE).len(), 1);
}

#[test]
fn helm_hooks_and_role_labels_mark_migrations_and_other_hooks_do_not() {
    let mismatched = job_image(SHOP, "ghcr.io/acme/shop-web:sha-0000000");
    let hooks = [
        ("argocd.argoproj.io/hook: PreSync", 1),
        ("argocd.argoproj.io/hook: Sync", 1),
        ("argocd.argoproj.io/hook: PostSync", 0),
        ("helm.sh/hook: pre-install,pre-upgrade", 1),
        ("helm.sh/hook: post-install", 0),
    ];
    for (hook, want) in hooks {
        let yaml = edit(&mismatched, "argocd.argoproj.io/hook: PreSync", hook);
        assert_eq!(check(check_fn, &yaml, ROLLOUT, OFFLINE).len(), want, "{hook}");
    }
    let role = edit(
        &edit(&mismatched, "argocd.argoproj.io/hook: PreSync", "example.com/note: x"),
        "    dbhook.io/cluster: shop-pg\n  annotations:",
        "    dbhook.io/cluster: shop-pg\n    dbhook.io/role: migration\n  annotations:",
    );
    assert_eq!(check(check_fn, &role, ROLLOUT, OFFLINE).len(), 1);
}

/// The cluster at admission: the Rollout being updated, the Job of the previous release and
/// the Job Argo CD just created for this release (remembered after HookSucceeded deleted it).
fn admission_world(new_job_tag: &str, old_job_tag: &str) -> String {
    let job = SHOP.split("---\n").nth(4).unwrap();
    let old = edit(
        &edit(
            job,
            "  name: web-migrate\n",
            "  name: web-migrate-old\n  creationTimestamp: '2026-11-22T08:00:00Z'\n",
        ),
        "shop-web:sha-1a2b3c4",
        &format!("shop-web:{old_job_tag}"),
    );
    let new = edit(
        &edit(
            job,
            "  name: web-migrate\n",
            "  name: web-migrate\n  creationTimestamp: '2026-11-23T07:59:00Z'\n",
        ),
        "shop-web:sha-1a2b3c4",
        &format!("shop-web:{new_job_tag}"),
    );
    let rest: Vec<&str> = SHOP.split("---\n").take(4).collect();
    format!(
        "{}---\n{}\n---\n{}\n",
        rest.join("---\n"),
        old.trim_end(),
        new.trim_end()
    )
}

#[test]
fn at_admission_the_app_is_checked_against_the_newest_paired_job_only() {
    // The Rollout (sha-1a2b3c4) matches the new Job; the old one differs and is ignored.
    let world = admission_world("sha-1a2b3c4", "sha-0000000");
    assert!(check(check_fn, &world, ROLLOUT, ADMIT_UPDATE).is_empty());
    // The Rollout is being updated without its migration: the newest Job is older code.
    let world = admission_world("sha-0000000", "sha-1a2b3c4");
    let got = check(check_fn, &world, ROLLOUT, ADMIT_UPDATE);
    assert_eq!(
        messages(&got),
        vec![
            "image ghcr.io/acme/shop-web tag sha-1a2b3c4 differs from migration Job shop/web-migrate (sha-0000000): update both to the same tag"
        ]
    );
    assert!(!got[0].warn_only);
    assert_eq!(check(check_fn, &world, ROLLOUT, ADMIT_CREATE).len(), 1);
}

#[test]
fn at_admission_a_new_migration_job_is_not_checked_against_the_live_rollout() {
    // Argo CD creates the PreSync Job for sha-2 while the Rollout still runs sha-1a2b3c4.
    let yaml = job_image(SHOP, "ghcr.io/acme/shop-web:sha-2222222");
    assert!(check(check_fn, &yaml, JOB, ADMIT_CREATE).is_empty());
    assert!(check(check_fn, &yaml, JOB, ADMIT_UPDATE).is_empty());
    // Named app missing at admission: also nothing (first install creates the Job first).
    let named = annotate_job(SHOP, "dbhook.io/rollout: api");
    assert!(check(check_fn, &named, JOB, ADMIT_CREATE).is_empty());
}

#[test]
fn at_admission_the_newest_job_of_this_app_wins_over_another_apps_newer_job() {
    // Two apps share the cluster label; worker's Job is newer but runs another repository.
    let world = admission_world("sha-1a2b3c4", "sha-0000000");
    let worker_job = "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: worker-migrate\n  namespace: shop\n  creationTimestamp: '2026-11-23T07:59:30Z'\n  labels: {dbhook.io/cluster: shop-pg}\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    spec:\n      containers: [{name: m, image: 'ghcr.io/acme/worker:sha-5'}]\n";
    let world = format!("{world}{worker_job}");
    assert!(check(check_fn, &world, ROLLOUT, ADMIT_UPDATE).is_empty());
}

#[test]
fn a_rollout_with_workload_ref_has_no_images_to_compare() {
    let yaml = edit(
        &annotate_job(SHOP, "dbhook.io/rollout: web"),
        "  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: web\n    spec:\n",
        "  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  template_unused:\n    metadata:\n      labels:\n        app.kubernetes.io/name: web\n    spec:\n",
    );
    assert!(check(check_fn, &yaml, ROLLOUT, OFFLINE).is_empty());
    assert!(check(check_fn, &yaml, JOB, OFFLINE).is_empty());
}

#[test]
fn hook_jobs_with_generate_name_are_named_by_their_prefix() {
    let yaml = edit(
        &job_image(SHOP, "ghcr.io/acme/shop-web:sha-0000000"),
        "  name: web-migrate\n",
        "  generateName: web-migrate-\n",
    );
    let got = check(check_fn, &yaml, ROLLOUT, OFFLINE);
    assert_eq!(
        messages(&got),
        vec![
            "image ghcr.io/acme/shop-web tag sha-1a2b3c4 differs from migration Job shop/web-migrate-* (sha-0000000): update both to the same tag"
        ]
    );
}
