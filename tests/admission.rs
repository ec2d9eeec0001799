//! AdmissionReview in the shape kube-apiserver sends, through `admission::handle`, checked on
//! the raw JSON that goes back on the wire.

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use dbhook::admission::{self, BadRequest};
use dbhook::engine::Scope;
use dbhook::policy::Policy;
use dbhook::view::EmptyView;
use serde_json::{Value, json};

/// The fixed "now" of these reviews: the answers do not depend on the day the tests run.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

fn review(operation: &str, object: Value, old: Value) -> Value {
    let typed = if object.is_null() { &old } else { &object };
    let api_version = typed["apiVersion"].as_str().unwrap_or("v1").to_string();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let kind = typed["kind"].as_str().unwrap_or("").to_string();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": typed["metadata"]["name"],
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller", "uid": "1", "groups": ["system:serviceaccounts"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "argocd-controller"}
        }
    })
}

fn rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"dbhook.io/cluster": "shop-pg"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:sha-1a2b3c4"}]}}}
    })
}

fn call(body: &Value, scope: Scope, policy: &Policy) -> Result<Value, BadRequest> {
    let bytes = serde_json::to_vec(body).unwrap();
    let answer = admission::handle(&bytes, scope, &EmptyView, policy, now())?;
    Ok(serde_json::from_slice(&answer.body).unwrap())
}

#[test]
fn patch_goes_on_the_wire_as_base64_json_patch_and_echoes_the_envelope() {
    let out = call(
        &review("CREATE", rollout(), Value::Null),
        Scope::Mutate,
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    let resp = &out["response"];
    assert_eq!(resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    let encoded = resp["patch"]
        .as_str()
        .expect("patch is a base64 string, not a number array");
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let patch: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/spec/template/spec/containers/0/env",
                 "value": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}]}])
    );
    // Applying it and admitting again yields no patch.
    let mut obj = rollout();
    let ops: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut obj, &ops).unwrap();
    let again = call(&review("UPDATE", obj, rollout()), Scope::Mutate, &Policy::default()).unwrap();
    assert!(again["response"].get("patch").is_none(), "{again}");
}

#[test]
fn a_denial_carries_code_403_and_the_spec_message() {
    let mut obj = rollout();
    obj["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "DB_URL", "value": "postgres://app:pw@db/app"}]);
    let out = call(&review("CREATE", obj, Value::Null), Scope::Validate, &Policy::default()).unwrap();
    let resp = &out["response"];
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    let msg = resp["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("dbhook denied Rollout shop/web: [db-url-plaintext] "),
        "{msg}"
    );
    assert!(!msg.contains("pw@"), "{msg}");
}

#[test]
fn malformed_requests_are_bad_requests_with_a_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not JSON"),
        (b"\x00\xff garbage".to_vec(), "not JSON"),
        (b"[1,2]".to_vec(), "not a JSON object"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#.to_vec(),
            "v1 only",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#.to_vec(),
            "AdmissionReview",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "no request",
        ),
    ];
    for (body, needle) in cases {
        match admission::handle(&body, Scope::Validate, &EmptyView, &Policy::default(), now()) {
            Err(BadRequest(reason)) => assert!(reason.contains(needle), "{reason:?} should contain {needle:?}"),
            Ok(_) => panic!("{:?} should be rejected", String::from_utf8_lossy(&body)),
        }
    }
}

#[test]
fn an_undecodable_object_of_a_handled_kind_is_denied_in_enforce_and_warned_in_audit() {
    let mut obj = rollout();
    obj["spec"]["template"]["spec"]["containers"] = json!("web");
    let body = review("CREATE", obj.clone(), Value::Null);
    let out = call(&body, Scope::Validate, &Policy::default()).unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert!(
        out["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot decode Rollout shop/web")
    );
    let audit = Policy::from_yaml("mode: audit").unwrap();
    let out = call(&body, Scope::Validate, &audit).unwrap();
    assert_eq!(out["response"]["allowed"], true);
    assert!(
        out["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("dbhook: audit: dbhook cannot decode")
    );

    // Labels that are numbers break the metadata itself: still an answer, not a 400.
    let mut bad_meta = rollout();
    bad_meta["metadata"]["labels"] = json!({"dbhook.io/cluster": 5});
    let out = call(
        &review("CREATE", bad_meta, Value::Null),
        Scope::Validate,
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(out["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(out["response"]["allowed"], false);
}

#[test]
fn deletes_and_unhandled_kinds_are_allowed_untouched() {
    let del = call(
        &review("DELETE", Value::Null, rollout()),
        Scope::Validate,
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(del["response"]["allowed"], true);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"dbhook.io/cluster": "shop-pg"}}, "data": {"a": "b"}});
    let out = call(&review("CREATE", cm, Value::Null), Scope::Mutate, &Policy::default()).unwrap();
    assert_eq!(out["response"]["allowed"], true);
    assert!(out["response"].get("patch").is_none());
}
