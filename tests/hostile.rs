//! Hostile input (README.md, "The webhook server"; SECURITY.md "Hostile or broken input"): a
//! table of bodies, each with the exact answer it must get, sent through the webhook router
//! in-process to both webhooks in enforce and in audit mode; a handful of rows go over real TLS,
//! HTTP/1.1 and h2, to show the listener answers the same and keeps serving after each.

use crate::server_support as support;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use base64::Engine as _;
use dbhook::policy::Policy;
use dbhook::server::webhook::{WebhookState, router};
use dbhook::server::{MAX_BODY_BYTES, RunningServer};
use dbhook::view::EmptyView;
use http_body_util::BodyExt as _;
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use support::{example_edited as edited, rollout_edited as rollout, *};
use tower::ServiceExt as _;

/// What an input must get from both webhooks, in enforce mode; audit mode follows from it (it
/// never denies and never patches: what enforce denies becomes a warning).
#[derive(Debug, Clone)]
enum Want {
    /// HTTP 400 with a plain-text reason containing each of these.
    Bad(Vec<String>),
    /// HTTP 413 naming the limit.
    TooLarge,
    /// An object of a handled kind that does not decode: both webhooks deny with
    /// `dbhook cannot decode <this…>`; audit allows with that as its only warning.
    Undecodable(String),
    /// A review both webhooks judge.
    Judged { validate: Validate, mutate: Mutate },
}

/// What `/validate` answers in enforce mode.
#[derive(Debug, Clone)]
enum Validate {
    /// Allowed without warnings.
    Pass,
    /// Allowed with a warning containing this.
    Warn(&'static str),
    /// Denied (403) naming `[rule]`, the message containing the fragment; in audit, allowed
    /// with the warning `dbhook: audit: would deny: [rule] …` containing it.
    Deny(&'static str, String),
}

/// What `/mutate` answers in enforce mode.
#[derive(Debug, Clone, Copy)]
enum Mutate {
    /// Allowed, no patch, no warnings.
    Pass,
    /// Allowed with the injection patch; in audit no patch and the `would inject` warning.
    Patch,
    /// Allowed without a patch, with a warning containing this.
    Warn(&'static str),
}

use Mutate::Patch;

fn bad(reason: impl Into<String>) -> Want {
    Want::Bad(vec![reason.into()])
}

fn bad_all<const N: usize>(fragments: [String; N]) -> Want {
    Want::Bad(fragments.into())
}

fn unsupported_version(got: &str) -> Want {
    bad(format!(
        "unsupported AdmissionReview apiVersion {got:?}: dbhook speaks admission.k8s.io/v1 only"
    ))
}

fn too_deep() -> Want {
    not_json("recursion limit exceeded")
}

fn undecodable(what: &str) -> Want {
    Want::Undecodable(what.to_string())
}

fn judged(validate: Validate, mutate: Mutate) -> Want {
    Want::Judged { validate, mutate }
}

fn deny(rule: &'static str, fragment: impl Into<String>) -> Validate {
    Validate::Deny(rule, fragment.into())
}

/// A labelled workload the validating rules pass and the mutating webhook injects into.
fn injected() -> Want {
    judged(Validate::Pass, Patch)
}

/// Not JSON, or JSON of the wrong shape.
fn not_json(why: &str) -> Want {
    bad(format!("request body is not JSON: {why}"))
}

fn not_a_review(why: &str) -> Want {
    bad(format!("not a valid AdmissionReview admission.k8s.io/v1: {why}"))
}

struct Row {
    label: String,
    body: Vec<u8>,
    want: Want,
}

#[derive(Default)]
struct Rows(Vec<Row>);

impl Rows {
    fn raw(&mut self, label: &str, body: Vec<u8>, want: Want) {
        self.0.push(Row {
            label: label.to_string(),
            body,
            want,
        });
    }

    fn review(&mut self, label: &str, review: &Value, want: Want) {
        self.raw(label, serde_json::to_vec(review).unwrap(), want);
    }
}

/// Every input, in the order the sections below build them.
fn rows() -> Vec<Row> {
    let mut rows = Rows::default();
    malformed_bodies(&mut rows);
    bad_envelopes(&mut rows);
    oversized(&mut rows);
    wrongly_typed(&mut rows);
    odd_content(&mut rows);
    rows.0
}

// --- checking an answer ----------------------------------------------------------------------

/// Where an answer came from, for messages and for what it must be.
#[derive(Clone, Copy)]
struct Route<'a> {
    label: &'a str,
    audit: bool,
    path: &'static str,
    over: &'static str,
}

impl std::fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.audit { "audit" } else { "enforce" };
        write!(f, "{} → {} ({mode}, {})", self.label, self.path, self.over)
    }
}

fn check(at: Route<'_>, reply: &Reply, uid: Option<&str>, want: &Want) {
    let plain = |status: StatusCode| {
        assert_eq!(reply.status, status, "{at}: {}", cut(&reply.text));
        assert!(
            reply.content_type.starts_with("text/plain"),
            "{at}: {}",
            reply.content_type
        );
    };
    match want {
        Want::Bad(fragments) => {
            plain(StatusCode::BAD_REQUEST);
            for fragment in fragments {
                assert!(
                    reply.text.contains(fragment.as_str()),
                    "{at}: {:?} lacks {fragment:?}",
                    cut(&reply.text)
                );
            }
            return;
        }
        Want::TooLarge => {
            plain(StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(
                reply.text,
                format!("request body exceeds {MAX_BODY_BYTES} bytes\n"),
                "{at}"
            );
            return;
        }
        Want::Undecodable(_) | Want::Judged { .. } => {}
    }
    assert_eq!(reply.status, StatusCode::OK, "{at}: {}", cut(&reply.text));
    assert_eq!(reply.content_type, "application/json", "{at}");
    let answer = reply.json();
    let response = well_formed(at, &answer, uid);
    let allowed = response["allowed"] == true;
    let patched = response.get("patch").is_some();
    let message = response["status"]["message"].as_str().unwrap_or("");
    let warnings = warnings(response);
    let show = || cut(&answer.to_string());
    let warned = |fragment: &str| warnings.iter().any(|w| w.contains(fragment));
    match want {
        Want::Bad(_) | Want::TooLarge => unreachable!(),
        Want::Undecodable(what) if at.audit => {
            assert!(allowed, "{at}: {}", show());
            let expected = format!("dbhook: audit: dbhook cannot decode {what}");
            assert!(
                warnings.len() == 1 && warnings[0].starts_with(&expected),
                "{at}: {warnings:?}, expected {expected:?}"
            );
        }
        Want::Undecodable(what) => {
            assert!(!allowed && !patched, "{at}: {}", show());
            let expected = format!("dbhook cannot decode {what}");
            assert!(
                message.starts_with(&expected),
                "{at}: {message:?}, expected {expected:?}"
            );
        }
        Want::Judged { validate, .. } if at.path == "/validate" => {
            assert!(!patched, "{at}: the validating webhook never patches");
            match validate {
                Validate::Pass => assert!(allowed && warnings.is_empty(), "{at}: {}", show()),
                Validate::Warn(fragment) => {
                    assert!(
                        allowed && warned(fragment),
                        "{at}: no warning has {fragment:?}: {}",
                        show()
                    )
                }
                Validate::Deny(rule, fragment) if at.audit => {
                    let prefix = format!("dbhook: audit: would deny: [{rule}] ");
                    assert!(allowed, "{at}");
                    assert!(
                        warnings
                            .iter()
                            .any(|w| w.starts_with(&prefix) && w.contains(fragment.as_str())),
                        "{at}: no {prefix:?} warning with {fragment:?}: {warnings:?}"
                    );
                }
                Validate::Deny(rule, fragment) => {
                    assert!(!allowed, "{at}: {}", show());
                    assert!(
                        message.contains(&format!("[{rule}] ")) && message.contains(fragment.as_str()),
                        "{at}: {message:?} lacks [{rule}] {fragment:?}"
                    );
                }
            }
        }
        Want::Judged { mutate, .. } => {
            assert!(allowed, "{at}: {}", show());
            match mutate {
                Mutate::Pass => assert!(!patched && warnings.is_empty(), "{at}: {}", show()),
                Mutate::Patch if at.audit => assert!(
                    !patched
                        && warnings.len() == 1
                        && warnings[0].starts_with("dbhook: would inject DB_URL into containers "),
                    "{at}: {}",
                    show()
                ),
                Mutate::Patch => assert!(patched && warnings.is_empty(), "{at}: {}", show()),
                Mutate::Warn(fragment) => {
                    assert!(
                        !patched && warned(fragment),
                        "{at}: no warning has {fragment:?}: {}",
                        show()
                    )
                }
            }
        }
    }
}

/// Asserts the AdmissionReview envelope and response invariants; returns `response`.
fn well_formed<'a>(at: Route<'_>, answer: &'a Value, uid: Option<&str>) -> &'a Value {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{at}");
    assert_eq!(answer["kind"], "AdmissionReview", "{at}");
    let response = &answer["response"];
    if let Some(uid) = uid {
        assert_eq!(response["uid"], uid, "{at}: the uid is echoed");
    }
    let allowed = response["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{at}: allowed is a bool"));
    if at.audit {
        assert!(allowed, "{at}: audit never denies");
        assert!(response.get("patch").is_none(), "{at}: audit never patches");
    }
    if !allowed {
        assert_eq!(response["status"]["code"], 403, "{at}");
        let message = response["status"]["message"].as_str().unwrap_or("");
        let names_rule = dbhook::rules::CATALOG
            .iter()
            .any(|r| message.contains(&format!("[{}]", r.id)));
        assert!(
            (message.starts_with("dbhook denied ") && names_rule) || message.starts_with("dbhook cannot decode "),
            "{at}: a denial names a rule or the decode error: {}",
            cut(message)
        );
    }
    let all = warnings(response);
    assert!(
        all.len() <= dbhook::admission::MAX_WARNINGS,
        "{at}: {} warnings; the answer stays bounded",
        all.len()
    );
    let message = response["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.chars().count() <= dbhook::admission::MAX_MESSAGE_CHARS,
        "{at}: a bounded message"
    );
    for w in all {
        assert!(w.starts_with("dbhook: "), "{at}: {w}");
        assert!(w.chars().count() <= 256, "{at}: warning over 256 characters: {w}");
    }
    if let Some(patch) = response.get("patch") {
        assert_eq!(response["patchType"], "JSONPatch", "{at}");
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

fn uid_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid").and_then(Value::as_str).map(str::to_string))
}

// --- the router, in-process ------------------------------------------------------------------

/// The webhook router as `dbhook serve` builds it (standalone: lookups of other objects are
/// unknown), in enforce or audit mode.
fn webhook_router(audit: bool) -> axum::Router {
    let policy = if audit {
        Policy::from_yaml("mode: audit").unwrap()
    } else {
        Policy::default()
    };
    router(Arc::new(WebhookState {
        policy: Arc::new(ArcSwap::from_pointee(policy)),
        view: Arc::new(EmptyView),
        metrics: Arc::new(dbhook::metrics::Metrics::new()),
        max_body_bytes: MAX_BODY_BYTES,
        request_timeout: Duration::from_secs(4),
    }))
}

/// POSTs `body` as kube-apiserver does (with its length) through `app`.
async fn oneshot(app: &axum::Router, path: &str, body: Vec<u8>) -> Reply {
    let request = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = support::content_type(response.headers());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        version: Version::HTTP_11,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        peer_cert: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_gets_its_exact_answer_from_both_webhooks_in_both_modes() {
    let (enforce, audit) = (webhook_router(false), webhook_router(true));
    let rows = rows();
    // Every mismatch is listed at the end, not only the first.
    let mut mismatches = Vec::new();
    for row in &rows {
        let uid = uid_of(&row.body);
        for (is_audit, app) in [(false, &enforce), (true, &audit)] {
            for path in ["/validate", "/mutate"] {
                let reply = oneshot(app, path, row.body.clone()).await;
                let at = Route {
                    label: &row.label,
                    audit: is_audit,
                    path,
                    over: "in-process",
                };
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    check(at, &reply, uid.as_deref(), &row.want)
                }));
                if let Err(panic) = checked {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    mismatches.push(why);
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} answers differ from the table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!("hostile inputs: {} rows, {} requests", rows.len(), rows.len() * 4);
}

// --- the same over real TLS ------------------------------------------------------------------

/// Rows sent over TLS too: each kind of answer once, and the depth and size limits.
const OVER_TLS: &[&str] = &[
    "64 bytes of garbage",
    "200,000 × [",
    "request.operation = \"EXPLODE\"",
    "8 MiB of [",
    "containers as an object",
    "duplicate request key",
    "10,000 containers, each with a plaintext URL",
    "schedule \"0 2 * * *\"",
];

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

    /// The server answers a valid review on the same protocol after a hostile one.
    async fn still_serving(&self, h1: bool, after: Route<'_>) {
        let client = if h1 { &self.h1 } else { &self.h2 };
        let reply = post(client, self.server.addr, "/mutate", &example("review-rollout.json")).await;
        assert_eq!(reply.status, StatusCode::OK, "after {after}: {}", reply.text);
        let answer = reply.json();
        assert_eq!(answer["response"]["allowed"], true, "after {after}: {answer}");
        assert_eq!(
            patch_of(&answer).is_some(),
            !self.audit,
            "after {after}: enforce patches, audit does not: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_over_tls_get_the_same_answers_on_h1_and_h2_and_the_server_keeps_serving() {
    let rows = rows();
    let pki = Pki::new();
    let targets = [Target::start(&pki, false).await, Target::start(&pki, true).await];
    for label in OVER_TLS {
        let row = rows
            .iter()
            .find(|r| r.label == *label)
            .unwrap_or_else(|| panic!("no row {label:?}"));
        let uid = uid_of(&row.body);
        for target in &targets {
            for path in ["/validate", "/mutate"] {
                for h1 in [false, true] {
                    // Over HTTP/1.1 a client still uploading when the early 413 arrives sees a
                    // reset; the byte-level HTTP/1.1 cases are in `server_admission`.
                    if h1 && matches!(row.want, Want::TooLarge) {
                        continue;
                    }
                    let client = if h1 { &target.h1 } else { &target.h2 };
                    let reply = send(client, &url(target.server.addr, path), row.body.clone()).await;
                    let at = Route {
                        label,
                        audit: target.audit,
                        path,
                        over: if h1 { "HTTP/1.1" } else { "h2" },
                    };
                    assert_eq!(
                        reply.version,
                        if h1 { Version::HTTP_11 } else { Version::HTTP_2 },
                        "{at}"
                    );
                    check(at, &reply, uid.as_deref(), &row.want);
                    target.still_serving(h1, at).await;
                }
            }
        }
    }
}

// --- real-shaped reviews, bent ---------------------------------------------------------------

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
fn malformed_bodies(p: &mut Rows) {
    let valid = serde_json::to_vec(&example("review-rollout.json")).unwrap();
    p.raw(
        "empty body",
        Vec::new(),
        not_json("EOF while parsing a value at line 1 column 0"),
    );
    p.raw("NUL byte", vec![0], not_json("expected value at line 1 column 1"));
    for (seed, len) in [(1, 1), (2, 64), (3, 4096), (4, 65_536)] {
        p.raw(
            &format!("{len} bytes of garbage"),
            garbage(seed, len),
            not_json("expected value at line 1 column 1"),
        );
    }
    p.raw(
        "invalid UTF-8 in a string",
        b"{\"apiVersion\":\"\xff\xfe\"}".to_vec(),
        not_json("invalid unicode code point at line 1 column 16"),
    );
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(valid.iter().flat_map(|b| [*b, 0]));
    p.raw(
        "the valid review in UTF-16",
        utf16,
        not_json("expected value at line 1 column 1"),
    );
    for cut_at in [1, 2, valid.len() / 7, valid.len() / 2, valid.len() - 2, valid.len() - 1] {
        p.raw(
            &format!("review truncated at byte {cut_at}"),
            valid[..cut_at].to_vec(),
            bad_all([
                "request body is not JSON: EOF while parsing ".to_string(),
                format!(" at line 1 column {cut_at}"),
            ]),
        );
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
        let want = match body {
            "-1e400" => not_json("number out of range at line 1 column 6"),
            "{}" => bad("expected kind AdmissionReview, got \"\""),
            _ => bad("request body is not a JSON object"),
        };
        p.raw(&format!("non-object JSON {body}"), body.into(), want);
    }
    p.raw("200,000 × [", "[".repeat(DEPTH).into(), too_deep());
    p.raw("200,000 × {\"a\":", "{\"a\":".repeat(DEPTH).into(), too_deep());
    p.raw(
        "200,000 balanced [ ]",
        format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)).into(),
        too_deep(),
    );
    let deep_object = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    p.raw("200,000 balanced {\"a\":", deep_object.clone().into(), too_deep());
    // The nesting inside an otherwise valid review.
    let text = String::from_utf8(valid.clone()).unwrap();
    let nested = text.replacen("\"replicas\": 3", &format!("\"replicas\": {deep_object}"), 1);
    let nested = if nested == text {
        text.replacen("\"replicas\":3", &format!("\"replicas\":{deep_object}"), 1)
    } else {
        nested
    };
    assert_ne!(nested, text, "the nesting went in");
    p.raw("200,000 levels inside request.object", nested.into(), too_deep());
    p.raw(
        "duplicate request key",
        format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{0},\"request\":{0}}}",
            serde_json::to_string(&example("review-rollout.json")["request"]).unwrap()
        )
        .into(),
        // serde keeps the last: the same request twice is that request.
        injected(),
    );
    p.raw(
        "lone surrogate in a name",
        text.replacen("\"name\": \"web\"", "\"name\": \"\\ud800\"", 1)
            .replacen("\"name\":\"web\"", "\"name\":\"\\ud800\"", 1)
            .into(),
        not_json("unexpected end of hex escape"),
    );
}

/// Envelopes that are not AdmissionReview v1 with a request.
fn bad_envelopes(p: &mut Rows) {
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
            unsupported_version(version.as_str().unwrap_or("")),
        );
    }
    p.raw(
        "no apiVersion",
        with(&|r| {
            r.as_object_mut().unwrap().remove("apiVersion");
        }),
        unsupported_version(""),
    );
    for kind in [json!("AdmissionResponse"), json!("Pod"), json!(null)] {
        let want = bad(format!(
            "expected kind AdmissionReview, got {:?}",
            kind.as_str().unwrap_or("")
        ));
        p.raw(&format!("kind {kind}"), with(&|r| r["kind"] = kind.clone()), want);
    }
    p.raw(
        "no request",
        with(&|r| {
            r.as_object_mut().unwrap().remove("request");
        }),
        bad("AdmissionReview has no request"),
    );
    for (request, want) in [
        (json!(null), bad("AdmissionReview has no request")),
        (
            json!([]),
            not_a_review("invalid length 0, expected struct AdmissionRequest"),
        ),
        (
            json!("request"),
            not_a_review("invalid type: string, expected struct AdmissionRequest"),
        ),
        (
            json!(7),
            not_a_review("invalid type: integer, expected struct AdmissionRequest"),
        ),
        (json!({}), not_a_review("missing field `uid`")),
    ] {
        p.raw(
            &format!("request {request}"),
            with(&|r| r["request"] = request.clone()),
            want,
        );
    }
    // The reason names the type it got, never the value: a value may be a secret.
    for (field, value, why) in [
        ("uid", json!(7), "invalid type: integer, expected a string"),
        ("uid", json!(null), "invalid type: null, expected a string"),
        (
            "operation",
            json!("EXPLODE"),
            "unknown variant, expected one of `CREATE`, `UPDATE`, `DELETE`, `CONNECT`",
        ),
        ("operation", json!(null), "expected value"),
        (
            "kind",
            json!("Rollout"),
            "invalid type: string, expected struct GroupVersionKind",
        ),
        (
            "kind",
            json!(null),
            "invalid type: null, expected struct GroupVersionKind",
        ),
        ("userInfo", json!("root"), "invalid type: string, expected UserInfo"),
        ("dryRun", json!("yes"), "invalid type: string, expected a boolean"),
    ] {
        p.raw(
            &format!("request.{field} = {value}"),
            with(&|r| r["request"][field] = value.clone()),
            not_a_review(why),
        );
    }
    let out_of_range = String::from_utf8(with(&|r| r["request"]["object"]["spec"]["replicas"] = json!("N")))
        .unwrap()
        .replace("\"N\"", "1e400");
    p.raw(
        "a number out of range",
        out_of_range.into(),
        not_json("number out of range"),
    );
    let at_limit = vec![b' '; MAX_BODY_BYTES];
    p.raw(
        "exactly the body limit of whitespace",
        at_limit,
        not_json(&format!("EOF while parsing a value at line 1 column {MAX_BODY_BYTES}")),
    );
}

/// Bodies over the limit: refused on the declared length or while reading, never parsed.
fn oversized(p: &mut Rows) {
    let limit = MAX_BODY_BYTES;
    let mut padded = serde_json::to_vec(&example("review-rollout.json")).unwrap();
    padded.resize(limit + 1, b' ');
    for (label, body) in [
        ("one byte over the limit", vec![b' '; limit + 1]),
        ("a valid review padded past the limit", padded),
        ("8 MiB of [", vec![b'['; 8 * 1024 * 1024]),
    ] {
        p.raw(label, body, Want::TooLarge);
    }
}

/// Objects of handled kinds with fields of the wrong type.
fn wrongly_typed(p: &mut Rows) {
    let cases: Vec<(&str, Value, Want)> = vec![
        (
            "containers as an object",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!({"name": "web", "image": "x:1"})),
            undecodable("Rollout shop/web: spec.template.spec.containers: expected a list of containers"),
        ),
        (
            "containers as a string",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!("web")),
            undecodable("Rollout shop/web: spec.template.spec.containers: expected a list of containers"),
        ),
        (
            "containers as a number",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(3)),
            undecodable("Rollout shop/web: spec.template.spec.containers: expected a list of containers"),
        ),
        (
            "containers null",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(null)),
            undecodable("Rollout shop/web: spec.template.spec.containers: invalid type: null, expected a sequence"),
        ),
        (
            "a container as a string",
            rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!(["web"])),
            undecodable("Rollout shop/web: spec.template.spec.containers[0]: expected a container mapping"),
        ),
        (
            "initContainers as a number",
            rollout(|o| o["spec"]["template"]["spec"]["initContainers"] = json!(1)),
            undecodable("Rollout shop/web: spec.template.spec.initContainers: expected a list of containers"),
        ),
        (
            "env as a string",
            rollout(|o| container0(o)["env"] = json!("LOG_LEVEL=info")),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env: invalid type: string, expected a sequence",
            ),
        ),
        (
            "env as an object",
            rollout(|o| container0(o)["env"] = json!({"LOG_LEVEL": "info"})),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env: invalid type: map, expected a sequence",
            ),
        ),
        (
            "an env entry as a number",
            rollout(|o| container0(o)["env"] = json!([5])),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env[0]: invalid type: integer, expected EnvVar",
            ),
        ),
        (
            "an env value as a number",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "value": 5}])),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env[0].value: invalid type: integer, expected a string",
            ),
        ),
        (
            "an env name as a list",
            rollout(|o| container0(o)["env"] = json!([{"name": ["DB_URL"]}])),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env[0].name: invalid type: sequence, expected a string",
            ),
        ),
        (
            "valueFrom as a string",
            rollout(|o| container0(o)["env"] = json!([{"name": "DB_URL", "valueFrom": "secret"}])),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].env[0].valueFrom: invalid type: string, expected EnvVarSource",
            ),
        ),
        (
            "the image as a number",
            rollout(|o| container0(o)["image"] = json!(42)),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].image: invalid type: integer, expected a string",
            ),
        ),
        (
            "the container name as a bool",
            rollout(|o| container0(o)["name"] = json!(true)),
            undecodable(
                "Rollout shop/web: spec.template.spec.containers[0].name: invalid type: boolean, expected a string",
            ),
        ),
        // Fields dbhook does not read are not decoded (kube-apiserver validates them): any
        // well-formed answer will do.
        (
            "ports as a string",
            rollout(|o| container0(o)["ports"] = json!("8080")),
            injected(),
        ),
        (
            "resources as a list",
            rollout(|o| container0(o)["resources"] = json!([])),
            injected(),
        ),
        (
            "a label value as a number",
            rollout(|o| o["metadata"]["labels"]["dbhook.io/cluster"] = json!(5)),
            undecodable("Rollout shop/web: metadata: invalid type: integer, expected a string"),
        ),
        (
            "labels as a list",
            rollout(|o| o["metadata"]["labels"] = json!(["dbhook.io/cluster"])),
            undecodable("Rollout shop/web: metadata: invalid type: sequence, expected a map"),
        ),
        (
            "annotations as a string",
            rollout(|o| o["metadata"]["annotations"] = json!("dbhook.io/exempt")),
            undecodable("Rollout shop/web: metadata: invalid type: string, expected a map"),
        ),
        (
            "an annotation value as an object",
            rollout(|o| o["metadata"]["annotations"]["dbhook.io/exempt"] = json!({"all": true})),
            undecodable("Rollout shop/web: metadata: invalid type: map, expected a string"),
        ),
        (
            "metadata as a string",
            rollout(|o| o["metadata"] = json!("web")),
            undecodable("Rollout shop/web: metadata: invalid type: string, expected ObjectMeta"),
        ),
        (
            "the name as a number",
            rollout(|o| o["metadata"]["name"] = json!(7)),
            undecodable("Rollout shop/web: metadata: invalid type: integer, expected a string"),
        ),
        (
            "creationTimestamp nonsense",
            rollout(|o| o["metadata"]["creationTimestamp"] = json!("yesterday")),
            undecodable("Rollout shop/web: metadata: failed to parse four digit integer as year"),
        ),
        (
            "spec as a string",
            rollout(|o| o["spec"] = json!("spec")),
            judged(Validate::Pass, Mutate::Pass),
        ),
        (
            "the template as a list",
            rollout(|o| o["spec"]["template"] = json!([])),
            judged(Validate::Pass, Mutate::Pass),
        ),
        (
            "the pod spec as a number",
            rollout(|o| o["spec"]["template"]["spec"] = json!(0)),
            undecodable("Rollout shop/web: spec.template.spec: expected a pod spec mapping"),
        ),
        (
            "workloadRef as a string",
            rollout(|o| o["spec"]["workloadRef"] = json!("web")),
            injected(),
        ),
        (
            "replicas as a float",
            rollout(|o| o["spec"]["replicas"] = json!(3.5)),
            injected(),
        ),
        (
            "the object as a list",
            rollout(|o| *o = json!([1, 2])),
            undecodable("Rollout shop/web: the object is not a JSON object"),
        ),
        (
            "the object as a string",
            rollout(|o| *o = json!("web")),
            undecodable("Rollout shop/web: the object is not a JSON object"),
        ),
        (
            "object null on CREATE",
            rollout(|o| *o = json!(null)),
            judged(Validate::Pass, Mutate::Pass),
        ),
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
            undecodable("CronJob shop/web-migrate: spec.jobTemplate.spec.template.spec: expected a pod spec mapping"),
        ),
        (
            "a Job's containers as an object",
            edited("review-job-presync.json", |o| {
                o["spec"]["template"]["spec"]["containers"] = json!({})
            }),
            undecodable("Job shop/web-migrate: spec.template.spec.containers: expected a list of containers"),
        ),
        (
            "Cluster spec.backup as a string",
            cluster(|o| o["spec"]["backup"] = json!("s3")),
            undecodable("Cluster shop/shop-pg: spec.backup: invalid type: string, expected struct BackupConfiguration"),
        ),
        (
            "Cluster plugins as an object",
            cluster(|o| o["spec"]["plugins"] = json!({"name": "barman-cloud.cloudnative-pg.io"})),
            undecodable("Cluster shop/shop-pg: spec.plugins: invalid type: map, expected a sequence"),
        ),
        (
            "Cluster isWALArchiver as a string",
            cluster(|o| {
                o["spec"]["plugins"] = json!([{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": "yes"}])
            }),
            undecodable(
                "Cluster shop/shop-pg: spec.plugins[0].isWALArchiver: invalid type: string, expected a boolean",
            ),
        ),
        (
            "Cluster env as a string",
            cluster(|o| o["spec"]["env"] = json!("AWS_REQUEST_CHECKSUM_CALCULATION=when_required")),
            undecodable("Cluster shop/shop-pg: spec.env: invalid type: string, expected a sequence"),
        ),
        (
            "Cluster retentionPolicy as a number",
            cluster(|o| o["spec"]["backup"] = json!({"retentionPolicy": 30})),
            undecodable("Cluster shop/shop-pg: spec.backup.retentionPolicy: invalid type: integer, expected a string"),
        ),
        (
            "Cluster bootstrap as an empty list (serde reads it as a struct)",
            cluster(|o| o["spec"]["bootstrap"] = json!([])),
            judged(deny("backup-configured", "WAL is not archived"), Mutate::Pass),
        ),
        (
            "Cluster spec as a list of strings",
            cluster(|o| o["spec"] = json!(["s3"])),
            undecodable("Cluster shop/shop-pg: spec.[0]: invalid type: string, expected struct BackupConfiguration"),
        ),
        (
            "ScheduledBackup schedule as a number",
            scheduled_backup(json!(5)),
            undecodable("ScheduledBackup shop/shop-pg-daily: spec.schedule: invalid type: integer, expected a string"),
        ),
        (
            "ScheduledBackup schedule as a list",
            scheduled_backup(json!(["0", "0", "2", "*", "*", "*"])),
            undecodable("ScheduledBackup shop/shop-pg-daily: spec.schedule: invalid type: sequence, expected a string"),
        ),
        (
            "ScheduledBackup cluster as a string",
            {
                let mut r = scheduled_backup(json!("0 0 2 * * *"));
                r["request"]["object"]["spec"]["cluster"] = json!("shop-pg");
                r
            },
            undecodable(
                "ScheduledBackup shop/shop-pg-daily: spec.cluster: invalid type: string, expected struct LocalRef",
            ),
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
            undecodable("Namespace shop-pg: metadata: invalid type: integer, expected a map"),
        ),
        (
            "an UPDATE whose oldObject is malformed",
            {
                let mut r = example("review-job-update.json");
                r["request"]["oldObject"]["metadata"] = json!("old");
                r
            },
            judged(
                Validate::Warn("dbhook: oldObject cannot be decoded: metadata: invalid type: string"),
                Mutate::Pass,
            ),
        ),
        (
            "a DELETE of garbage",
            {
                let mut r = rollout(|o| o["spec"]["template"]["spec"]["containers"] = json!("x"));
                r["request"]["operation"] = json!("DELETE");
                r
            },
            judged(Validate::Pass, Mutate::Pass),
        ),
        (
            "an unknown kind with garbage",
            {
                let mut r = example("review-rollout.json");
                r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
                r["request"]["object"] = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": [1, {"a": null}]});
                r
            },
            judged(Validate::Pass, Mutate::Pass),
        ),
    ];
    for (label, review, expect) in cases {
        p.review(label, &review, expect);
    }
}

/// Sizes nobody sends, odd text everywhere, nonsense schedules.
fn odd_content(p: &mut Rows) {
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("ghcr.io/acme/c{i}:sha-1a2b3c4")}))
        .collect();
    let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    p.review(
        "10,000 containers",
        &rollout(|o| o["spec"]["template"]["spec"]["containers"] = Value::Array(many.clone())),
        injected(),
    );
    p.review(
        "10,000 containers, all listed in dbhook.io/containers",
        &rollout(|o| {
            o["spec"]["template"]["spec"]["containers"] = Value::Array(many.clone());
            o["metadata"]["annotations"]["dbhook.io/containers"] = json!(names.join(","));
        }),
        injected(),
    );
    p.review(
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
        judged(
            deny(
                "db-url-plaintext",
                "container c0 env DB_URL holds a literal connection URI with a password",
            ),
            Mutate::Warn("dbhook: container c0 already sets DB_URL (a literal value); left unchanged"),
        ),
    );
    p.review(
        "10,000 labels",
        &rollout(|o| {
            for i in 0..10_000 {
                o["metadata"]["labels"][format!("l{i}")] = json!(i.to_string());
            }
        }),
        injected(),
    );
    p.review(
        "a 1 MiB name",
        &rollout(|o| o["metadata"]["name"] = json!("w".repeat(1 << 20))),
        injected(),
    );

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
            injected(),
        );
        p.review(
            &label("image"),
            &rollout(|o| container0(o)["image"] = json!(format!("ghcr.io/acme/{s}:sha-1{s}"))),
            injected(),
        );
        p.review(
            &label("object name and namespace"),
            &rollout(|o| {
                o["metadata"]["name"] = json!(s);
                o["metadata"]["namespace"] = json!(s);
            }),
            injected(),
        );
        // Blank annotations count as unset (the defaults apply, the Cluster label names
        // nothing): the rest is a name nobody can use, and no patch is made with it.
        let annotations = if s.trim().is_empty() {
            judged(Validate::Pass, Mutate::Pass)
        } else {
            judged(
                deny(
                    "injection-config",
                    format!("annotation dbhook.io/env-name: {s:?} is not a valid environment variable name"),
                ),
                Mutate::Pass,
            )
        };
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
            annotations,
        );
    }
    p.review(
        "RTL and emoji in annotations",
        &rollout(|o| {
            o["metadata"]["annotations"]["note"] = json!("\u{202e}⚠️ שלום 🐘👩‍👩‍👧‍👦 \u{200d}\u{2066}x\u{2069}");
            o["metadata"]["annotations"]["dbhook.io/env-name"] = json!("DB_🐘");
        }),
        judged(
            deny(
                "injection-config",
                "annotation dbhook.io/env-name: \"DB_🐘\" is not a valid environment variable name",
            ),
            Mutate::Pass,
        ),
    );

    let exempt_unknown: Vec<String> = (0..10_000).map(|i| format!("rule-{i}")).collect();
    let exempt_known = vec!["db-url-plaintext"; 10_000];
    for (label, list, validate) in [
        (
            "10,000 unknown rules in dbhook.io/exempt",
            exempt_unknown.join(","),
            Validate::Warn("dbhook: dbhook.io/exempt names unknown rule \"rule-0\"; it is ignored"),
        ),
        (
            "10,000 × one rule in dbhook.io/exempt",
            exempt_known.join(","),
            Validate::Warn("dbhook: exemption from [db-url-plaintext] ignored: the policy does not allow exempting"),
        ),
        ("10,000 commas in dbhook.io/exempt", ",".repeat(10_000), Validate::Pass),
    ] {
        p.review(
            label,
            &rollout(|o| o["metadata"]["annotations"]["dbhook.io/exempt"] = json!(list)),
            judged(validate, Patch),
        );
    }

    // Fragments of the denial each schedule gets; `None`: the schedule fires, and with the
    // Cluster unknown (standalone) no other rule has anything to say.
    for (schedule, denial) in [
        ("", Some("spec.schedule is not set")),
        (" ", Some("spec.schedule is not set")),
        (
            "0 2 * * *",
            Some("\"0 2 * * *\" runs hourly at minute 2 — did you mean \"0 0 2 * * *\"?"),
        ),
        ("* * * * * * *", Some("is invalid: expected 6 fields")),
        ("*/0 * * * * *", Some("is invalid: second field \"*/0\"")),
        ("60 * * * * *", Some("is invalid: second field \"60\"")),
        ("-1 -1 -1 -1 -1 -1", Some("is invalid: second field \"-1\"")),
        (
            "18446744073709551616 * * * * *",
            Some("is invalid: second field \"18446744073709551616\""),
        ),
        // robfig/cron reads a step with strconv.Atoi, which refuses one beyond a 64-bit int.
        (
            "0-59/18446744073709551615 * * * * *",
            Some("is invalid: second field \"0-59/18446744073709551615\""),
        ),
        ("0-59/9223372036854775807 * * * * *", None),
        ("0 0 2 ? * L", Some("is invalid: day-of-week field \"L\"")),
        ("0 0 2 * * 5#3", Some("is invalid: day-of-week field \"5#3\"")),
        ("0 0 2 W * *", Some("is invalid: day-of-month field \"W\"")),
        ("@every 0s", Some("is invalid: @every \"0s\"")),
        ("@every -1h", Some("is invalid: @every \"-1h\"")),
        (
            "@every 99999999999999999999h",
            Some("is invalid: @every \"99999999999999999999h\""),
        ),
        ("@every 1e9h", Some("is invalid: @every \"1e9h\"")),
        ("@every ∞", Some("is invalid: @every \"∞\"")),
        ("@fortnightly", Some("is invalid: unknown descriptor \"@fortnightly\"")),
        ("CRON_TZ=", Some("is invalid: CloudNativePG's cron parser")),
        (
            "CRON_TZ=Mars/Olympus 0 0 2 * * *",
            Some("is invalid: CloudNativePG's cron parser"),
        ),
        ("TZ=\u{0} @daily", Some("is invalid: CloudNativePG's cron parser")),
        ("💾 💾 💾 💾 💾 💾", Some("is invalid: second field \"💾\"")),
        ("\u{0}", Some("is invalid: expected 6 fields")),
        ("0\u{0}0 2 * * *", Some("is invalid: minute field")),
        (
            "0 0 0 30 2 *",
            Some("\"0 0 0 30 2 *\" never fires (no date matches it)"),
        ),
        ("0 0 0 29 2 *", None),
    ] {
        let validate = match denial {
            Some(fragment) => deny("scheduled-backup-schedule", fragment),
            None => Validate::Pass,
        };
        p.review(
            &format!("schedule {schedule:?}"),
            &scheduled_backup(json!(schedule)),
            judged(validate, Mutate::Pass),
        );
    }
    p.review(
        "schedule of 100,000 commas",
        &scheduled_backup(json!(format!("0 {} * * * *", ",".repeat(100_000)))),
        judged(
            deny("scheduled-backup-schedule", "spec.schedule \"0 ,,,,,,,,"),
            Mutate::Pass,
        ),
    );
    p.review(
        "schedule of 10,000 fields",
        &scheduled_backup(json!("* ".repeat(10_000))),
        judged(
            deny("scheduled-backup-schedule", "spec.schedule \"* * * * * * *"),
            Mutate::Pass,
        ),
    );
    p.review(
        "schedule null",
        &scheduled_backup(json!(null)),
        judged(
            deny("scheduled-backup-schedule", "spec.schedule is not set"),
            Mutate::Pass,
        ),
    );
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
