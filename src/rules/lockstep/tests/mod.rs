use crate::policy::Policy;
use crate::rules::Violation;
use crate::rules::fixture::{ADMIT_CREATE, ADMIT_UPDATE, COMPLETE, OFFLINE, Run, SHOP, check, edit, messages};

use super::check as check_fn;

mod admission;
mod evidence;

const ROLLOUT: &str = "Rollout/web";
const JOB: &str = "Job/web-migrate";
const APP_IMAGE: &str = "          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n          ports:";
const JOB_IMAGE: &str = "          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n          command:";
const HOOKS: &str = "    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded\n";
const JOB_END: &str = "          command: [\"/app/migrate\", \"up\"]\n";
const ROLLOUT_CONTAINERS: &str = "    spec:\n      containers:\n        - name: web\n";
const JOB_CONTAINERS: &str = "      containers:\n        - name: migrate\n";
const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn app_image(yaml: &str, image: &str) -> String {
    edit(
        yaml,
        APP_IMAGE,
        &format!("          image: '{image}'\n          ports:"),
    )
}

fn job_image(yaml: &str, image: &str) -> String {
    edit(
        yaml,
        JOB_IMAGE,
        &format!("          image: '{image}'\n          command:"),
    )
}

fn annotate_job(yaml: &str, annotation: &str) -> String {
    edit(
        yaml,
        "    argocd.argoproj.io/hook: PreSync\n",
        &format!("    argocd.argoproj.io/hook: PreSync\n    {annotation}\n"),
    )
}

/// The Job as an Atlas-style kit writes it: no hook, ordered by sync wave `wave`.
fn wave_job(yaml: &str, wave: &str) -> String {
    edit(yaml, HOOKS, &format!("    argocd.argoproj.io/sync-wave: '{wave}'\n"))
}

fn rollout_wave(yaml: &str, wave: &str) -> String {
    edit(
        yaml,
        "    dbhook.io/cluster: shop-pg\nspec:\n  replicas: 3",
        &format!(
            "    dbhook.io/cluster: shop-pg\n  annotations:\n    argocd.argoproj.io/sync-wave: '{wave}'\nspec:\n  replicas: 3"
        ),
    )
}

/// `yaml` with its last Job marked `Failed=True`, as the Job controller writes it.
fn failed(yaml: &str) -> String {
    let at = yaml.rfind(JOB_END).expect("a Job in the fixture");
    let (head, tail) = yaml.split_at(at);
    head.to_string()
        + &edit(
            tail,
            JOB_END,
            &format!(
                "{JOB_END}status:\n  failed: 4\n  conditions:\n    - {{type: FailureTarget, status: 'True', reason: BackoffLimitExceeded}}\n    - {{type: Failed, status: 'True', reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}}\n"
            ),
        )
}

fn policy(yaml: &str) -> Policy {
    Policy::from_yaml(yaml).expect("test policy parses")
}

fn with_policy<'a>(run: Run<'a>, p: &'a Policy) -> Run<'a> {
    Run { policy: Some(p), ..run }
}

fn denies(v: &[Violation]) -> usize {
    v.iter().filter(|v| !v.warn_only).count()
}

#[test]
fn the_example_is_in_lockstep() {
    for target in [ROLLOUT, JOB] {
        for run in [OFFLINE, COMPLETE, ADMIT_CREATE, ADMIT_UPDATE] {
            assert!(check(check_fn, SHOP, target, run).is_empty(), "{target}");
        }
    }
}

#[test]
fn offline_a_tag_mismatch_is_reported_on_both_sides_naming_both_images() {
    let yaml = job_image(
        &app_image(SHOP, "ghcr.io/acme/shop-web:sha-2222222"),
        "ghcr.io/acme/shop-web:sha-1111111",
    );
    let on_app = check(check_fn, &yaml, ROLLOUT, OFFLINE);
    assert_eq!(
        messages(&on_app),
        vec![
            "image ghcr.io/acme/shop-web:sha-2222222 differs from ghcr.io/acme/shop-web:sha-1111111 of migration Job shop/web-migrate (compared by repository): update both to the same tag"
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
            "image ghcr.io/acme/shop-web:sha-1111111 differs from ghcr.io/acme/shop-web:sha-2222222 of Rollout shop/web (compared by repository): update both to the same tag"
        ]
    );
}

/// The same-version rule, both ways round and on both sides: (app image, Job image, outcome)
/// where the outcome is "" (allowed), "warn: <fragment>" or "deny: <fragment>".
#[test]
fn images_compare_as_registries_resolve_them() {
    let tagged_d1 = format!("ghcr.io/acme/web:v1@{D1}");
    let tagged_d1_v2 = format!("ghcr.io/acme/web:v2@{D1}");
    let only_d1 = format!("ghcr.io/acme/web@{D1}");
    let only_d2 = format!("ghcr.io/acme/web@{D2}");
    let cases: Vec<(&str, &str, &str)> = vec![
        ("ghcr.io/acme/web:v1", "ghcr.io/acme/web:v1", ""),
        // Docker Hub spellings and the default tag.
        ("app:1", "docker.io/library/app:1", ""),
        ("app", "docker.io/library/app:latest", ""),
        ("index.docker.io/acme/web:2", "acme/web:2", ""),
        ("acme/web", "index.docker.io/acme/web:latest", ""),
        ("GHCR.IO/acme/web:v1", "ghcr.io/acme/web:v1", ""),
        ("localhost:5000/web", "localhost:5000/web:latest", ""),
        // Digests decide when both carry one; tags are then ignored.
        (&tagged_d1, &only_d1, ""),
        (&tagged_d1, &tagged_d1_v2, ""),
        (&only_d1, &only_d2, "deny: update both to the same digest"),
        // Only one digest: equal tags cannot prove it, different tags disprove it.
        (&tagged_d1, "ghcr.io/acme/web:v1", "warn: cannot prove the same image"),
        (&only_d1, "ghcr.io/acme/web", "warn: cannot prove the same image"),
        (&tagged_d1, "ghcr.io/acme/web:v2", "deny: update both to the same tag"),
        // Tags.
        (
            "app:2",
            "docker.io/library/app:1",
            "deny: image app:2 differs from docker.io/library/app:1",
        ),
        (
            "ghcr.io/acme/web:v1",
            "ghcr.io/acme/web",
            "deny: differs from ghcr.io/acme/web of",
        ),
        (
            "localhost:5000/web:v2",
            "localhost:5000/web:v1",
            "deny: image localhost:5000/web:v2 differs",
        ),
        // Different repositories are different programs (e.g. a flyway image): not compared.
        ("ghcr.io/acme/web:v1", "flyway/flyway:10", ""),
        ("ghcr.io/acme/web:1", "ghcr.io/other/web:2", ""),
        ("localhost:5000/web:1", "localhost:5001/web:2", ""),
    ];
    for (app, job, want) in cases {
        let yaml = job_image(&app_image(SHOP, app), job);
        for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
            let got = check(check_fn, &yaml, target, run);
            match want.split_once(": ") {
                None => assert!(got.is_empty(), "{app} vs {job} on {target}: {got:?}"),
                Some((action, fragment)) => {
                    assert_eq!(got.len(), 1, "{app} vs {job} on {target}: {got:?}");
                    assert_eq!(got[0].warn_only, action == "warn", "{app} vs {job} on {target}");
                    if target == ROLLOUT {
                        assert!(got[0].message.contains(fragment), "{app} vs {job}: {}", got[0].message);
                    }
                    assert!(
                        got[0].message.contains(job) && got[0].message.contains(app),
                        "{}",
                        got[0].message
                    );
                }
            }
        }
    }
}

#[test]
fn native_sidecars_are_not_compared_but_init_containers_are() {
    let sidecar = |yaml: &str, list_after: &str, tag: &str, restart: &str| {
        edit(
            yaml,
            list_after,
            &format!(
                "      initContainers:\n        - name: istio-proxy\n          image: docker.io/istio/proxyv2:{tag}\n{restart}{list_after}"
            ),
        )
    };
    let always = "          restartPolicy: Always\n";
    let app_list = "      containers:\n        - name: web\n";
    let yaml = sidecar(
        &sidecar(SHOP, app_list, "1.22.0", always),
        JOB_CONTAINERS,
        "1.21.0",
        always,
    );
    for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
        assert!(check(check_fn, &yaml, target, run).is_empty(), "{target}");
    }
    // The same images as plain init containers run as part of the release: compared.
    let yaml = sidecar(&sidecar(SHOP, app_list, "1.22.0", ""), JOB_CONTAINERS, "1.21.0", "");
    let got = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(denies(&got), 1, "{got:?}");
    assert_eq!(
        got[0].path.as_deref(),
        Some("spec.template.spec.initContainers[0].image")
    );
    assert_eq!(check(check_fn, &yaml, ROLLOUT, ADMIT_UPDATE).len(), 1);
}

#[test]
fn ignored_repositories_are_not_compared() {
    let proxy = |yaml: &str, list: &str, tag: &str| {
        let first = format!(
            "      containers:\n        - name: cloud-sql-proxy\n          image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:{tag}\n"
        );
        edit(yaml, list, &list.replacen("      containers:\n", &first, 1))
    };
    let yaml = proxy(
        &proxy(SHOP, "      containers:\n        - name: web\n", "2.11.0"),
        JOB_CONTAINERS,
        "2.8.0",
    );
    assert_eq!(
        denies(&check(check_fn, &yaml, ROLLOUT, OFFLINE)),
        1,
        "compared by default"
    );
    for glob in [
        "gcr.io/cloud-sql-connectors/*",
        "*/cloud-sql-proxy",
        "gcr.io/cloud-sql-connectors/cloud-sql-proxy",
    ] {
        let p = policy(&format!(
            "rules:\n  migration-image-lockstep: {{ignoreRepositories: ['{glob}']}}\n"
        ));
        for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
            let got = check(check_fn, &yaml, target, with_policy(run, &p));
            assert!(got.is_empty(), "{glob} on {target}: {got:?}");
        }
    }
    // Docker Hub images match in their canonical form as well as as written.
    let hub = job_image(&app_image(SHOP, "envoyproxy/envoy:v1.31.0"), "envoyproxy/envoy:v1.30.0");
    let p = policy("rules:\n  migration-image-lockstep: {ignoreRepositories: [docker.io/envoyproxy/*]}\n");
    assert!(check(check_fn, &hub, ROLLOUT, with_policy(OFFLINE, &p)).is_empty());
    assert_eq!(check(check_fn, &hub, ROLLOUT, OFFLINE).len(), 1);
}

#[test]
fn a_named_pair_with_nothing_compared_on_one_side_proves_nothing() {
    // The Job names the Rollout but runs only an ignored image: no repository in common is no
    // violation here, since nothing of the Job is compared at all.
    let yaml = annotate_job(&job_image(SHOP, "flyway/flyway:10"), "dbhook.io/rollout: web");
    assert_eq!(check(check_fn, &yaml, JOB, OFFLINE).len(), 1, "compared by default");
    let p = policy("rules:\n  migration-image-lockstep: {ignoreRepositories: ['docker.io/flyway/*']}\n");
    for target in [ROLLOUT, JOB] {
        let got = check(check_fn, &yaml, target, with_policy(OFFLINE, &p));
        assert!(got.is_empty(), "{target}: {got:?}");
    }
}

#[test]
fn lockstep_containers_narrows_the_jobs_side() {
    // The Job also runs an old build of the app image as a helper container.
    let yaml = edit(
        SHOP,
        JOB_END,
        &format!("{JOB_END}        - name: wait-for-db\n          image: ghcr.io/acme/shop-web:sha-0000000\n"),
    );
    assert_eq!(denies(&check(check_fn, &yaml, JOB, OFFLINE)), 1);
    let narrowed = annotate_job(&yaml, "dbhook.io/lockstep-containers: migrate");
    for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
        assert!(check(check_fn, &narrowed, target, run).is_empty(), "{target}");
    }
    let typo = annotate_job(&yaml, "dbhook.io/lockstep-containers: migrat");
    let got = check(check_fn, &typo, JOB, ADMIT_CREATE);
    assert_eq!(
        messages(&got),
        vec!["annotation dbhook.io/lockstep-containers: no container named migrat (the pod has migrate, wait-for-db)"]
    );
    let empty = annotate_job(SHOP, "dbhook.io/lockstep-containers: ' , '");
    assert_eq!(
        messages(&check(check_fn, &empty, JOB, OFFLINE)),
        vec!["annotation dbhook.io/lockstep-containers: names no container"]
    );
}

#[test]
fn every_app_image_of_a_shared_repository_must_match_and_one_finding_per_object() {
    let second = |tag: &str| {
        edit(
            SHOP,
            "          readinessProbe:",
            &format!(
                "          readinessProbe:\n            httpGet: {{path: /healthz, port: http}}\n        - name: worker\n          image: ghcr.io/acme/shop-web:{tag}\n          args: [worker]\n          livenessProbe:"
            ),
        )
    };
    let got = check(check_fn, &second("sha-9999999"), ROLLOUT, OFFLINE);
    assert_eq!(
        messages(&got),
        vec![
            "image ghcr.io/acme/shop-web:sha-9999999 differs from ghcr.io/acme/shop-web:sha-1a2b3c4 of migration Job shop/web-migrate (compared by repository): update both to the same tag"
        ]
    );
    assert_eq!(got[0].path.as_deref(), Some("spec.template.spec.containers[1].image"));
    // Both containers at another tag than the Job: one finding, not two identical ones.
    let both = app_image(&second("sha-2222222"), "ghcr.io/acme/shop-web:sha-2222222");
    for (target, run) in [(ROLLOUT, OFFLINE), (ROLLOUT, ADMIT_UPDATE), (JOB, OFFLINE)] {
        let got = check(check_fn, &both, target, run);
        assert_eq!(got.len(), 1, "{target}: {got:?}");
        assert!(!got[0].message.contains("; "), "{}", got[0].message);
    }
    // Two different problems on one object: still one finding, listing both.
    let two = app_image(&second("sha-3333333"), "ghcr.io/acme/shop-web:sha-2222222");
    let got = check(check_fn, &two, ROLLOUT, OFFLINE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].message.contains("sha-2222222 differs")
            && got[0]
                .message
                .contains("; image ghcr.io/acme/shop-web:sha-3333333 differs")
    );
}

#[test]
fn explicit_pairing_without_a_common_repository_is_a_violation() {
    let yaml = annotate_job(&job_image(SHOP, "flyway/flyway:10"), "dbhook.io/rollout: web");
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(
        messages(&on_job),
        vec![
            "migration Job shop/web-migrate names Rollout shop/web in dbhook.io/rollout but shares no image repository with it (Job: flyway/flyway:10; web: ghcr.io/acme/shop-web:sha-1a2b3c4): run the migration from the app's image, or compare by tag with dbhook.io/lockstep: tag"
        ]
    );
    assert_eq!(check(check_fn, &yaml, ROLLOUT, OFFLINE).len(), 1, "and on the Rollout");
    assert_eq!(
        check(check_fn, &yaml, ROLLOUT, ADMIT_UPDATE).len(),
        1,
        "and at admission"
    );
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
            "image ghcr.io/acme/shop-web:sha-1a2b3c4 differs from ghcr.io/acme/shop-web:sha-9999999 of Deployment shop/worker (compared by repository): update both to the same tag"
        ]
    );
    assert!(check(check_fn, &yaml, ROLLOUT, OFFLINE).is_empty());
    assert_eq!(check(check_fn, &yaml, "Deployment/worker", OFFLINE).len(), 1);
}

#[test]
fn helm_hooks_role_labels_and_sync_waves_mark_migrations_and_other_hooks_do_not() {
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

/// (Job sync-wave, Rollout sync-wave or "" for none, whether the Job migrates before the app).
/// Waves are read as Argo CD reads them: Go's strconv.Atoi, anything else counts as 0.
#[test]
fn a_job_in_an_earlier_sync_wave_is_a_migration_job() {
    let cases = [
        ("-1", "", true),
        ("-10", "-5", true),
        ("+0", "1", true),
        ("0", "", false),
        ("1", "", false),
        ("-1", "-1", false),
        ("3", "2", false),
        ("abc", "", false),
        ("1e9", "", false),
        (" -1", "", false),
        ("-1 ", "", false),
        (" -1", "1", true),
        ("1_000", "1", true),
        ("99999999999999999999", "", false),
        ("", "", false),
        ("-", "", false),
    ];
    let mismatched = job_image(SHOP, "ghcr.io/acme/shop-web:sha-0000000");
    for (job_wave, app_wave, migrates) in cases {
        let mut yaml = wave_job(&mismatched, job_wave);
        if !app_wave.is_empty() {
            yaml = rollout_wave(&yaml, app_wave);
        }
        let want = usize::from(migrates);
        for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
            let got = check(check_fn, &yaml, target, run);
            assert_eq!(
                denies(&got),
                want,
                "job wave {job_wave:?}, app wave {app_wave:?} on {target}: {got:?}"
            );
        }
    }
}

#[test]
fn an_invalid_sync_wave_falls_back_to_the_helm_hook_weight_as_argo_cd_does() {
    let yaml = edit(
        &wave_job(&job_image(SHOP, "ghcr.io/acme/shop-web:sha-0000000"), "abc"),
        "    argocd.argoproj.io/sync-wave: 'abc'\n",
        "    argocd.argoproj.io/sync-wave: 'abc'\n    helm.sh/hook-weight: '-5'\n",
    );
    assert_eq!(check(check_fn, &yaml, ROLLOUT, OFFLINE).len(), 1);
}

#[test]
fn tag_mode_compares_tags_across_repositories() {
    // An Atlas-style Job: sync wave -1, no hook, compared by tag.
    let migrations = |image: &str| -> String {
        edit(
            &wave_job(&job_image(SHOP, image), "-1"),
            "    argocd.argoproj.io/sync-wave: '-1'\n",
            "    argocd.argoproj.io/sync-wave: '-1'\n    dbhook.io/lockstep: tag\n",
        )
    };
    // (Job image, outcome fragment or "" for allowed)
    let cases = [
        ("ghcr.io/acme/shop-migrations:sha-1a2b3c4", ""),
        (
            "ghcr.io/acme/shop-migrations:sha-0000000",
            "image ghcr.io/acme/shop-web:sha-1a2b3c4 tag sha-1a2b3c4 differs from ghcr.io/acme/shop-migrations:sha-0000000 of migration Job shop/web-migrate (compared by tag)",
        ),
        (
            "ghcr.io/acme/shop-migrations:latest",
            "image ghcr.io/acme/shop-migrations:latest of migration Job shop/web-migrate carries tag latest, which cannot prove",
        ),
        (
            "ghcr.io/acme/shop-migrations",
            "image ghcr.io/acme/shop-migrations of migration Job shop/web-migrate carries no tag",
        ),
        // A generic tool image is judged by its tag like any other.
        (
            "arigaio/atlas:0.30.0",
            "tag sha-1a2b3c4 differs from arigaio/atlas:0.30.0 of migration Job shop/web-migrate (compared by tag)",
        ),
        // Same repository, same tag: fine in tag mode too.
        ("ghcr.io/acme/shop-web:sha-1a2b3c4", ""),
    ];
    for (image, want) in cases {
        let yaml = migrations(image);
        for (target, run) in [(ROLLOUT, OFFLINE), (JOB, OFFLINE), (ROLLOUT, ADMIT_UPDATE)] {
            let got = check(check_fn, &yaml, target, run);
            if want.is_empty() {
                assert!(got.is_empty(), "{image} on {target}: {got:?}");
            } else {
                assert_eq!(denies(&got), 1, "{image} on {target}: {got:?}");
                assert!(got[0].message.contains("(compared by tag)"), "{}", got[0].message);
                if target == ROLLOUT {
                    assert!(got[0].message.contains(want), "{image}: {}", got[0].message);
                }
            }
        }
    }
    // Named explicitly, a separate migrations image shares no repository and that is fine.
    let named = edit(
        &migrations("ghcr.io/acme/shop-migrations:sha-1a2b3c4"),
        "    dbhook.io/lockstep: tag\n",
        "    dbhook.io/lockstep: tag\n    dbhook.io/rollout: web\n",
    );
    assert!(check(check_fn, &named, JOB, COMPLETE).is_empty());
    // The tool image narrowed away: only the migrations image is judged.
    let tool = edit(
        &migrations("ghcr.io/acme/shop-migrations:sha-1a2b3c4"),
        JOB_END,
        &format!("{JOB_END}        - name: notify\n          image: curlimages/curl:8.8.0\n"),
    );
    assert_eq!(check(check_fn, &tool, ROLLOUT, OFFLINE).len(), 1);
    let narrowed = edit(
        &tool,
        "    dbhook.io/lockstep: tag\n",
        "    dbhook.io/lockstep: tag\n    dbhook.io/lockstep-containers: migrate\n",
    );
    assert!(check(check_fn, &narrowed, ROLLOUT, OFFLINE).is_empty());
}

#[test]
fn an_unknown_lockstep_mode_names_the_allowed_values() {
    let yaml = annotate_job(SHOP, "dbhook.io/lockstep: digest");
    for run in [OFFLINE, ADMIT_CREATE] {
        assert_eq!(
            messages(&check(check_fn, &yaml, JOB, run)),
            vec![
                "annotation dbhook.io/lockstep: \"digest\" is not a lockstep mode (allowed values: repository, tag); lockstep is checked by repository until this is fixed"
            ]
        );
    }
    let ok = annotate_job(SHOP, "dbhook.io/lockstep: ' repository '");
    assert!(check(check_fn, &ok, JOB, OFFLINE).is_empty());
}

#[test]
fn malformed_images_get_a_clear_message_and_never_panic() {
    let cases = [
        ("", "the image is empty"),
        (":v1", "no repository name before the tag or digest"),
        ("ghcr.io/Acme/shop-web:v1", "the repository path must be lower-case"),
        ("ghcr.io/acme/shop-web@sha256:a@sha256:b", "more than one '@'"),
    ];
    for (image, problem) in cases {
        let yaml = app_image(SHOP, image);
        for run in [OFFLINE, ADMIT_UPDATE] {
            let got = check(check_fn, &yaml, ROLLOUT, run);
            assert_eq!(
                messages(&got),
                vec![format!(
                    "image {image:?} cannot be compared with migration Job shop/web-migrate ({problem}): fix the image reference"
                )],
                "{image:?}"
            );
        }
        // On the Job's side there is nothing valid to compare with.
        assert!(check(check_fn, &yaml, JOB, OFFLINE).is_empty(), "{image:?}");
        let job = job_image(SHOP, image);
        assert_eq!(check(check_fn, &job, JOB, OFFLINE).len(), 1, "{image:?}");
    }
}
