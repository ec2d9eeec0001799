//! Which CRDs the API server serves, re-checked periodically: a kind whose CRD is missing is
//! unknown (never an error), and installing the CRD later starts its watch without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Client;
use tokio::task::AbortHandle;

use super::Shared;
use super::health::Served;
use super::resources::Res;
use super::watch;

/// The running watch tasks, by resource; aborted when the view is dropped.
#[derive(Debug, Default)]
pub struct Watches {
    running: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    tasks: HashMap<Res, AbortHandle>,
    /// Set when the view is dropped: no watch starts after that.
    closed: bool,
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn start(&self, shared: &Arc<Shared>, client: &Client, res: Res) {
        let mut guard = self.lock();
        if guard.closed {
            return;
        }
        let running = &mut guard.tasks;
        if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(res) {
            tracing::info!(resource = res.name(), "starting watch");
            slot.insert(watch::spawn(shared.clone(), client, res));
        }
    }

    /// Stops the watch of `res`; returns whether it was running.
    pub fn stop(&self, res: Res) -> bool {
        let handle = self.lock().tasks.remove(&res);
        handle.map(|h| h.abort()).is_some()
    }

    pub fn stop_all(&self) {
        let mut guard = self.lock();
        guard.closed = true;
        for (_, h) in guard.tasks.drain() {
            h.abort();
        }
    }
}

/// Asks the API server which CRD-backed resources it serves (`/apis`, then each listed group
/// version's resource list).
pub async fn discover(client: &Client) -> Result<Vec<(Res, Served)>, kube::Error> {
    let groups = client.list_api_groups().await?;
    let mut resources_of: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut out = Vec::new();
    for res in Res::ALL.into_iter().filter(|r| r.is_crd()) {
        let (group, version, kind, plural) = res.coordinates();
        let listed = groups
            .groups
            .iter()
            .any(|g| g.name == group && g.versions.iter().any(|v| v.version == version));
        if !listed {
            out.push((res, Served::No));
            continue;
        }
        let gv = format!("{group}/{version}");
        if !resources_of.contains_key(&gv) {
            let names = match client.list_api_group_resources(&gv).await {
                Ok(list) => list.resources.into_iter().map(|r| (r.name, r.kind)).collect(),
                // Removed between the two requests.
                Err(kube::Error::Api(s)) if s.is_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            resources_of.insert(gv.clone(), names);
        }
        let served = resources_of
            .get(&gv)
            .is_some_and(|names| names.iter().any(|(n, k)| n == plural && k == kind));
        out.push((res, if served { Served::Yes } else { Served::No }));
    }
    Ok(out)
}

/// Starts watches for resources that appeared, stops and forgets those that went away.
pub fn apply(shared: &Arc<Shared>, client: &Client, watches: &Watches, found: &[(Res, Served)]) {
    for &(res, served) in found {
        let before = shared.health(res).served();
        match served {
            Served::Yes => {
                shared.health(res).set_served(Served::Yes);
                watches.start(shared, client, res);
            }
            Served::No => {
                shared.health(res).set_served(Served::No);
                if watches.stop(res) || before == Served::Yes {
                    tracing::info!(resource = res.name(), "resource no longer served; its kind is unknown");
                    shared.forget(res);
                } else if before == Served::Undetermined {
                    // Degraded while discovery did not answer (its gauge at 0): not an outage
                    // once the answer is that the CRD is simply not installed.
                    shared.forget(res);
                }
            }
            Served::Undetermined => {}
        }
    }
}

/// The discovery loop: every `interval`, or sooner with backoff while the API server does not
/// answer (the previous answer stays in force meanwhile).
pub async fn run(shared: Arc<Shared>, client: Client, watches: Arc<Watches>, interval: Duration) {
    let first_retry = Duration::from_secs(1).min(interval);
    let mut retry = first_retry;
    loop {
        let wait = match discover(&client).await {
            Ok(found) => {
                apply(&shared, &client, &watches, &found);
                shared.set_discovered();
                retry = first_retry;
                interval
            }
            Err(e) => {
                shared.discovery_failed(&e);
                tracing::warn!(error = %e, "API discovery failed; keeping the previous answer");
                let wait = retry;
                retry = (retry * 2).min(interval);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}
