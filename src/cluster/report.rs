//! The background report (`GET /report`): every watched object reviewed as an UPDATE under the
//! current policy, recomputed a moment after the last change, and the findings gauge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::admission::Operation;

use super::Shared;
use super::resources::Res;
use crate::engine;
use crate::metrics::{ExemptionLabels, RuleActionLabels};
use crate::model::Object;
use crate::policy::Policy;
use crate::report::Report;

/// Reviews every cached object (not remembered deleted Jobs, not Namespaces).
pub fn compute(shared: &Shared, policy: &Policy) -> Report {
    let mut objects: Vec<Arc<Object>> = Vec::new();
    for &res in Res::OBJECTS {
        objects.extend(shared.read(res).iter().cloned());
    }
    objects.sort_by(|a, b| {
        (a.api_version.as_str(), a.kind.as_str(), a.namespace(), a.name()).cmp(&(
            b.api_version.as_str(),
            b.kind.as_str(),
            b.namespace(),
            b.name(),
        ))
    });
    let now = shared.now();
    let mut report = Report::default();
    for obj in &objects {
        let decision = engine::review(&engine::Change::state(obj, Operation::Update), shared, policy, now);
        report.add(obj, &decision, None);
        report.count_exemptions(obj, policy, now);
    }
    report
}

/// Publishes `report` and resets `dbhook_report_findings{rule,action}` to its counts.
pub fn publish(shared: &Shared, report: Report) {
    let mut counts: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
    for f in &report.findings {
        *counts.entry((f.rule, f.action.as_str())).or_default() += 1;
    }
    let gauge = &shared.metrics.report_findings;
    gauge.clear();
    for ((rule, action), n) in counts {
        gauge.get_or_create(&RuleActionLabels { rule, action }).set(n);
    }
    for state in crate::exemption::State::ALL {
        let n = i64::try_from(report.exemptions[state as usize]).unwrap_or(i64::MAX);
        shared
            .metrics
            .exemptions
            .get_or_create(&ExemptionLabels { state: state.as_str() })
            .set(n);
    }
    shared.report.store(Arc::new(report));
    shared
        .report_generation
        .fetch_add(1, std::sync::atomic::Ordering::Release);
}

/// When to recompute.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Quiet time after the last change before recomputing.
    pub debounce: Duration,
    /// Recompute at least this often (time-dependent rules, memory expiry).
    pub refresh: Duration,
}

/// Recomputes after `debounce` without changes (at the latest 10 × `debounce` after the first
/// change of a busy period), when the policy is swapped, and every `refresh`.
pub async fn run(shared: Arc<Shared>, timing: Timing) {
    let tick = (timing.debounce / 4).max(Duration::from_millis(10));
    let mut policy = shared.policy.load_full();
    let mut dirty_since: Option<Instant> = None;
    let mut last_change = Instant::now();
    let mut last_run = Instant::now();
    let mut was_synced = false;
    loop {
        tokio::select! {
            _ = shared.changed_notified() => {
                last_change = Instant::now();
                dirty_since.get_or_insert(last_change);
            }
            _ = tokio::time::sleep(tick) => {}
        }
        let current = shared.policy.load_full();
        if !Arc::ptr_eq(&current, &policy) {
            policy = current;
            dirty_since.get_or_insert_with(Instant::now);
        }
        if last_run.elapsed() >= timing.refresh {
            dirty_since.get_or_insert_with(Instant::now);
        }
        // The first report over the complete view is the first the OpenReports writer uses.
        if !was_synced && shared.synced() {
            was_synced = true;
            dirty_since.get_or_insert_with(Instant::now);
        }
        let Some(since) = dirty_since else { continue };
        if last_change.elapsed() < timing.debounce && since.elapsed() < timing.debounce * 10 {
            continue;
        }
        dirty_since = None;
        last_run = Instant::now();
        let (s, p) = (shared.clone(), policy.clone());
        let complete = shared.synced();
        match tokio::task::spawn_blocking(move || compute(&s, &p)).await {
            Ok(report) => {
                publish(&shared, report);
                if complete && !shared.report_complete.swap(true, std::sync::atomic::Ordering::AcqRel) {
                    // The first report over the synced view leaves its own garbage beside the
                    // sync's, in the arena of the thread it ran on.
                    super::watch::release_free_memory();
                }
            }
            Err(e) => tracing::error!(error = %e, "report computation failed"),
        }
    }
}
