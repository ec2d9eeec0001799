//! Hostile input against the running server (README.md, "The webhook server"; SECURITY.md "Hostile or broken
//! input"): every body gets 400/413 with a plain reason or a well-formed AdmissionResponse, and
//! the server answers the next valid review after each one. The number of requests tried is
//! printed for the record.

use crate::server_support as support;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine as _;
use dbhook::policy::Policy;
use dbhook::server::RunningServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

/// What an input must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// HTTP 400 with a plain-text reason.
    BadRequest,
    /// HTTP 413.
    TooLarge,
    /// A well-formed AdmissionReview, whatever the decision.
    Answer,
    /// A well-formed AdmissionReview that allows.
    Allowed,
    /// An object of a handled kind that does not decode: denied with the decode error in
    /// enforce, allowed with a warning in audit.
    Undecodable,
    /// A well-formed AdmissionReview denying with `[rule]` in enforce (a would-deny warning
    /// in audit).
    Denied(&'static str),
}

/// One server in a mode, with an HTTP/2 and an HTTP/1.1 client.
struct Target {
    audit: bool,
    server: RunningServer,
    h2: reqwest::Client,
    h1: reqwest::Client,
}

impl Target {
    async fn start(pki: &Pki, audit: bool) -> Target {
        let mut config = config(pki.tls_paths());
        if audit {
            config.policy = Arc::new(ArcSwap::from_pointee(Policy::from_yaml("mode: audit").unwrap()));
        }
        let server = start(config).await;
        let h2 = client(&pki.bundle.ca_cert, server.addr, false);
        let h1 = client(&pki.bundle.ca_cert, server.addr, true);
        Target { audit, server, h2, h1 }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// Runs inputs and counts the requests made.
struct Prober {
    enforce: Target,
    audit: Target,
    tried: usize,
}

impl Prober {
    async fn new(pki: &Pki) -> Prober {
        Prober {
            enforce: Target::start(pki, false).await,
            audit: Target::start(pki, true).await,
            tried: 0,
        }
    }

    /// A body that is not a usable review: mode does not matter, so the enforce server only.
    async fn raw(&mut self, label: &str, body: Vec<u8>, expect: Expect) {
        for path in ["/validate", "/mutate"] {
            for h1 in [false, true] {
                self.one(false, h1, label, path, body.clone(), expect).await;
            }
        }
    }

    /// A review: both modes, both webhooks, both protocols.
    async fn review(&mut self, label: &str, review: &Value, expect: Expect) {
        let body = serde_json::to_vec(review).unwrap();
        for audit in [false, true] {
            for path in ["/validate", "/mutate"] {
                for h1 in [false, true] {
                    self.one(audit, h1, label, path, body.clone(), expect).await;
                }
            }
        }
    }

    /// Large reviews: both modes and webhooks over HTTP/2 only, to keep the suite quick.
    async fn big_review(&mut self, label: &str, review: &Value, expect: Expect) {
        let body = serde_json::to_vec(review).unwrap();
        for audit in [false, true] {
            for path in ["/validate", "/mutate"] {
                self.one(audit, false, label, path, body.clone(), expect).await;
            }
        }
    }

    async fn one(&mut self, audit: bool, h1: bool, label: &str, path: &str, body: Vec<u8>, expect: Expect) {
        let target = if audit { &self.audit } else { &self.enforce };
        let client = if h1 { &target.h1 } else { &target.h2 };
        let what = format!(
            "{label} → {path} ({}, {})",
            if audit { "audit" } else { "enforce" },
            if h1 { "HTTP/1.1" } else { "h2" }
        );
        let uid = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/request/uid").and_then(Value::as_str).map(str::to_string));
        let reply = send(client, &url(target.addr(), path), body).await;
        self.tried += 1;
        check(&what, &reply, uid.as_deref(), target.audit, expect);
        still_serving(target, h1, &what).await;
    }
}

/// The server answers a valid review on the same protocol after the hostile one.
async fn still_serving(target: &Target, h1: bool, after: &str) {
    let client = if h1 { &target.h1 } else { &target.h2 };
    let reply = post(client, target.addr(), "/mutate", &example("review-rollout.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "after {after}: {}", reply.text);
    let answer = reply.json();
    assert_eq!(answer["response"]["allowed"], true, "after {after}: {answer}");
    assert_eq!(
        patch_of(&answer).is_some(),
        !target.audit,
        "after {after}: enforce patches, audit does not: {answer}"
    );
}

fn check(what: &str, reply: &Reply, uid: Option<&str>, audit: bool, expect: Expect) {
    match expect {
        Expect::BadRequest | Expect::TooLarge => {
            let status = if expect == Expect::BadRequest {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::PAYLOAD_TOO_LARGE
            };
            assert_eq!(reply.status, status, "{what}: {}", cut(&reply.text));
            assert!(
                reply.content_type.starts_with("text/plain"),
                "{what}: {}",
                reply.content_type
            );
            assert!(!reply.text.trim().is_empty(), "{what}: a reason is given");
            return;
        }
        _ => {}
    }
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", cut(&reply.text));
    assert_eq!(reply.content_type, "application/json", "{what}");
    let answer = reply.json();
    let response = well_formed(what, &answer, uid, audit);
    let allowed = response["allowed"] == true;
    let message = response["status"]["message"].as_str().unwrap_or("");
    let warnings = warnings(response);
    match expect {
        Expect::Allowed => assert!(allowed, "{what}: {}", cut(&answer.to_string())),
        Expect::Undecodable if audit => {
            assert!(allowed, "{what}");
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with("dbhook: audit: dbhook cannot decode ")),
                "{what}: {warnings:?}"
            );
        }
        Expect::Undecodable => {
            assert!(!allowed, "{what}: {}", cut(&answer.to_string()));
            assert!(message.starts_with("dbhook cannot decode "), "{what}: {message}");
        }
        Expect::Denied(rule) if audit => {
            let prefix = format!("dbhook: audit: would deny: [{rule}] ");
            // Only the validating webhook judges.
            assert!(allowed, "{what}");
            if what.contains("/validate") {
                assert!(warnings.iter().any(|w| w.starts_with(&prefix)), "{what}: {warnings:?}");
            }
        }
        Expect::Denied(rule) => {
            if what.contains("/validate") {
                assert!(!allowed, "{what}: {}", cut(&answer.to_string()));
                assert!(message.contains(&format!("[{rule}] ")), "{what}: {message}");
            }
        }
        Expect::Answer | Expect::BadRequest | Expect::TooLarge => {}
    }
}

/// Asserts the AdmissionReview envelope and response invariants; returns `response`.
fn well_formed<'a>(what: &str, answer: &'a Value, uid: Option<&str>, audit: bool) -> &'a Value {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{what}");
    assert_eq!(answer["kind"], "AdmissionReview", "{what}");
    let response = &answer["response"];
    if let Some(uid) = uid {
        assert_eq!(response["uid"], uid, "{what}: the uid is echoed");
    }
    let allowed = response["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{what}: allowed is a bool"));
    if audit {
        assert!(allowed, "{what}: audit never denies");
        assert!(response.get("patch").is_none(), "{what}: audit never patches");
    }
    if !allowed {
        assert_eq!(response["status"]["code"], 403, "{what}");
        let message = response["status"]["message"].as_str().unwrap_or("");
        let names_rule = dbhook::rules::CATALOG
            .iter()
            .any(|r| message.contains(&format!("[{}]", r.id)));
        assert!(
            (message.starts_with("dbhook denied ") && names_rule) || message.starts_with("dbhook cannot decode "),
            "{what}: a denial names a rule or the decode error: {}",
            cut(message)
        );
    }
    let all = warnings(response);
    assert!(
        all.len() <= dbhook::admission::MAX_WARNINGS,
        "{what}: {} warnings; the answer stays bounded",
        all.len()
    );
    let message = response["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.chars().count() <= dbhook::admission::MAX_MESSAGE_CHARS,
        "{what}: a bounded message"
    );
    for w in all {
        assert!(w.starts_with("dbhook: "), "{what}: {w}");
        assert!(w.chars().count() <= 256, "{what}: warning over 256 characters: {w}");
    }
    if let Some(patch) = response.get("patch") {
        assert_eq!(response["patchType"], "JSONPatch", "{what}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch.as_str().expect("patch is base64"))
            .unwrap();
        let _: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    }
    response
}

fn warnings(response: &Value) -> Vec<String> {
    match response.get("warnings") {
        None | Some(Value::Null) => Vec::new(),
        Some(w) => w
            .as_array()
            .expect("warnings is a list")
            .iter()
            .map(|w| w.as_str().expect("a warning is a string").to_string())
            .collect(),
    }
}

fn cut(s: &str) -> String {
    dbhook::rules::truncate(s, 400)
}

// --- real-shaped reviews, bent ---------------------------------------------------------------

/// `example` with `edit` applied to its `request.object`.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut review = example(name);
    edit(&mut review["request"]["object"]);
    review
}

fn rollout(edit: impl FnOnce(&mut Value)) -> Value {
    edited("review-rollout.json", edit)
}

fn cluster(edit: impl FnOnce(&mut Value)) -> Value {
    edited("review-cluster-no-backup.json", edit)
}

/// A ScheduledBackup review (Argo CD applying it) with `spec.schedule` set to `schedule`.
fn scheduled_backup(schedule: Value) -> Value {
    let mut review = example("review-cluster-no-backup.json");
    let request = &mut review["request"];
    request["kind"]["kind"] = json!("ScheduledBackup");
    request["requestKind"]["kind"] = json!("ScheduledBackup");
    request["resource"]["resource"] = json!("scheduledbackups");
    request["requestResource"]["resource"] = json!("scheduledbackups");
    request["name"] = json!("shop-pg-daily");
    request["object"] = json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "ScheduledBackup",
        "metadata": {"name": "shop-pg-daily", "namespace": "shop"},
        "spec": {"schedule": schedule, "cluster": {"name": "shop-pg"}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}
    });
    review
}

fn container0(o: &mut Value) -> &mut Value {
    &mut o["spec"]["template"]["spec"]["containers"][0]
}

/// Deterministic pseudo-random bytes.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

const DEPTH: usize = 200_000;

// --- the suite -------------------------------------------------------------------------------

/// Bodies that are not AdmissionReviews at all.
async fn malformed_bodies(p: &mut Prober) {
    use Expect::*;
    let valid = serde_json::to_vec(&example("review-rollout.json")).unwrap();
    p.raw("empty body", Vec::new(), BadRequest).await;
    p.raw("NUL byte", vec![0], BadRequest).await;
    for (seed, len) in [(1, 1), (2, 64), (3, 4096), (4, 65_536)] {
        p.raw(&format!("{len} bytes of garbage"), garbage(seed, len), BadRequest)
            .await;
    }
    p.raw(
        "invalid UTF-8 in a string",
        b"{\"apiVersion\":\"\xff\xfe\"}".to_vec(),
        BadRequest,
    )
    .await;
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(valid.iter().flat_map(|b| [*b, 0]));
    p.raw("the valid review in UTF-16", utf16, BadRequest).await;
    for cut_at in [1, 2, valid.len() / 7, valid.len() / 2, valid.len() - 2, valid.len() - 1] {
        p.raw(
            &format!("review truncated at byte {cut_at}"),
            valid[..cut_at].to_vec(),
            BadRequest,
        )
        .await;
    }
    for body in [
        "null",
        "true",
        "42",
        "-1e400",
        "\"AdmissionReview\"",
        "[]",
        "[{}]",
        "{}",
    ] {
        p.raw(&format!("non-object JSON {body}"), body.into(), BadRequest).await;
    }
    p.raw("200,000 × [", "[".repeat(DEPTH).into(), BadRequest).await;
    p.raw("200,000 × {\"a\":", "{\"a\":".repeat(DEPTH).into(), BadRequest)
        .await;
    p.raw(
        "200,000 balanced [ ]",
        format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)).into(),
        BadRequest,
    )
    .await;
    let deep_object = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    p.raw("200,000 balanced {\"a\":", deep_object.clone().into(), BadRequest)
        .await;
    // The nesting inside an otherwise valid review.
    let text = String::from_utf8(valid.clone()).unwrap();
    let nested = text.replacen("\"replicas\": 3", &format!("\"replicas\": {deep_object}"), 1);
    let nested = if nested == text {
        text.replacen("\"replicas\":3", &format!("\"replicas\":{deep_object}"), 1)
    } else {
        nested
    };
    assert_ne!(nested, text, "the nesting went in");
    p.raw("200,000 levels inside request.object", nested.into(), BadRequest)
        .await;
    p.raw(
        "duplicate request key",
        format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{0},\"request\":{0}}}",
            serde_json::to_string(&example("review-rollout.json")["request"]).unwrap()
        )
        .into(),
        Answer,
    )
    .await;
    p.raw(
        "lone surrogate in a name",
        text.replacen("\"name\": \"web\"", "\"name\": \"\\ud800\"", 1)
            .replacen("\"name\":\"web\"", "\"name\":\"\\ud800\"", 1)
            .into(),
        BadRequest,
    )
    .await;
}

/// Envelopes that are not AdmissionReview v1 with a request.
async fn bad_envelopes(p: &mut Prober) {
    use Expect::*;
    let base = example("review-rollout.json");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut review = base.clone();
        edit(&mut review);
        serde_json::to_vec(&review).unwrap()
    };
    for version in [
        json!("admission.k8s.io/v1beta1"),
        json!("admission.k8s.io/v2"),
        json!(""),
        json!(1),
        json!(null),
    ] {
        p.raw(
            &format!("apiVersion {version}"),
            with(&|r| r["apiVersion"] = version.clone()),
            BadRequest,
        )
        .await;
    }
    p.raw(
        "no apiVersion",
        with(&|r| {
            r.as_object_mut().unwrap().remove("apiVersion");
        }),
        BadRequest,
    )
    .await;
    for kind in [json!("AdmissionResponse"), json!("Pod"), json!(null)] {
        p.raw(&format!("kind {kind}"), with(&|r| r["kind"] = kind.clone()), BadRequest)
            .await;
    }
    p.raw(
        "no request",
        with(&|r| {
            r.as_object_mut().unwrap().remove("request");
        }),
        BadRequest,
    )
    .await;
    for request in [json!(null), json!([]), json!("request"), json!(7), json!({})] {
        p.raw(
            &format!("request {request}"),
            with(&|r| r["request"] = request.clone()),
            BadRequest,
        )
        .await;
    }
    for (field, value) in [
        ("uid", json!(7)),
        ("uid", json!(null)),
        ("operation", json!("EXPLODE")),
        ("operation", json!(null)),
        ("kind", json!("Rollout")),
        ("kind", json!(null)),
        ("userInfo", json!("root")),
        ("dryRun", json!("yes")),
    ] {
        p.raw(
            &format!("request.{field} = {value}"),
            with(&|r| r["request"][field] = value.clone()),
            BadRequest,
        )
        .await;
    }
    let out_of_range = String::from_utf8(with(&|r| r["request"]["object"]["spec"]["replicas"] = json!("N")))
        .unwrap()
        .replace("\"N\"", "1e400");
    p.raw("a number out of range", out_of_range.into(), BadRequest).await;
    let at_limit = vec![b' '; dbhook::server::MAX_BODY_BYTES];
    p.raw("exactly the body limit of whitespace", at_limit, BadRequest)
        .await;
}

/// Bodies over the limit, over HTTP/2 (where the early answer arrives while uploading; the
/// HTTP/1.1 byte-level cases are in `server_admission`).
async fn oversized(p: &mut Prober) {
    let limit = dbhook::server::MAX_BODY_BYTES;
    let mut padded = serde_json::to_vec(&example("review-rollout.json")).unwrap();
    padded.resize(limit + 1, b' ');
    for (label, body) in [
        ("one byte over the limit", vec![b' '; limit + 1]),
        ("a valid review padded past the limit", padded),
        ("8 MiB of [", vec![b'['; 8 * 1024 * 1024]),
    ] {
        for path in ["/validate", "/mutate"] {
            p.one(false, false, label, path, body.clone(), Expect::TooLarge).await;
        }
    }
}

/// Objects of handled kinds with fields of the wrong type.
async fn wrongly_typed(p: &mut Prober) {
    use Expect::*;
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "containers as an object",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!({"name": "web", "image": "x:1"})),
            Undecodable,
        ),
        (
            "containers as a string",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!("web")),
            Undecodable,
        ),
        (
            "containers as a number",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(3)),
            Undecodable,
        ),
        (
            "containers null",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(null)),
            Answer,
        ),
        (
            "a container as a string",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(["web"])),
            Undecodable,
        ),
        (
            "initContainers as a number",
            rollout(|o| o["spec"]["template"]["spec"]["initContainers"] = json!(1)),
            Undecodable,
        ),
        (
            "env as a string",
            rollout(|o| container0(o)["env"] = json!("LOG_LEVEL=info")),
            Undecodable,
        ),
        (
            "env as an object",
            rollout(|o| container0(o)["env"] = json!({"LOG_LEVEL": "info"})),
            Undecodable,
        ),
        (
            "an env entry as a number",
            rollout(|o| container0(o)["env"] = json!([5])),
            Undecodable,
        ),
        (
            "an env value as a number",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "value": 5}])),
            Undecodable,
        ),
        (
            "an env name as a list",
            rollout(|o| container0(o)["env"] = json!([{"name": ["DB_URL"]}])),
            Undecodable,
        ),
        (
            "valueFrom as a string",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "valueFrom": "secret"}])),
            Undecodable,
        ),
        (
            "the image as a number",
            rollout(|o| container0(o)["image"] = json!(42)),
            Undecodable,
        ),
        (
            "the container name as a bool",
            rollout(|o| container0(o)["name"] = json!(true)),
            Undecodable,
        ),
        // Fields dbhook does not read are not decoded (kube-apiserver validates them): any
        // well-formed answer will do.
        (
            "ports as a string",
            rollout(|o| container0(o)["ports"] = json!("8080")),
            Answer,
        ),
        (
            "resources as a list",
            rollout(|o| container0(o)["resources"] = json!([])),
            Answer,
        ),
        (
            "a label value as a number",
            rollout(|o| o["metadata"]["labels"]["dbhook.io/cluster"] = json!(5)),
            Undecodable,
        ),
        (
            "labels as a list",
            rollout(|o| o["metadata"]["labels"] = json!(["dbhook.io/cluster"])),
            Undecodable,
        ),
        (
            "annotations as a string",
            rollout(|o| o["metadata"]["annotations"] = json!("dbhook.io/exempt")),
            Undecodable,
        ),
        (
            "an annotation value as an object",
            rollout(|o| o["metadata"]["annotations"]["dbhook.io/exempt"] = json!({"all": true})),
            Undecodable,
        ),
        (
            "metadata as a string",
            rollout(|o| o["metadata"] = json!("web")),
            Undecodable,
        ),
        (
            "the name as a number",
            rollout(|o| o["metadata"]["name"] = json!(7)),
            Undecodable,
        ),
        (
            "creationTimestamp nonsense",
            rollout(|o| o["metadata"]["creationTimestamp"] = json!("yesterday")),
            Undecodable,
        ),
        ("spec as a string", rollout(|o| o["spec"] = json!("spec")), Answer),
        (
            "the template as a list",
            rollout(|o| o["spec"]["template"] = json!([])),
            Answer,
        ),
        (
            "the pod spec as a number",
            rollout(|o| o["spec"]["template"]["spec"] = json!(0)),
            Undecodable,
        ),
        (
            "workloadRef as a string",
            rollout(|o| o["spec"]["workloadRef"] = json!("web")),
            Answer,
        ),
        (
            "replicas as a float",
            rollout(|o| o["spec"]["replicas"] = json!(3.5)),
            Answer,
        ),
        ("the object as a list", rollout(|o| *o = json!([1, 2])), Undecodable),
        ("the object as a string", rollout(|o| *o = json!("web")), Undecodable),
        ("object null on CREATE", rollout(|o| *o = json!(null)), Allowed),
        (
            "a CronJob's jobTemplate as a string",
            {
                let mut r = example("review-job-presync.json");
                r["request"]["kind"] = json!({"group": "batch", "version": "v1", "kind": "CronJob"});
                r["request"]["object"]["kind"] = json!("CronJob");
                r["request"]["object"]["spec"] =
                    json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": "x"}}}});
                r
            },
            Undecodable,
        ),
        (
            "a Job's containers as an object",
            edited("review-job-presync.json", |o| {
                o["spec"]["template"]["spec"]["containers"] = json!({})
            }),
            Undecodable,
        ),
        (
            "Cluster spec.backup as a string",
            cluster(|o| o["spec"]["backup"] = json!("s3")),
            Undecodable,
        ),
        (
            "Cluster plugins as an object",
            cluster(|o| o["spec"]["plugins"] = json!({"name": "barman-cloud.cloudnative-pg.io"})),
            Undecodable,
        ),
        (
            "Cluster isWALArchiver as a string",
            cluster(|o| {
                o["spec"]["plugins"] = json!([{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": "yes"}])
            }),
            Undecodable,
        ),
        (
            "Cluster env as a string",
            cluster(|o| o["spec"]["env"] = json!("AWS_REQUEST_CHECKSUM_CALCULATION=when_required")),
            Undecodable,
        ),
        (
            "Cluster retentionPolicy as a number",
            cluster(|o| o["spec"]["backup"] = json!({"retentionPolicy": 30})),
            Undecodable,
        ),
        (
            "Cluster bootstrap as an empty list (serde reads it as a struct)",
            cluster(|o| o["spec"]["bootstrap"] = json!([])),
            Answer,
        ),
        (
            "Cluster spec as a list of strings",
            cluster(|o| o["spec"] = json!(["s3"])),
            Undecodable,
        ),
        (
            "ScheduledBackup schedule as a number",
            scheduled_backup(json!(5)),
            Undecodable,
        ),
        (
            "ScheduledBackup schedule as a list",
            scheduled_backup(json!(["0", "0", "2", "*", "*", "*"])),
            Undecodable,
        ),
        (
            "ScheduledBackup cluster as a string",
            {
                let mut r = scheduled_backup(json!("0 0 2 * * *"));
                r["request"]["object"]["spec"]["cluster"] = json!("shop-pg");
                r
            },
            Undecodable,
        ),
        (
            "a Namespace's labels as a number",
            {
                let mut r = example("review-cluster-no-backup.json");
                r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Namespace"});
                r["request"]["namespace"] = json!(null);
                r["request"]["object"] =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": 1}});
                r
            },
            Undecodable,
        ),
        (
            "an UPDATE whose oldObject is malformed",
            {
                let mut r = example("review-job-update.json");
                r["request"]["oldObject"]["metadata"] = json!("old");
                r
            },
            Answer,
        ),
        (
            "a DELETE of garbage",
            {
                let mut r = rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!("x"));
                r["request"]["operation"] = json!("DELETE");
                r
            },
            Allowed,
        ),
        (
            "an unknown kind with garbage",
            {
                let mut r = example("review-rollout.json");
                r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
                r["request"]["object"] = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": [1, {"a": null}]});
                r
            },
            Allowed,
        ),
    ];
    for (label, review, expect) in cases {
        p.review(label, &review, expect).await;
    }
}

/// Sizes nobody sends, odd text everywhere, nonsense schedules.
async fn odd_content(p: &mut Prober) {
    use Expect::*;
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("ghcr.io/acme/c{i}:sha-1a2b3c4")}))
        .collect();
    let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    p.big_review(
        "10,000 containers",
        &rollout(|o| o["spec"]["template"]["spec"]["containers"] = Value::Array(many.clone())),
        Answer,
    )
    .await;
    p.big_review(
        "10,000 containers, all listed in dbhook.io/containers",
        &rollout(|o| {
            o["spec"]["template"]["spec"]["containers"] = Value::Array(many.clone());
            o["metadata"]["annotations"]["dbhook.io/containers"] = json!(names.join(","));
        }),
        Answer,
    )
    .await;
    p.big_review(
        "10,000 containers, each with a plaintext URL",
        &rollout(|o| {
            let with_env: Vec<Value> = many
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c["env"] = json!([{"name": "DB_URL", "value": "postgres://a:b@db/app"}]);
                    c
                })
                .collect();
            o["spec"]["template"]["spec"]["containers"] = Value::Array(with_env);
        }),
        Denied("db-url-plaintext"),
    )
    .await;
    p.big_review(
        "10,000 labels",
        &rollout(|o| {
            for i in 0..10_000 {
                o["metadata"]["labels"][format!("l{i}")] = json!(i.to_string());
            }
        }),
        Answer,
    )
    .await;
    p.big_review(
        "a 1 MiB name",
        &rollout(|o| o["metadata"]["name"] = json!("w".repeat(1 << 20))),
        Answer,
    )
    .await;

    let odd = [
        "\u{0}",
        "web\u{0}",
        "\u{202e}gnp.exe",
        "שלום",
        "🐘",
        "e\u{301}\u{301}\u{301}",
        "\u{feff}web",
        "\u{fffd}",
        "\u{10ffff}",
        "\t\r\n",
        "",
    ];
    for s in odd {
        let label = |what: &str| format!("{what} {s:?}");
        p.review(
            &label("container name"),
            &rollout(|o| container0(o)["name"] = json!(s)),
            Answer,
        )
        .await;
        p.review(
            &label("image"),
            &rollout(|o| container0(o)["image"] = json!(format!("ghcr.io/acme/{s}:sha-1{s}"))),
            Answer,
        )
        .await;
        p.review(
            &label("object name and namespace"),
            &rollout(|o| {
                o["metadata"]["name"] = json!(s);
                o["metadata"]["namespace"] = json!(s);
            }),
            Answer,
        )
        .await;
        p.review(
            &label("dbhook annotations"),
            &rollout(|o| {
                let a = &mut o["metadata"]["annotations"];
                for key in [
                    "dbhook.io/env-name",
                    "dbhook.io/secret-name",
                    "dbhook.io/secret-key",
                    "dbhook.io/containers",
                    "dbhook.io/exempt",
                    "note",
                ] {
                    a[key] = json!(s);
                }
                o["metadata"]["labels"]["dbhook.io/cluster"] = json!(s);
            }),
            Answer,
        )
        .await;
    }
    p.review(
        "RTL and emoji in annotations",
        &rollout(|o| {
            o["metadata"]["annotations"]["note"] = json!("\u{202e}⚠️ שלום 🐘👩‍👩‍👧‍👦 \u{200d}\u{2066}x\u{2069}");
            o["metadata"]["annotations"]["dbhook.io/env-name"] = json!("DB_🐘");
        }),
        Denied("injection-config"),
    )
    .await;

    let exempt_unknown: Vec<String> = (0..10_000).map(|i| format!("rule-{i}")).collect();
    let exempt_known = vec!["db-url-plaintext"; 10_000];
    for (label, list) in [
        ("10,000 unknown rules in dbhook.io/exempt", exempt_unknown.join(",")),
        ("10,000 × one rule in dbhook.io/exempt", exempt_known.join(",")),
        ("10,000 commas in dbhook.io/exempt", ",".repeat(10_000)),
    ] {
        p.big_review(
            label,
            &rollout(|o| o["metadata"]["annotations"]["dbhook.io/exempt"] = json!(list)),
            Answer,
        )
        .await;
    }

    for schedule in [
        "",
        " ",
        "0 2 * * *",
        "* * * * * * *",
        "*/0 * * * * *",
        "60 * * * * *",
        "-1 -1 -1 -1 -1 -1",
        "18446744073709551616 * * * * *",
        "0-59/18446744073709551615 * * * * *",
        "0 0 2 ? * L",
        "0 0 2 * * 5#3",
        "0 0 2 W * *",
        "@every 0s",
        "@every -1h",
        "@every 99999999999999999999h",
        "@every 1e9h",
        "@every ∞",
        "@fortnightly",
        "CRON_TZ=",
        "CRON_TZ=Mars/Olympus 0 0 2 * * *",
        "TZ=\u{0} @daily",
        "💾 💾 💾 💾 💾 💾",
        "\u{0}",
        "0\u{0}0 2 * * *",
        "0 0 0 30 2 *",
        "0 0 0 29 2 *",
    ] {
        p.review(
            &format!("schedule {schedule:?}"),
            &scheduled_backup(json!(schedule)),
            Answer,
        )
        .await;
    }
    p.review(
        "schedule of 100,000 commas",
        &scheduled_backup(json!(format!("0 {} * * * *", ",".repeat(100_000)))),
        Denied("scheduled-backup-schedule"),
    )
    .await;
    p.review(
        "schedule of 10,000 fields",
        &scheduled_backup(json!("* ".repeat(10_000))),
        Denied("scheduled-backup-schedule"),
    )
    .await;
    p.review("schedule null", &scheduled_backup(json!(null)), Answer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_400_413_or_a_well_formed_answer_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let mut p = Prober::new(&pki).await;
    malformed_bodies(&mut p).await;
    bad_envelopes(&mut p).await;
    oversized(&mut p).await;
    wrongly_typed(&mut p).await;
    odd_content(&mut p).await;
    eprintln!("hostile inputs tried: {} requests", p.tried);
}

/// Thousands of findings (or of exemption names) make a bounded answer: the first warnings and
/// a count of the rest, one warning per repeated exemption, a denial message cut short.
#[test]
fn thousands_of_findings_get_a_bounded_answer_that_counts_the_rest() {
    use dbhook::admission::{MAX_MESSAGE_CHARS, MAX_WARNINGS, handle};
    use dbhook::engine::Scope;
    use dbhook::view::EmptyView;
    let containers: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": "ghcr.io/acme/web:latest",
                        "env": [{"name": "DB_URL", "value": "postgres://a:b@db/app"}]})
        })
        .collect();
    let review = rollout(|o| {
        o["spec"]["template"]["spec"]["containers"] = Value::Array(containers);
        o["metadata"]["annotations"]["dbhook.io/exempt"] = json!(vec!["db-url-plaintext"; 10_000].join(","));
    });
    let body = serde_json::to_vec(&review).unwrap();
    let answer = |policy: &Policy| {
        let answer = handle(&body, Scope::Validate, &EmptyView, policy, chrono::Utc::now()).unwrap();
        serde_json::from_slice::<Value>(&answer.body).unwrap()["response"].clone()
    };

    let audit = answer(&Policy::from_yaml("mode: audit").unwrap());
    let warnings = warnings(&audit);
    assert_eq!(warnings.len(), MAX_WARNINGS);
    let exemption = |w: &&String| w.contains("exemption from [db-url-plaintext] ignored");
    assert_eq!(warnings.iter().filter(exemption).count(), 1, "{warnings:?}");
    let last = warnings.last().unwrap();
    // 1 exemption warning and 3 × 10,000 findings: would-deny db-url-plaintext, warnings
    // image-tag-pinned and db-url-source.
    assert_eq!(
        last,
        &format!(
            "dbhook: {} more warnings not shown; `dbhook check` on the manifest lists every finding",
            1 + 30_000 - (MAX_WARNINGS - 1)
        )
    );

    let enforce = answer(&Policy::default());
    assert_eq!(enforce["allowed"], false);
    let message = enforce["status"]["message"].as_str().unwrap();
    assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    assert!(message.starts_with("dbhook denied Rollout shop/web: [db-url-plaintext] container c0 "));
    assert!(message.ends_with('…'));
}
