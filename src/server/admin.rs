//! The admin server: `/livez`, `/readyz`, `/metrics`, `/report`, on its own port (plain HTTP,
//! or HTTPS with `--admin-tls`). Probes are always open; `/report` (and `/metrics` with
//! `--metrics-auth`) need a bearer token when there is an API server to check it with.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cluster::LiveView;
use crate::metrics::Metrics;

use super::auth::{AdminAccess, Protected};
use super::shutdown::Signal;
use super::webhook::{method_not_allowed, not_found, text};

pub struct AdminState {
    pub view: Arc<dyn LiveView>,
    pub metrics: Arc<Metrics>,
    /// The webhook's shutdown: once pulled, readiness fails so endpoints drop the pod.
    pub shutdown: Signal,
    /// Who may read `/report` and `/metrics`.
    pub access: Arc<AdminAccess>,
}

pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn livez() -> Response {
    text(StatusCode::OK, "ok")
}

/// The admin server starts only once TLS material is loaded, so what remains to wait for is
/// the view, and what ends readiness is shutdown. A resource that did not sync within the sync
/// timeout does not hold readiness back: it is served as unknown and reported degraded, since a
/// webhook that never becomes ready blocks every write it covers. `?verbose` lists every
/// watched resource's state.
async fn readyz(State(state): State<Arc<AdminState>>, RawQuery(query): RawQuery) -> Response {
    let verbose = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "verbose" || p.starts_with("verbose="));
    let (status, summary) = if state.shutdown.is_triggered() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_string())
    } else if !state.view.synced() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster view not synced yet".to_string(),
        )
    } else {
        (StatusCode::OK, "ok".to_string())
    };
    let states = state.view.resource_states();
    let degraded: Vec<&str> = states.iter().filter(|s| s.degraded).map(|s| s.resource).collect();
    let summary = if degraded.is_empty() {
        summary
    } else {
        format!("{summary} (degraded: {})", degraded.join(", "))
    };
    if !verbose {
        return text(status, summary);
    }
    let mut body = String::new();
    for s in &states {
        let mark = if s.ok { '+' } else { '-' };
        body.push_str(&format!("[{mark}]{} {}\n", s.resource, s.state));
    }
    body.push_str(&summary);
    text(status, body)
}

/// prometheus-client writes OpenMetrics text (`# EOF`, counter samples named `<family>_total`);
/// announced as the 0.0.4 text format, Prometheus parses it as that and loses the metric types.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = state.access.check(Protected::Metrics, &headers).await {
        return refusal.into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE))],
        state.metrics.render(),
    )
        .into_response()
}

/// Said in `/report` when there is no cluster view, so an empty report is not read as "clean".
pub const NO_CLUSTER_VIEW: &str = "no cluster view: this server runs standalone (--standalone, or --dev \
    without --kubeconfig or KUBECONFIG), so the report holds no objects";

async fn report(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = state.access.check(Protected::Report, &headers).await {
        return refusal.into_response();
    }
    let mut report = serde_json::to_value(state.view.report());
    if let Ok(serde_json::Value::Object(fields)) = &mut report
        && !state.view.watches_a_cluster()
    {
        fields.insert("note".into(), NO_CLUSTER_VIEW.into());
    }
    match report.and_then(|r| serde_json::to_vec(&r)) {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the report: {e}"),
        ),
    }
}
