//! Decode + review + encode for the objects dbhook sees most, and the worst cases.
//! Run: `cargo bench --bench engine` (only the coverage ones: `cargo bench --bench engine -- coverage`).

use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use dbhook::admission;
use dbhook::engine::{self, Change, Scope};
use dbhook::manifest;
use dbhook::model::Object;
use dbhook::policy::Policy;
use dbhook::view::{EmptyView, ManifestView, View};
use kube::core::admission::Operation;
use serde_json::{Value, json};

fn shop() -> Vec<Value> {
    let text = include_str!("../examples/shop.yaml");
    manifest::parse("shop.yaml", text)
        .expect("example parses")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

fn by_kind(docs: &[Value], kind: &str) -> Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .cloned()
        .expect("kind in example")
}

/// An AdmissionReview exactly as kube-apiserver sends it for `object`.
pub fn review_body(object: &Value, operation: &str) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or("");
    let resource = format!("{}s", kind.to_lowercase());
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"], "namespace": "shop", "operation": operation,
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .expect("serializes")
}

/// The same for an UPDATE of `old` into `object`, oldObject and UpdateOptions included.
pub fn update_body(object: &Value, old: &Value) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&review_body(object, "UPDATE")).expect("parses");
    review["request"]["oldObject"] = old.clone();
    review["request"]["options"] = json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"});
    serde_json::to_vec(&review).expect("serializes")
}

/// `rollout` as a controller writes it back: an annotation changed, nothing judged touched.
fn touched(rollout: &Value) -> Value {
    let mut new = rollout.clone();
    new["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("5");
    new
}

/// `rollout` with a plaintext DB_URL: a deny finding that an UPDATE keeps (pre-existing).
fn with_plaintext(rollout: &Value) -> Value {
    let mut bad = rollout.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "DB_URL", "value": "postgres://shop:s3cret@shop-pg-rw:5432/shop"}]);
    bad
}

fn wide_pod(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("ghcr.io/acme/c{i}:sha-1a2b3c4"), "env": [{"name": "A", "value": "b"}]}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "wide", "namespace": "shop", "labels": {"dbhook.io/cluster": "shop-pg"}},
           "spec": {"template": {"spec": {"containers": containers}}}})
}

fn big_view() -> ManifestView {
    let mut objects = Vec::with_capacity(11_000);
    for i in 0..10_000 {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": format!("migrate-{i}"), "namespace": format!("ns{}", i % 100),
                         "labels": {"dbhook.io/cluster": format!("pg-{}", i % 1000)},
                         "annotations": {"argocd.argoproj.io/hook": "PreSync"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": format!("ghcr.io/acme/app{}:sha-{i}", i % 1000)}]}}}});
        objects.push(Arc::new(Object::from_value(&job).expect("job decodes")));
    }
    for i in 0..1_000 {
        let cluster = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": format!("pg-{i}"), "namespace": format!("ns{}", i % 100)},
            "spec": {"instances": 3, "backup": {"retentionPolicy": "30d", "barmanObjectStore": {"destinationPath": "s3://b/p", "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}}});
        objects.push(Arc::new(Object::from_value(&cluster).expect("cluster decodes")));
    }
    ManifestView::new(objects, true)
}

/// 1,000 ScheduledBackups of one Cluster with real-world variety: daily, weekly, weekday-only,
/// monthly, at different times, some suspended, some five-field (unparseable), some `@every`
/// longer than the limit, some with a method the Cluster lacks.
fn many_backups() -> (Object, Vec<Arc<Object>>) {
    let cluster = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "shop-pg", "namespace": "shop"},
        "spec": {"instances": 3, "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                 "parameters": {"barmanObjectName": "shop-backups"}}]}});
    let cluster = Object::from_value(&cluster).expect("cluster decodes");
    let days = ["*", "0", "1-5", "6", "MON,THU", "SAT,SUN", "2"];
    let doms = ["*", "1", "15", "1-7", "28"];
    let mut objects = vec![Arc::new(cluster.clone())];
    for i in 0..1_000usize {
        let schedule = match i % 10 {
            7 => format!("{} {} * * *", i % 60, i % 24),
            8 => format!("@every {}h", 25 + i % 48),
            9 => format!("0 {} {} {} * *", i % 60, i % 24, doms[i % doms.len()]),
            _ => format!("0 {} {} * * {}", i % 60, (i / 7) % 24, days[i % days.len()]),
        };
        let method = if i % 13 == 0 { "barmanObjectStore" } else { "plugin" };
        let sb = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
            "metadata": {"name": format!("shop-pg-backup-{i:04}"), "namespace": "shop"},
            "spec": {"schedule": schedule, "cluster": {"name": "shop-pg"}, "method": method,
                     "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}, "suspend": i % 11 == 0}});
        objects.push(Arc::new(Object::from_value(&sb).expect("backup decodes")));
    }
    (cluster, objects)
}

fn coverage_benches(c: &mut Criterion) {
    let policy = Policy::default();
    let now = Utc::now();
    let (cluster, objects) = many_backups();
    let changed = objects[1].as_ref().clone();
    let view = ManifestView::new(objects, true);
    assert_eq!(view.scheduled_backups_for("shop", "shop-pg").items.len(), 1_000);
    c.bench_function("validate/cluster with 1,000 ScheduledBackups (coverage)", |b| {
        b.iter(|| {
            engine::review(
                &Change::state(black_box(&cluster), Operation::Update),
                &view,
                &policy,
                now,
            )
        })
    });
    let admission = view.answering_as_admission();
    c.bench_function("validate/scheduled-backup change among 1,000 (coverage)", |b| {
        b.iter(|| {
            engine::review(
                &Change::state(black_box(&changed), Operation::Update),
                &admission,
                &policy,
                now,
            )
        })
    });
}

fn benches(c: &mut Criterion) {
    let docs = shop();
    let policy = Policy::default();
    let now = Utc::now();
    let rollout = by_kind(&docs, "Rollout");
    let rollout_obj = Object::from_value(&rollout).expect("decodes");

    c.bench_function("review/seed-rollout (engine only)", |b| {
        b.iter(|| engine::review(&Change::create(black_box(&rollout_obj)), &EmptyView, &policy, now))
    });
    // The lockstep comparison itself: the Rollout against the example's PreSync Job.
    let shop_view = ManifestView::new(
        docs.iter()
            .map(|d| Arc::new(Object::from_value(d).expect("example decodes")))
            .collect(),
        true,
    );
    c.bench_function(
        "review/seed-rollout with its migration Job (engine, offline view)",
        |b| b.iter(|| engine::review(&Change::create(black_box(&rollout_obj)), &shop_view, &policy, now)),
    );
    // UPDATE: the old object is judged only by the rules that deny the new one, so an UPDATE of
    // a compliant object costs a CREATE, and one with a pre-existing violation one rule more.
    let rollout_v5 = Object::from_value(&touched(&rollout)).expect("decodes");
    c.bench_function("review/seed-rollout UPDATE (engine only)", |b| {
        b.iter(|| {
            engine::review(
                &Change::update(black_box(&rollout_v5), &rollout_obj),
                &EmptyView,
                &policy,
                now,
            )
        })
    });
    let violating = with_plaintext(&rollout);
    let violating_obj = Object::from_value(&violating).expect("decodes");
    let violating_v5 = Object::from_value(&touched(&violating)).expect("decodes");
    c.bench_function("review/violating-rollout CREATE (engine only)", |b| {
        b.iter(|| engine::review(&Change::create(black_box(&violating_v5)), &EmptyView, &policy, now))
    });
    c.bench_function("review/violating-rollout UPDATE (engine only)", |b| {
        b.iter(|| {
            engine::review(
                &Change::update(black_box(&violating_v5), &violating_obj),
                &EmptyView,
                &policy,
                now,
            )
        })
    });
    for (name, object, old) in [
        ("validate/seed-rollout", &rollout, None),
        ("validate/seed-rollout UPDATE", &touched(&rollout), Some(&rollout)),
        ("validate/violating-rollout", &violating, None),
        (
            "validate/violating-rollout UPDATE",
            &touched(&violating),
            Some(&violating),
        ),
    ] {
        let body = match old {
            None => review_body(object, "CREATE"),
            Some(old) => update_body(object, old),
        };
        c.bench_function(&format!("{name} (decode+review+encode)"), |b| {
            b.iter(|| admission::handle(black_box(&body), Scope::Validate, &EmptyView, &policy, now).expect("answers"))
        });
    }
    for (name, kind, scope) in [
        ("mutate/seed-rollout", "Rollout", Scope::Mutate),
        ("mutate/migration-job", "Job", Scope::Mutate),
        ("validate/cnpg-cluster", "Cluster", Scope::Validate),
        ("validate/scheduled-backup", "ScheduledBackup", Scope::Validate),
    ] {
        let body = review_body(&by_kind(&docs, kind), "CREATE");
        c.bench_function(&format!("{name} (decode+review+encode)"), |b| {
            b.iter(|| admission::handle(black_box(&body), scope, &EmptyView, &policy, now).expect("answers"))
        });
    }
    // The AdmissionReviews kube-apiserver sent (managed fields, userInfo.extra, an UPDATE's old
    // object), decoded the short way and, for comparison, with kube's types in full.
    for (name, file, scope) in [
        ("mutate/review-rollout.json", "review-rollout.json", Scope::Mutate),
        (
            "validate/review-job-update.json",
            "review-job-update.json",
            Scope::Validate,
        ),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(file);
        let body = std::fs::read(path).expect("example review");
        c.bench_function(&format!("{name} (decode+review+encode)"), |b| {
            b.iter(|| admission::handle(black_box(&body), scope, &EmptyView, &policy, now).expect("answers"))
        });
        c.bench_function(&format!("{name} (full kube decoding+review+encode)"), |b| {
            b.iter(|| {
                admission::handle_decoding_fully(black_box(&body), scope, &EmptyView, &policy, now).expect("answers")
            })
        });
    }
    let wide = review_body(&wide_pod(100), "CREATE");
    c.bench_function("mutate/100-containers (decode+review+encode)", |b| {
        b.iter(|| admission::handle(black_box(&wide), Scope::Mutate, &EmptyView, &policy, now).expect("answers"))
    });
    let view = big_view();
    let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns7", "labels": {"dbhook.io/cluster": "pg-7"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/app7:sha-7"}]}}}});
    let app_body = review_body(&app, "UPDATE");
    c.bench_function("validate/rollout with 10k Jobs + 1k Clusters offline view", |b| {
        b.iter(|| admission::handle(black_box(&app_body), Scope::Validate, &view, &policy, now).expect("answers"))
    });
}

criterion_group!(engine_benches, benches, coverage_benches);
criterion_main!(engine_benches);
