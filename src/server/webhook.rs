//! `POST /mutate` and `POST /validate`: body limits and deadline, `admission::handle`, and the
//! per-review log event and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::admission::{self, BadRequest, Summary};
use crate::cluster::LiveView;
use crate::engine::Scope;
use crate::metrics::{FindingLabels, KindLabels, Metrics, RequestLabels, StateLabel, WebhookLabels};
use crate::policy::Policy;

/// What the webhook handlers share.
pub struct WebhookState {
    pub policy: Arc<ArcSwap<Policy>>,
    pub view: Arc<dyn LiveView>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn mutate(State(state): State<Arc<WebhookState>>, req: Request) -> Response {
    review(&state, Scope::Mutate, req).await
}

async fn validate(State(state): State<Arc<WebhookState>>, req: Request) -> Response {
    review(&state, Scope::Validate, req).await
}

pub(super) async fn method_not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

pub(super) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn webhook_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Mutate => "mutate",
        Scope::Validate => "validate",
        Scope::All => "all",
    }
}

/// Bodies from this size on are decoded and judged on a blocking thread: parsing a few MiB of
/// JSON takes milliseconds, during which a runtime worker would serve no other request.
pub const BLOCKING_BODY_BYTES: usize = 1024 * 1024;

/// Why a request was answered before the engine saw it.
enum Rejected {
    TooLarge(usize),
    Timeout(Duration),
    Unreadable(String),
    Bad(BadRequest),
    /// The blocking task did not finish (it panicked, or the runtime is shutting down).
    Failed(String),
}

impl Rejected {
    fn response(&self) -> Response {
        match self {
            Rejected::TooLarge(limit) => text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {limit} bytes"),
            ),
            Rejected::Timeout(after) => text(
                StatusCode::REQUEST_TIMEOUT,
                format!("request not received within {} s", after.as_secs_f64()),
            ),
            Rejected::Unreadable(e) => text(StatusCode::BAD_REQUEST, format!("cannot read request body: {e}")),
            Rejected::Bad(BadRequest(reason)) => text(StatusCode::BAD_REQUEST, reason.clone()),
            Rejected::Failed(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// Reads the body within the limits. The deadline covers the upload, the only part of a
/// review that can take long: the decision itself is synchronous and takes microseconds.
async fn read_body(req: Request, limit: usize, deadline: Duration) -> Result<Bytes, Rejected> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refuse on the declared length before reading a byte of it.
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejected::TooLarge(limit));
    }
    let body = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(deadline, body.collect()).await {
        Err(_) => Err(Rejected::Timeout(deadline)),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Rejected::TooLarge(limit)),
        Ok(Err(e)) => Err(Rejected::Unreadable(e.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn review(state: &WebhookState, scope: Scope, req: Request) -> Response {
    let started = Instant::now();
    let webhook = webhook_name(scope);
    let answer = match read_body(req, state.max_body_bytes, state.request_timeout).await {
        Ok(body) if body.len() >= BLOCKING_BODY_BYTES => {
            let (view, policy) = (state.view.clone(), state.policy.load_full());
            let judged = tokio::task::spawn_blocking(move || {
                admission::handle(&body, scope, view.as_ref(), &policy, chrono::Utc::now())
            });
            match judged.await {
                Ok(answer) => answer.map_err(Rejected::Bad),
                Err(e) => Err(Rejected::Failed(e.to_string())),
            }
        }
        Ok(body) => {
            let policy = state.policy.load();
            admission::handle(&body, scope, state.view.as_ref(), &policy, state.view.now()).map_err(Rejected::Bad)
        }
        Err(rejected) => Err(rejected),
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .admission_duration
        .get_or_create(&WebhookLabels { webhook })
        .observe(elapsed.as_secs_f64());
    match answer {
        Ok(answer) => {
            record(state, webhook, &answer.summary, elapsed);
            let mut response = Response::new(Body::from(answer.body));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(rejected) => {
            state
                .metrics
                .admission_requests
                .get_or_create(&RequestLabels {
                    webhook,
                    kind: "",
                    operation: "",
                    result: "error",
                })
                .inc();
            let response = rejected.response();
            tracing::warn!(
                webhook,
                status = response.status().as_u16(),
                reason = %reason(&rejected),
                duration_ms = elapsed.as_secs_f64() * 1e3,
                "admission request rejected"
            );
            response
        }
    }
}

/// For the log: parser messages can quote a value from the body, so they are cut short.
fn reason(rejected: &Rejected) -> String {
    let full = match rejected {
        Rejected::TooLarge(limit) => format!("body over {limit} bytes"),
        Rejected::Timeout(after) => format!("body not received within {after:?}"),
        Rejected::Unreadable(e) => e.clone(),
        Rejected::Bad(BadRequest(reason)) => reason.clone(),
        Rejected::Failed(e) => format!("review task failed: {e}"),
    };
    crate::rules::truncate(&full, 160)
}

/// Kinds dbhook handles; anything else is counted as `other`, so a client cannot grow the
/// metric's label set at will.
fn kind_label(kind: &str) -> &'static str {
    const HANDLED: [&str; 9] = [
        "Rollout",
        "Deployment",
        "StatefulSet",
        "Job",
        "CronJob",
        "Cluster",
        "ScheduledBackup",
        "ObjectStore",
        "Namespace",
    ];
    HANDLED.into_iter().find(|k| *k == kind).unwrap_or("other")
}

fn record(state: &WebhookState, webhook: &'static str, s: &Summary, elapsed: Duration) {
    let kind = kind_label(&s.kind);
    let result = if !s.allowed {
        "denied"
    } else if s.patch_ops > 0 {
        "patched"
    } else {
        "allowed"
    };
    let m = &state.metrics;
    m.admission_requests
        .get_or_create(&RequestLabels {
            webhook,
            kind,
            operation: s.operation,
            result,
        })
        .inc();
    let mode = s.mode.map_or("", |mode| mode.as_str());
    for f in &s.findings {
        // Pre-existing findings (warned, not denied) are counted apart; the others keep the
        // label set dashboards already query.
        let series = FindingLabels {
            rule: f.rule,
            action: f.action.as_str(),
            mode,
            state: StateLabel(f.pre_existing.then_some(crate::engine::PRE_EXISTING)),
        };
        m.findings.get_or_create(&series).inc();
    }
    if s.patch_ops > 0 {
        m.patches.get_or_create(&KindLabels { kind }).inc();
    }
    tracing::info!(
        webhook,
        uid = s.uid.as_str(),
        kind = s.kind.as_str(),
        namespace = s.namespace.as_str(),
        name = s.name.as_str(),
        operation = s.operation,
        dry_run = s.dry_run,
        allowed = s.allowed,
        mode,
        findings = s.findings.len(),
        patch_ops = s.patch_ops,
        patch_bytes = s.patch_bytes,
        decode_error = s.decode_error,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        "admission review"
    );
}
