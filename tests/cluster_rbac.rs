//! The server stays within the RBAC documented in `docs/rbac.md` (which the Helm chart
//! copies): every request the cluster view makes is discovery or a GET the view's ClusterRole
//! grants, every request of the admin port's token check is a review its role grants, and
//! every granted resource is actually used.

use crate::support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

/// The ClusterRole named `name` among the yaml blocks of `docs/rbac.md`.
fn documented_role(name: &str) -> Value {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rbac.md")).unwrap();
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter_map(|yaml| serde_yaml_ng::from_str::<Value>(yaml).ok())
        .find(|v| v["kind"] == "ClusterRole" && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ClusterRole {name} in docs/rbac.md"))
}

/// `(apiGroup, resource, verb)` triples of the view's ClusterRole in `docs/rbac.md`.
fn documented() -> BTreeSet<(String, String, String)> {
    resource_rules(&documented_role("dbhook"))
}

fn resource_rules(role: &Value) -> BTreeSet<(String, String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "discovery comes from system:discovery"
        );
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

/// What a request needs: `(apiGroup, resource, verb)`, or None for discovery.
fn needs(r: &Recorded) -> Option<(String, String, String)> {
    let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, resource) = match parts.as_slice() {
        ["api"] | ["apis"] | ["api", _] | ["apis", _, _] => return None,
        ["api", _, resource] | ["api", _, "namespaces", _, resource] => ("", *resource),
        ["apis", g, _, resource] | ["apis", g, _, "namespaces", _, resource] => (*g, *resource),
        _ => panic!("unexpected request {r:?}"),
    };
    let verb = if r.is_watch() { "watch" } else { "list" };
    Some((group.to_string(), resource.to_string(), verb.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_reads_exactly_what_the_documented_cluster_role_grants() {
    let granted = documented();
    assert!(granted.iter().all(|(_, r, _)| r != "secrets"), "never Secrets");
    assert!(
        granted
            .iter()
            .all(|(_, _, v)| ["get", "list", "watch"].contains(&v.as_str())),
        "read-only: {granted:?}"
    );

    let server = FakeApiServer::start(&ALL_CRDS).await;
    let h = start(&server).await;
    h.synced().await;
    let resources = [
        JOBS,
        DEPLOYMENTS,
        STATEFULSETS,
        ROLLOUTS,
        CLUSTERS,
        SCHEDULED_BACKUPS,
        OBJECT_STORES,
        NAMESPACES,
    ];
    for res in resources {
        until("every watch is open", || {
            server.requests_for(res).iter().any(Recorded::is_watch)
        })
        .await;
    }

    let mut used = BTreeSet::new();
    for r in server.requests() {
        assert_eq!(r.method, "GET", "{r:?}");
        if let Some(need) = needs(&r) {
            assert!(granted.contains(&need), "{r:?} needs {need:?}, not in docs/rbac.md");
            used.insert((need.0, need.1));
        }
    }
    let documented_resources: BTreeSet<(String, String)> = granted.into_iter().map(|(g, r, _)| (g, r)).collect();
    assert_eq!(
        used, documented_resources,
        "every documented resource is read, nothing else"
    );
}

/// The admin port's token check against the fake API server: only TokenReview and
/// SubjectAccessReview creations, exactly what `dbhook-auth` grants, for paths the reader role
/// covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_reviews_exactly_what_the_documented_auth_role_grants() {
    use dbhook::server::auth::{AdminAccess, AuthOptions};
    use std::sync::Arc;

    let granted = resource_rules(&documented_role("dbhook-auth"));
    let reader = documented_role("dbhook-report-reader");
    assert_eq!(
        reader["rules"],
        serde_json::json!([{"nonResourceURLs": ["/report", "/metrics"], "verbs": ["get"]}])
    );

    let api = FakeApiServer::start(&[]).await;
    api.add_token("reader-token", "reader", &[]);
    api.grant("reader", "/report");
    api.grant("reader", "/metrics");
    let pki = crate::server_support::Pki::new();
    let mut config = crate::server_support::config(pki.tls_paths());
    let options = AuthOptions {
        metrics: true,
        ..AuthOptions::default()
    };
    config.admin_access = Arc::new(AdminAccess::reviewed(api.client(), options));
    let server = crate::server_support::start(config).await;
    for (path, token) in [
        ("/report", "reader-token"),
        ("/metrics", "reader-token"),
        ("/report", "unknown"),
    ] {
        reqwest::Client::new()
            .get(format!("http://{}{path}", server.admin_addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    }

    let mut used = BTreeSet::new();
    for r in api.requests() {
        let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        let need = match parts.as_slice() {
            ["apis", g, "v1", resource] if r.method == "POST" => {
                (g.to_string(), resource.to_string(), "create".to_string())
            }
            _ => panic!("the admin port made an unexpected request {r:?}"),
        };
        assert!(granted.contains(&need), "{r:?} needs {need:?}, not in docs/rbac.md");
        used.insert(need);
    }
    assert_eq!(used, granted, "both reviews are used, nothing else");

    let reader_paths: Vec<&str> = reader["rules"][0]["nonResourceURLs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for review in api.reviews().iter().filter(|r| r["kind"] == "SubjectAccessReview") {
        let attrs = &review["spec"]["nonResourceAttributes"];
        assert_eq!(attrs["verb"], "get");
        assert!(reader_paths.contains(&attrs["path"].as_str().unwrap()), "{review}");
    }
}
