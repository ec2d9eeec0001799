//! AdmissionReview v1 ⇄ `Object` / `Decision`, with kube's admission types. No policy here.

use chrono::{DateTime, Utc};
use json_patch::Patch;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use serde::Deserialize as _;
use serde_json::Value;

use crate::engine::{self, Change, Decision, Old, Scope, Skipped};
use crate::model::{KindId, Marks, Meta, Object, Spec};
use crate::policy::{Mode, Policy};
use crate::redact;
use crate::view::View;

mod checked;
mod slim;

pub const API_VERSION: &str = "admission.k8s.io/v1";

/// A request that is not a usable AdmissionReview v1: answered with HTTP 400 and this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// What happened, for logs and metrics (never object bodies or env values).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: &'static str,
    pub dry_run: bool,
    pub allowed: bool,
    pub mode: Option<Mode>,
    pub findings: Vec<Counted>,
    pub patch_ops: usize,
    pub patch_bytes: usize,
    pub decode_error: bool,
}

/// A finding as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub rule: &'static str,
    pub action: crate::policy::Action,
    /// Already there before the UPDATE: warned, not denied.
    pub pre_existing: bool,
}

/// The answer to one AdmissionReview: the JSON body to send and a summary.
pub struct Answer {
    pub body: Vec<u8>,
    pub summary: Summary,
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Parses the envelope: the short way when the review is an ordinary one, else in full.
fn parse_review(body: &[u8]) -> Result<(AdmissionRequest<DynamicObject>, Raw), BadRequest> {
    match slim::parse(body) {
        Some(req) => Ok((req, Raw::default())),
        None => parse_review_fully(body),
    }
}

/// Parses the envelope with kube's types as they are. If the embedded objects do not even have Kubernetes metadata shape, the
/// envelope is parsed again without them so the request can still be answered (and denied with
/// the decode error) instead of rejected as malformed.
fn parse_review_fully(body: &[u8]) -> Result<(AdmissionRequest<DynamicObject>, Raw), BadRequest> {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(first) => {
            let mut value: Value = serde_json::from_slice(body)
                .map_err(|e| BadRequest(redact::input_error(&format!("request body is not JSON: {e}"))))?;
            check_envelope(&value)?;
            let mut take = |key: &str| {
                value
                    .pointer_mut(&format!("/request/{key}"))
                    .map(Value::take)
                    .filter(|o| !o.is_null())
            };
            let raw = Raw {
                object: take("object"),
                old_object: take("oldObject"),
            };
            let review: AdmissionReview<DynamicObject> = serde_json::from_value(value).map_err(|_| {
                BadRequest(redact::input_error(&format!(
                    "not a valid AdmissionReview {API_VERSION}: {first}"
                )))
            })?;
            return into_request(review).map(|r| (r, raw));
        }
    };
    if review.types.api_version != API_VERSION || review.types.kind != "AdmissionReview" {
        check_envelope(&serde_json::json!({"apiVersion": review.types.api_version, "kind": review.types.kind}))?;
    }
    into_request(review).map(|r| (r, Raw::default()))
}

/// The request's objects as JSON, when the envelope parsed only without them.
#[derive(Default)]
struct Raw {
    object: Option<Value>,
    old_object: Option<Value>,
}

fn check_envelope(v: &Value) -> Result<(), BadRequest> {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if !v.is_object() {
        return Err(BadRequest("request body is not a JSON object".into()));
    }
    if kind != "AdmissionReview" {
        return Err(BadRequest(redact::input_error(&format!(
            "expected kind AdmissionReview, got {kind:?}"
        ))));
    }
    if api_version != API_VERSION {
        return Err(BadRequest(redact::input_error(&format!(
            "unsupported AdmissionReview apiVersion {api_version:?}: dbhook speaks {API_VERSION} only (set admissionReviewVersions: [v1])"
        ))));
    }
    Ok(())
}

fn into_request(review: AdmissionReview<DynamicObject>) -> Result<AdmissionRequest<DynamicObject>, BadRequest> {
    if review.types.api_version != API_VERSION || review.types.kind != "AdmissionReview" {
        check_envelope(&serde_json::json!({"apiVersion": review.types.api_version, "kind": review.types.kind}))?;
    }
    review
        .try_into()
        .map_err(|_| BadRequest("AdmissionReview has no request".into()))
}

/// The `group/version` and kind the request is for.
fn request_kind(req: &AdmissionRequest<DynamicObject>) -> (String, String) {
    let group_version = match req.kind.group.as_str() {
        "" => req.kind.version.clone(),
        g => format!("{g}/{}", req.kind.version),
    };
    (group_version, req.kind.kind.clone())
}

/// Decodes one of the request's objects, `dynamic` as kube parsed it or else `raw`, into the
/// model as the request's kind; the error names what is wrong with it.
fn decode(
    req: &AdmissionRequest<DynamicObject>,
    dynamic: Option<DynamicObject>,
    raw: Option<&Value>,
) -> Option<Result<Object, ObjectError>> {
    let (group_version, kind) = request_kind(req);
    KindId::of(&group_version, &kind)?;
    let owned_data;
    let (mut meta, root) = match (dynamic, raw) {
        // Taken, not cloned: metadata carries managedFields and annotations of every size.
        (Some(dynamic), _) => {
            owned_data = dynamic.data;
            let mut meta = dynamic.metadata;
            meta.managed_fields = None;
            (meta, &owned_data)
        }
        // The envelope parsed only without its objects: this one is decoded from the JSON.
        (None, Some(raw)) => match raw_metadata(raw) {
            Ok(meta) => (meta, raw),
            Err(e) => return Some(Err(e)),
        },
        (None, None) => return None,
    };
    // CREATE with generateName and namespaced requests may leave these out of the object.
    if meta.namespace.is_none() {
        meta.namespace.clone_from(&req.namespace);
    }
    if meta.name.as_deref().unwrap_or("").is_empty() && !req.name.is_empty() {
        meta.name = Some(req.name.clone());
    }
    Some(Object::from_parts(&group_version, &kind, meta, root).map_err(|e| ObjectError::Model(e.reason)))
}

/// The `apiVersion` and `kind` an object says it has, if it says.
fn stated_kind(dynamic: Option<&DynamicObject>, raw: Option<&Value>) -> Option<(String, String)> {
    if let Some(types) = dynamic.and_then(|d| d.types.as_ref()) {
        return Some((types.api_version.clone(), types.kind.clone()));
    }
    let raw = raw?;
    let field = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    Some((field("apiVersion")?, field("kind")?))
}

/// The UPDATE's old object, or why it cannot be compared with the new one.
fn decode_old(req: &mut AdmissionRequest<DynamicObject>, raw: Option<&Value>) -> Result<Object, OldObjectError> {
    let dynamic = req.old_object.take();
    let (group_version, kind) = request_kind(req);
    if let Some((api_version, old_kind)) = stated_kind(dynamic.as_ref(), raw) {
        let group = |gv: &str| gv.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        if old_kind != kind || group(&api_version) != group(&group_version) {
            return Err(OldObjectError::OtherKind(redact::input_error(&format!(
                "oldObject is a {api_version} {old_kind}, not a {group_version} {kind}"
            ))));
        }
    }
    match decode(req, dynamic, raw) {
        None => Err(OldObjectError::Missing),
        Some(Err(e)) => Err(OldObjectError::Undecodable(e)),
        Some(Ok(old)) => Ok(old),
    }
}

/// Whether the object or the old object has a `deletionTimestamp`.
fn terminating(req: &AdmissionRequest<DynamicObject>, raw: &Raw) -> bool {
    let typed = [req.object.as_ref(), req.old_object.as_ref()]
        .into_iter()
        .flatten()
        .any(|o| o.metadata.deletion_timestamp.is_some());
    let untyped = [raw.object.as_ref(), raw.old_object.as_ref()]
        .into_iter()
        .flatten()
        .any(|o| o.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()));
    typed || untyped
}

/// Whether an UPDATE only removes finalizers: the new finalizers are a strict subset of the
/// old, and the objects are otherwise equal but for the fields the API server maintains.
fn only_removes_finalizers(new: &DynamicObject, old: &DynamicObject) -> bool {
    let finalizers = |o: &DynamicObject| o.metadata.finalizers.clone().unwrap_or_default();
    let (now, before) = (finalizers(new), finalizers(old));
    if now.len() >= before.len() || !now.iter().all(|f| before.contains(f)) {
        return false;
    }
    if new.types != old.types || new.data != old.data {
        return false;
    }
    let bookkeeping_aside = |o: &DynamicObject| {
        let mut m = o.metadata.clone();
        m.finalizers = None;
        m.managed_fields = None;
        m.resource_version = None;
        m.generation = None;
        m
    };
    bookkeeping_aside(new) == bookkeeping_aside(old)
}

/// The metadata of an object that kube's `DynamicObject` could not take, or why it is unusable.
fn raw_metadata(raw: &Value) -> Result<ObjectMeta, ObjectError> {
    if !raw.is_object() {
        return Err(ObjectError::NotAnObject);
    }
    match raw.get("metadata") {
        None | Some(Value::Null) => Ok(ObjectMeta::default()),
        Some(m) => ObjectMeta::deserialize(m)
            .map_err(|e| ObjectError::Metadata(redact::input_error(&format!("metadata: {e}")))),
    }
}

/// Why one of the request's objects cannot be read as its kind. The texts are redacted: they
/// reach the denial message, the log and the old object's warning.
#[derive(Debug, Clone, thiserror::Error)]
enum ObjectError {
    #[error("the object is not a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Metadata(String),
    #[error("{0}")]
    Model(String),
}

/// Why an UPDATE's old object cannot be compared with the new one (it is then judged without
/// ratcheting).
#[derive(Debug, Clone, thiserror::Error)]
enum OldObjectError {
    #[error("{0}")]
    OtherKind(String),
    #[error("the UPDATE carries no oldObject")]
    Missing,
    #[error("oldObject cannot be decoded: {0}")]
    Undecodable(#[source] ObjectError),
}

/// Answers one AdmissionReview body. `Err` means HTTP 400 with the message.
pub fn handle(
    body: &[u8],
    scope: Scope,
    view: &dyn View,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Answer, BadRequest> {
    answer(parse_review(body)?, scope, view, policy, now)
}

/// [`handle`] without the short way of decoding: the reference that tests hold it to.
#[doc(hidden)]
pub fn handle_decoding_fully(
    body: &[u8],
    scope: Scope,
    view: &dyn View,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Answer, BadRequest> {
    answer(parse_review_fully(body)?, scope, view, policy, now)
}

fn answer(
    (mut req, raw): (AdmissionRequest<DynamicObject>, Raw),
    scope: Scope,
    view: &dyn View,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Answer, BadRequest> {
    let namespace = req.namespace.clone().unwrap_or_default();
    let namespace = namespace.as_str();
    // For logs and messages; the request's own strings may be anything.
    let text = |s: &str| redact::credentials(s).into_owned();
    let mut summary = Summary {
        uid: text(&req.uid),
        kind: text(&req.kind.kind),
        namespace: text(namespace),
        name: text(&req.name),
        operation: operation_name(&req.operation),
        dry_run: req.dry_run,
        allowed: true,
        ..Summary::default()
    };
    let mut response = AdmissionResponse::from(&req);
    let finalizers_only = match (&req.operation, &req.object, &req.old_object) {
        (Operation::Update, Some(new), Some(old)) => only_removes_finalizers(new, old),
        _ => false,
    };
    let deleting = terminating(&req, &raw);
    let object = req.object.take();
    let obj = match decode(&req, object, raw.object.as_ref()) {
        // Not a kind dbhook reviews (or no object at all): nothing to ask the engine.
        None => return finish(response, summary),
        Some(Ok(obj)) => obj,
        Some(Err(e)) => undecodable(&req, e.to_string()),
    };
    let readable = !matches!(obj.spec, Spec::Undecodable(_));
    let decoded_old = match req.operation {
        Operation::Update if readable => Some(decode_old(&mut req, raw.old_object.as_ref())),
        _ => None,
    };
    let old = match &decoded_old {
        None => Old::None,
        Some(Ok(old)) => Old::Object(old),
        Some(Err(e)) => Old::Unusable(e.to_string()),
    };
    let change = Change::state(&obj, req.operation.clone())
        .with_old(old)
        .dry_run(req.dry_run)
        .only_removes_finalizers(finalizers_only)
        .subresource(req.sub_resource.is_some())
        .request_namespace(namespace)
        .deleting(deleting);
    let decision = engine::review_scoped(&change, view, policy, now, scope);
    summary.decode_error = !readable && decision.skipped.is_none();
    // The log names the mode wherever the engine had a readable object of its scope.
    let in_scope = match decision.skipped {
        None => true,
        Some(Skipped::Terminating) => readable,
        Some(_) => false,
    };
    summary.mode = in_scope.then_some(decision.mode);
    response = respond(response, decision, &mut summary)?;
    finish(response, summary)
}

/// The body to send, and the summary with the outcome.
fn finish(response: AdmissionResponse, mut summary: Summary) -> Result<Answer, BadRequest> {
    summary.allowed = response.allowed;
    let body = encode(response)?;
    Ok(Answer { body, summary })
}

/// The request's object, of a handled kind, as the model could not read it: named as the
/// request names it, with the reason.
fn undecodable(req: &AdmissionRequest<DynamicObject>, reason: String) -> Object {
    let (api_version, kind) = request_kind(req);
    Object {
        api_version,
        kind,
        meta: Meta {
            name: Some(req.name.clone()),
            namespace: req.namespace.clone(),
            ..Default::default()
        },
        labels: Marks::default(),
        annotations: Marks::default(),
        spec: Spec::Undecodable(Box::new(reason)),
    }
}

fn deny(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let message = crate::rules::truncate(&message, MAX_MESSAGE_CHARS);
    let mut r = response.deny(&message);
    r.result = Status::failure(&message, "Forbidden").with_code(403);
    r
}

/// kube-apiserver passes on about 4 KiB of warnings per request (256 characters each), so an
/// object with thousands of findings would only make the answer megabytes long.
pub const MAX_WARNINGS: usize = 16;

/// A denial message is cut here, its first reasons kept.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// The first warnings, and a last one saying how many more there were.
fn bounded_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() <= MAX_WARNINGS {
        return warnings;
    }
    let hidden = warnings.len() - (MAX_WARNINGS - 1);
    warnings.truncate(MAX_WARNINGS - 1);
    warnings.push(format!(
        "dbhook: {hidden} more warnings not shown; `dbhook check` on the manifest lists every finding"
    ));
    warnings
}

fn respond(
    mut response: AdmissionResponse,
    d: Decision,
    summary: &mut Summary,
) -> Result<AdmissionResponse, BadRequest> {
    summary.findings = d
        .findings
        .iter()
        .map(|f| Counted {
            rule: f.rule,
            action: f.action,
            pre_existing: f.pre_existing,
        })
        .collect();
    if !d.warnings.is_empty() {
        response.warnings = Some(bounded_warnings(d.warnings));
    }
    response.audit_annotations.extend(d.audit_annotations);
    if let Some(message) = d.message.filter(|_| !d.allowed) {
        return Ok(deny(response, message));
    }
    if !d.patch.is_empty() {
        summary.patch_ops = d.patch.len();
        response = response
            .with_patch(Patch(d.patch))
            .map_err(|e| BadRequest(format!("cannot encode patch: {e}")))?;
        summary.patch_bytes = response.patch.as_ref().map_or(0, Vec::len);
    }
    Ok(response)
}

/// Serializes the response review the way kube-apiserver reads it: `patch` is a Go `[]byte`,
/// i.e. a base64 string, while kube-core serializes its `Vec<u8>` as an array of numbers. The
/// envelope is written directly (no intermediate `Value`): this runs on every request.
pub fn encode(mut response: AdmissionResponse) -> Result<Vec<u8>, BadRequest> {
    use base64::Engine as _;
    use serde::Serialize;

    #[derive(Serialize)]
    struct WireResponse<'a> {
        #[serde(flatten)]
        response: &'a AdmissionResponse,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct WireReview<'a> {
        api_version: &'a str,
        kind: &'a str,
        response: WireResponse<'a>,
    }

    let patch = response
        .patch
        .take()
        .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes));
    let (api_version, kind) = (response.types.api_version.clone(), response.types.kind.clone());
    let wire = WireReview {
        api_version: &api_version,
        kind: &kind,
        response: WireResponse {
            response: &response,
            patch,
        },
    };
    serde_json::to_vec(&wire).map_err(|e| BadRequest(format!("cannot encode response: {e}")))
}
