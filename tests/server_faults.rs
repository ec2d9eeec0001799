//! Faults around the running server (SECURITY.md "Failure modes"): the API server failing under
//! a warm cache, certificate and policy files replaced with garbage under load, and shutdown
//! with many requests in flight. No timing assertions, only completion and upper bounds.

use crate::server_support;
use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{
    Pki, ProbeView, Volume, admin_get, bundle, client, config, der_of, example, metric, metrics, patch_of, post,
    served_cert, start,
};
use support::{
    ALL_CRDS, CLUSTERS, FakeApiServer, NAMESPACES, NS, OBJECT_STORES, cnpg_cluster, namespace, object_store,
};

/// An UPDATE that turns on WAL archiving for Cluster `shop-pg`: with no ScheduledBackup for it
/// in a complete view, `scheduled-backup-present` denies what the update introduces.
fn cluster_update() -> Value {
    let mut review = example("review-cluster-no-backup.json");
    let mut cluster = cnpg_cluster("shop-pg");
    cluster["apiVersion"] = json!("postgresql.cnpg.io/v1");
    cluster["kind"] = json!("Cluster");
    let mut old = cluster.clone();
    old["spec"].as_object_mut().unwrap().remove("plugins");
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["object"] = cluster;
    review["request"]["oldObject"] = old;
    review
}

fn denies_for_missing_backup(answer: &Value) -> bool {
    answer["response"]["allowed"] == false
        && answer["response"]["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("[scheduled-backup-present]"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_under_a_warm_cache_keeps_readiness_and_never_denies_on_unknown() {
    let api = FakeApiServer::start(&ALL_CRDS).await;
    api.set_bookmark_interval(Duration::from_millis(100));
    api.apply(NAMESPACES, namespace(NS, json!({})));
    api.apply(CLUSTERS, cnpg_cluster("shop-pg"));
    api.apply(OBJECT_STORES, object_store("shop-pg-store"));
    let policy = Arc::new(arc_swap::ArcSwap::from_pointee(dbhook::policy::Policy::default()));
    let metrics_registry = Arc::new(dbhook::metrics::Metrics::new());
    let options = dbhook::cluster::ClusterOptions {
        staleness: Duration::from_secs(2),
        discovery_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let view = dbhook::cluster::start(api.client(), policy.clone(), metrics_registry.clone(), options).await;
    let pki = Pki::new();
    let mut config = config(pki.tls_paths());
    config.view = view;
    config.policy = policy;
    config.metrics = metrics_registry;
    let server = start(config).await;
    let h2 = client(&pki.bundle.ca_cert, server.addr, false);
    let review = cluster_update();

    server_support::eventually("ready and judging against a complete view", || {
        let (h2, review) = (h2.clone(), review.clone());
        async move {
            let ready = admin_get(server.admin_addr, "/readyz").await.0 == StatusCode::OK;
            (ready && denies_for_missing_backup(&post(&h2, server.addr, "/validate", &review).await.json()))
                .then_some(())
        }
    })
    .await;

    api.go_down();
    // Reviews keep being answered and readiness stays up while absent turns into unknown;
    // from then on the missing ScheduledBackup no longer denies.
    let mut samples = 0;
    server_support::eventually("the stale view stops denying", || {
        samples += 1;
        let (h2, review) = (h2.clone(), review.clone());
        async move {
            let (ready, body) = admin_get(server.admin_addr, "/readyz").await;
            assert_eq!(ready, StatusCode::OK, "readiness stays up during the outage: {body}");
            let reply = post(&h2, server.addr, "/validate", &review).await;
            assert_eq!(reply.status, StatusCode::OK);
            let answer = reply.json();
            (answer["response"]["allowed"] == true).then_some(())
        }
    })
    .await;
    // Some time later, still the same.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, StatusCode::OK);
        let answer = post(&h2, server.addr, "/validate", &review).await.json();
        assert_eq!(answer["response"]["allowed"], true, "unknown never denies: {answer}");
        let mutated = post(&h2, server.addr, "/mutate", &example("review-rollout.json")).await;
        assert!(patch_of(&mutated.json()).is_some(), "injection needs no cluster view");
        samples += 1;
    }

    api.come_back();
    server_support::eventually("the fresh view denies again", || {
        let (h2, review) = (h2.clone(), review.clone());
        async move { denies_for_missing_backup(&post(&h2, server.addr, "/validate", &review).await.json()).then_some(()) }
    })
    .await;
    eprintln!("API server outage: {samples} readiness and review samples during the outage");
}

/// Sends reviews in a loop until `stop`, on kept-alive connections and (every fourth) on new
/// ones; counts answers and records every failure.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, cas: &[&str], workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let builder = {
            let cas: Vec<String> = cas.iter().map(|s| s.to_string()).collect();
            move |h1: bool| {
                let mut b = server_support::client_builder(&cas[0], addr, h1);
                for ca in &cas[1..] {
                    b = b.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
                }
                b.build().unwrap()
            }
        };
        for w in 0..workers {
            let (stop, answered, failures, builder) =
                (stop.clone(), answered.clone(), failures.clone(), builder.clone());
            tasks.spawn(async move {
                let h1 = w % 2 == 1;
                let mut kept = builder(h1);
                let review = serde_json::to_vec(&example("review-rollout.json")).unwrap();
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    if n.is_multiple_of(4) {
                        kept = builder(h1);
                    }
                    let result = kept
                        .post(server_support::url(addr, "/mutate"))
                        .header("content-type", "application/json")
                        .body(review.clone())
                        .send()
                        .await;
                    let outcome = match result {
                        Ok(r) if r.status() == StatusCode::OK => match r.json::<Value>().await {
                            Ok(answer) if patch_of(&answer).is_some() => Ok(()),
                            Ok(answer) => Err(format!("no patch: {answer}")),
                            Err(e) => Err(format!("unreadable answer: {e}")),
                        },
                        Ok(r) => Err(format!("status {}", r.status())),
                        Err(e) => Err(format!("{e:?}")),
                    };
                    match outcome {
                        Ok(()) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => failures.lock().unwrap().push(format!("worker {w} request {n}: {e}")),
                    }
                }
            });
        }
        Load {
            stop,
            answered,
            failures,
            tasks,
        }
    }

    /// Waits until `more` further answers arrived.
    async fn answers(&self, more: usize) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        server_support::eventually("the load keeps being answered", || async {
            (self.answered.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await;
    }

    /// Stops and returns (answered, failures).
    async fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(done) = self.tasks.join_next().await {
            done.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.answered.load(Ordering::SeqCst), failures)
    }
}

/// Files of a volume update: (name, contents).
type Files<'a> = &'a [(&'a str, &'a str)];

fn reloads(text: &str, what: &str, result: &str) -> f64 {
    metric(text, &format!(r#"dbhook_{what}_reloads_total{{result="{result}"}}"#)).unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_certificates_and_policies_under_load_fail_no_request() {
    const ENFORCE: &str = "apiVersion: dbhook.io/v1alpha1\nkind: Policy\nmode: enforce\n";
    let (a, b) = (bundle(), bundle());
    let tls_dir = tempfile::tempdir().unwrap();
    let policy_dir = tempfile::tempdir().unwrap();
    let mut tls = Volume::new(tls_dir.path(), &[("tls.crt", &a.cert), ("tls.key", &a.key)]);
    let mut policy = Volume::new(policy_dir.path(), &[("policy.yaml", ENFORCE)]);
    let mut config = config(dbhook::server::TlsPaths {
        cert: tls.path("tls.crt"),
        key: tls.path("tls.key"),
        client_ca: None,
    });
    config.policy_path = Some(policy.path("policy.yaml"));
    config.reload_interval = Duration::from_millis(200);
    let server = start(config).await;
    let cas = [a.ca_cert.as_str(), b.ca_cert.as_str()];
    let load = Load::start(server.addr, &cas, 6);
    load.answers(20).await;

    let faults: [(&str, &str, Files); 5] = [
        (
            "tls",
            "a certificate that is not PEM",
            &[("tls.crt", "garbage"), ("tls.key", &a.key)],
        ),
        (
            "tls",
            "a certificate with another pair's key",
            &[("tls.crt", &a.cert), ("tls.key", &b.key)],
        ),
        ("tls", "an empty key", &[("tls.crt", &a.cert), ("tls.key", "")]),
        (
            "policy",
            "a policy that is not YAML",
            &[("policy.yaml", "mode: [enforce\n\t:")],
        ),
        (
            "policy",
            "a policy with an unknown rule",
            &[("policy.yaml", "rules:\n  no-such-rule: deny\n")],
        ),
    ];
    let mut errors = [0.0, 0.0];
    for (what, fault, files) in faults {
        let slot = usize::from(what == "policy");
        errors[slot] += 1.0;
        let want = errors[slot];
        if what == "tls" {
            tls.update(files);
        } else {
            policy.update(files);
        }
        server_support::eventually(&format!("{fault} is refused and counted"), || async {
            (reloads(&metrics(server.admin_addr).await, what, "error") == want).then_some(())
        })
        .await;
        load.answers(20).await;
        assert_eq!(served_cert(server.addr, &cas).await, der_of(&a.cert), "after {fault}");
    }
    // A good rotation under load is taken without failing a request either.
    tls.update(&[("tls.crt", &b.cert), ("tls.key", &b.key)]);
    let b_cert = der_of(&b.cert);
    server_support::eventually("the good pair is served", || {
        let b_cert = b_cert.clone();
        async move { (served_cert(server.addr, &cas).await == b_cert).then_some(()) }
    })
    .await;
    load.answers(20).await;

    let (answered, failures) = load.finish().await;
    assert!(failures.is_empty(), "{} failed requests: {failures:#?}", failures.len());
    let text = metrics(server.admin_addr).await;
    assert_eq!(reloads(&text, "tls", "success"), 1.0, "{text}");
    assert_eq!(reloads(&text, "policy", "success"), 0.0, "{text}");
    eprintln!("garbage under load: 5 faults and 1 rotation injected, {answered} requests answered, 0 failed");
}

const HELD: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 40)]
async fn shutdown_with_32_reviews_in_flight_on_16_h2_and_16_http1_connections_answers_every_one() {
    let pki = Pki::new();
    // ProbeView, not the cluster view over the fake API server: the reviews must be held inside
    // the handler until the shutdown has begun, and the real view's lookups never block.
    let view = ProbeView::holding(HELD);
    let mut config = config(pki.tls_paths());
    config.view = view.clone();
    config.shutdown_timeout = Duration::from_secs(60);
    let server = start(config).await;
    let addr = server.addr;
    let mut in_flight = tokio::task::JoinSet::new();
    for n in 0..HELD {
        // One connection each: a new client per request.
        let c = client(&pki.bundle.ca_cert, addr, n % 2 == 1);
        in_flight.spawn(async move { (n, post(&c, addr, "/mutate", &example("review-rollout.json")).await) });
    }
    view.wait_until_held(HELD).await;

    server.shutdown();
    assert_eq!(
        admin_get(server.admin_addr, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server_support::eventually("the listener stops accepting", || async move {
        tokio::net::TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    view.release();

    let mut answered = 0;
    while let Some(done) = tokio::time::timeout(Duration::from_secs(60), in_flight.join_next())
        .await
        .expect("every held review is answered")
    {
        let (n, reply) = done.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "review {n}: {}", reply.text);
        assert!(patch_of(&reply.json()).is_some(), "review {n} got its full answer");
        answered += 1;
    }
    assert_eq!(answered, HELD);
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .expect("the server stops once every in-flight review is answered");
}

// --- a large body is judged off the runtime thread ---------------------------------------

/// A /validate review of a labelled Deployment in `ns`, padded to at least `size` bytes with
/// an annotation, as a large object (a big last-applied copy) would be.
fn padded_review(uid: &str, ns: &str, size: usize) -> Vec<u8> {
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"dbhook.io/cluster": "shop-pg"},
                     "annotations": {"example.com/padding": "x".repeat(size)}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:sha-1"}]}}}});
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": ns, "name": "web", "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"}, "object": object, "dryRun": false}}))
    .unwrap()
}

fn validate_request(body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap()
}

async fn uid_of(response: axum::response::Response) -> Value {
    use http_body_util::BodyExt as _;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["response"]["uid"].clone()
}

/// On a single-threaded runtime, a small review is answered while a large one is still being
/// judged: the large one cannot be on the runtime's only thread. Were it there, the small one
/// would wait for the gate, which opens only after the small one was answered.
#[tokio::test(flavor = "current_thread")]
async fn a_large_body_is_judged_off_the_runtime_thread() {
    use dbhook::server::webhook::{BLOCKING_BODY_BYTES, WebhookState, router};
    use tower::ServiceExt as _;

    // The first review to ask for its namespace's mode label (the large one) is held there.
    let view = ProbeView::holding(1);
    let state = Arc::new(WebhookState {
        policy: Arc::new(arc_swap::ArcSwap::from_pointee(dbhook::policy::Policy::default())),
        view: view.clone(),
        metrics: Arc::new(dbhook::metrics::Metrics::new()),
        max_body_bytes: 7 * 1024 * 1024,
        request_timeout: Duration::from_secs(10),
    });
    let app = router(state);
    let large = padded_review("large", "held", BLOCKING_BODY_BYTES);
    assert!(large.len() >= BLOCKING_BODY_BYTES);
    let pending = tokio::spawn(app.clone().oneshot(validate_request(large)));
    // Wait (off the runtime) until the large review is inside the engine.
    view.wait_until_held(1).await;
    let small = app
        .oneshot(validate_request(padded_review("small", "shop", 10)))
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    assert_eq!(uid_of(small).await, "small");
    view.release();
    let large = pending.await.unwrap().unwrap();
    assert_eq!(large.status(), StatusCode::OK);
    assert_eq!(uid_of(large).await, "large");
}
