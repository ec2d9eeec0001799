//! The plain-HTTP admin server: `/livez`, `/readyz`, `/metrics`, `/report`. Kept off the TLS
//! port so probes and scrapes need no certificates.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::view::LiveView;

use super::shutdown::Signal;
use super::webhook::{method_not_allowed, not_found, text};

pub struct AdminState {
    pub view: Arc<dyn LiveView>,
    pub metrics: Arc<Metrics>,
    /// The webhook's shutdown: once pulled, readiness fails so endpoints drop the pod.
    pub shutdown: Signal,
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

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn report(State(state): State<Arc<AdminState>>) -> Response {
    match serde_json::to_vec(&state.view.report()) {
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
