use serde_json::{Value, json};

use super::*;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn keys_of(m: &Marks) -> Vec<&str> {
    m.iter().map(|(k, _)| k).collect()
}

fn api(res: Res) -> String {
    let (group, version, _, _) = res.coordinates();
    api_version(group, version)
}

/// The object as an admission request carries it, decoded by the model's own path.
fn admitted(res: Res, v: &Value) -> Object {
    let mut v = v.clone();
    v["apiVersion"] = json!(api(res));
    v["kind"] = json!(res.coordinates().2);
    Object::from_value(&v).unwrap()
}

fn job_as_served() -> Value {
    json!({
        "metadata": {"name": "web-migrate", "namespace": "shop", "uid": "u-1", "resourceVersion": "4711",
            "creationTimestamp": "2027-01-15T08:00:00Z", "generation": 1,
            "labels": {"dbhook.io/cluster": "shop-pg", "app.kubernetes.io/instance": "web",
                       "batch.kubernetes.io/controller-uid": "c0ffee"},
            "annotations": {"argocd.argoproj.io/hook": "PreSync",
                            "argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
                            "argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/web-migrate",
                            "helm.sh/hook": "pre-upgrade", "helm.sh/hook-delete-policy": "hook-succeeded",
                            "dbhook.io/rollout": "web", "dbhook.io/exempt": "image-tag-pinned",
                            LAST_APPLIED: "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\"}"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "x", "uid": "u-0"}],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "managedFields": [{"manager": "argocd-controller", "operation": "Apply",
                               "fieldsV1": {"f:spec": {"f:template": {}}}}]},
        "spec": {"backoffLimit": 1, "completions": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "c0ffee"}},
            "template": {"metadata": {"labels": {"job-name": "web-migrate"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                    "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
                    "containers": [{"name": "migrate", "image": "ghcr.io/acme/web:sha-1111111",
                        "resources": {"limits": {"memory": "256Mi"}},
                        "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}},
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]}]}}},
        "status": {"failed": 2, "startTime": "2027-01-15T08:00:00Z",
            "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                           {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                            "lastTransitionTime": "2027-01-15T08:02:00Z"}]}
    })
}

#[test]
fn metadata_keeps_what_rules_read_and_drops_the_rest() {
    let o = from_value(Res::Jobs, &job_as_served());
    assert_eq!(keys_of(&o.labels), ["dbhook.io/cluster"]);
    assert_eq!(
        keys_of(&o.annotations),
        [
            "argocd.argoproj.io/hook",
            "argocd.argoproj.io/hook-delete-policy",
            "dbhook.io/exempt",
            "dbhook.io/rollout",
            "helm.sh/hook",
            "helm.sh/hook-delete-policy"
        ]
    );
    // Managed fields, owner references, finalizers and generation have no place to go.
    assert_eq!(
        o.meta,
        Meta {
            name: Some("web-migrate".into()),
            namespace: Some("shop".into()),
            generate_name: None,
            // The uid tells a recreated Job apart; evidence carries the resourceVersion.
            uid: Some("u-1".into()),
            resource_version: Some("4711".into()),
            creation_timestamp: o.meta.creation_timestamp.clone(),
            deletion_timestamp: None,
        }
    );
    assert_eq!(o.created_at(), 1_800_000_000);
    assert_eq!((o.name(), o.namespace()), ("web-migrate", "shop"));
    assert_eq!((o.api_version.as_str(), o.kind.as_str()), ("batch/v1", "Job"));
    assert!(o.is_migration_job());
}

#[test]
fn a_job_with_condition_failed_true_is_failed() {
    let failed = from_value(Res::Jobs, &job_as_served());
    assert!(failed.workload().is_some_and(|w| w.failed));
    let mut v = job_as_served();
    v["status"] = json!({"succeeded": 1, "conditions": [{"type": "Failed", "status": "False"},
                                                        {"type": "Complete", "status": "True"}]});
    assert!(from_value(Res::Jobs, &v).workload().is_some_and(|w| !w.failed));
}

#[test]
fn labels_and_annotations_without_kept_keys_are_none() {
    let v = json!({"metadata": {"name": "pg", "namespace": "shop", "labels": {"app": "x"},
                                "annotations": {LAST_APPLIED: "{}"}}, "spec": {"instances": 3}});
    let o = from_value(Res::Clusters, &v);
    assert!(o.labels.is_empty() && o.annotations.is_empty());
    assert!(matches!(o.spec, Spec::Cluster(_)));
    assert_eq!(
        (o.api_version.as_str(), o.kind.as_str()),
        ("postgresql.cnpg.io/v1", "Cluster")
    );
}

/// Fields the model does not read may hold anything, of any type or nesting, at every level.
#[test]
fn unknown_fields_of_any_shape_are_skipped() {
    let v = json!({
        "apiVersion": 7, "kind": ["odd"], "extra": {"deep": [[[{"x": null}]], -1.5e300, "\u{1F600}\"\\"]},
        "metadata": {"name": "pg", "namespace": "shop", "managedFields": "not a list", "ownerReferences": 5,
                     "labels": {"dbhook.io/x": "kept", "other": "dropped"}, "selfLink": {"a": true},
                     "annotations": null},
        "spec": {"instances": "three", "storage": [1, 2, {"size": null}], "unknownThing": {"z": [true, false]},
                 "backup": {"retentionPolicy": "30d", "weird": [{"nested": {"deeper": 1e-7}}]}},
        "status": {"anything": [{"goes": "here"}], "phase": 12}
    });
    let o = from_value(Res::Clusters, &v);
    let Spec::Cluster(c) = &o.spec else {
        panic!("not decoded: {o:?}")
    };
    assert_eq!(
        c.backup.as_ref().and_then(|b| b.retention_policy.as_deref()),
        Some("30d")
    );
    assert_eq!(o.label("dbhook.io/x"), Some("kept"));
    assert!(o.annotations.is_empty());
}

#[test]
fn a_spec_the_model_cannot_decode_leaves_the_object_without_its_spec() {
    let v = json!({"metadata": {"name": "shop-pg", "namespace": "shop"}, "spec": {"backup": "not an object"}});
    let o = from_value(Res::Clusters, &v);
    assert!(matches!(o.spec, Spec::Other));
    assert_eq!(o.name(), "shop-pg");
}

/// One undecodable object must not fail the list page it comes in.
#[test]
fn a_list_page_decodes_around_an_undecodable_spec() {
    let page = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ClusterList",
    "metadata": {"resourceVersion": "9", "continue": ""},
    "items": [
        {"metadata": {"name": "a", "namespace": "shop"}, "spec": {"plugins": {"not": "a list"}}},
        {"metadata": {"name": "b", "namespace": "shop"}, "spec": {"instances": 1}}
    ]});
    let list: kube::core::ObjectList<Cached<Clusters>> = serde_json::from_value(page).unwrap();
    let got: Vec<(&str, bool)> = list
        .items
        .iter()
        .map(|c| (c.object.name(), matches!(c.object.spec, Spec::Cluster(_))))
        .collect();
    assert_eq!(got, [("a", false), ("b", true)]);
}

#[test]
fn watch_events_decode_into_the_model() {
    let line = serde_json::to_vec(&json!({"type": "MODIFIED", "object": job_as_served()})).unwrap();
    let event: kube::core::WatchEvent<Cached<Jobs>> = serde_json::from_slice(&line).unwrap();
    let kube::core::WatchEvent::Modified(c) = event else {
        panic!("{event:?}")
    };
    assert_eq!(c.object.name(), "web-migrate");
    assert_eq!(kube::ResourceExt::resource_version(&c).as_deref(), Some("4711"));
}

fn parity_cases() -> Vec<(Res, Value)> {
    let app_spec =
        |template: Value| json!({"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template});
    let template = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:sha-1",
                                 "env": [{"name": "DB_URL", "value": "postgres://u:p@h/db"}]},
                                {"name": "proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.8.0"}],
                 "initContainers": [{"name": "istio", "image": "istio/proxyv2:1.22", "restartPolicy": "Always"}]}});
    let meta = |name: &str| {
        json!({"name": name, "namespace": "shop", "uid": format!("u-{name}"),
        "creationTimestamp": "2027-01-15T08:00:00Z",
        "labels": {"dbhook.io/cluster": "shop-pg"},
        "annotations": {"dbhook.io/env-name": "DATABASE_URL", "argocd.argoproj.io/sync-wave": "-1"}})
    };
    vec![
        (Res::Jobs, job_as_served()),
        (
            Res::Rollouts,
            json!({"metadata": meta("web"), "spec": app_spec(template.clone())}),
        ),
        (
            Res::Rollouts,
            json!({"metadata": meta("web-ref"), "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
        ),
        (
            Res::Deployments,
            json!({"metadata": meta("web"), "spec": app_spec(template.clone()), "status": {"replicas": 2}}),
        ),
        (
            Res::StatefulSets,
            json!({"metadata": meta("db-tool"), "spec": app_spec(template)}),
        ),
        (
            Res::Clusters,
            json!({"metadata": meta("shop-pg"), "spec": {
            "instances": 3, "imageName": "ghcr.io/cloudnative-pg/postgresql:16-minimal-bookworm",
            "env": [{"name": "AWS_REQUEST_CHECKSUM_CALCULATION", "value": "when_required"}],
            "bootstrap": {"initdb": {"database": "app", "secret": {"name": "app-user"}}},
            "backup": {"retentionPolicy": "30d", "volumeSnapshot": {"className": "csi"},
                       "barmanObjectStore": {"destinationPath": "s3://b/p", "endpointURL": "https://minio.minio:9000",
                                             "s3Credentials": {"accessKeyId": {"name": "s", "key": "k"}},
                                             "wal": {"compression": "gzip"}, "data": {"compression": "bzip2"}}},
            "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true, "enabled": true,
                         "parameters": {"barmanObjectName": "store"}}],
            "replica": {"enabled": false}},
            "status": {"phase": "Cluster in healthy state", "instancesStatus": {"healthy": ["shop-pg-1"]}}}),
        ),
        (
            Res::ScheduledBackups,
            json!({"metadata": meta("daily"), "spec": {"schedule": "0 0 2 * * *",
            "cluster": {"name": "shop-pg"}, "method": "plugin", "suspend": false, "immediate": true,
            "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}}),
        ),
        (
            Res::ObjectStores,
            json!({"metadata": meta("store"), "spec": {"retentionPolicy": "14d",
            "configuration": {"destinationPath": "s3://b", "endpointURL": "https://x.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"},
            "instanceSidecarConfiguration": {"env": [{"name": "AWS_RESPONSE_CHECKSUM_VALIDATION", "value": "when_required"}]}}}),
        ),
    ]
}

/// The watch path and the admission path decode the same object into the same model: whatever
/// a field added to the model reads, both paths must agree on it.
#[test]
fn watched_objects_decode_like_admitted_ones() {
    for (res, v) in parity_cases() {
        let watched = from_value(res, &v);
        let admitted = admitted(res, &v);
        assert_eq!(
            format!("{:?}", watched.spec),
            format!("{:?}", admitted.spec),
            "{res:?} {}",
            watched.name()
        );
        assert!(!matches!(watched.spec, Spec::Other), "{res:?} not decoded");
        for key in keys::FOREIGN_ANNOTATIONS
            .iter()
            .copied()
            .chain(admitted.annotations.iter().map(|(k, _)| k))
            .filter(|k| is_kept_annotation(k))
        {
            assert_eq!(
                watched.annotation(key),
                admitted.annotation(key),
                "{res:?} annotation {key}"
            );
        }
        assert_eq!(watched.label(keys::CLUSTER), admitted.label(keys::CLUSTER));
        assert_eq!(
            (
                watched.name(),
                watched.namespace(),
                watched.created_at(),
                &watched.meta.uid
            ),
            (
                admitted.name(),
                admitted.namespace(),
                admitted.created_at(),
                &admitted.meta.uid
            )
        );
        assert_eq!(watched.display_name(), admitted.display_name());
        assert_eq!(
            (watched.is_migration_job(), watched.is_app_workload()),
            (admitted.is_migration_job(), admitted.is_app_workload()),
            "{res:?} {}",
            watched.name()
        );
    }
}

#[test]
fn json_text_copies_any_value_exactly() {
    let v = json!({"s": "quote \" backslash \\ newline \n tab \t nul \u{0} emoji \u{1F600}",
                   "n": [0, -1, 18446744073709551615u64, -9223372036854775808i64, 1.5, -2.5e-10],
                   "b": [true, false, null], "empty": {"a": [], "b": {}}, "nested": [[[]], [{}]]});
    let text = serde_json::to_vec(&v).unwrap();
    let copied = serde_json::from_slice::<JsonText>(&text).unwrap().0;
    assert_eq!(serde_json::from_slice::<Value>(&copied).unwrap(), v);
}

#[test]
fn a_sync_wave_job_keeps_what_lockstep_reads_and_is_filed_by_cluster() {
    let v = json!({
        "metadata": {"name": "shop-migrate", "namespace": "shop",
            "labels": {"dbhook.io/cluster": "shop-pg"},
            "annotations": {"argocd.argoproj.io/sync-wave": "-1",
                            "argocd.argoproj.io/sync-options": "Replace=true",
                            "helm.sh/hook-weight": "-2",
                            "dbhook.io/lockstep": "tag",
                            "dbhook.io/lockstep-containers": "migrate",
                            "argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/shop-migrate"}},
        "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "ghcr.io/acme/shop-migrations:sha-1"}]}}},
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    });
    let o = from_value(Res::Jobs, &v);
    assert_eq!(
        keys_of(&o.annotations),
        [
            "argocd.argoproj.io/sync-options",
            "argocd.argoproj.io/sync-wave",
            "dbhook.io/lockstep",
            "dbhook.io/lockstep-containers",
            "helm.sh/hook-weight"
        ]
    );
    assert_eq!(o.sync_wave(), -1);
    assert!(o.is_failed_job());
    assert!(!o.is_migration_job(), "only by wave, against an app");
    let idx = crate::cluster::index::ObjectIndex::from_objects([o]);
    let filed: Vec<String> = idx
        .by_cluster("shop", "shop-pg")
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    assert_eq!(filed, ["shop-migrate"]);
}

/// A Job whose fields the model does not read are malformed (wrong types, odd nesting) in the
/// metadata, the pod template, its containers and their env vars: the watch keeps what the
/// rules read, as for any Job; and where the admission path can read the object too, both agree.
#[test]
fn a_job_with_malformed_unknown_fields_still_decodes() {
    let mut v = job_as_served();
    v["metadata"]["generation"] = json!("one");
    v["metadata"]["ownerReferences"] = json!({"not": "a list"});
    v["metadata"]["managedFields"] = json!([[1, 2], "x"]);
    let spec = &mut v["spec"];
    spec["backoffLimit"] = json!("once");
    spec["selector"] = json!([]);
    spec["template"]["metadata"] = json!("not a mapping");
    let pod = &mut spec["template"]["spec"];
    pod["restartPolicy"] = json!(["Never"]);
    pod["volumes"] = json!({"a": 1});
    let c = &mut pod["containers"][0];
    c["resources"] = json!(5);
    c["ports"] = json!("8080");
    c["securityContext"] = json!({"capabilities": {"drop": {"ALL": true}}});
    c["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = json!("maybe");
    c["env"][1]["extra"] = json!([{"deep": [null]}]);
    c["env"][2]["valueFrom"]["fieldRef"] = json!({"fieldPath": 7, "apiVersion": ["v1"]});
    v["status"]["startTime"] = json!(12);

    let o = from_value(Res::Jobs, &v);
    let Spec::Workload(w) = &o.spec else {
        panic!("not decoded: {o:?}")
    };
    let migrate = w.containers().find(|c| c.name() == "migrate").unwrap();
    assert_eq!(migrate.image(), "ghcr.io/acme/web:sha-1111111");
    let env = migrate.container.env.as_deref().unwrap_or_default();
    assert_eq!(env.len(), 3);
    let secret = env[0].value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref());
    assert_eq!(
        secret.map(|r| (r.name.as_str(), r.key.as_str())),
        Some(("shop-pg-app", "uri"))
    );
    assert_eq!(env[1].value.as_deref(), Some("info"));
    assert!(env[2].value_from.as_ref().is_some_and(|f| f.field_ref.is_some()));
    assert!(w.failed, "the Failed condition is still read");
    assert!(o.is_migration_job());
    assert_eq!(o.meta.uid.as_deref(), Some("u-1"));

    // The admission path decodes metadata with k8s-openapi, which rejects a malformed
    // `generation`; with well-formed metadata it reads the same spec.
    v["metadata"] = job_as_served()["metadata"].clone();
    let admitted = admitted(Res::Jobs, &v);
    assert_eq!(format!("{:?}", o.spec), format!("{:?}", admitted.spec));
}

/// A list page whose items carry malformed fields the model does not read decodes whole.
#[test]
fn a_list_page_with_malformed_unknown_fields_decodes_every_item() {
    let mut odd = job_as_served();
    odd["metadata"]["name"] = json!("odd");
    odd["metadata"]["finalizers"] = json!("x");
    odd["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = json!([1, {"a": [2]}]);
    let page = json!({"apiVersion": "batch/v1", "kind": "JobList",
        "metadata": {"resourceVersion": "9", "continue": ""}, "items": [odd, job_as_served()]});
    let list: kube::core::ObjectList<Cached<Jobs>> = serde_json::from_value(page).unwrap();
    let got: Vec<(&str, bool)> = list
        .items
        .iter()
        .map(|c| (c.object.name(), c.object.workload().is_some_and(|w| w.has_containers())))
        .collect();
    assert_eq!(got, [("odd", true), ("web-migrate", true)]);
}
