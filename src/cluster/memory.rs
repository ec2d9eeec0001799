//! Lockstep memory (docs/rules.md): migration Jobs deleted by their hook policy once they succeeded
//! are still paired with their app workload for `lockstepMemoryMinutes` after deletion, so the
//! Rollout that Argo CD updates after the PreSync Job is checked against that Job.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{Object, keys};

/// A migration Job whose delete policy removes it once it succeeded (Argo CD `HookSucceeded`,
/// Helm `hook-succeeded`).
pub fn deleted_on_success(job: &Object) -> bool {
    let listed = |key: &str, wanted: &str| {
        job.annotation(key)
            .is_some_and(|v| v.split(',').map(str::trim).any(|p| p == wanted))
    };
    job.is_migration_job()
        && (listed(keys::ARGOCD_HOOK_DELETE, "HookSucceeded") || listed(keys::HELM_HOOK_DELETE, "hook-succeeded"))
}

/// The memory window for `minutes`.
pub fn window(minutes: u64) -> TimeDelta {
    TimeDelta::try_minutes(i64::try_from(minutes).unwrap_or(i64::MAX)).unwrap_or(TimeDelta::MAX)
}

#[derive(Debug)]
struct Remembered {
    job: Arc<Object>,
    deleted_at: DateTime<Utc>,
}

/// Recently deleted hook Jobs. Small: one entry per release within the window.
#[derive(Debug, Default)]
pub struct Memory {
    entries: Mutex<Vec<Remembered>>,
}

fn same_job(a: &Object, b: &Object) -> bool {
    match (a.meta.uid.as_deref(), b.meta.uid.as_deref()) {
        (Some(x), Some(y)) => x == y,
        _ => a.namespace() == b.namespace() && a.name() == b.name() && a.created_at() == b.created_at(),
    }
}

impl Memory {
    /// Remembers `job`, deleted at `now`, if its delete policy says it succeeded; drops entries
    /// older than `window`.
    pub fn on_deleted(&self, job: Arc<Object>, now: DateTime<Utc>, window: TimeDelta) {
        if !deleted_on_success(&job) || window <= TimeDelta::zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| now.signed_duration_since(e.deleted_at) < window && !same_job(&e.job, &job));
        tracing::debug!(job = %job.qualified_name(), "remembering deleted migration Job");
        entries.push(Remembered { job, deleted_at: now });
    }

    /// A Job seen alive again (a relist that raced the deletion): not deleted after all.
    pub fn on_alive(&self, job: &Object) {
        self.forget_where(|e| same_job(e, job));
    }

    /// Forgets the remembered Jobs for which `alive` says they still exist.
    pub fn forget_where(&self, alive: impl Fn(&Object) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.is_empty() {
            entries.retain(|e| !alive(&e.job));
        }
    }

    /// Remembered Jobs paired with `app`, deleted less than `window` before `now`.
    pub fn jobs_for(&self, app: &Object, now: DateTime<Utc>, window: TimeDelta) -> Vec<Arc<Object>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter(|e| now.signed_duration_since(e.deleted_at) < window && e.job.job_pairs_with(app))
            .map(|e| e.job.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::object;

    fn job(delete_policy: &str) -> Arc<Object> {
        Arc::new(object(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  namespace: shop\n  uid: u1\n  labels: {{dbhook.io/cluster: shop-pg}}\n  annotations: {{argocd.argoproj.io/hook: PreSync, {delete_policy}}}\nspec:\n  template:\n    spec:\n      containers: [{{name: m, image: 'ghcr.io/acme/web:sha-1'}}]\n"
        )))
    }

    fn app() -> Object {
        object(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}\nspec: {template: {spec: {containers: [{name: web, image: 'ghcr.io/acme/web:sha-1'}]}}}\n",
        )
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    #[test]
    fn hook_succeeded_jobs_are_remembered_for_the_window_only() {
        let m = Memory::default();
        let w = window(60);
        m.on_deleted(
            job("argocd.argoproj.io/hook-delete-policy: 'BeforeHookCreation,HookSucceeded'"),
            t(0),
            w,
        );
        assert_eq!(m.jobs_for(&app(), t(59), w).len(), 1);
        assert!(m.jobs_for(&app(), t(60), w).is_empty());
        // The next deletion prunes what expired.
        m.on_deleted(job("helm.sh/hook-delete-policy: hook-succeeded"), t(61), w);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn other_delete_policies_and_a_zero_window_are_not_remembered() {
        let m = Memory::default();
        m.on_deleted(
            job("argocd.argoproj.io/hook-delete-policy: HookFailed"),
            t(0),
            window(60),
        );
        m.on_deleted(
            job("argocd.argoproj.io/hook-delete-policy: HookSucceeded"),
            t(0),
            window(0),
        );
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn a_job_seen_alive_again_is_forgotten() {
        let m = Memory::default();
        let j = job("argocd.argoproj.io/hook-delete-policy: HookSucceeded");
        m.on_deleted(j.clone(), t(0), window(60));
        m.on_alive(&j);
        assert_eq!(m.len(), 0);
    }
}
