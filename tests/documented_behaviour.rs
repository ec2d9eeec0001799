//! Behaviours README.md and docs/rules.md promise that no other test pinned down: the denial
//! naming several findings, `image-tag-pinned` with `tagPattern`, without a tag and with a
//! digest, audit-mode findings in the metrics, comma-list hook annotations, and `.yml` files
//! found by a directory walk.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, TimeZone, Utc};
use dbhook::cli::check::check_documents;
use dbhook::policy::Policy;
use serde_json::{Value, json};

use crate::cli_support::dbhook;
use crate::server_support as server;

/// The fixed "now" of the offline checks.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

/// `(rule, action, message)` of every finding `dbhook check --complete` makes on `yaml`.
fn findings(yaml: &str, policy: &Policy) -> Vec<(String, String, String)> {
    let docs = dbhook::manifest::parse("in.yaml", yaml).unwrap();
    let checked = check_documents(&docs, policy, true, now()).unwrap();
    checked
        .report
        .findings
        .iter()
        .map(|f| (f.rule.to_string(), f.action.as_str().to_string(), f.message.clone()))
        .collect()
}

/// A labelled Deployment running `image`.
fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels: {{dbhook.io/cluster: shop-pg}}\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: '{image}'\n\
         \x20         env: [{{name: DB_URL, valueFrom: {{secretKeyRef: {{name: shop-pg-app, key: uri}}}}}}]\n"
    )
}

fn rule_findings(found: &[(String, String, String)], rule: &str) -> Vec<String> {
    found
        .iter()
        .filter(|f| f.0 == rule)
        .map(|f| format!("{} {}", f.1, f.2))
        .collect()
}

// --- several findings in one denial --------------------------------------------------------

/// The Rollout review with an unusable env-name annotation and a literal credential: two deny
/// findings.
fn doubly_denied_review() -> Value {
    let mut review = server::example("review-rollout.json");
    let object = &mut review["request"]["object"];
    object["metadata"]["annotations"]["dbhook.io/env-name"] = json!("db-url");
    object["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "DB_URL", "value": "postgres://app:s3cret@shop-pg-rw/app"}]);
    review
}

/// docs/rules.md: `dbhook denied <Kind> <ns>/<name>: [<rule>] <message>; [<rule>] <message>`,
/// in the order `dbhook rules` lists the rules, each reason with its short evidence.
const DOUBLE_DENIAL: &str = include_str!("data/denials/env-name-and-plaintext.txt");

#[tokio::test]
async fn a_denial_through_the_server_names_every_deny_finding_in_rule_order() {
    let pki = server::Pki::new();
    let running = server::start(server::config(pki.tls_paths())).await;
    let client = server::client(&pki.bundle.ca_cert, running.addr, false);
    let answer = server::post(&client, running.addr, "/validate", &doubly_denied_review())
        .await
        .json();
    let response = &answer["response"];
    assert_eq!(response["allowed"], false, "{answer}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["message"], DOUBLE_DENIAL);
    assert!(!answer.to_string().contains("s3cret"), "{answer}");
}

// --- image-tag-pinned ------------------------------------------------------------------------

const DIGEST: &str = "sha256:4f6c6e2b0f0a8e3c9d1b2a7e5c4d3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";

#[test]
fn image_tag_pinned_with_a_tag_pattern_wants_a_matching_tag_or_a_digest() {
    let policy = Policy::from_yaml("rules:\n  image-tag-pinned: {tagPattern: '^sha-[0-9a-f]{7,40}$'}\n").unwrap();
    let tagged = |image: &str| rule_findings(&findings(&deployment(image), &policy), "image-tag-pinned");
    assert_eq!(tagged("ghcr.io/acme/web:sha-1a2b3c4"), Vec::<String>::new());
    assert_eq!(
        tagged("ghcr.io/acme/web:v1.2.3"),
        [
            "warn container web image ghcr.io/acme/web:v1.2.3 tag v1.2.3 does not match the required pattern \
             ^sha-[0-9a-f]{7,40}$: pin a release tag or a digest"
        ]
    );
    // A forbidden tag is named as such, pattern or not.
    assert_eq!(
        tagged("ghcr.io/acme/web:latest"),
        [
            "warn container web image ghcr.io/acme/web:latest uses the floating tag latest: pin a release tag or a digest"
        ]
    );
    // "A digest always counts as pinned": also with a tag the pattern rejects.
    assert_eq!(tagged(&format!("ghcr.io/acme/web@{DIGEST}")), Vec::<String>::new());
    assert_eq!(
        tagged(&format!("ghcr.io/acme/web:v1.2.3@{DIGEST}")),
        Vec::<String>::new()
    );
}

#[test]
fn image_tag_pinned_without_a_tag_is_floating_and_a_digest_is_pinned() {
    let policy = Policy::default();
    let tagged = |image: &str| rule_findings(&findings(&deployment(image), &policy), "image-tag-pinned");
    assert_eq!(
        tagged("ghcr.io/acme/web"),
        ["warn container web image ghcr.io/acme/web has no tag (it floats with latest): pin a release tag or a digest"]
    );
    // A registry port is not a tag.
    assert_eq!(
        tagged("localhost:5000/web"),
        [
            "warn container web image localhost:5000/web has no tag (it floats with latest): pin a release tag or a digest"
        ]
    );
    assert_eq!(tagged(&format!("ghcr.io/acme/web@{DIGEST}")), Vec::<String>::new());
    assert_eq!(
        tagged(&format!("ghcr.io/acme/web:latest@{DIGEST}")),
        Vec::<String>::new()
    );
    assert_eq!(tagged("ghcr.io/acme/web:1.4.2"), Vec::<String>::new());
}

// --- audit mode in the metrics -------------------------------------------------------------

#[tokio::test]
async fn audit_mode_findings_are_counted_with_mode_audit() {
    let pki = server::Pki::new();
    let mut config = server::config(pki.tls_paths());
    config.policy = Arc::new(ArcSwap::from_pointee(Policy::from_yaml("mode: audit").unwrap()));
    let running = server::start(config).await;
    let client = server::client(&pki.bundle.ca_cert, running.addr, false);
    // Two would-be denials and, with a floating tag, a warning.
    let mut review = doubly_denied_review();
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("ghcr.io/acme/shop-web:latest");
    let answer = server::post(&client, running.addr, "/validate", &review).await.json();
    assert_eq!(answer["response"]["allowed"], true, "audit never denies: {answer}");
    let warnings = answer["response"]["warnings"].to_string();
    assert!(
        warnings.contains("dbhook: audit: would deny: [db-url-plaintext] "),
        "{warnings}"
    );
    let text = server::metrics(running.admin_addr).await;
    // Each finding once, with its configured action and mode="audit"; nothing else.
    let mut counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("dbhook_findings_total{"))
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            r#"dbhook_findings_total{rule="db-url-plaintext",action="deny",mode="audit"} 1"#,
            r#"dbhook_findings_total{rule="image-tag-pinned",action="warn",mode="audit"} 1"#,
            r#"dbhook_findings_total{rule="injection-config",action="deny",mode="audit"} 1"#,
        ],
        "{text}"
    );
}

// --- comma-list hook annotations -----------------------------------------------------------

/// A migration-candidate Job (no `dbhook.io/role`) with `annotation`, on another tag than the
/// app's: lockstep judges it only if it is recognised as a migration Job.
fn hook_job(annotation: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  namespace: shop\n  labels: {{dbhook.io/cluster: shop-pg}}\n\
         \x20 annotations: {{{annotation}}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n\
         \x20     containers: [{{name: migrate, image: 'ghcr.io/acme/web:sha-2222222'}}]\n---\n{}",
        deployment("ghcr.io/acme/web:sha-1111111")
    )
}

#[test]
fn a_comma_list_hook_annotation_naming_a_pre_release_hook_marks_a_migration_job() {
    let policy = Policy::default();
    let lockstep =
        |annotation: &str| rule_findings(&findings(&hook_job(annotation), &policy), "migration-image-lockstep");
    for hook in [
        "'argocd.argoproj.io/hook': 'PreSync,Sync'",
        "'argocd.argoproj.io/hook': 'PostSync,Sync'",
        "'argocd.argoproj.io/hook': 'SyncFail, PreSync'",
        "'helm.sh/hook': 'post-install,pre-upgrade'",
        "'helm.sh/hook': 'pre-install, post-upgrade'",
    ] {
        let found = lockstep(hook);
        assert!(!found.is_empty(), "{hook}: not taken for a migration Job");
        assert!(found.iter().all(|f| f.starts_with("deny ")), "{hook}: {found:?}");
    }
    for not_migration in [
        "'argocd.argoproj.io/hook': 'PostSync,SyncFail'",
        "'argocd.argoproj.io/hook': 'PreSyncX'",
        "'helm.sh/hook': 'post-install,post-upgrade'",
    ] {
        assert_eq!(lockstep(not_migration), Vec::<String>::new(), "{not_migration}");
    }
}

// --- .yml files in a directory walk --------------------------------------------------------

#[test]
fn check_walking_a_directory_reads_yml_yaml_and_json_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("apps/web");
    std::fs::create_dir_all(&nested).unwrap();
    let plaintext = deployment("ghcr.io/acme/web:1.0").replace(
        "env: [{name: DB_URL, valueFrom: {secretKeyRef: {name: shop-pg-app, key: uri}}}]",
        "env: [{name: DB_URL, value: 'postgres://app:s3cret@db/app'}]",
    );
    std::fs::write(nested.join("deploy.yml"), &plaintext).unwrap();
    std::fs::write(
        dir.path().join("worker.yaml"),
        deployment("ghcr.io/acme/worker:1.0").replace("name: web\n  namespace", "name: worker\n  namespace"),
    )
    .unwrap();
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}});
    std::fs::write(dir.path().join("config.json"), config_map.to_string()).unwrap();
    // Not a manifest extension: never read, although it would be denied.
    std::fs::write(dir.path().join("deploy.yml.bak"), &plaintext).unwrap();
    std::fs::write(dir.path().join("notes.txt"), &plaintext).unwrap();

    let out = dbhook(&["check", "-o", "json", dir.path().to_str().unwrap()], None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["summary"]["objects"], 3, "{report}");
    let files: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "db-url-plaintext")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{report}");
    assert!(files[0].ends_with("apps/web/deploy.yml"), "{files:?}");
}
