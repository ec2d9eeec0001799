//! Watch tasks: one kube-runtime watcher per resource feeding its index, with backoff, list pages
//! of [`PAGE_SIZE`] decoded straight into the model (see `decode`), and a client layer that records every successful response, event and bookmark as contact with the
//! API server (the watcher itself does not surface bookmarks or re-watches).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::Request;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, client::Body};
use tokio::task::AbortHandle;

mod trim;

pub use trim::release_free_memory;

use super::Shared;
use super::decode::{self, Cached, Kind};
use super::index::ObjectIndex;
use super::resources::Res;
use crate::model::{Object, keys};

/// The watcher's settings for `res`: label-selected workloads, and watch requests that end (and
/// are renewed) well within the staleness window, so a silently dead connection is noticed in
/// time and a quiet resource still has regular contact.
pub fn config(res: Res, staleness: std::time::Duration) -> watcher::Config {
    let secs = (staleness.as_secs() / 2).clamp(1, 290);
    let mut cfg = watcher::Config::default()
        .timeout(u32::try_from(secs).unwrap_or(290))
        .page_size(PAGE_SIZE);
    if let Some(selector) = res.label_selector() {
        cfg = cfg.labels(selector);
    }
    cfg
}

/// Objects per list page: what one page costs in memory while it is decoded (its JSON text
/// and the objects decoded from it) against the number of requests a sync takes.
pub const PAGE_SIZE: u32 = 500;

/// Starts the watch of `res`; its cache counts as unsynced until the first complete listing.
pub fn spawn(shared: Arc<Shared>, client: &Client, res: Res) -> AbortHandle {
    trim::fix_thresholds();
    shared.set_synced(res, false);
    let client = contact_client(client.clone(), shared.clone(), res);
    let cfg = config(res, shared.staleness);
    let task = match res {
        Res::Namespaces => tokio::spawn(watch_namespaces(shared, client, cfg)),
        Res::Jobs => tokio::spawn(watch_objects::<decode::Jobs>(shared, client, cfg)),
        Res::Rollouts => tokio::spawn(watch_objects::<decode::Rollouts>(shared, client, cfg)),
        Res::Deployments => tokio::spawn(watch_objects::<decode::Deployments>(shared, client, cfg)),
        Res::StatefulSets => tokio::spawn(watch_objects::<decode::StatefulSets>(shared, client, cfg)),
        Res::Clusters => tokio::spawn(watch_objects::<decode::Clusters>(shared, client, cfg)),
        Res::ScheduledBackups => tokio::spawn(watch_objects::<decode::ScheduledBackups>(shared, client, cfg)),
        Res::ObjectStores => tokio::spawn(watch_objects::<decode::ObjectStores>(shared, client, cfg)),
    };
    task.abort_handle()
}

/// A client whose successful responses and response frames (events, bookmarks, list pages)
/// count as contact for `res`. Failed requests never count.
fn contact_client(client: Client, shared: Arc<Shared>, res: Res) -> Client {
    let default_ns = client.default_namespace().to_string();
    let valid_until = *client.valid_until();
    let service = tower::service_fn(move |req: Request<Body>| {
        let client = client.clone();
        let shared = shared.clone();
        async move {
            let response = client.send(req).await?;
            let ok = response.status().is_success();
            if ok {
                shared.health(res).touch();
            }
            Ok::<_, kube::Error>(response.map(move |body| {
                body.map_frame(move |frame| {
                    if ok {
                        shared.health(res).touch();
                    }
                    frame
                })
            }))
        }
    });
    Client::new(service, default_ns).with_valid_until(valid_until)
}

async fn watch_objects<K: Kind>(shared: Arc<Shared>, client: Client, cfg: watcher::Config) {
    let res = K::RES;
    let api: Api<Cached<K>> = Api::all(client);
    let mut events = pin!(watcher(api, cfg).default_backoff());
    let mut relist = Vec::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => {
                shared.health(res).touch();
                apply_object_event(&shared, res, unwrap_event(event), &mut relist);
            }
            Err(e) => {
                shared.health(res).failed(&e);
                tracing::warn!(resource = res.name(), error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

fn unwrap_event<K>(event: Event<Cached<K>>) -> Event<Arc<Object>> {
    match event {
        Event::Init => Event::Init,
        Event::InitApply(c) => Event::InitApply(c.object),
        Event::InitDone => Event::InitDone,
        Event::Apply(c) => Event::Apply(c.object),
        Event::Delete(c) => Event::Delete(c.object),
    }
}

/// Applies one watch event to the index of `res`. A relist is buffered in `relist` and swapped
/// in whole at `InitDone`, so lookups keep the previous state until the new one is complete.
pub fn apply_object_event(shared: &Shared, res: Res, event: Event<Arc<Object>>, relist: &mut Vec<Arc<Object>>) {
    match event {
        Event::Init => {
            // Lookups keep the old state meanwhile, but it has missed events: not fresh.
            shared.health(res).set_relisting(true);
            relist.clear();
        }
        Event::InitApply(obj) => relist.push(obj),
        Event::InitDone => {
            let listed = ObjectIndex::from_objects(std::mem::take(relist));
            let large = listed.len() >= trim::MIN_OBJECTS;
            tracing::debug!(resource = res.name(), objects = listed.len(), "cache synced");
            let old = std::mem::replace(&mut *shared.write(res), listed);
            if res == Res::Jobs {
                reconcile_memory(shared, &old);
            }
            drop(old);
            shared.health(res).set_relisting(false);
            shared.set_synced(res, true);
            shared.changed();
            if large {
                trim::release_free_memory();
            }
        }
        Event::Apply(obj) => {
            if res == Res::Jobs {
                shared.memory.on_alive(&obj);
            }
            shared.write(res).upsert(obj);
            shared.changed();
        }
        Event::Delete(obj) => {
            shared.write(res).remove(obj.namespace(), obj.name());
            if res == Res::Jobs {
                shared.memory.on_deleted(obj, shared.now(), shared.memory_window());
            }
            shared.changed();
        }
    }
}

/// After a relist: Jobs that vanished while the watch was down were deleted (remembered if
/// their hook policy says so); remembered Jobs that are listed again are alive.
fn reconcile_memory(shared: &Shared, old: &ObjectIndex) {
    let gone: Vec<Arc<Object>> = {
        let now_listed = shared.read(Res::Jobs);
        shared
            .memory
            .forget_where(|job| same_uid(now_listed.get(job.namespace(), job.name()).as_deref(), job));
        old.iter()
            .filter(|o| !same_uid(now_listed.get(o.namespace(), o.name()).as_deref(), o))
            .cloned()
            .collect()
    };
    let (now, window) = (shared.now(), shared.memory_window());
    for job in gone {
        shared.memory.on_deleted(job, now, window);
    }
}

fn same_uid(listed: Option<&Object>, job: &Object) -> bool {
    listed.is_some_and(|l| l.meta.uid == job.meta.uid)
}

async fn watch_namespaces(shared: Arc<Shared>, client: Client, cfg: watcher::Config) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let mut events = pin!(watcher(api, cfg).default_backoff());
    let mut relist = HashMap::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => {
                shared.health(Res::Namespaces).touch();
                apply_namespace_event(&shared, event, &mut relist);
            }
            Err(e) => {
                shared.health(Res::Namespaces).failed(&e);
                tracing::warn!(resource = "namespaces", error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

fn mode_label(meta: &ObjectMeta) -> Option<String> {
    meta.labels.as_ref()?.get(keys::MODE).cloned()
}

/// Applies one Namespace metadata event: only the `dbhook.io/mode` label is kept.
pub fn apply_namespace_event(
    shared: &Shared,
    event: Event<PartialObjectMeta<Namespace>>,
    relist: &mut HashMap<String, String>,
) {
    match event {
        Event::Init => relist.clear(),
        Event::InitApply(ns) => {
            if let (Some(name), Some(mode)) = (ns.metadata.name.clone(), mode_label(&ns.metadata)) {
                relist.insert(name, mode);
            }
        }
        Event::InitDone => {
            *shared.namespaces_mut() = std::mem::take(relist);
            shared.set_synced(Res::Namespaces, true);
        }
        Event::Apply(ns) => {
            let Some(name) = ns.metadata.name.clone() else { return };
            let mut modes = shared.namespaces_mut();
            match mode_label(&ns.metadata) {
                Some(mode) => modes.insert(name, mode),
                None => modes.remove(&name),
            };
        }
        Event::Delete(ns) => {
            if let Some(name) = ns.metadata.name.as_deref() {
                shared.namespaces_mut().remove(name);
            }
        }
    }
}
