//! The view the server holds while it runs: [`LiveView`], a [`View`] fed in the background that
//! also answers readiness and the background report. Implemented by the cluster view and, for
//! `--standalone`, by [`EmptyView`]; a [`ManifestView`] serves as a fixed, synced cluster in tests and
//! benchmarks.

use crate::report::Report;
use crate::view::{EmptyView, ManifestView, View};

/// One watched resource's state, as `/readyz?verbose` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    /// As kubectl names it (`jobs.batch`), like the `resource` label of `dbhook_view_synced`.
    pub resource: &'static str,
    /// Synced, or not served at all; false while syncing and when degraded.
    pub ok: bool,
    /// Not synced within the sync timeout: served as unknown until it syncs.
    pub degraded: bool,
    /// What `/readyz?verbose` says about it, with the last error if any.
    pub state: String,
}

/// A view fed in the background (the cluster view): the server asks it whether it is ready and
/// for the current report over every watched object.
pub trait LiveView: View {
    /// Ready to serve: every started watch has synced once, or the sync timeout has passed
    /// (resources still unsynced are then degraded: unknown, never denying).
    fn synced(&self) -> bool;
    /// Each watched resource's state; empty without a cluster view.
    fn resource_states(&self) -> Vec<ResourceState> {
        Vec::new()
    }
    /// Findings over every watched object (`GET /report`).
    fn report(&self) -> Report;
    /// Whether objects come from a cluster at all; false when standalone, where the report
    /// is empty by construction and says so.
    fn watches_a_cluster(&self) -> bool {
        true
    }
    /// "Now" for admission decisions: the view's clock, so tests can fix it (exemption expiry,
    /// lockstep memory).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// A view with fixed contents (nothing, or a fixed set of objects) is synced from the start, has
/// no background report and watches no cluster.
macro_rules! fixed_live_view {
    ($($view:ty),+) => {$(
        impl LiveView for $view {
            fn synced(&self) -> bool {
                true
            }
            fn report(&self) -> Report {
                Report::default()
            }
            fn watches_a_cluster(&self) -> bool {
                false
            }
        }
    )+};
}

fixed_live_view!(EmptyView, ManifestView);
