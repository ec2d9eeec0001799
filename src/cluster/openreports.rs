//! `serve --reports`: the background report written as OpenReports by server-side apply (field
//! manager `dbhook`), one Report per namespace with findings, only when its content changed,
//! deleted when the namespace became clean. The one place dbhook writes to the API; it runs
//! beside admission and never delays or fails it. Without the OpenReports CRD it logs once
//! and stays off.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use tokio::time::Instant;

use super::Shared;
use crate::openreports::{self as or, Scope};
use crate::report::Report;

/// Settings of the OpenReports writer.
#[derive(Debug, Clone)]
pub struct ReportsOptions {
    /// Results per Report (`reports.maxResults`).
    pub max_results: usize,
    /// How often to look for a newly published report.
    pub poll: Duration,
    /// First wait after a failed write; doubled per failure up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for ReportsOptions {
    fn default() -> Self {
        ReportsOptions {
            max_results: or::DEFAULT_MAX_RESULTS,
            poll: Duration::from_secs(1),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

fn api_resource(scope: &Scope) -> ApiResource {
    let (kind, plural) = match scope {
        Scope::Namespace(_) => ("Report", "reports"),
        Scope::Cluster => ("ClusterReport", "clusterreports"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(or::GROUP, "v1alpha1", kind), plural)
}

fn api(client: &kube::Client, scope: &Scope) -> Api<DynamicObject> {
    let ar = api_resource(scope);
    match scope {
        Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// A digest of a Report's content: what was last written is remembered by this alone, so the
/// writer holds a few bytes per namespace, not the Reports.
fn digest(doc: &Value) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    doc.to_string().hash(&mut h);
    h.finish()
}

/// Whether the OpenReports API is served: `Some(false)` when the group is not there (no CRD),
/// `None` when the API server could not say.
async fn crd_installed(client: &kube::Client) -> Option<bool> {
    match client.list_api_group_resources(or::API_VERSION).await {
        Ok(list) => Some(list.resources.iter().any(|r| r.name == "reports")),
        Err(e) if is_not_found(&e) => Some(false),
        Err(e) => {
            tracing::debug!(error = %e, "OpenReports discovery failed; retrying");
            None
        }
    }
}

/// The Reports dbhook wrote before (another replica, an earlier run): they are deleted when
/// their namespace has no findings now.
async fn existing(client: &kube::Client) -> Result<Vec<Scope>, kube::Error> {
    let lp = ListParams::default().labels(&format!("{}={}", or::MANAGED_BY.0, or::MANAGED_BY.1));
    let mut scopes = Vec::new();
    let reports = Api::<DynamicObject>::all_with(client.clone(), &api_resource(&Scope::Namespace(String::new())));
    for r in reports.list(&lp).await? {
        if r.metadata.name.as_deref() == Some(or::NAME)
            && let Some(ns) = r.metadata.namespace
        {
            scopes.push(Scope::Namespace(ns));
        }
    }
    let cluster = api(client, &Scope::Cluster);
    match cluster.list(&lp).await {
        Ok(list) if list.items.iter().any(|r| r.metadata.name.as_deref() == Some(or::NAME)) => {
            scopes.push(Scope::Cluster);
        }
        Ok(_) => {}
        // Clusters may serve Report without ClusterReport; nothing of ours there then.
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(scopes)
}

/// The writer's memory: what each scope holds now, as far as dbhook wrote it.
#[derive(Default)]
struct Written {
    /// Digest of the content written, or `None` for a Report found but not written by this run.
    scopes: HashMap<Scope, Option<u64>>,
}

/// Brings the API in line with `report`; returns whether every write succeeded. Writes only
/// what differs from what was last written.
async fn sync(client: &kube::Client, report: &Report, max_results: usize, written: &mut Written) -> bool {
    let groups = or::group(report);
    let mut ok = true;
    let params = PatchParams::apply(or::SOURCE).force();
    // One Report at a time: a cluster with many findings never holds all of them as JSON.
    for (scope, findings) in &groups {
        let doc = or::build(scope, findings, max_results);
        let d = digest(&doc);
        if written.scopes.get(scope) == Some(&Some(d)) {
            continue;
        }
        match api(client, scope).patch(or::NAME, &params, &Patch::Apply(&doc)).await {
            Ok(_) => {
                written.scopes.insert(scope.clone(), Some(d));
            }
            Err(e) => {
                tracing::warn!(error = %e, scope = ?scope, "writing the OpenReports Report failed; will retry");
                ok = false;
            }
        }
    }
    let stale: Vec<Scope> = written
        .scopes
        .keys()
        .filter(|s| !groups.contains_key(s))
        .cloned()
        .collect();
    for scope in stale {
        match api(client, &scope).delete(or::NAME, &DeleteParams::default()).await {
            Ok(_) => {
                written.scopes.remove(&scope);
            }
            Err(e) if is_not_found(&e) => {
                written.scopes.remove(&scope);
            }
            Err(e) => {
                tracing::warn!(error = %e, scope = ?scope, "deleting the OpenReports Report failed; will retry");
                ok = false;
            }
        }
    }
    ok
}

/// Runs the writer until aborted.
pub(crate) async fn run(shared: Arc<Shared>, client: kube::Client, opts: ReportsOptions) {
    let mut backoff = opts.backoff_initial;
    // The CRD is not ours to install: without it, say so once and stay off.
    loop {
        match crd_installed(&client).await {
            Some(true) => break,
            Some(false) => {
                tracing::warn!(
                    "--reports: the OpenReports CRD (reports.openreports.io) is not installed; no Reports are written"
                );
                return;
            }
            None => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(opts.backoff_max);
            }
        }
    }
    // Writing from an incomplete view would delete Reports of namespaces not yet seen.
    while !shared.synced() {
        tokio::time::sleep(opts.poll).await;
    }
    let mut written = Written::default();
    backoff = opts.backoff_initial;
    loop {
        match existing(&client).await {
            Ok(scopes) => {
                written.scopes.extend(scopes.into_iter().map(|s| (s, None)));
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing existing OpenReports Reports failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(opts.backoff_max);
            }
        }
    }
    let mut last: Option<u64> = None;
    let mut retry_at: Option<Instant> = None;
    backoff = opts.backoff_initial;
    loop {
        let generation = shared.report_generation.load(std::sync::atomic::Ordering::Acquire);
        let fresh = last != Some(generation);
        let due = retry_at.is_some_and(|t| Instant::now() >= t);
        // The first report is published once the view has synced; an empty default before
        // that must not clear every Report.
        if (fresh || due) && shared.report_published() {
            let current: Arc<Report> = shared.report.load_full();
            if sync(&client, &current, opts.max_results, &mut written).await {
                retry_at = None;
                backoff = opts.backoff_initial;
            } else {
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(opts.backoff_max);
            }
            last = Some(generation);
        }
        tokio::time::sleep(opts.poll).await;
    }
}
