//! The cluster view stays within the RBAC documented in `docs/rbac.md` (which the Helm chart
//! copies): every request it makes is discovery or a GET the ClusterRole grants, and every
//! granted resource is actually read.

use crate::support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

/// `(apiGroup, resource, verb)` triples of the ClusterRole in `docs/rbac.md`.
fn documented() -> BTreeSet<(String, String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rbac.md")).unwrap();
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block in docs/rbac.md");
    let role: Value = serde_yaml_ng::from_str(yaml).unwrap();
    assert_eq!(role["kind"], "ClusterRole");
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
