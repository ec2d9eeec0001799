//! `migration-image-lockstep` and `migration-job-replaceable` offline, through `dbhook check`
//! as a CI job runs it: one table of release shapes, each allowed or denied as documented.

use std::io::Write as _;
use std::process::Output;

use serde_json::Value;

use crate::cli_support::{dbhook, stderr, stdout};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A migration Job of cluster `shop-pg` with `annotations` (YAML flow entries), containers
/// (a flow list) and an optional `status`.
fn job(annotations: &str, containers: &str, status: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  namespace: shop\n  creationTimestamp: '2027-01-15T09:00:00Z'\n  labels: {{dbhook.io/cluster: shop-pg}}\n  annotations: {{{annotations}}}\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: {containers}\n{status}"
    )
}

fn hook_job(image: &str) -> String {
    job(
        "argocd.argoproj.io/hook: PreSync",
        &format!("[{{name: migrate, image: '{image}'}}]"),
        "",
    )
}

/// The app Rollout with `annotations` and a pod spec body (flow mapping entries).
fn rollout(annotations: &str, pod: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n  namespace: shop\n  labels: {{dbhook.io/cluster: shop-pg}}\n  annotations: {{{annotations}}}\nspec:\n  replicas: 2\n  template:\n    spec: {{{pod}}}\n"
    )
}

fn app(image: &str) -> String {
    rollout("", &format!("containers: [{{name: web, image: '{image}'}}]"))
}

fn input(docs: &[String]) -> String {
    docs.join("---\n")
}

/// `dbhook check -o json -` on `yaml` with an optional policy file text.
fn check(yaml: &str, policy: Option<&str>) -> (i32, Value) {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    let mut args = vec!["check", "-o", "json", "-"];
    if let Some(p) = policy {
        file.write_all(p.as_bytes()).unwrap();
        args.extend(["--policy", file.path().to_str().unwrap()]);
    }
    let out = dbhook(&args, Some(yaml));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    (code(&out), report)
}

fn lockstep(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "migration-image-lockstep")
        .map(|f| {
            (
                f["action"].as_str().unwrap().to_string(),
                f["object"]["kind"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (case, input, exit code, fragment every lockstep finding holds or "" for none).
fn cases() -> Vec<(&'static str, String, i32, &'static str)> {
    let sidecar =
        |tag: &str| format!("{{name: istio-proxy, image: 'docker.io/istio/proxyv2:{tag}', restartPolicy: Always}}");
    let failed =
        "status:\n  failed: 2\n  conditions:\n    - {type: Failed, status: 'True', reason: BackoffLimitExceeded}\n";
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}\nspec:\n  replicas: 0\n  template:\n    spec:\n      containers: [{name: web, image: 'ghcr.io/acme/web:sha-2'}]\n";
    let wave_job = |wave: &str, extra: &str, image: &str| {
        job(
            &format!("argocd.argoproj.io/sync-wave: '{wave}'{extra}"),
            &format!("[{{name: migrate, image: '{image}'}}]"),
            "",
        )
    };
    vec![
        (
            "same tag",
            input(&[hook_job("ghcr.io/acme/web:sha-1"), app("ghcr.io/acme/web:sha-1")]),
            0,
            "",
        ),
        (
            "different tags",
            input(&[hook_job("ghcr.io/acme/web:sha-1"), app("ghcr.io/acme/web:sha-2")]),
            1,
            "differs from",
        ),
        (
            "Docker Hub spelling and default tag",
            input(&[hook_job("index.docker.io/library/web:latest"), app("web")]),
            0,
            "",
        ),
        (
            "tag and digest vs digest",
            input(&[
                hook_job(&format!("ghcr.io/acme/web:v1@{D1}")),
                app(&format!("ghcr.io/acme/web@{D1}")),
            ]),
            0,
            "",
        ),
        (
            "one digest, same tag: warning",
            input(&[
                hook_job(&format!("ghcr.io/acme/web:v1@{D1}")),
                app("ghcr.io/acme/web:v1"),
            ]),
            0,
            "cannot prove the same image",
        ),
        (
            "native sidecars of other versions",
            input(&[
                job(
                    "argocd.argoproj.io/hook: PreSync",
                    "[{name: migrate, image: 'ghcr.io/acme/web:sha-1'}]",
                    "",
                )
                .replace(
                    "      containers:",
                    &format!("      initContainers: [{}]\n      containers:", sidecar("1.21.0")),
                ),
                rollout(
                    "",
                    &format!(
                        "initContainers: [{}], containers: [{{name: web, image: 'ghcr.io/acme/web:sha-1'}}]",
                        sidecar("1.22.0")
                    ),
                ),
            ]),
            0,
            "",
        ),
        (
            "a failed Job is not the release",
            input(&[
                job(
                    "argocd.argoproj.io/hook: PreSync",
                    "[{name: migrate, image: 'ghcr.io/acme/web:sha-9'}]",
                    failed,
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            0,
            "",
        ),
        (
            "workloadRef through the Deployment",
            input(&[
                hook_job("ghcr.io/acme/web:sha-1"),
                rollout("", "").replace(
                    "  template:\n    spec: {}\n",
                    "  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n",
                ),
                deployment.to_string(),
            ]),
            1,
            "ghcr.io/acme/web:sha-",
        ),
        (
            "sync-wave Job on the app repository with another tag",
            input(&[
                wave_job("-1", "", "ghcr.io/acme/web:sha-0"),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            1,
            "differs from",
        ),
        (
            "a Job at the app's wave is no migration Job",
            input(&[
                wave_job(
                    "0",
                    ", argocd.argoproj.io/sync-options: Replace=true",
                    "ghcr.io/acme/web:sha-0",
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            0,
            "",
        ),
        (
            "a Job after the app is no migration Job",
            input(&[
                wave_job("2", "", "ghcr.io/acme/web:sha-0"),
                rollout(
                    "argocd.argoproj.io/sync-wave: '1'",
                    "containers: [{name: web, image: 'ghcr.io/acme/web:sha-1'}]",
                ),
            ]),
            0,
            "",
        ),
        (
            "a sync wave Argo CD cannot parse counts as 0",
            input(&[
                wave_job(" -1", "", "ghcr.io/acme/web:sha-0"),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            0,
            "",
        ),
        (
            "tag mode, equal tags across repositories",
            input(&[
                wave_job(
                    "-1",
                    ", dbhook.io/lockstep: tag, dbhook.io/rollout: web, argocd.argoproj.io/sync-options: Replace=true",
                    "ghcr.io/acme/web-migrations:sha-1",
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            0,
            "",
        ),
        (
            "tag mode, different tags",
            input(&[
                wave_job(
                    "-1",
                    ", dbhook.io/lockstep: tag, argocd.argoproj.io/sync-options: Replace=true",
                    "ghcr.io/acme/web-migrations:sha-0",
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            1,
            "(compared by tag)",
        ),
        (
            "tag mode judges a generic tool image by its tag",
            input(&[
                wave_job(
                    "-1",
                    ", dbhook.io/lockstep: tag, argocd.argoproj.io/sync-options: Replace=true",
                    "arigaio/atlas:0.30.0",
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            1,
            "arigaio/atlas:0.30.0",
        ),
        (
            "an unknown lockstep mode",
            input(&[
                job(
                    "argocd.argoproj.io/hook: PreSync, dbhook.io/lockstep: commit",
                    "[{name: migrate, image: 'ghcr.io/acme/web:sha-1'}]",
                    "",
                ),
                app("ghcr.io/acme/web:sha-1"),
            ]),
            1,
            "allowed values: repository, tag",
        ),
        (
            "a malformed image",
            input(&[hook_job("ghcr.io/acme/web:sha-1"), app("ghcr.io/Acme/web:sha-1")]),
            1,
            "the repository path must be lower-case",
        ),
    ]
}

#[test]
fn lockstep_release_shapes_are_allowed_or_denied_as_documented() {
    for (case, yaml, want_code, fragment) in cases() {
        let (got_code, report) = check(&yaml, None);
        assert_eq!(got_code, want_code, "{case}: {}", report["findings"]);
        let found = lockstep(&report);
        if fragment.is_empty() {
            assert!(found.is_empty(), "{case}: {found:?}");
        } else {
            assert!(!found.is_empty(), "{case}");
            for (_, _, message) in &found {
                assert!(message.contains(fragment), "{case}: {message}");
            }
            // One finding per object and rule.
            let kinds: Vec<&str> = found.iter().map(|(_, k, _)| k.as_str()).collect();
            let mut unique = kinds.clone();
            unique.dedup();
            assert_eq!(kinds, unique, "{case}");
        }
    }
}

#[test]
fn ignore_repositories_silences_a_shared_utility_image() {
    let proxy =
        |tag: &str| format!("{{name: cloud-sql-proxy, image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:{tag}'}}");
    let yaml = input(&[
        job(
            "argocd.argoproj.io/hook: PreSync",
            &format!(
                "[{{name: migrate, image: 'ghcr.io/acme/web:sha-1'}}, {}]",
                proxy("2.8.0")
            ),
            "",
        ),
        rollout(
            "",
            &format!(
                "containers: [{{name: web, image: 'ghcr.io/acme/web:sha-1'}}, {}]",
                proxy("2.11.0")
            ),
        ),
    ]);
    let (code, report) = check(&yaml, None);
    assert_eq!(code, 1, "{}", report["findings"]);
    let policy = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nrules:\n  migration-image-lockstep: {ignoreRepositories: ['gcr.io/cloud-sql-connectors/*']}\n";
    let (code, report) = check(&yaml, Some(policy));
    assert_eq!(code, 0, "{}", report["findings"]);
    assert!(lockstep(&report).is_empty());
}

#[test]
fn an_invalid_ignore_repositories_glob_is_a_policy_error_naming_the_key() {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(b"rules:\n  migration-image-lockstep: {ignoreRepositories: ['gcr.io/[oops']}\n")
        .unwrap();
    let out = dbhook(
        &["check", "--policy", file.path().to_str().unwrap(), "-"],
        Some(&app("web:1")),
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("migration-image-lockstep") && err.contains("ignoreRepositories[0]: invalid glob"),
        "{err}"
    );
}

#[test]
fn the_default_policy_shows_ignore_repositories() {
    let out = dbhook(&["policy"], None);
    assert!(
        stdout(&out).contains("migration-image-lockstep: {action: deny, allowExemption: false, lockstepMemoryMinutes: 60, ignoreRepositories: []}"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("migration-job-replaceable: {action: warn"));
}

/// (case, Job metadata lines, whether `migration-job-replaceable` warns).
#[test]
fn migration_job_replaceable_cases() {
    let app = app("ghcr.io/acme/web:sha-1");
    let cases = [
        (
            "sync-wave Job with a fixed name",
            "  name: web-migrate\n  annotations: {argocd.argoproj.io/sync-wave: '-1'}\n",
            true,
        ),
        (
            "role-labelled Job with a fixed name",
            "  name: web-migrate\n  labels: {dbhook.io/cluster: shop-pg, dbhook.io/role: migration}\n",
            true,
        ),
        (
            "PreSync hook",
            "  name: web-migrate\n  annotations: {argocd.argoproj.io/hook: PreSync}\n",
            false,
        ),
        (
            "Helm hook",
            "  name: web-migrate\n  annotations: {helm.sh/hook: pre-upgrade}\n",
            false,
        ),
        (
            "generateName",
            "  generateName: web-migrate-\n  annotations: {argocd.argoproj.io/sync-wave: '-1'}\n",
            false,
        ),
        (
            "tag in the name",
            "  name: web-migrate-sha-1\n  annotations: {argocd.argoproj.io/sync-wave: '-1'}\n",
            false,
        ),
        (
            "Replace=true",
            "  name: web-migrate\n  annotations: {argocd.argoproj.io/sync-wave: '-1', argocd.argoproj.io/sync-options: 'Replace=true'}\n",
            false,
        ),
        (
            "no migration Job",
            "  name: web-report\n  annotations: {argocd.argoproj.io/sync-wave: '3'}\n",
            false,
        ),
    ];
    for (case, meta, warns) in cases {
        let labels = if meta.contains("labels:") {
            ""
        } else {
            "  labels: {dbhook.io/cluster: shop-pg}\n"
        };
        let job = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  namespace: shop\n{labels}{meta}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: migrate, image: 'ghcr.io/acme/web:sha-1'}}]\n"
        );
        let (code, report) = check(&input(&[job, app.clone()]), None);
        assert_eq!(code, 0, "{case}: a warning never fails the gate");
        let warned: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "migration-job-replaceable")
            .collect();
        assert_eq!(warned.len(), usize::from(warns), "{case}: {warned:?}");
        if warns {
            assert_eq!(warned[0]["action"], "warn");
            assert!(warned[0]["message"].as_str().unwrap().contains("field is immutable"));
        }
    }
}
