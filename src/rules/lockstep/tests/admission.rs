//! Lockstep at admission (the newest paired Job is the reference) and through a Rollout's
//! `workloadRef`.

use crate::rules::fixture::{
    ADMIT_CREATE, ADMIT_UPDATE, COMPLETE, OFFLINE, SHOP, check, check_against, edit, messages,
};

use super::{JOB, ROLLOUT, ROLLOUT_CONTAINERS, annotate_job, check_fn, failed, job_image, wave_job};

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
            "image ghcr.io/acme/shop-web:sha-1a2b3c4 differs from ghcr.io/acme/shop-web:sha-0000000 of migration Job shop/web-migrate (compared by repository): update both to the same tag"
        ]
    );
    assert!(!got[0].warn_only);
    assert_eq!(check(check_fn, &world, ROLLOUT, ADMIT_CREATE).len(), 1);
}

#[test]
fn a_failed_newest_job_is_not_the_reference() {
    // The release's Job failed (Argo CD keeps it: BeforeHookCreation); the retry's Rollout at
    // the previous, successful Job's tag is judged against that one.
    let world = admission_world("sha-2222222", "sha-1a2b3c4");
    let failed_world = failed(&world);
    assert!(check(check_fn, &failed_world, ROLLOUT, ADMIT_UPDATE).is_empty());
    assert_eq!(
        check(check_fn, &world, ROLLOUT, ADMIT_UPDATE).len(),
        1,
        "not failed: it decides"
    );
    // Offline a failed Job is skipped both ways.
    let yaml = failed(&job_image(SHOP, "ghcr.io/acme/shop-web:sha-2222222"));
    assert!(check(check_fn, &yaml, ROLLOUT, OFFLINE).is_empty());
    assert!(check(check_fn, &yaml, JOB, OFFLINE).is_empty());
    // A condition that is not Failed=True does not count.
    let complete = edit(&yaml, "{type: Failed, status: 'True'", "{type: Failed, status: 'False'");
    assert_eq!(check(check_fn, &complete, ROLLOUT, OFFLINE).len(), 1);
}

#[test]
fn at_admission_a_new_migration_job_is_not_checked_against_the_live_rollout() {
    // Argo CD creates the PreSync Job for sha-2 while the Rollout still runs sha-1a2b3c4.
    let yaml = job_image(SHOP, "ghcr.io/acme/shop-web:sha-2222222");
    assert!(check(check_fn, &yaml, JOB, ADMIT_CREATE).is_empty());
    assert!(check(check_fn, &yaml, JOB, ADMIT_UPDATE).is_empty());
    let wave = wave_job(&yaml, "-1");
    assert!(check(check_fn, &wave, JOB, ADMIT_CREATE).is_empty());
    // Named app missing at admission: also nothing (first install creates the Job first).
    let named = annotate_job(SHOP, "dbhook.io/rollout: api");
    assert!(check(check_fn, &named, JOB, ADMIT_CREATE).is_empty());
}

#[test]
fn at_admission_the_newest_job_of_this_app_wins_over_another_apps_newer_job() {
    // Two apps share the cluster label; worker's Job is newer but runs another repository,
    // with a service-mesh sidecar both pods carry: sidecars do not pair.
    let world = admission_world("sha-1a2b3c4", "sha-0000000");
    let worker_job = "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: worker-migrate\n  namespace: shop\n  creationTimestamp: '2026-11-23T07:59:30Z'\n  labels: {dbhook.io/cluster: shop-pg}\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    spec:\n      initContainers: [{name: istio-proxy, image: 'docker.io/istio/proxyv2:1.22.0', restartPolicy: Always}]\n      containers: [{name: m, image: 'ghcr.io/acme/worker:sha-5'}]\n";
    let world = edit(
        &format!("{world}{worker_job}"),
        ROLLOUT_CONTAINERS,
        "    spec:\n      initContainers: [{name: istio-proxy, image: 'docker.io/istio/proxyv2:1.22.0', restartPolicy: Always}]\n      containers:\n        - name: web\n",
    );
    assert!(check(check_fn, &world, ROLLOUT, ADMIT_UPDATE).is_empty());
}

#[test]
fn at_admission_another_apps_newer_job_with_a_malformed_image_does_not_hide_this_apps_job() {
    let world = admission_world("sha-0000000", "sha-0000000");
    let broken = "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: worker-migrate\n  namespace: shop\n  creationTimestamp: '2026-11-23T07:59:30Z'\n  labels: {dbhook.io/cluster: shop-pg}\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    spec:\n      containers: [{name: m, image: 'ghcr.io/Acme/worker:sha-5'}]\n";
    let got = check(check_fn, &format!("{world}{broken}"), ROLLOUT, ADMIT_UPDATE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].message.contains("of migration Job shop/web-migrate "),
        "{}",
        got[0].message
    );
}

/// The shop Rollout using `workloadRef` to Deployment `web`, which holds the template.
fn workload_ref(deployment_tag: Option<&str>) -> String {
    let rollout = edit(
        SHOP,
        "  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: web\n    spec:\n",
        "  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web, scaleDown: progressively}\n  template_unused:\n    metadata:\n      labels:\n        app.kubernetes.io/name: web\n    spec:\n",
    );
    match deployment_tag {
        None => rollout,
        Some(tag) => format!(
            "{rollout}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels: {{dbhook.io/cluster: shop-pg}}\nspec:\n  replicas: 0\n  template:\n    spec:\n      containers: [{{name: web, image: 'ghcr.io/acme/shop-web:{tag}'}}]\n"
        ),
    }
}

#[test]
fn a_rollout_with_workload_ref_is_compared_through_its_deployment() {
    let yaml = workload_ref(Some("sha-2222222"));
    for run in [OFFLINE, ADMIT_UPDATE] {
        let got = check(check_fn, &yaml, ROLLOUT, run);
        assert_eq!(
            messages(&got),
            vec![
                "image ghcr.io/acme/shop-web:sha-2222222 differs from ghcr.io/acme/shop-web:sha-1a2b3c4 of migration Job shop/web-migrate (compared by repository): update both to the same tag"
            ]
        );
        assert_eq!(got[0].path.as_deref(), Some("spec.workloadRef"));
    }
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert!(
        messages(&on_job)[0].contains("of Rollout shop/web (through Deployment web) (compared by repository)"),
        "{on_job:?}"
    );
    assert!(check(check_fn, &workload_ref(Some("sha-1a2b3c4")), ROLLOUT, OFFLINE).is_empty());
    // The Deployment not in the view: unknown, nothing reported.
    let alone = workload_ref(None);
    for run in [OFFLINE, COMPLETE, ADMIT_UPDATE] {
        assert!(check(check_fn, &alone, ROLLOUT, run).is_empty());
        assert!(check(check_fn, &alone, JOB, run).is_empty());
    }
    // Judged against a view that holds the Deployment, the Rollout object alone decides nothing.
    let got = check_against(check_fn, &alone, ROLLOUT, &yaml, ADMIT_UPDATE);
    assert_eq!(got.len(), 1);
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
            "image ghcr.io/acme/shop-web:sha-1a2b3c4 differs from ghcr.io/acme/shop-web:sha-0000000 of migration Job shop/web-migrate-* (compared by repository): update both to the same tag"
        ]
    );
}
