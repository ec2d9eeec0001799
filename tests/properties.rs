//! Property tests: whatever the input, the engine's, `check`'s and the admission handler's
//! answers keep the documented invariants (audit never denies or patches, a denial names every
//! deny finding's rule, warnings are prefixed and bounded, unknown never denies, counts add up),
//! and the injection is idempotent.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use dbhook::cli::check::{Checked, check_documents};
use dbhook::engine::{self, Change, Decision, Scope};
use dbhook::model::Object;
use dbhook::mutate;
use dbhook::policy::{Action, Mode, Policy};
use dbhook::view::{EmptyView, ManifestView};
use kube::core::admission::Operation;
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9:/@._-]{0,24}".prop_map(Value::String),
        Just(json!("postgres://u:p@h/db")),
        Just(json!("0 2 * * *")),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("spec".to_string()),
                    Just("template".to_string()),
                    Just("containers".to_string()),
                    Just("initContainers".to_string()),
                    Just("env".to_string()),
                    Just("name".to_string()),
                    Just("image".to_string()),
                    Just("value".to_string()),
                    Just("backup".to_string()),
                    Just("plugins".to_string()),
                    Just("schedule".to_string()),
                    Just("cluster".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_kind() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop_oneof![
        Just(("argoproj.io/v1alpha1", "Rollout")),
        Just(("apps/v1", "Deployment")),
        Just(("apps/v1", "StatefulSet")),
        Just(("batch/v1", "Job")),
        Just(("batch/v1", "CronJob")),
        Just(("postgresql.cnpg.io/v1", "Cluster")),
        Just(("postgresql.cnpg.io/v1", "ScheduledBackup")),
        Just(("barmancloud.cnpg.io/v1", "ObjectStore")),
        Just(("v1", "Namespace")),
        Just(("v1", "ConfigMap")),
    ]
}

/// The fixed "now" of these properties (rules read the time: exemption dates, lockstep memory).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

/// What every decision keeps (README.md, "What it does"; docs/rules.md): audit never denies or
/// patches, the validating webhook never patches, a denial is exactly the enforce-mode deny
/// findings and names each one's rule, warnings carry the `dbhook: ` prefix within 256
/// characters, and every finding is of a catalog rule.
fn decision_keeps_the_invariants(d: &Decision, obj: &Object, scope: Scope) -> Result<(), TestCaseError> {
    for f in &d.findings {
        prop_assert!(dbhook::rules::CATALOG.iter().any(|r| r.id == f.rule), "{:?}", f);
        prop_assert!(f.action != Action::Off, "rules set to off never report: {:?}", f);
    }
    for w in &d.warnings {
        prop_assert!(w.starts_with("dbhook: ") && w.chars().count() <= 256, "{}", w);
    }
    if scope == Scope::Validate {
        prop_assert!(
            d.patch.is_empty() && d.planned_patch.is_empty(),
            "validating never patches"
        );
    }
    match d.mode {
        Mode::Audit => {
            prop_assert!(d.allowed && d.message.is_none(), "audit never denies: {:?}", d.message);
            prop_assert!(d.patch.is_empty(), "audit never patches");
        }
        Mode::Enforce => {
            prop_assert_eq!(d.allowed, d.denies() == 0, "{:?}", d.findings);
            prop_assert_eq!(d.patch.len(), d.planned_patch.len());
        }
    }
    match &d.message {
        None => prop_assert!(d.allowed),
        Some(message) => {
            prop_assert!(!d.allowed);
            let head = format!("dbhook denied {} {}: [", obj.kind, obj.qualified_name());
            prop_assert!(message.starts_with(&head), "{} does not start with {}", message, head);
            for f in d.findings.iter().filter(|f| f.denies()) {
                prop_assert!(
                    message.contains(&format!("[{}] ", f.rule)),
                    "{} lacks {}",
                    message,
                    f.rule
                );
            }
        }
    }
    Ok(())
}

/// The rules that deny in `d`.
fn denying_rules(d: &Decision) -> BTreeSet<&'static str> {
    d.findings.iter().filter(|f| f.denies()).map(|f| f.rule).collect()
}

/// A `check` run's counts agree with its findings and its exit code with its mode.
fn checked_adds_up(checked: &Checked, documents: usize, policy: &Policy) -> Result<(), TestCaseError> {
    let summary = &checked.report.summary;
    prop_assert_eq!(summary.objects, documents);
    let count = |a: Action| checked.report.findings.iter().filter(|f| f.action == a).count();
    prop_assert_eq!(summary.deny, count(Action::Deny));
    prop_assert_eq!(summary.warn, count(Action::Warn));
    prop_assert_eq!(summary.deny + summary.warn, checked.report.findings.len());
    prop_assert!(summary.patched <= documents);
    for f in &checked.report.findings {
        prop_assert!(dbhook::rules::CATALOG.iter().any(|r| r.id == f.rule), "{:?}", f);
        prop_assert_eq!(f.file.as_deref(), Some("in.yaml"));
        prop_assert!(f.line.is_some_and(|l| l >= 1), "{:?}", f);
    }
    let expected = match policy.mode {
        Mode::Audit => 0,
        Mode::Enforce => u8::from(summary.deny > 0),
    };
    prop_assert_eq!(checked.exit_code(), expected, "{:?}", summary);
    Ok(())
}

fn policies() -> Vec<Policy> {
    vec![Policy::default(), Policy::from_yaml("mode: audit").unwrap()]
}

/// Policies for `check`: the default, audit, and one with every parameter set and exemptions allowed.
fn check_policies() -> Vec<Policy> {
    let mut v = policies();
    v.push(
        Policy::from_yaml(
            "rules:\n  backup-retention: {minDays: 1, maxDays: 40, allowExemption: true}\n  backup-compression: {allowed: [zstd]}\n  scheduled-backup-schedule: {maxIntervalHours: 1}\n  image-tag-pinned: {action: deny, tagPattern: '^v[0-9]+$'}\n  migration-image-lockstep: {allowExemption: true}\n",
        )
        .unwrap(),
    );
    v
}

/// Metadata a manifest may carry: the dbhook labels and annotations, odd timestamps, no namespace.
fn arb_metadata() -> impl Strategy<Value = Value> {
    let label = prop_oneof![
        Just(json!({})),
        Just(json!({"dbhook.io/cluster": "pg"})),
        Just(json!({"dbhook.io/cluster": "", "dbhook.io/role": "migration"}))
    ];
    let annotation = prop_oneof![
        Just(json!({})),
        Just(json!({"argocd.argoproj.io/hook": "PreSync,PostSync", "dbhook.io/rollout": "x, ,y"})),
        Just(json!({"helm.sh/hook": "pre-upgrade", "dbhook.io/exempt": "backup-retention,nope,"})),
        Just(json!({"dbhook.io/secret-key": "", "dbhook.io/containers": ",", "dbhook.io/env-name": "1x"})),
    ];
    let created = prop_oneof![
        Just(Value::Null),
        Just(json!("2026-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("yesterday"))
    ];
    (
        prop::option::of("[a-z]{1,3}"),
        prop::option::of(prop_oneof![Just("ns".to_string()), Just(String::new())]),
        label,
        annotation,
        created,
    )
        .prop_map(|(name, ns, labels, annotations, created)| {
            let mut m = json!({"labels": labels, "annotations": annotations});
            if let Some(n) = name {
                m["name"] = json!(n);
            }
            if let Some(ns) = ns {
                m["namespace"] = json!(ns);
            }
            if !created.is_null() {
                m["creationTimestamp"] = created;
            }
            m
        })
}

/// Lines that stress the YAML splitter and parser.
fn arb_yaml_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("---".to_string()),
        Just("--- # c".to_string()),
        Just("...".to_string()),
        Just("apiVersion: v1".to_string()),
        Just("kind: List".to_string()),
        Just("kind: Cluster".to_string()),
        Just("apiVersion: postgresql.cnpg.io/v1".to_string()),
        Just("items: [".to_string()),
        Just("- {apiVersion: v1, kind: Namespace}".to_string()),
        Just("spec: &a {x: *a}".to_string()),
        Just("metadata: {name: [".to_string()),
        Just("  schedule: '0 2 * * *'".to_string()),
        Just("\tkey: \"\\u00\"".to_string()),
        Just("{\"apiVersion\": \"v1\"".to_string()),
        Just("? complex".to_string()),
        Just("!!binary aGk=".to_string()),
        "[ -~]{0,20}".prop_map(String::from),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn review_never_panics_on_arbitrary_objects((api, kind) in arb_kind(), spec in arb_json(), labelled in any::<bool>()) {
        let labels = if labelled { json!({"dbhook.io/cluster": "pg"}) } else { json!({}) };
        let doc = json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns", "labels": labels}, "spec": spec});
        if let Ok(obj) = Object::from_value(&doc) {
            let obj = Arc::new(obj);
            let view = ManifestView::new(vec![obj.clone()], true);
            for policy in policies() {
                for op in [Operation::Create, Operation::Update, Operation::Delete] {
                    let d = engine::review(&Change::state(&obj, op.clone()), &view, &policy, now());
                    decision_keeps_the_invariants(&d, &obj, Scope::All)?;
                    // The same object where every lookup is unknown: unknown never denies, so
                    // nothing denies there that does not deny with the complete view.
                    let blind = engine::review_scoped(&Change::state(&obj, op.clone()), &EmptyView, &policy, now(), Scope::Validate);
                    decision_keeps_the_invariants(&blind, &obj, Scope::Validate)?;
                    let (seen, unseen) = (denying_rules(&d), denying_rules(&blind));
                    prop_assert!(unseen.is_subset(&seen), "denied only when unknown: {:?} vs {:?}", unseen, seen);
                    if op == Operation::Delete {
                        prop_assert!(d.allowed && d.findings.is_empty() && d.patch.is_empty(), "a DELETE is left alone");
                    }
                }
            }
        }
    }

    #[test]
    fn check_never_panics_on_arbitrary_text(text in arb_yaml_text()) {
        if let Ok(docs) = dbhook::manifest::parse("in.yaml", &text) {
            for policy in check_policies() {
                match check_documents(&docs, &policy, true, now()) {
                    Ok(checked) => checked_adds_up(&checked, docs.len(), &policy)?,
                    Err(e) => prop_assert!(e.to_string().contains("in.yaml"), "an input error names the file: {}", e),
                }
            }
        }
    }

    #[test]
    fn check_never_panics_on_arbitrary_manifests(
        objects in prop::collection::vec((arb_kind(), arb_metadata(), arb_json()), 1..6),
        as_json in any::<bool>(),
        as_list in any::<bool>(),
        complete in any::<bool>(),
    ) {
        let values: Vec<Value> = objects
            .into_iter()
            .map(|((api, kind), metadata, spec)| json!({"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec}))
            .collect();
        let text = match (as_list, as_json) {
            (true, true) => json!({"apiVersion": "v1", "kind": "List", "items": values}).to_string(),
            (true, false) => serde_yaml_ng::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": values})).unwrap(),
            (false, true) => Value::Array(values).to_string(),
            (false, false) => values.iter().map(|v| serde_yaml_ng::to_string(v).unwrap()).collect::<Vec<_>>().join("---\n"),
        };
        let docs = dbhook::manifest::parse("in.yaml", &text);
        prop_assert!(docs.is_ok(), "well-formed manifests parse: {:?}", docs.err());
        let docs = docs.unwrap();
        for policy in check_policies() {
            match check_documents(&docs, &policy, complete, now()) {
                Ok(checked) => checked_adds_up(&checked, docs.len(), &policy)?,
                Err(e) => prop_assert!(e.to_string().contains("in.yaml"), "an input error names the file: {}", e),
            }
        }
    }

    #[test]
    fn admission_handle_never_panics_on_arbitrary_bodies(body in arb_json(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let envelope = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body});
        // A well-formed answer echoing the uid, or a 400 with a reason (fuzz_admission's checks).
        crate::fuzz_admission::admit(&envelope, Scope::Validate, &Policy::default())?;
        match dbhook::admission::handle(&bytes, Scope::Validate, &EmptyView, &Policy::default(), now()) {
            Ok(answer) => {
                let wire: Value = serde_json::from_slice(&answer.body).unwrap();
                prop_assert!(wire["response"]["allowed"].is_boolean(), "{}", wire);
            }
            Err(bad) => prop_assert!(!bad.0.is_empty(), "a 400 has a reason"),
        }
    }

    #[test]
    fn injection_is_idempotent(
        (api, kind) in prop_oneof![
            Just(("argoproj.io/v1alpha1", "Rollout")), Just(("apps/v1", "Deployment")),
            Just(("apps/v1", "StatefulSet")), Just(("batch/v1", "Job")), Just(("batch/v1", "CronJob"))],
        containers in prop::collection::vec((any::<bool>(), prop::option::of(prop::collection::vec(("[A-Z_]{1,6}", any::<bool>()), 0..3))), 1..5),
        init in 0usize..3,
        select in prop::option::of(prop::collection::vec(0usize..6, 0..3)),
    ) {
        let make = |prefix: &str, i: usize, env: &Option<Vec<(String, bool)>>| {
            let mut c = json!({"name": format!("{prefix}{i}"), "image": "ghcr.io/a/b:1"});
            if let Some(env) = env {
                c["env"] = Value::Array(env.iter().map(|(n, from_secret)| {
                    let name = if *from_secret { "DB_URL".to_string() } else { n.clone() };
                    json!({"name": name, "value": "v"})
                }).collect());
            }
            c
        };
        let main: Vec<Value> = containers.iter().enumerate().map(|(i, (_, env))| make("c", i, env)).collect();
        let inits: Vec<Value> = (0..init).map(|i| make("i", i, &None)).collect();
        let mut pod = json!({"containers": main});
        if init > 0 { pod["initContainers"] = Value::Array(inits); }
        let mut annotations = json!({});
        if let Some(sel) = &select {
            let names: Vec<String> = sel.iter().map(|i| format!("c{i}")).collect();
            annotations["dbhook.io/containers"] = json!(names.join(","));
        }
        let spec = if kind == "CronJob" {
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}})
        } else {
            json!({"template": {"spec": pod}})
        };
        let mut doc = json!({"apiVersion": api, "kind": kind,
            "metadata": {"name": "w", "namespace": "ns", "labels": {"dbhook.io/cluster": "pg"}, "annotations": annotations},
            "spec": spec});
        let policy = Policy::default();
        let first = mutate::plan(&Object::from_value(&doc).unwrap(), &Operation::Create, &policy);
        json_patch::patch(&mut doc, &first.patch).expect("patch applies to the object it was made for");
        let second = mutate::plan(&Object::from_value(&doc).unwrap(), &Operation::Create, &policy);
        prop_assert!(second.patch.is_empty(), "second patch: {:?}", second.patch);
        // Nothing already named DB_URL was touched: clobber warnings are the same both times.
        prop_assert_eq!(first.warnings, second.warnings);
    }
}

/// Specs that break a deny rule (plaintext URL, unpinned image against a migration Job, no WAL
/// archiving, archiving with no ScheduledBackup, a five-field schedule, a bad retention), or
/// anything at all.
fn arb_judged_spec() -> impl Strategy<Value = Value> {
    let pod = |image: &str| {
        json!({"containers": [{"name": "web", "image": image,
            "env": [{"name": "DB_URL", "value": "postgres://app:s3cret@db/app"}]}]})
    };
    prop_oneof![
        arb_json(),
        Just(json!({"template": {"spec": pod("ghcr.io/acme/web")}})),
        Just(json!({"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": pod("web:1")}}}})),
        Just(json!({"instances": 1, "storage": {"size": "1Gi"}})),
        Just(
            json!({"plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                                 "parameters": {"barmanObjectName": "store"}}]})
        ),
        Just(json!({"schedule": "0 2 * * *", "cluster": {"name": "pg"}})),
        Just(json!({"retentionPolicy": "1x", "configuration": {"destinationPath": "s3://b"}})),
    ]
}

/// Metadata changes that leave alone everything dbhook judges: labels and annotations outside
/// `dbhook.io/` and the hook annotations, finalizers, managedFields, resourceVersion.
/// Labels or annotations to set.
type Pairs = Vec<(String, String)>;

fn arb_insignificant_meta() -> impl Strategy<Value = (Pairs, Pairs, Vec<String>, bool)> {
    let key = prop_oneof![
        "example\\.com/[a-z]{1,6}",
        "[a-z]{1,8}",
        Just("app.kubernetes.io/version".to_string()),
        Just("argocd.argoproj.io/tracking-id".to_string()),
        Just("kubectl.kubernetes.io/last-applied-configuration".to_string()),
        Just("rollout.argoproj.io/revision".to_string()),
    ];
    let pairs = || prop::collection::vec((key.clone(), "[a-z0-9.-]{0,12}"), 0..4);
    let finalizers = prop::collection::vec(
        prop_oneof![
            Just("argocd.argoproj.io/hook-finalizer".to_string()),
            Just("foregroundDeletion".to_string()),
            Just("example.com/cleanup".to_string()),
        ],
        0..3,
    );
    (pairs(), pairs(), finalizers, any::<bool>())
}

fn review_update(object: &Value, old: &Value, dry_run: bool) -> Vec<u8> {
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    let kind = object["kind"].as_str().unwrap_or("");
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "p", "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": "x"},
            "name": "x", "namespace": "ns", "operation": "UPDATE", "userInfo": {"username": "controller"},
            "object": object, "oldObject": old, "dryRun": dry_run,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}}}))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn an_update_that_leaves_the_judged_fields_alone_is_never_denied(
        (api, kind) in arb_kind(),
        spec in arb_judged_spec(),
        metadata in arb_metadata(),
        (labels, annotations, finalizers, bump) in arb_insignificant_meta(),
        status in arb_json(),
        old_finalizers in prop::collection::vec(Just("argocd.argoproj.io/hook-finalizer".to_string()), 0..2),
        dry_run in any::<bool>(),
    ) {
        let mut old = json!({"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec});
        old["metadata"]["name"] = json!("x");
        old["metadata"]["namespace"] = json!("ns");
        old["metadata"]["finalizers"] = json!(old_finalizers);
        old["metadata"]["resourceVersion"] = json!("100");
        old["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Update"}]);
        let Ok(old_obj) = Object::from_value(&old) else { return Ok(()) };
        let mut new = old.clone();
        for (k, v) in labels {
            new["metadata"]["labels"][k] = json!(v);
        }
        for (k, v) in annotations {
            new["metadata"]["annotations"][k] = json!(v);
        }
        new["metadata"]["finalizers"] = json!(finalizers);
        new["status"] = status;
        if bump {
            new["metadata"]["resourceVersion"] = json!("101");
            new["metadata"]["managedFields"] = json!([{"manager": "controller", "operation": "Update"}]);
        }
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "m", "namespace": "ns", "labels": {"dbhook.io/cluster": "pg", "dbhook.io/role": "migration"}},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "ghcr.io/acme/web:2"}]}}}});
        let view = ManifestView::new(vec![Arc::new(old_obj), Arc::new(Object::from_value(&job).unwrap())], true);
        let body = review_update(&new, &old, dry_run);
        for policy in check_policies() {
            for view in [&view as &dyn dbhook::view::View, &EmptyView] {
                let answer = dbhook::admission::handle(&body, Scope::Validate, view, &policy, now());
                prop_assert!(answer.is_ok());
                let answer: Value = serde_json::from_slice(&answer.unwrap().body).unwrap();
                prop_assert_eq!(&answer["response"]["allowed"], &json!(true), "{}", answer);
                // What a CREATE of the object would deny is there, as pre-existing.
                let created = engine::review_scoped(&Change::create(&Object::from_value(&new).unwrap()).dry_run(dry_run), view, &policy, now(), Scope::Validate);
                if created.denies() > 0 {
                    let listed = answer["response"]["auditAnnotations"]["violations"].as_str().unwrap_or("");
                    prop_assert!(listed.contains("\"state\":\"pre-existing\""), "{}", answer);
                }
            }
        }
    }
}
