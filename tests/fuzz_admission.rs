//! Fuzzing `admission::handle` around real shapes: the `examples/review-*.json` AdmissionReviews
//! (and kinds built from them) with fields deleted, retyped, duplicated or replaced by arbitrary
//! values. Whatever comes out must keep README.md, "What it does", and docs/rules.md: no panic; a 400 or a well-formed
//! answer echoing the uid; audit never denies or patches; a denial names a rule id in
//! `[brackets]` or is a decode error; warnings are bounded; a returned patch applies to the
//! object and re-admitting the result yields no patch.

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use dbhook::admission::{self, MAX_MESSAGE_CHARS, MAX_WARNINGS};
use dbhook::engine::Scope;
use dbhook::policy::Policy;
use dbhook::view::EmptyView;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::server_support::example;

/// The reviews mutations start from: the examples, and the other handled kinds in their envelope.
fn seeds() -> Vec<Value> {
    let mut seeds: Vec<Value> = [
        "review-rollout.json",
        "review-job-presync.json",
        "review-job-update.json",
        "review-cluster-no-backup.json",
    ]
    .into_iter()
    .map(example)
    .collect();

    let mut deployment = example("review-rollout.json");
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let object = &mut deployment["request"]["object"];
    object["apiVersion"] = json!("apps/v1");
    object["kind"] = json!("Deployment");
    object["metadata"]["annotations"] = json!({
        "dbhook.io/containers": "web,sidecar", "dbhook.io/env-name": "DATABASE_URL",
        "dbhook.io/exempt": "image-tag-pinned,db-url-plaintext"});
    object["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "sidecar", "image": "ghcr.io/acme/proxy:1", "env": [{"name": "DATABASE_URL", "value": "postgres://a:b@db/app"}]}]);
    seeds.push(deployment);

    let mut cronjob = example("review-job-presync.json");
    cronjob["request"]["kind"]["kind"] = json!("CronJob");
    let object = &mut cronjob["request"]["object"];
    object["kind"] = json!("CronJob");
    let job_spec = object["spec"].clone();
    object["spec"] = json!({"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec}});
    seeds.push(cronjob);

    let envelope = example("review-cluster-no-backup.json");
    for (kind, group, object) in [
        (
            "ScheduledBackup",
            "postgresql.cnpg.io",
            json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
                   "metadata": {"name": "shop-pg-daily", "namespace": "shop"},
                   "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": "shop-pg"}, "method": "plugin",
                            "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}}),
        ),
        (
            "ObjectStore",
            "barmancloud.cnpg.io",
            json!({"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
                   "metadata": {"name": "store", "namespace": "shop"},
                   "spec": {"retentionPolicy": "30d",
                            "configuration": {"destinationPath": "s3://b/p", "endpointURL": "https://minio:9000",
                                              "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}},
                            "instanceSidecarConfiguration": {"env": [{"name": "AWS_REQUEST_CHECKSUM_CALCULATION", "value": "when_required"}]}}}),
        ),
    ] {
        let mut review = envelope.clone();
        review["request"]["kind"] = json!({"group": group, "version": "v1", "kind": kind});
        review["request"]["name"] = object["metadata"]["name"].clone();
        review["request"]["object"] = object;
        seeds.push(review);
    }
    let mut cluster = envelope;
    cluster["request"]["object"]["spec"]["backup"] = json!({
        "retentionPolicy": "30d",
        "barmanObjectStore": {"destinationPath": "s3://b/p", "endpointURL": "https://x.compat.objectstorage.eu.oraclecloud.com"}});
    cluster["request"]["operation"] = json!("UPDATE");
    cluster["request"]["oldObject"] = cluster["request"]["object"].clone();
    seeds.push(cluster);
    seeds
}

/// What to do at the chosen place.
#[derive(Debug, Clone)]
enum Edit {
    Delete,
    Replace(Value),
    /// Same content, another JSON type (a string becomes a number or a list, a list an object…).
    Retype,
    /// Appends a copy of an element to the list holding it (duplicate containers, env vars).
    Duplicate,
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("DB_URL".to_string()),
        Just("shop-pg".to_string()),
        Just("web".to_string()),
        Just("postgres://app:s3cret@db/app".to_string()),
        Just("$(DB_PASSWORD)".to_string()),
        Just("0 2 * * *".to_string()),
        Just("@every 0s".to_string()),
        Just("db-url-plaintext,nope,,".to_string()),
        Just("ghcr.io/acme/shop-web:latest".to_string()),
        Just("localhost:5000/web@sha256:abc".to_string()),
        Just("PreSync,pre-upgrade".to_string()),
        Just("migration".to_string()),
        Just("audit".to_string()),
        Just("\u{0}\u{202e}🐘".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(arb_string(), inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => Just(Edit::Delete),
        4 => arb_value().prop_map(Edit::Replace),
        3 => Just(Edit::Retype),
        1 => Just(Edit::Duplicate),
    ]
}

/// JSON pointers of every node under `base` (not `base` itself).
fn pointers(v: &Value, base: &str, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{base}/{}", escape(k));
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{base}/{i}");
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        _ => {}
    }
}

fn retype(v: &Value) -> Value {
    match v {
        Value::String(s) => s.parse::<f64>().map_or_else(|_| json!([s]), |n| json!(n)),
        Value::Number(n) => json!(n.to_string()),
        Value::Bool(b) => json!(b.to_string()),
        Value::Null => json!({}),
        Value::Array(a) => Value::Object(a.iter().enumerate().map(|(i, x)| (i.to_string(), x.clone())).collect()),
        Value::Object(m) if m.is_empty() => json!(""),
        Value::Object(m) => Value::Array(m.values().cloned().collect()),
    }
}

fn apply(review: &mut Value, in_object: bool, select: usize, edit: &Edit) {
    let base = if in_object && review["request"]["object"].is_object() {
        "/request/object"
    } else {
        ""
    };
    let mut all = Vec::new();
    pointers(review.pointer(base).unwrap(), base, &mut all);
    let Some(pointer) = all.get(select % all.len().max(1)).cloned() else {
        return;
    };
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    match edit {
        Edit::Delete => match review.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(&key);
            }
            Some(Value::Array(a)) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => {}
        },
        Edit::Replace(v) => *review.pointer_mut(&pointer).unwrap() = v.clone(),
        Edit::Retype => {
            let slot = review.pointer_mut(&pointer).unwrap();
            *slot = retype(slot);
        }
        Edit::Duplicate => {
            if let Some(Value::Array(a)) = review.pointer_mut(parent) {
                let copy = a[key.parse::<usize>().unwrap()].clone();
                a.push(copy);
            }
        }
    }
}

fn audit() -> Policy {
    Policy::from_yaml("mode: audit").unwrap()
}

/// The fixed "now" of the reviews (rules read the time: exemption dates, lockstep memory).
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

/// Answers `review` and checks every invariant; returns the decoded response, if any.
pub(crate) fn admit(review: &Value, scope: Scope, policy: &Policy) -> Result<Option<Value>, TestCaseError> {
    let body = serde_json::to_vec(review).unwrap();
    same_as_full_decoding(&body, scope, policy)?;
    let answer = match admission::handle(&body, scope, &EmptyView, policy, now()) {
        Ok(answer) => answer,
        Err(bad) => {
            prop_assert!(!bad.0.is_empty(), "a 400 has a reason");
            return Ok(None);
        }
    };
    let wire: Value = serde_json::from_slice(&answer.body).unwrap();
    prop_assert_eq!(&wire["apiVersion"], "admission.k8s.io/v1");
    prop_assert_eq!(&wire["kind"], "AdmissionReview");
    let response = &wire["response"];
    prop_assert_eq!(&response["uid"], &review["request"]["uid"]);
    let allowed = response["allowed"].as_bool();
    prop_assert!(allowed.is_some(), "allowed is a bool: {}", response);
    let audit_mode = policy.mode == dbhook::policy::Mode::Audit;
    if audit_mode {
        prop_assert_eq!(allowed, Some(true), "audit never denies: {}", response);
        prop_assert!(response.get("patch").is_none(), "audit never patches");
    }
    if scope == Scope::Validate {
        prop_assert!(response.get("patch").is_none(), "the validating webhook never patches");
    }
    if allowed == Some(false) {
        prop_assert_eq!(&response["status"]["code"], 403);
        let message = response["status"]["message"].as_str().unwrap_or("");
        let names_rule = dbhook::rules::CATALOG
            .iter()
            .any(|r| message.contains(&format!("[{}]", r.id)));
        prop_assert!(
            (message.starts_with("dbhook denied ") && names_rule) || message.starts_with("dbhook cannot decode "),
            "a denial names a rule or the decode error: {}",
            message
        );
        prop_assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
    }
    if let Some(warnings) = response.get("warnings").and_then(Value::as_array) {
        prop_assert!(warnings.len() <= MAX_WARNINGS);
        for w in warnings {
            let w = w.as_str().unwrap_or("");
            prop_assert!(w.starts_with("dbhook: ") && w.chars().count() <= 256, "{}", w);
        }
    }
    prop_assert_eq!(answer.summary.allowed, allowed == Some(true));
    Ok(Some(response.clone()))
}

/// The short way of decoding a review answers exactly as kube's types decoded in full do: the
/// same bytes, the same summary, or the same 400.
pub(crate) fn same_as_full_decoding(body: &[u8], scope: Scope, policy: &Policy) -> Result<(), TestCaseError> {
    let short = admission::handle(body, scope, &EmptyView, policy, now());
    let full = admission::handle_decoding_fully(body, scope, &EmptyView, policy, now());
    match (short, full) {
        (Ok(short), Ok(full)) => {
            prop_assert_eq!(
                String::from_utf8_lossy(&short.body),
                String::from_utf8_lossy(&full.body),
                "review: {}",
                String::from_utf8_lossy(body)
            );
            prop_assert_eq!(format!("{:?}", short.summary), format!("{:?}", full.summary));
        }
        (Err(short), Err(full)) => prop_assert_eq!(short, full),
        (short, full) => prop_assert!(
            false,
            "short {:?} / full {:?} for {}",
            short.map(|a| a.summary),
            full.map(|a| a.summary),
            String::from_utf8_lossy(body)
        ),
    }
    Ok(())
}

/// A patch applies to the object it was made for, and re-admitting the result yields none.
fn patch_is_idempotent(review: &Value, response: &Value) -> Result<(), TestCaseError> {
    let Some(encoded) = response.get("patch") else {
        return Ok(());
    };
    prop_assert_eq!(&response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut again = review.clone();
    let applied = json_patch::patch(&mut again["request"]["object"], &patch);
    prop_assert!(applied.is_ok(), "the patch applies: {:?} {:?}", applied, patch);
    let second = admit(&again, Scope::Mutate, &Policy::default())?;
    let second = second.expect("the patched review is still a review");
    prop_assert!(second.get("patch").is_none(), "second patch: {}", second);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn mutated_real_reviews_keep_every_invariant(
        seed in 0usize..64,
        edits in prop::collection::vec((prop::bool::weighted(0.85), any::<usize>(), arb_edit()), 1..5),
    ) {
        let seeds = seeds();
        let mut review = seeds[seed % seeds.len()].clone();
        for (in_object, select, edit) in &edits {
            apply(&mut review, *in_object, *select, edit);
        }
        let enforce = Policy::default();
        let audit = audit();
        for policy in [&enforce, &audit] {
            let _ = admit(&review, Scope::Validate, policy)?;
            if let Some(response) = admit(&review, Scope::Mutate, policy)? {
                patch_is_idempotent(&review, &response)?;
            }
        }
    }

    /// Labelled workloads with arbitrary container and env lists, where patches actually happen.
    #[test]
    fn injection_into_mutated_pod_templates_is_idempotent(
        seed in 0usize..3,
        edits in prop::collection::vec((any::<usize>(), arb_edit()), 1..4),
    ) {
        let seeds = seeds();
        // The Rollout, the PreSync Job and the annotated Deployment.
        let mut review = seeds[[0, 1, 4][seed]].clone();
        let pointer = if review["request"]["object"]["kind"] == "CronJob" {
            "/request/object/spec/jobTemplate/spec/template/spec"
        } else {
            "/request/object/spec/template/spec"
        };
        for (select, edit) in &edits {
            let mut pod = review.pointer(pointer).cloned().unwrap_or(Value::Null);
            let mut holder = json!({"request": {"object": Map::new()}});
            holder["request"]["object"] = std::mem::take(&mut pod);
            apply(&mut holder, true, *select, edit);
            *review.pointer_mut(pointer).unwrap() = holder["request"]["object"].take();
        }
        if let Some(response) = admit(&review, Scope::Mutate, &Policy::default())? {
            patch_is_idempotent(&review, &response)?;
        }
        let _ = admit(&review, Scope::Validate, &audit())?;
    }
}
