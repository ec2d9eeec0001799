//! What a lockstep finding rests on: the images compared, the objects read, and where a finding
//! that mixes a warning and a violation points.

use crate::rules::Violation;
use crate::rules::fixture::{OFFLINE, SHOP, check, edit};

use super::{D1, JOB, ROLLOUT, ROLLOUT_CONTAINERS, app_image, check_fn, job_image};

fn read(v: &Violation) -> Vec<String> {
    v.consulted.iter().map(|c| c.describe()).collect()
}

#[test]
fn the_evidence_names_both_images_and_the_other_side_once() {
    let yaml = job_image(
        &app_image(SHOP, "ghcr.io/acme/shop-web:sha-2222222"),
        "ghcr.io/acme/shop-web:sha-1111111",
    );
    let on_app = check(check_fn, &yaml, ROLLOUT, OFFLINE);
    assert_eq!(on_app[0].observed.as_deref(), Some("ghcr.io/acme/shop-web:sha-2222222"));
    assert_eq!(on_app[0].expected.as_deref(), Some("ghcr.io/acme/shop-web:sha-1111111"));
    assert_eq!(read(&on_app[0]), ["Job shop/web-migrate"]);
    let on_job = check(check_fn, &yaml, JOB, OFFLINE);
    assert_eq!(on_job[0].observed.as_deref(), Some("ghcr.io/acme/shop-web:sha-1111111"));
    assert_eq!(on_job[0].expected.as_deref(), Some("ghcr.io/acme/shop-web:sha-2222222"));
    assert_eq!(read(&on_job[0]), ["Rollout shop/web"]);
}

#[test]
fn a_warning_beside_a_violation_still_denies_and_points_at_the_violation() {
    // The first container can only be warned about (one digest, equal tags); the second differs.
    let containers = format!(
        "    spec:\n      containers:\n        - {{name: first, image: 'ghcr.io/acme/shop-web:sha-1a2b3c4@{D1}'}}\n        - name: web\n"
    );
    let yaml = app_image(
        &edit(SHOP, ROLLOUT_CONTAINERS, &containers),
        "ghcr.io/acme/shop-web:sha-2222222",
    );
    let got = check(check_fn, &yaml, ROLLOUT, OFFLINE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].warn_only);
    assert!(
        got[0].message.starts_with("cannot prove the same image"),
        "{}",
        got[0].message
    );
    assert!(
        got[0]
            .message
            .contains("; image ghcr.io/acme/shop-web:sha-2222222 differs"),
        "{}",
        got[0].message
    );
    assert_eq!(got[0].path.as_deref(), Some("spec.template.spec.containers[1].image"));
}
