//! A small fake Kubernetes API server for the cluster-view tests: plain HTTP on 127.0.0.1,
//! discovery (`/api`, `/apis`, `/apis/<group>/<version>`), LIST with `labelSelector`, `limit`
//! and `continue`, WATCH streams (newline-delimited JSON events from a `resourceVersion`, with
//! BOOKMARKs and `timeoutSeconds`), metadata-only responses for
//! `Accept: …;as=PartialObjectMetadata…`, and switches to make resources or the whole server
//! fail (HTTP 500, open watch streams closed), forbid a resource (HTTP 403, as with trimmed
//! RBAC), and recover. Every request is recorded.
//!
//! It follows what kube's watcher relies on (kube-runtime 5, `InitialListStrategy::ListWatch`,
//! the default): LIST (with `resourceVersion=0&resourceVersionMatch=NotOlderThan` under
//! `any_semantic`) returns `metadata.resourceVersion`; WATCH from that version replays every
//! later change, then streams new ones; a version older than the retained history answers
//! `410 Gone` as an ERROR event, which makes the watcher relist. A watch with a label selector
//! sees an object that stops (starts) matching as DELETED (ADDED), like kube-apiserver.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// One resource the fake server can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_string(),
            g => format!("{g}/{}", self.version),
        }
    }
}

pub const JOBS: ResourceType = ResourceType {
    group: "batch",
    version: "v1",
    kind: "Job",
    plural: "jobs",
    namespaced: true,
};
pub const DEPLOYMENTS: ResourceType = ResourceType {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
};
pub const STATEFULSETS: ResourceType = ResourceType {
    group: "apps",
    version: "v1",
    kind: "StatefulSet",
    plural: "statefulsets",
    namespaced: true,
};
pub const NAMESPACES: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
};
pub const ROLLOUTS: ResourceType = ResourceType {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "Rollout",
    plural: "rollouts",
    namespaced: true,
};
pub const CLUSTERS: ResourceType = ResourceType {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "Cluster",
    plural: "clusters",
    namespaced: true,
};
pub const SCHEDULED_BACKUPS: ResourceType = ResourceType {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "ScheduledBackup",
    plural: "scheduledbackups",
    namespaced: true,
};
pub const OBJECT_STORES: ResourceType = ResourceType {
    group: "barmancloud.cnpg.io",
    version: "v1",
    kind: "ObjectStore",
    plural: "objectstores",
    namespaced: true,
};
/// A built-in resource the view does not watch, so discovery lists more than it asks for.
pub const CONFIGMAPS: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
};

/// OpenReports, served once their CRD is "installed"; dbhook writes them with `--reports`.
pub const REPORTS: ResourceType = ResourceType {
    group: "openreports.io",
    version: "v1alpha1",
    kind: "Report",
    plural: "reports",
    namespaced: true,
};
pub const CLUSTER_REPORTS: ResourceType = ResourceType {
    group: "openreports.io",
    version: "v1alpha1",
    kind: "ClusterReport",
    plural: "clusterreports",
    namespaced: false,
};
pub const OPENREPORTS: [ResourceType; 2] = [REPORTS, CLUSTER_REPORTS];

/// Always served, like a real API server.
pub const BUILT_IN: [ResourceType; 5] = [NAMESPACES, CONFIGMAPS, JOBS, DEPLOYMENTS, STATEFULSETS];
/// Served once their CRD is "installed".
pub const ARGO_ROLLOUTS: [ResourceType; 1] = [ROLLOUTS];
pub const CNPG: [ResourceType; 2] = [CLUSTERS, SCHEDULED_BACKUPS];
pub const BARMAN_CLOUD: [ResourceType; 1] = [OBJECT_STORES];
pub const ALL_CRDS: [ResourceType; 4] = [ROLLOUTS, CLUSTERS, SCHEDULED_BACKUPS, OBJECT_STORES];

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub accept: String,
    pub content_type: String,
    /// The request body, for writes.
    pub body: Option<Value>,
}

impl Recorded {
    pub fn is_watch(&self) -> bool {
        matches!(self.query.get("watch").map(String::as_str), Some("true" | "1"))
    }
}

#[derive(Debug, Clone)]
struct Change {
    res: ResourceType,
    rv: u64,
    kind: &'static str,
    object: Value,
    /// The state before a MODIFIED, to turn it into ADDED/DELETED for a selector.
    old: Option<Value>,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    served: BTreeSet<ResourceType>,
    failing: BTreeSet<ResourceType>,
    /// LIST and WATCH answer 403, as for a service account whose RBAC was trimmed.
    forbidden: BTreeSet<ResourceType>,
    down: bool,
    objects: HashMap<ResourceType, BTreeMap<(String, String), Value>>,
    history: Vec<Change>,
    /// Changes at or below this version are no longer replayed (410 Gone).
    compacted: u64,
    /// Bumped by every outage, failure, CRD removal and compaction: open watch streams close
    /// (however quickly the server comes back) and clients reconnect.
    breaks: u64,
    requests: Vec<Recorded>,
    /// TokenReview and SubjectAccessReview answers.
    reviews: Reviews,
    /// The next this many writes (PATCH, DELETE) fail with 500.
    failing_writes: u32,
}

impl Inner {
    /// The installed resource at `group/version/plural`, if any.
    fn served_as(&self, (g, v, plural): Gvr<'_>) -> Option<ResourceType> {
        self.served
            .iter()
            .find(|r| r.group == g && r.version == v && r.plural == plural)
            .copied()
    }

    /// Stores `object` as the change at `rv`: MODIFIED over `old`, ADDED without one.
    fn put(&mut self, res: ResourceType, key: (String, String), rv: u64, object: Value, old: Option<Value>) {
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.objects.entry(res).or_default().insert(key, object.clone());
        self.history.push(Change {
            res,
            rv,
            kind,
            object,
            old,
        });
    }

    /// Removes the object at `key` as a new change (DELETED with its last state); None when there
    /// is none.
    fn remove(&mut self, res: ResourceType, key: &(String, String)) -> Option<Value> {
        let mut object = self.objects.get_mut(&res).and_then(|m| m.remove(key))?;
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.history.push(Change {
            res,
            rv: self.rv,
            kind: "DELETED",
            object: object.clone(),
            old: None,
        });
        Some(object)
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// The newest resourceVersion; watch streams wake on it.
    head: watch::Sender<u64>,
    /// Bumped whenever failures or served resources change; watch streams re-check whether to
    /// close.
    failures: watch::Sender<u64>,
    bookmark_interval: Mutex<Duration>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change to what fails or is served and wakes the open watch streams to re-check
    /// it; with `close_watches` they end, as a real outage or failure ends them.
    fn change_failures(&self, close_watches: bool, change: impl FnOnce(&mut Inner)) {
        let mut inner = self.lock();
        change(&mut inner);
        if close_watches {
            inner.breaks += 1;
        }
        drop(inner);
        self.failures.send_modify(|g| *g += 1);
    }
}

/// The fake API server; stops when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
        // Close the open watch streams too.
        self.shared.change_failures(false, |inner| inner.down = true);
    }
}

impl FakeApiServer {
    /// Starts a server serving the built-in resources and `crds`.
    pub async fn start(crds: &[ResourceType]) -> FakeApiServer {
        let (head, _) = watch::channel(0);
        let (failures, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 100,
                served: BUILT_IN.iter().chain(crds).copied().collect(),
                ..Inner::default()
            }),
            head,
            failures,
            bookmark_interval: Mutex::new(Duration::from_millis(200)),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeApiServer { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server (plain HTTP, no credentials).
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// How often open watch streams that asked for bookmarks get one (kube-apiserver: about a
    /// minute; short here so contact is seen often). Applies to watches opened afterwards.
    pub fn set_bookmark_interval(&self, d: Duration) {
        *self.shared.bookmark_interval.lock().unwrap() = d;
    }

    /// Installs the CRDs of `resources`: discovery lists them and they can be listed and watched.
    pub fn install(&self, resources: &[ResourceType]) {
        self.shared.lock().served.extend(resources.iter().copied());
    }

    /// Removes the CRDs of `resources` with their objects (open watches are closed).
    pub fn uninstall(&self, resources: &[ResourceType]) {
        self.shared.change_failures(true, |inner| {
            for r in resources {
                inner.served.remove(r);
                inner.objects.remove(r);
            }
        });
    }

    /// Every request to the server fails with 500 and open watch streams close, until
    /// [`FakeApiServer::come_back`].
    pub fn go_down(&self) {
        self.shared.change_failures(true, |inner| inner.down = true);
    }

    pub fn come_back(&self) {
        self.shared.change_failures(false, |inner| inner.down = false);
    }

    /// LIST and WATCH of `res` fail with 500 (its open watches close) until `recover`.
    pub fn fail(&self, res: ResourceType) {
        self.shared.change_failures(true, |inner| {
            inner.failing.insert(res);
        });
    }

    pub fn recover(&self, res: ResourceType) {
        self.shared.change_failures(false, |inner| {
            inner.failing.remove(&res);
        });
    }

    /// LIST and WATCH of `res` answer 403 Forbidden (its open watches close) until `allow`,
    /// as kube-apiserver answers a service account whose ClusterRole lost the resource.
    pub fn forbid(&self, res: ResourceType) {
        self.shared.change_failures(true, |inner| {
            inner.forbidden.insert(res);
        });
    }

    pub fn allow(&self, res: ResourceType) {
        self.shared.change_failures(false, |inner| {
            inner.forbidden.remove(&res);
        });
    }

    /// Forgets the change history: a watch resuming from an older version gets 410 Gone and
    /// the client has to relist.
    pub fn compact(&self) {
        self.shared.change_failures(true, |inner| {
            inner.compacted = inner.rv;
            inner.history.clear();
        });
    }

    /// Creates or replaces an object (ADDED or MODIFIED); fills in `uid`,
    /// `creationTimestamp` and `resourceVersion` like the API server. Returns the stored object.
    pub fn apply(&self, res: ResourceType, mut object: Value) -> Value {
        let mut inner = self.shared.lock();
        assert!(inner.served.contains(&res), "{} is not installed", res.plural);
        inner.rv += 1;
        let rv = inner.rv;
        let key = key_of(&object);
        let old = inner.objects.get(&res).and_then(|m| m.get(&key)).cloned();
        match &old {
            Some(o) => {
                stamp(&mut object, res, rv, None);
                keep_identity(&mut object, o);
            }
            None => {
                inner.uid += 1;
                stamp(&mut object, res, rv, Some(inner.uid));
            }
        }
        inner.put(res, key, rv, object.clone(), old);
        drop(inner);
        self.shared.head.send_replace(rv);
        object
    }

    /// Deletes an object (DELETED with its last state); returns whether it existed.
    pub fn delete(&self, res: ResourceType, namespace: &str, name: &str) -> bool {
        let mut inner = self.shared.lock();
        let key = (namespace.to_string(), name.to_string());
        if inner.remove(res, &key).is_none() {
            return false;
        }
        let rv = inner.rv;
        drop(inner);
        self.shared.head.send_replace(rv);
        true
    }

    /// Loads many objects at once without change events (as if they existed before any watch).
    pub fn preload(&self, res: ResourceType, objects: impl IntoIterator<Item = Value>) {
        let mut inner = self.shared.lock();
        for mut object in objects {
            inner.rv += 1;
            inner.uid += 1;
            let (rv, uid) = (inner.rv, inner.uid);
            stamp(&mut object, res, rv, Some(uid));
            let key = key_of(&object);
            inner.objects.entry(res).or_default().insert(key, object);
        }
        inner.compacted = inner.rv;
        inner.history.clear();
    }

    /// The next `n` writes (PATCH, DELETE) fail with HTTP 500, as an overloaded API server or a
    /// failing webhook on the written kind would make them.
    pub fn fail_writes(&self, n: u32) {
        self.shared.lock().failing_writes = n;
    }

    /// The stored object, if any.
    pub fn get(&self, res: ResourceType, namespace: &str, name: &str) -> Option<Value> {
        let inner = self.shared.lock();
        inner
            .objects
            .get(&res)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// Every stored object of `res`.
    pub fn list(&self, res: ResourceType) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .objects
            .get(&res)
            .into_iter()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// The writes (PATCH, DELETE) received so far.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" || r.method == "DELETE")
            .collect()
    }

    /// Forgets the requests received so far (measurements keep the log out of the figures).
    pub fn clear_requests(&self) {
        self.shared.lock().requests = Vec::new();
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// LIST and WATCH requests for `res` (any namespace).
    pub fn requests_for(&self, res: ResourceType) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| parse_collection(&r.path).is_some_and(|(rt, _)| rt == (res.group, res.version, res.plural)))
            .collect()
    }
}

impl FakeApiServer {
    /// Makes `token` authenticate (TokenReview) as `username` in `groups`.
    pub fn add_token(&self, token: &str, username: &str, groups: &[&str]) {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        self.shared
            .lock()
            .reviews
            .tokens
            .insert(token.to_string(), (username.to_string(), groups));
    }

    /// Lets `subject` (a user or a group) `get` the non-resource URL `path` (SubjectAccessReview).
    pub fn grant(&self, subject: &str, path: &str) {
        self.shared
            .lock()
            .reviews
            .grants
            .insert((subject.to_string(), path.to_string()));
    }

    /// Answers TokenReviews and SubjectAccessReviews only after `delay`.
    pub fn delay_reviews(&self, delay: Duration) {
        self.shared.lock().reviews.delay = delay;
    }

    /// The bodies of the TokenReviews and SubjectAccessReviews received, in order.
    pub fn reviews(&self) -> Vec<Value> {
        self.shared.lock().reviews.received.clone()
    }

    /// How many reviews of `kind` (`TokenReview`, `SubjectAccessReview`) were received.
    pub fn review_count(&self, kind: &str) -> usize {
        self.reviews().iter().filter(|r| r["kind"] == kind).count()
    }
}

/// Sets what the API server sets on a stored object: its type, `resourceVersion` and, for a new
/// object (`new_uid`), a uid and creationTimestamp unless the fixture gave them.
fn stamp(object: &mut Value, res: ResourceType, rv: u64, new_uid: Option<u64>) {
    object["apiVersion"] = json!(res.api_version());
    object["kind"] = json!(res.kind);
    let meta = object["metadata"].as_object_mut().expect("metadata");
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(n) = new_uid {
        meta.entry("uid")
            .or_insert(json!(format!("00000000-0000-4000-8000-{n:012}")));
        meta.entry("creationTimestamp").or_insert(json!("2027-01-15T08:00:00Z"));
    }
}

/// An update keeps the identity of the object it replaces.
fn keep_identity(object: &mut Value, old: &Value) {
    object["metadata"]["uid"] = old["metadata"]["uid"].clone();
    object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
}

fn key_of(object: &Value) -> (String, String) {
    let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
    let name = object["metadata"]["name"].as_str().expect("metadata.name").to_string();
    (ns, name)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `(group, version, plural)`.
type Gvr<'a> = (&'a str, &'a str, &'a str);

/// kube-apiserver's 404 for a path no installed resource serves.
fn no_such_resource() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// The resource and namespace of a collection path.
fn parse_collection(path: &str) -> Option<(Gvr<'_>, Option<&str>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", v, "namespaces", ns, plural] => Some((("", v, plural), Some(ns))),
        ["api", v, plural] => Some((("", v, plural), None)),
        ["apis", g, v, "namespaces", ns, plural] => Some(((g, v, plural), Some(ns))),
        ["apis", g, v, plural] => Some(((g, v, plural), None)),
        _ => None,
    }
}

/// The resource, namespace and name of an object path (`…/namespaces/<ns>/<plural>/<name>`, or
/// `…/<plural>/<name>` for cluster-scoped resources).
fn parse_item(path: &str) -> Option<(Gvr<'_>, Option<&str>, &str)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", v, "namespaces", ns, plural, name] => Some((("", v, plural), Some(ns), name)),
        ["api", v, plural, name] => Some((("", v, plural), None, name)),
        ["apis", g, v, "namespaces", ns, plural, name] => Some(((g, v, plural), Some(ns), name)),
        ["apis", g, v, plural, name] if *plural != "namespaces" => Some(((g, v, plural), None, name)),
        _ => None,
    }
}

/// GET, server-side apply (PATCH `application/apply-patch+yaml` with a `fieldManager`) and
/// DELETE of one object.
fn item_request(
    shared: &Shared,
    (g, v, plural): Gvr<'_>,
    ns: Option<String>,
    name: String,
    req: &Recorded,
) -> Response {
    let mut inner = shared.lock();
    let Some(res) = inner.served_as((g, v, plural)) else {
        return no_such_resource();
    };
    let key = (ns.clone().unwrap_or_default(), name.clone());
    let not_found = || {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", res.plural, key.1),
        )
    };
    if req.method != "GET" && inner.failing_writes > 0 {
        inner.failing_writes -= 1;
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "injected write failure",
        );
    }
    match req.method.as_str() {
        "GET" => match inner.objects.get(&res).and_then(|m| m.get(&key)) {
            Some(o) => ok_json(o.clone()),
            None => not_found(),
        },
        "PATCH" => {
            if req.content_type != "application/apply-patch+yaml" {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "only server-side apply",
                );
            }
            if req.query.get("fieldManager").is_none_or(String::is_empty) {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                );
            }
            let Some(mut object) = req.body.clone().filter(Value::is_object) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not an object");
            };
            if object["metadata"]["name"].as_str() != Some(name.as_str()) {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the name of the object does not match the path",
                );
            }
            if let Some(ns) = &ns {
                object["metadata"]["namespace"] = json!(ns);
            }
            inner.rv += 1;
            let rv = inner.rv;
            let old = inner.objects.get(&res).and_then(|m| m.get(&key)).cloned();
            let meta = object["metadata"].as_object_mut().expect("metadata");
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            match &old {
                Some(o) => keep_identity(&mut object, o),
                None => {
                    meta.insert("uid".into(), json!(format!("00000000-0000-4000-9000-{rv:012}")));
                    meta.insert("creationTimestamp".into(), json!("2027-01-15T08:00:00Z"));
                }
            }
            inner.put(res, key, rv, object.clone(), old);
            drop(inner);
            shared.head.send_replace(rv);
            ok_json(object)
        }
        "DELETE" => {
            if inner.remove(res, &key).is_none() {
                return not_found();
            }
            let rv = inner.rv;
            drop(inner);
            shared.head.send_replace(rv);
            ok_json(
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": name, "group": g, "kind": plural}}),
            )
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "unsupported method"),
    }
}

/// A label selector of comma-separated `key`, `!key`, `key=value`, `key==value`, `key!=value`.
fn selector_matches(selector: &str, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k.trim()).is_none()
            } else {
                assert!(
                    !term.contains(' ') && !term.contains('('),
                    "unsupported selector {selector}"
                );
                get(term).is_some()
            }
        })
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn ok_json(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn discovery_resources(res: &[ResourceType]) -> Vec<Value> {
    res.iter()
        .map(|r| {
            json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
                   "kind": r.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect()
}

fn discovery(inner: &Inner, path: &str) -> Option<Response> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let served = |g: &str, v: &str| -> Vec<ResourceType> {
        inner
            .served
            .iter()
            .filter(|r| r.group == g && r.version == v)
            .copied()
            .collect()
    };
    Some(match parts.as_slice() {
        ["version"] => ok_json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})),
        ["api"] => ok_json(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        ["api", "v1"] => ok_json(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
            "resources": discovery_resources(&served("", "v1"))}),
        ),
        ["apis"] => {
            let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for r in inner.served.iter().filter(|r| !r.group.is_empty()) {
                groups.entry(r.group).or_default().insert(r.version);
            }
            let groups: Vec<Value> = groups
                .iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> = vs
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            ok_json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["apis", g, v] => {
            let res = served(g, v);
            if res.is_empty() {
                no_such_resource()
            } else {
                ok_json(
                    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{g}/{v}"),
                               "resources": discovery_resources(&res)}),
                )
            }
        }
        _ => return None,
    })
}

/// What a collection request may see of an object: its namespace and selector, and in
/// metadata-only form when the client asked for it.
struct Filter {
    namespace: Option<String>,
    selector: Option<String>,
    metadata_only: bool,
}

impl Filter {
    fn admits(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
            && self
                .selector
                .as_deref()
                .is_none_or(|s| selector_matches(s, &object["metadata"]["labels"]))
    }

    /// The event a watch with this filter sees for `change`, if any.
    fn event(&self, change: &Change) -> Option<Bytes> {
        let now = self.admits(&change.object);
        let before = change.old.as_ref().is_some_and(|o| self.admits(o));
        let kind = match (change.kind, before, now) {
            ("MODIFIED", true, true) => "MODIFIED",
            ("MODIFIED", false, true) => "ADDED",
            ("MODIFIED", true, false) => "DELETED",
            ("MODIFIED", false, false) => return None,
            (k, _, true) => k,
            _ => return None,
        };
        Some(event_line(kind, self.render(&change.object)))
    }

    fn render(&self, object: &Value) -> Value {
        if self.metadata_only {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
        } else {
            object.clone()
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if is_review(req.method(), req.uri().path()) {
        return review(shared, req).await;
    }
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let (parts, req_body) = req.into_parts();
    let header_value = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let accept = header_value(header::ACCEPT);
    let content_type = header_value(header::CONTENT_TYPE);
    let method = parts.method.to_string();
    let bytes = axum::body::to_bytes(req_body, 16 << 20).await.unwrap_or_default();
    let body = (!bytes.is_empty()).then(|| serde_yaml_ng::from_slice::<Value>(&bytes).unwrap_or(Value::Null));
    let recorded = Recorded {
        method,
        path: path.clone(),
        query: query.clone(),
        accept: accept.clone(),
        content_type,
        body,
    };
    let inner = {
        let mut inner = shared.lock();
        inner.requests.push(recorded.clone());
        if inner.down {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "fake API server is down",
            );
        }
        if let Some(r) = discovery(&inner, &path) {
            return r;
        }
        if let Some((gvr, ns, name)) = parse_item(&path) {
            let (ns, name) = (ns.map(str::to_string), name.to_string());
            drop(inner);
            return item_request(&shared, gvr, ns, name, &recorded);
        }
        inner
    };
    let Some((gvr, ns)) = parse_collection(&path) else {
        return no_such_resource();
    };
    let Some(res) = inner.served_as(gvr) else {
        return no_such_resource();
    };
    if inner.failing.contains(&res) {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "injected failure");
    }
    if inner.forbidden.contains(&res) {
        let group = if res.group.is_empty() {
            "\"\"".to_string()
        } else {
            format!("\"{}\"", res.group)
        };
        let message = format!(
            "{}{} is forbidden: User \"system:serviceaccount:dbhook-system:dbhook\" cannot {} resource \"{}\" in API group {group} at the cluster scope",
            res.plural,
            if res.group.is_empty() {
                String::new()
            } else {
                format!(".{}", res.group)
            },
            if recorded.is_watch() { "watch" } else { "list" },
            res.plural,
        );
        return status(StatusCode::FORBIDDEN, "Forbidden", &message);
    }
    if recorded.method != "GET" {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the fake server is read-only",
        );
    }
    let filter = Filter {
        namespace: ns.map(str::to_string),
        selector: query.get("labelSelector").cloned(),
        metadata_only: accept.contains("as=PartialObjectMetadata"),
    };
    if recorded.is_watch() {
        let breaks = inner.breaks;
        drop(inner);
        watch_response(shared, res, filter, &query, breaks)
    } else {
        list_response(&inner, res, &filter, &query)
    }
}

fn list_response(inner: &Inner, res: ResourceType, filter: &Filter, query: &BTreeMap<String, String>) -> Response {
    let matching: Vec<&Value> = inner
        .objects
        .get(&res)
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|o| filter.admits(o))
        .collect();
    let offset: usize = query.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| {
            let mut item = filter.render(o);
            // Items of a list carry no apiVersion/kind.
            if let Some(m) = item.as_object_mut().filter(|_| !filter.metadata_only) {
                m.remove("apiVersion");
                m.remove("kind");
            }
            item
        })
        .collect();
    let next = offset.saturating_add(page.len());
    let mut metadata = json!({"resourceVersion": inner.rv.to_string()});
    if next < matching.len() {
        metadata["continue"] = json!(next.to_string());
        metadata["remainingItemCount"] = json!(matching.len() - next);
    }
    let (api_version, kind) = if filter.metadata_only {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        (res.api_version(), format!("{}List", res.kind))
    };
    ok_json(json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": page}))
}

fn event_line(kind: &str, object: Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch_response(
    shared: Arc<Shared>,
    res: ResourceType,
    filter: Filter,
    query: &BTreeMap<String, String>,
    breaks: u64,
) -> Response {
    let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs);
    if from != 0 && from < shared.lock().compacted {
        let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from}"), "reason": "Expired", "code": 410});
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            event_line("ERROR", gone),
        )
            .into_response();
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let watch = Watch {
        res,
        filter,
        bookmarks,
        timeout,
        breaks,
    };
    tokio::spawn(stream_changes(shared, watch, from, tx));
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, std::io::Error>)));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap()
}

/// One open watch request.
struct Watch {
    res: ResourceType,
    filter: Filter,
    bookmarks: bool,
    timeout: Option<Duration>,
    /// `Inner::breaks` when the request came in.
    breaks: u64,
}

/// Feeds one watch stream: the changes after `cursor`, then new ones as they happen, and
/// bookmarks, until the timeout, a break, or the client goes away.
async fn stream_changes(shared: Arc<Shared>, watch: Watch, mut cursor: u64, tx: mpsc::Sender<Bytes>) {
    let Watch {
        res,
        filter,
        bookmarks,
        timeout,
        breaks,
    } = watch;
    let mut head = shared.head.subscribe();
    let mut failures = shared.failures.subscribe();
    let deadline = tokio::time::Instant::now() + timeout.unwrap_or(Duration::from_secs(3600));
    let interval = *shared.bookmark_interval.lock().unwrap();
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        let (lines, rv, closed) = {
            let inner = shared.lock();
            let closed = inner.breaks != breaks
                || inner.down
                || inner.failing.contains(&res)
                || inner.forbidden.contains(&res)
                || !inner.served.contains(&res);
            let lines: Vec<Bytes> = inner
                .history
                .iter()
                .filter(|c| c.rv > cursor && c.res == res)
                .filter_map(|c| filter.event(c))
                .collect();
            (lines, inner.rv, closed)
        };
        if closed {
            return;
        }
        cursor = rv;
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = head.changed() => {}
            _ = failures.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return,
            _ = ticker.tick() => {
                if bookmarks {
                    let (api_version, kind) = if filter.metadata_only {
                        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadata")
                    } else {
                        (res.api_version(), res.kind)
                    };
                    let bm = json!({"apiVersion": api_version, "kind": kind,
                                    "metadata": {"resourceVersion": cursor.to_string()}});
                    if tx.send(event_line("BOOKMARK", bm)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// What the fake server answers to TokenReviews and SubjectAccessReviews.
#[derive(Default)]
struct Reviews {
    /// token → (username, groups).
    tokens: HashMap<String, (String, Vec<String>)>,
    /// (user or group, non-resource path) allowed to `get`.
    grants: BTreeSet<(String, String)>,
    received: Vec<Value>,
    /// Reviews are answered after this long (a hung API server).
    delay: Duration,
}

fn is_review(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST && (path == TOKEN_REVIEWS || path == ACCESS_REVIEWS)
}

/// A TokenReview or SubjectAccessReview (POST), answered like kube-apiserver: the request
/// object with `status` filled in.
async fn review(shared: Arc<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let query = parse_query(req.uri().query());
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let mut object: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let recorded = Recorded {
        method,
        path: path.clone(),
        query,
        accept: String::new(),
        content_type: "application/json".into(),
        body: Some(object.clone()),
    };
    let delay = shared.lock().reviews.delay;
    tokio::time::sleep(delay).await;
    let mut inner = shared.lock();
    inner.requests.push(recorded);
    inner.reviews.received.push(object.clone());
    if inner.down {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "fake API server is down",
        );
    }
    let reviews = &inner.reviews;
    let spec = &object["spec"];
    let answer = if path == TOKEN_REVIEWS {
        assert_eq!(object["kind"], "TokenReview", "{object}");
        match spec["token"].as_str().and_then(|t| reviews.tokens.get(t)) {
            Some((user, groups)) => json!({"authenticated": true, "user": {
                "username": user, "uid": format!("uid-{user}"), "groups": groups}}),
            None => json!({"authenticated": false, "error": "invalid bearer token"}),
        }
    } else {
        assert_eq!(object["kind"], "SubjectAccessReview", "{object}");
        let attrs = &spec["nonResourceAttributes"];
        let path = attrs["path"].as_str().unwrap_or("");
        let subjects = spec["user"].as_str().into_iter().chain(
            spec["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
        let allowed = attrs["verb"] == "get"
            && subjects
                .into_iter()
                .any(|s| reviews.grants.contains(&(s.to_string(), path.to_string())));
        if allowed {
            json!({"allowed": true, "reason": "fake: granted"})
        } else {
            json!({"allowed": false})
        }
    };
    object["status"] = answer;
    ok_json(object)
}
