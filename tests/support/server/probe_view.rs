//! A `LiveView` for probing the running server: switchable readiness, a fixed report, and a gate
//! that holds reviews inside the handler until the test releases them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dbhook::cluster::LiveView;
use dbhook::model::Object;
use dbhook::report::Report;
use dbhook::view::{EmptyView, Listing, Lookup, Origin, View};

const HOLD_AT_MOST: Duration = Duration::from_secs(60);

/// Answers every lookup like [`EmptyView`]. Every acting review asks for its namespace's mode
/// label: that is where the first `limit` reviews are held. A held review blocks a runtime
/// worker, so a test holding `n` reviews runs a multi-threaded runtime with more than `n` workers.
pub struct ProbeView {
    pub synced: AtomicBool,
    pub report: Report,
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Default)]
struct Gate {
    limit: usize,
    held: usize,
    released: bool,
}

impl Default for ProbeView {
    fn default() -> Self {
        ProbeView {
            synced: AtomicBool::new(true),
            report: Report::default(),
            gate: Mutex::default(),
            changed: Condvar::new(),
        }
    }
}

impl ProbeView {
    /// Holds the first `limit` reviews until [`ProbeView::release`].
    pub fn holding(limit: usize) -> Arc<ProbeView> {
        let view = ProbeView::default();
        view.gate.lock().unwrap().limit = limit;
        Arc::new(view)
    }

    /// Waits (without blocking the test's runtime) until `n` reviews are held.
    pub async fn wait_until_held(self: &Arc<Self>, n: usize) {
        let view = self.clone();
        tokio::task::spawn_blocking(move || {
            let gate = view.gate.lock().unwrap();
            let (gate, timeout) = view
                .changed
                .wait_timeout_while(gate, HOLD_AT_MOST, |g| g.held < n)
                .unwrap();
            assert!(!timeout.timed_out(), "only {} of {n} reviews arrived", gate.held);
        })
        .await
        .unwrap();
    }

    pub fn release(&self) {
        self.gate.lock().unwrap().released = true;
        self.changed.notify_all();
    }
}

impl View for ProbeView {
    fn origin(&self) -> Origin {
        Origin::Admission
    }
    fn cluster(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        EmptyView.cluster(ns, name)
    }
    fn object_store(&self, ns: &str, name: &str) -> Lookup<Arc<Object>> {
        EmptyView.object_store(ns, name)
    }
    fn scheduled_backups_for(&self, ns: &str, cluster: &str) -> Listing {
        EmptyView.scheduled_backups_for(ns, cluster)
    }
    fn migration_jobs_for(&self, app: &Object) -> Listing {
        EmptyView.migration_jobs_for(app)
    }
    fn app_workloads_for(&self, job: &Object) -> Listing {
        EmptyView.app_workloads_for(job)
    }
    fn namespace_mode_label(&self, _: &str) -> Option<String> {
        let mut gate = self.gate.lock().unwrap();
        if gate.released || gate.held >= gate.limit {
            return None;
        }
        gate.held += 1;
        self.changed.notify_all();
        // A review still held after the bound goes on; the test then fails on its own assertions.
        let _released = self
            .changed
            .wait_timeout_while(gate, HOLD_AT_MOST, |g| !g.released)
            .unwrap();
        None
    }
}

impl LiveView for ProbeView {
    fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
    fn report(&self) -> Report {
        self.report.clone()
    }
}
