//! The plain-HTTP admin server: `/livez`, `/readyz`, `/metrics`, `/report`. Kept off the TLS
//! port so probes and scrapes need no certificates.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
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
/// the view, and what ends readiness is shutdown.
async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    if state.shutdown.is_triggered() {
        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if !state.view.synced() {
        text(StatusCode::SERVICE_UNAVAILABLE, "cluster view not synced yet")
    } else {
        text(StatusCode::OK, "ok")
    }
}

/// prometheus-client writes OpenMetrics text (`# EOF`, counter samples named `<family>_total`);
/// announced as the 0.0.4 text format, Prometheus parses it as that and loses the metric types.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE))],
        state.metrics.render(),
    )
        .into_response()
}

/// Said in `/report` when there is no cluster view, so an empty report is not read as "clean".
pub const NO_CLUSTER_VIEW: &str = "no cluster view: this server runs standalone (--standalone, or --dev \
    without --kubeconfig or KUBECONFIG), so the report holds no objects";

async fn report(State(state): State<Arc<AdminState>>) -> Response {
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
