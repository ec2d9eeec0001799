//! `image-tag-pinned` on labelled workloads: no tag, floating tags, digests and `tagPattern`.

use super::tag_pinned;
use crate::policy::Policy;
use crate::rules::Violation;
use crate::rules::fixture::{OFFLINE, Run, check};
use crate::testing::rollout;

const LABELLED: &str = "{dbhook.io/cluster: shop-pg}";
const SHA_PATTERN: &str = "rules: {image-tag-pinned: {tagPattern: '^sha-[0-9a-f]{7,40}$'}}";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The findings for a Rollout whose containers run `images` (named c0, c1, …).
fn pinned_with(labels: &str, images: &[&str], policy: &str) -> Vec<Violation> {
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(i, image)| format!("        - name: c{i}\n          image: '{image}'\n"))
        .collect();
    let policy = Policy::from_yaml(policy).expect("test policy parses");
    let run = Run {
        policy: Some(&policy),
        ..OFFLINE
    };
    check(tag_pinned, &rollout(labels, "{}", &containers), "Rollout/web", run)
}

fn pinned(images: &[&str], policy: &str) -> Vec<Violation> {
    pinned_with(LABELLED, images, policy)
}

#[test]
fn release_tags_and_digests_pass() {
    for image in [
        "ghcr.io/acme/web:sha-1a2b3c4",
        "ghcr.io/acme/web:1.4.2",
        &format!("ghcr.io/acme/web@{DIGEST}"),
        // A digest pins the image whatever the tag says.
        &format!("ghcr.io/acme/web:latest@{DIGEST}"),
    ] {
        assert!(pinned(&[image], "{}").is_empty(), "{image}");
    }
}

#[test]
fn an_image_without_a_tag_floats_with_latest() {
    let got = pinned(&["ghcr.io/acme/web:1.0", "ghcr.io/acme/web"], "{}");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].message,
        "container c1 image ghcr.io/acme/web has no tag (it floats with latest): pin a release tag or a digest"
    );
    assert_eq!(got[0].path.as_deref(), Some("spec.template.spec.containers[1].image"));
    assert_eq!(got[0].observed.as_deref(), Some("container c1 image ghcr.io/acme/web"));
    assert_eq!(got[0].expected.as_deref(), Some("a tag other than latest, or a digest"));
}

#[test]
fn forbidden_tags_are_floating_and_can_be_changed() {
    let got = pinned(&["ghcr.io/acme/web:latest"], "{}");
    assert_eq!(
        got.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
        ["container c0 image ghcr.io/acme/web:latest uses the floating tag latest: pin a release tag or a digest"]
    );
    let stable = "rules: {image-tag-pinned: {forbiddenTags: [latest, stable]}}";
    assert_eq!(pinned(&["ghcr.io/acme/web:stable"], stable).len(), 1);
    assert!(pinned(&["ghcr.io/acme/web:1.0"], stable).is_empty());
    // With no forbidden tags any tag pins; a missing tag still does not.
    let none = "rules: {image-tag-pinned: {forbiddenTags: []}}";
    assert!(pinned(&["ghcr.io/acme/web:latest"], none).is_empty());
    let got = pinned(&["ghcr.io/acme/web"], none);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].expected.as_deref(), Some("a tag or a digest"));
}

#[test]
fn a_tag_pattern_must_match_every_tag() {
    assert!(pinned(&["ghcr.io/acme/web:sha-1a2b3c4"], SHA_PATTERN).is_empty());
    assert!(pinned(&[&format!("ghcr.io/acme/web:v1@{DIGEST}")], SHA_PATTERN).is_empty());
    let got = pinned(&["ghcr.io/acme/web:v1.2"], SHA_PATTERN);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].message,
        "container c0 image ghcr.io/acme/web:v1.2 tag v1.2 does not match the required pattern \
         ^sha-[0-9a-f]{7,40}$: pin a release tag or a digest"
    );
    assert_eq!(
        got[0].expected.as_deref(),
        Some("a digest, or a tag matching ^sha-[0-9a-f]{7,40}$ other than latest")
    );
    // A forbidden tag is named as floating, even where the pattern would fail too.
    let got = pinned(&["ghcr.io/acme/web:latest"], SHA_PATTERN);
    assert!(got[0].message.contains("uses the floating tag latest"), "{got:?}");
}

#[test]
fn only_labelled_workloads_are_judged() {
    assert!(pinned_with("{app: web}", &["ghcr.io/acme/web"], "{}").is_empty());
}
