//! `migration-image-lockstep` through the running webhook: AdmissionReviews as kube-apiserver
//! sends them, over TLS to `/validate` of an in-process server whose cluster view is the real
//! one, watching the fake API server. The objects the rule compares against (migration Jobs, a
//! `workloadRef` Deployment) are only in the API server, so every decision here depends on the
//! view having seen them; each test first waits for that (or for a decision that only a view
//! that has seen them can give) before it asserts the other direction.

use crate::server_support as srv;
use crate::support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dbhook::cluster::ClusterOptions;
use dbhook::policy::Policy;
use dbhook::server::RunningServer;
use dbhook::view::View;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{
    ALL_CRDS, CLUSTERS, DEPLOYMENTS, FakeApiServer, Harness, JOBS, NAMESPACES, NS, ROLLOUTS, ResourceType, admitted,
    cnpg_cluster, names, namespace, until,
};

const RULE: &str = "migration-image-lockstep";
const WEB: &str = "ghcr.io/acme/web";
const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn web(tag: &str) -> String {
    format!("{WEB}:{tag}")
}

// --- the rig: fake API server, real cluster view, in-process webhook -----------------------

struct Rig {
    api: FakeApiServer,
    h: Harness,
    server: RunningServer,
    client: reqwest::Client,
    policy_file: PathBuf,
    _pki: srv::Pki,
}

/// What the webhook answered, read off the wire.
#[derive(Debug)]
struct Answer {
    allowed: bool,
    /// `status.message` of a denial, empty otherwise.
    message: String,
    warnings: Vec<String>,
    raw: Value,
}

impl Answer {
    fn lockstep_warnings(&self) -> Vec<&str> {
        let prefix = format!("dbhook: [{RULE}] ");
        self.warnings
            .iter()
            .filter_map(|w| w.strip_prefix(prefix.as_str()))
            .collect()
    }

    #[track_caller]
    fn assert_allowed_without_lockstep_finding(&self) {
        assert!(self.allowed, "{:#}", self.raw);
        assert!(self.lockstep_warnings().is_empty(), "{:#}", self.raw);
    }

    /// Denied by lockstep alone, with exactly `reason` as the rule's message.
    #[track_caller]
    fn assert_denied(&self, subject: &str, reason: &str) {
        assert!(!self.allowed, "{:#}", self.raw);
        assert_eq!(self.raw["response"]["status"]["code"], 403, "{:#}", self.raw);
        assert_eq!(self.raw["response"]["status"]["reason"], "Forbidden", "{:#}", self.raw);
        // The rule's message exactly, then the short evidence every denial carries.
        let expected = format!("dbhook denied {subject}: [{RULE}] {reason}");
        let evidence = self
            .message
            .strip_prefix(&expected)
            .unwrap_or_else(|| panic!("message {:?} does not start with {expected:?}", self.message));
        assert!(
            evidence.starts_with(" (expected ") && evidence.contains(", observed ") && evidence.ends_with(')'),
            "no short evidence after the message: {evidence:?}"
        );
    }
}

impl Rig {
    /// A cluster with CNPG Cluster `shop-pg` and Argo Rollouts, a view synced with it, and the
    /// webhook serving with `policy` (a policy file, re-read as the server re-reads it).
    async fn start(policy: &str) -> Rig {
        let api = FakeApiServer::start(&ALL_CRDS).await;
        api.apply(NAMESPACES, namespace(NS, json!({"kubernetes.io/metadata.name": NS})));
        api.apply(CLUSTERS, cnpg_cluster("shop-pg"));
        // The webhook judges with the wall clock; so does the view here.
        let h = support::start_with(&api, Policy::default(), |o| o.clock = ClusterOptions::default().clock).await;
        let pki = srv::Pki::new();
        let policy_file = pki.path("policy.yaml");
        std::fs::write(&policy_file, policy).unwrap();
        let mut config = srv::config(pki.tls_paths());
        config.view = h.view.clone();
        config.policy = h.policy.clone();
        config.metrics = h.metrics.clone();
        config.policy_path = Some(policy_file.clone());
        let server = srv::start(config).await;
        let client = srv::client(&pki.bundle.ca_cert, server.addr, false);
        let admin = server.admin_addr;
        srv::eventually("the webhook is ready (every watch synced)", || async move {
            (srv::admin_get(admin, "/readyz").await.0 == StatusCode::OK).then_some(())
        })
        .await;
        Rig {
            api,
            h,
            server,
            client,
            policy_file,
            _pki: pki,
        }
    }

    async fn with_default_policy() -> Rig {
        Rig::start("apiVersion: dbhook.io/v1alpha1\nkind: Policy\n").await
    }

    /// Replaces the policy file as kubelet replaces a ConfigMap volume's file: atomically.
    fn write_policy(&self, policy: &str) {
        let tmp = self.policy_file.with_extension("tmp");
        std::fs::write(&tmp, policy).unwrap();
        std::fs::rename(&tmp, &self.policy_file).unwrap();
    }

    async fn send(&self, review: Value) -> Answer {
        let reply = srv::post(&self.client, self.server.addr, "/validate", &review).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let raw = reply.json();
        assert_eq!(raw["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(raw["kind"], "AdmissionReview");
        assert_eq!(raw["response"]["uid"], review["request"]["uid"]);
        let warnings = raw["response"]["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        Answer {
            allowed: raw["response"]["allowed"] == true,
            message: raw["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            warnings,
            raw,
        }
    }

    /// CREATE of `object` (a body as Argo CD applies it: no uid, no status).
    async fn create(&self, res: ResourceType, object: Value) -> Answer {
        self.send(review("CREATE", res, with_type(res, object), None)).await
    }

    /// UPDATE of the stored `old` to `new`, with what the API server carries over (uid,
    /// resourceVersion, creationTimestamp, generation, status).
    async fn update(&self, res: ResourceType, old: &Value, new: Value) -> Answer {
        let mut new = with_type(res, new);
        for key in ["uid", "resourceVersion", "creationTimestamp"] {
            new["metadata"][key] = old["metadata"][key].clone();
        }
        new["metadata"]["generation"] = json!(old["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
        if let Some(status) = old.get("status") {
            new["status"] = status.clone();
        }
        self.send(review("UPDATE", res, new, Some(old.clone()))).await
    }

    /// Waits until the view pairs Rollout `app` with the migration Jobs named `want`.
    async fn paired(&self, app: &Value, want: &[&str]) {
        let app = admitted(ROLLOUTS, app.clone());
        until("the view pairs the expected migration Jobs", || {
            names(&self.h.view.migration_jobs_for(&app)) == want
        })
        .await;
    }
}

static UIDS: AtomicU64 = AtomicU64::new(1);

/// An AdmissionReview v1 as kube-apiserver sends it for a change Argo CD's controller applies.
fn review(operation: &str, res: ResourceType, object: Value, old: Option<Value>) -> Value {
    let uid = format!("5d3c9a1e-7b2f-4c8d-9e6a-{:012}", UIDS.fetch_add(1, Ordering::Relaxed));
    let kind = json!({"group": res.group, "version": res.version, "kind": res.kind});
    let resource = json!({"group": res.group, "version": res.version, "resource": res.plural});
    let options_kind = if operation == "CREATE" {
        "CreateOptions"
    } else {
        "UpdateOptions"
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": object["metadata"]["name"],
            "namespace": NS,
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:argocd:argocd-application-controller",
                "uid": "5b0f4e8c-2d5a-4f8e-9d1e-3c9a7f2e8b41",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"]
            },
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1", "fieldManager": "argocd-controller"}
        }
    })
}

fn with_type(res: ResourceType, mut object: Value) -> Value {
    object["apiVersion"] = json!(res.api_version());
    object["kind"] = json!(res.kind);
    object
}

// --- objects as Argo CD applies them and the API server returns them ----------------------

fn managed_fields(api_version: &str, status_manager: &str) -> Value {
    json!([
        {"manager": "argocd-controller", "operation": "Update", "apiVersion": api_version,
         "time": "2027-01-15T08:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:dbhook.io/cluster": {}}}, "f:spec": {}}},
        {"manager": status_manager, "operation": "Update", "apiVersion": api_version,
         "time": "2027-01-15T08:01:00Z", "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {}}}
    ])
}

fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
           "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}],
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}})
}

/// A native sidecar: an init container that keeps running beside the app.
fn sidecar(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "restartPolicy": "Always",
           "args": ["proxy", "sidecar"], "resources": {"requests": {"cpu": "10m"}}})
}

/// Rollout `web` of cluster `shop-pg` running `containers` (and `init` containers).
fn rollout_with(containers: Value, init: Value, annotations: Value) -> Value {
    let mut ann = json!({"argocd.argoproj.io/tracking-id": "shop:argoproj.io/Rollout:shop/web"});
    ann.as_object_mut()
        .unwrap()
        .extend(annotations.as_object().cloned().unwrap_or_default());
    let mut spec = json!({"containers": containers});
    if init.as_array().is_some_and(|i| !i.is_empty()) {
        spec["initContainers"] = init;
    }
    json!({
        "metadata": {"name": "web", "namespace": NS,
                     "labels": {"app.kubernetes.io/name": "web", "dbhook.io/cluster": "shop-pg"},
                     "annotations": ann,
                     "managedFields": managed_fields("argoproj.io/v1alpha1", "rollouts-controller")},
        "spec": {"replicas": 3, "revisionHistoryLimit": 3,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}]}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}, "spec": spec}}
    })
}

fn rollout(image: &str) -> Value {
    rollout_with(json!([container("web", image)]), json!([]), json!({}))
}

/// A live Rollout as the API server returns it: status written by the Rollouts controller.
fn stored_rollout(api: &FakeApiServer, body: Value) -> Value {
    let mut body = body;
    body["metadata"]["generation"] = json!(1);
    body["status"] = json!({"phase": "Healthy", "replicas": 3, "availableReplicas": 3, "observedGeneration": "1",
                            "stableRS": "6c9f8d7b5", "currentPodHash": "6c9f8d7b5"});
    api.apply(ROLLOUTS, body)
}

/// A migration Job of `shop-pg` as the API server returns it once it has completed.
fn job_with(name: &str, created: &str, annotations: Value, containers: Value, init: Value) -> Value {
    let mut spec = json!({"restartPolicy": "Never", "containers": containers});
    if init.as_array().is_some_and(|i| !i.is_empty()) {
        spec["initContainers"] = init;
    }
    json!({
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": created, "generation": 1,
                     "labels": {"dbhook.io/cluster": "shop-pg",
                                "batch.kubernetes.io/controller-uid": format!("c0ffee00-0000-4000-8000-{:0>12}", name.len())},
                     "annotations": annotations,
                     "finalizers": ["batch.kubernetes.io/job-tracking"],
                     "managedFields": managed_fields("batch/v1", "kube-controller-manager")},
        "spec": {"backoffLimit": 1, "completions": 1, "parallelism": 1,
                 "template": {"metadata": {"labels": {"app": "migrate"}}, "spec": spec}},
        "status": {"succeeded": 1, "startTime": created, "completionTime": created,
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": created, "lastTransitionTime": created},
                                  {"type": "Complete", "status": "True", "lastProbeTime": created, "lastTransitionTime": created}]}
    })
}

fn presync(extra: Value) -> Value {
    let mut a = json!({"argocd.argoproj.io/hook": "PreSync",
                       "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"});
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    a
}

/// A completed PreSync migration Job running `image`.
fn job(name: &str, image: &str, created: &str) -> Value {
    job_with(
        name,
        created,
        presync(json!({})),
        json!([container("migrate", image)]),
        json!([]),
    )
}

/// `Failed=True` as the Job controller writes it once the backoff limit is reached.
fn failed(mut job: Value) -> Value {
    let at = job["metadata"]["creationTimestamp"].clone();
    job["status"] = json!({"failed": 2, "startTime": at,
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastProbeTime": at, "lastTransitionTime": at},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastProbeTime": at, "lastTransitionTime": at}]});
    job
}

const T1: &str = "2027-01-15T08:00:00Z";
const T2: &str = "2027-01-15T09:00:00Z";
const T3: &str = "2027-01-15T10:00:00Z";

fn differs(app_image: &str, job_image: &str, job: &str, what: &str) -> String {
    format!(
        "image {app_image} differs from {job_image} of migration Job shop/{job} (compared by repository): update both to the same {what}"
    )
}

// --- the cases -------------------------------------------------------------------------------

/// Digests decide when both sides carry one; the Job's tag beside its digest does not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_digests_are_the_same_image_whatever_the_tags() {
    let rig = Rig::with_default_policy().await;
    let job_image = format!("{WEB}:v1@{D1}");
    rig.api.apply(JOBS, job("web-migrate", &job_image, T2));
    rig.paired(&rollout("any"), &["web-migrate"]).await;

    // The first release: the PreSync Job ran, then Argo CD creates the Rollout.
    let other = format!("{WEB}@{D2}");
    rig.create(ROLLOUTS, rollout(&other)).await.assert_denied(
        "Rollout shop/web",
        &differs(&other, &job_image, "web-migrate", "digest"),
    );
    let same = format!("{WEB}@{D1}");
    rig.create(ROLLOUTS, rollout(&same))
        .await
        .assert_allowed_without_lockstep_finding();

    // And the next sync of the live Rollout.
    let live = stored_rollout(&rig.api, rollout(&same));
    rig.update(ROLLOUTS, &live, rollout(&same))
        .await
        .assert_allowed_without_lockstep_finding();
    rig.update(ROLLOUTS, &live, rollout(&other)).await.assert_denied(
        "Rollout shop/web",
        &differs(&other, &job_image, "web-migrate", "digest"),
    );
}

/// `web` is `docker.io/library/web:latest`, as containerd resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_short_names_and_the_default_tag_are_the_same_image() {
    let rig = Rig::with_default_policy().await;
    let live = stored_rollout(&rig.api, rollout("web:v0"));
    rig.api
        .apply(JOBS, job("web-migrate", "docker.io/library/web:latest", T2));
    rig.paired(&rollout("web"), &["web-migrate"]).await;

    rig.update(ROLLOUTS, &live, rollout("web:v2")).await.assert_denied(
        "Rollout shop/web",
        &differs("web:v2", "docker.io/library/web:latest", "web-migrate", "tag"),
    );
    for same in ["web", "web:latest", "library/web", "index.docker.io/library/web:latest"] {
        let a = rig.update(ROLLOUTS, &live, rollout(same)).await;
        assert!(a.allowed, "{same}: {:#}", a.raw);
        assert!(a.lockstep_warnings().is_empty(), "{same}: {:#}", a.raw);
    }
}

/// Only one side pinned by digest: equal tags cannot prove the same image (a warning), other
/// tags are a violation. Both ways round: the digest on the Job, then on the Rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_on_one_side_only_warns_on_equal_tags_and_denies_other_tags() {
    let rig = Rig::with_default_policy().await;
    let live = stored_rollout(&rig.api, rollout(&web("v0")));
    let pinned = format!("{WEB}:v1@{D1}");
    rig.api.apply(JOBS, job("web-migrate-1", &pinned, T1));
    rig.paired(&rollout("any"), &["web-migrate-1"]).await;

    rig.update(ROLLOUTS, &live, rollout(&web("v2"))).await.assert_denied(
        "Rollout shop/web",
        &differs(&web("v2"), &pinned, "web-migrate-1", "tag"),
    );
    let a = rig.update(ROLLOUTS, &live, rollout(&web("v1"))).await;
    assert!(a.allowed, "{:#}", a.raw);
    let warnings = a.lockstep_warnings();
    assert_eq!(warnings.len(), 1, "{:#}", a.raw);
    // What the API client is shown (at most 256 characters) says why, and names both images.
    assert!(
        warnings[0].starts_with(&format!(
            "cannot prove the same image: {} and {pinned} of migration Job shop/web-migrate-1 carry the same tag",
            web("v1")
        )),
        "{}",
        warnings[0]
    );
    assert!(a.warnings.iter().all(|w| w.chars().count() <= 256), "{:?}", a.warnings);

    // The next release pins the Rollout instead.
    rig.api.apply(JOBS, job("web-migrate-3", &web("v3"), T2));
    rig.paired(&rollout("any"), &["web-migrate-1", "web-migrate-3"]).await;
    let rollout_pinned = format!("{WEB}:v3@{D2}");
    let a = rig.update(ROLLOUTS, &live, rollout(&rollout_pinned)).await;
    assert!(a.allowed, "{:#}", a.raw);
    let warnings = a.lockstep_warnings();
    assert_eq!(warnings.len(), 1, "{:#}", a.raw);
    assert!(
        warnings[0].starts_with(&format!(
            "cannot prove the same image: {rollout_pinned} and {} of migration Job shop/web-migrate-3 carry the same tag",
            web("v3")
        )),
        "{}",
        warnings[0]
    );
    let other = format!("{WEB}:v4@{D2}");
    rig.update(ROLLOUTS, &live, rollout(&other))
        .await
        .assert_denied("Rollout shop/web", &differs(&other, &web("v3"), "web-migrate-3", "tag"));
}

const PROXY: &str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy";
const IGNORE_PROXY: &str = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nrules:\n  migration-image-lockstep: {ignoreRepositories: ['gcr.io/cloud-sql-connectors/*']}\n";

/// The Rollout side of the sidecar case: the app, a database proxy of another version than the
/// Job's, an Istio proxy (a native sidecar) of another version, and optionally a plain init
/// container running `init`.
fn rollout_with_proxies(app_tag: &str, init: Option<&str>) -> Value {
    let mut inits = vec![sidecar("istio-proxy", "istio/proxyv2:1.23.1")];
    if let Some(image) = init {
        inits.push(json!({"name": "wait-for-schema", "image": image, "args": ["schema", "wait"]}));
    }
    rollout_with(
        json!([
            container("web", &web(app_tag)),
            container("cloud-sql-proxy", &format!("{PROXY}:2.14.1"))
        ]),
        json!(inits),
        json!({}),
    )
}

/// Native sidecars are never compared; shared utility images are not once the policy file
/// ignores their repository. Everything else still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sidecars_and_ignored_repositories_are_not_compared() {
    let rig = Rig::start(IGNORE_PROXY).await;
    let live = stored_rollout(&rig.api, rollout_with_proxies("v0", None));
    rig.api.apply(
        JOBS,
        job_with(
            "web-migrate",
            T2,
            presync(json!({})),
            json!([
                container("migrate", &web("v1")),
                container("cloud-sql-proxy", &format!("{PROXY}:2.11.0"))
            ]),
            json!([sidecar("istio-proxy", "docker.io/istio/proxyv2:1.22.0")]),
        ),
    );
    rig.paired(&rollout("any"), &["web-migrate"]).await;

    // The app image is still compared...
    rig.update(ROLLOUTS, &live, rollout_with_proxies("v2", None))
        .await
        .assert_denied(
            "Rollout shop/web",
            &differs(&web("v2"), &web("v1"), "web-migrate", "tag"),
        );
    // ...the proxies of other versions are not.
    rig.update(ROLLOUTS, &live, rollout_with_proxies("v1", None))
        .await
        .assert_allowed_without_lockstep_finding();
    // A plain init container runs to completion before the app: it is compared.
    rig.update(ROLLOUTS, &live, rollout_with_proxies("v1", Some(&web("v0"))))
        .await
        .assert_denied(
            "Rollout shop/web",
            &differs(&web("v0"), &web("v1"), "web-migrate", "tag"),
        );

    // Without `ignoreRepositories` (the policy file re-read) the database proxy is compared.
    rig.write_policy("apiVersion: dbhook.io/v1alpha1\nkind: Policy\n");
    let proxy_denial = differs(
        &format!("{PROXY}:2.14.1"),
        &format!("{PROXY}:2.11.0"),
        "web-migrate",
        "tag",
    );
    let a = srv::eventually("the re-read policy compares the database proxy", || async {
        let a = rig.update(ROLLOUTS, &live, rollout_with_proxies("v1", None)).await;
        (!a.allowed).then_some(a)
    })
    .await;
    a.assert_denied("Rollout shop/web", &proxy_denial);
}

/// Argo CD's `BeforeHookCreation` keeps a failed PreSync Job: the newest Job that has not failed
/// is the reference, until the retried Job succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_newest_migration_job_is_not_the_reference() {
    let rig = Rig::with_default_policy().await;
    let live = stored_rollout(&rig.api, rollout(&web("v1")));
    rig.api.apply(JOBS, job("web-migrate-1", &web("v1"), T1));
    // The v2 release: its migration failed.
    rig.api.apply(JOBS, failed(job("web-migrate-2", &web("v2"), T2)));
    rig.paired(&rollout("any"), &["web-migrate-1", "web-migrate-2"]).await;

    // Were the failed Job the reference, v2 would pass and v1 fail.
    rig.update(ROLLOUTS, &live, rollout(&web("v2"))).await.assert_denied(
        "Rollout shop/web",
        &differs(&web("v2"), &web("v1"), "web-migrate-1", "tag"),
    );
    rig.update(ROLLOUTS, &live, rollout(&web("v1")))
        .await
        .assert_allowed_without_lockstep_finding();

    // The retry: Argo CD deletes the failed hook and creates it again; this time it succeeds.
    rig.api.delete(JOBS, NS, "web-migrate-2");
    rig.api.apply(JOBS, job("web-migrate-2", &web("v2"), T3));
    let a = srv::eventually("the succeeded retry is the reference", || async {
        let a = rig.update(ROLLOUTS, &live, rollout(&web("v2"))).await;
        a.allowed.then_some(a)
    })
    .await;
    a.assert_allowed_without_lockstep_finding();
    // A new v1 Rollout is now out of step. (An UPDATE of the live v1 Rollout that keeps v1 would
    // be a pre-existing violation, only warned: the ratchet keys on the same app image against
    // the same reference Job image.)
    rig.create(ROLLOUTS, rollout(&web("v1"))).await.assert_denied(
        "Rollout shop/web",
        &differs(&web("v1"), &web("v2"), "web-migrate-2", "tag"),
    );
    let a = rig.update(ROLLOUTS, &live, rollout(&web("v1"))).await;
    assert!(a.allowed, "{:#}", a.raw);
    assert_eq!(
        a.lockstep_warnings()
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>(),
        vec![format!(
            "pre-existing: {}",
            differs(&web("v1"), &web("v2"), "web-migrate-2", "tag")
        )],
        "{:#}",
        a.raw
    );
}

/// Rollout `web` whose pod template lives in Deployment `web-template`.
fn workload_ref_rollout() -> Value {
    let mut r = rollout(&web("unused"));
    let spec = r["spec"].as_object_mut().unwrap();
    spec.remove("template");
    spec.insert(
        "workloadRef".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-template", "scaleDown": "progressively"}),
    );
    r
}

/// The Deployment a `workloadRef` Rollout points at, scaled to 0 by the Rollouts controller.
fn template_deployment(image: &str) -> Value {
    json!({
        "metadata": {"name": "web-template", "namespace": NS, "generation": 1,
                     "labels": {"app.kubernetes.io/name": "web", "dbhook.io/cluster": "shop-pg"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"},
                     "managedFields": managed_fields("apps/v1", "kube-controller-manager")},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
                              "spec": {"containers": [container("web", image)]}}},
        "status": {"observedGeneration": 1}
    })
}

/// A `workloadRef` Rollout admitted before its Deployment exists is allowed (nothing can be
/// compared); once the view has the Deployment, its template is what is compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_ref_rollout_is_compared_once_its_deployment_appears() {
    let rig = Rig::with_default_policy().await;
    rig.api.apply(JOBS, job("web-migrate-2", &web("v2"), T2));
    rig.paired(&rollout("any"), &["web-migrate-2"]).await;
    // The view has the Job: a Rollout with its own template is compared with it.
    rig.create(ROLLOUTS, rollout(&web("v3"))).await.assert_denied(
        "Rollout shop/web",
        &differs(&web("v3"), &web("v2"), "web-migrate-2", "tag"),
    );

    rig.create(ROLLOUTS, workload_ref_rollout())
        .await
        .assert_allowed_without_lockstep_finding();
    let live = stored_rollout(&rig.api, workload_ref_rollout());
    rig.update(ROLLOUTS, &live, workload_ref_rollout())
        .await
        .assert_allowed_without_lockstep_finding();

    // The Rollout itself does not change: a new one (CREATE) is judged through the Deployment;
    // an UPDATE of the live one would only carry the Deployment's violation as pre-existing.
    rig.api.apply(DEPLOYMENTS, template_deployment(&web("v3")));
    let a = srv::eventually("the Deployment's template is compared", || async {
        let a = rig.create(ROLLOUTS, workload_ref_rollout()).await;
        (!a.allowed).then_some(a)
    })
    .await;
    a.assert_denied(
        "Rollout shop/web",
        &differs(&web("v3"), &web("v2"), "web-migrate-2", "tag"),
    );

    rig.api.apply(DEPLOYMENTS, template_deployment(&web("v2")));
    let a = srv::eventually("the Deployment's new template is compared", || async {
        let a = rig.create(ROLLOUTS, workload_ref_rollout()).await;
        a.allowed.then_some(a)
    })
    .await;
    a.assert_allowed_without_lockstep_finding();
}

/// A plain Job ordered by sync wave, as Atlas-style kits write it (no hook annotation).
fn sync_wave_job(image: &str, wave: &str, extra: Value) -> Value {
    let mut a = json!({"argocd.argoproj.io/sync-wave": wave,
                       "argocd.argoproj.io/sync-options": "Replace=true",
                       "argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/web-migrate"});
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    job_with("web-migrate", T2, a, json!([container("migrate", image)]), json!([]))
}

/// A Job in an earlier sync wave than the Rollout is its migration Job; at the Rollout's wave
/// or later it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_wave_job_is_a_migration_job_only_before_the_app() {
    let rig = Rig::with_default_policy().await;
    let live = stored_rollout(&rig.api, rollout(&web("sha-1111111")));
    rig.api.apply(JOBS, sync_wave_job(&web("sha-2222222"), "-1", json!({})));
    rig.paired(&rollout("any"), &["web-migrate"]).await;

    rig.update(ROLLOUTS, &live, rollout(&web("sha-3333333")))
        .await
        .assert_denied(
            "Rollout shop/web",
            &differs(&web("sha-3333333"), &web("sha-2222222"), "web-migrate", "tag"),
        );
    rig.update(ROLLOUTS, &live, rollout(&web("sha-2222222")))
        .await
        .assert_allowed_without_lockstep_finding();

    for wave in ["0", "1"] {
        rig.api.apply(JOBS, sync_wave_job(&web("sha-2222222"), wave, json!({})));
        rig.paired(&rollout("any"), &[]).await;
        rig.update(ROLLOUTS, &live, rollout(&web("sha-3333333")))
            .await
            .assert_allowed_without_lockstep_finding();
    }
    // Waves are relative: the same Job at wave 1 migrates for a Rollout at wave 2.
    let later = rollout_with(
        json!([container("web", &web("sha-3333333"))]),
        json!([]),
        json!({"argocd.argoproj.io/sync-wave": "2"}),
    );
    rig.paired(&later, &["web-migrate"]).await;
    rig.update(ROLLOUTS, &live, later).await.assert_denied(
        "Rollout shop/web",
        &differs(&web("sha-3333333"), &web("sha-2222222"), "web-migrate", "tag"),
    );
}

/// `dbhook.io/lockstep: tag`: a separate migrations image is compared by tag across
/// repositories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_mode_compares_a_separate_migrations_image_by_tag() {
    let rig = Rig::with_default_policy().await;
    let shop = |tag: &str| format!("ghcr.io/acme/shop:{tag}");
    let live = stored_rollout(&rig.api, rollout(&shop("sha-0000000")));
    let migrations = "ghcr.io/acme/shop-migrations:sha-1a2b3c4";
    rig.api.apply(
        JOBS,
        job_with(
            "shop-migrate",
            T2,
            presync(json!({"dbhook.io/lockstep": "tag"})),
            json!([container("migrate", migrations)]),
            json!([]),
        ),
    );
    rig.paired(&rollout("any"), &["shop-migrate"]).await;

    rig.update(ROLLOUTS, &live, rollout(&shop("sha-9f8e7d6")))
        .await
        .assert_denied(
            "Rollout shop/web",
            &format!(
                "image {} tag sha-9f8e7d6 differs from {migrations} of migration Job shop/shop-migrate (compared by tag): build both from the same commit and tag",
                shop("sha-9f8e7d6")
            ),
        );
    rig.update(ROLLOUTS, &live, rollout(&shop("sha-1a2b3c4")))
        .await
        .assert_allowed_without_lockstep_finding();
}
