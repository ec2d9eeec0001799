//! `migration-job-replaceable`: a migration Job that Argo CD can apply again next release.
//!
//! A Job's pod template is immutable. A migration Job that is not a hook (Argo CD deletes and
//! recreates hooks on every sync) and keeps one `metadata.name` across releases gets a new image
//! next release, and Argo CD's sync fails with "field is immutable". Fine: a hook, a Job with
//! only `generateName`, a name that carries its image tag (a name per release), or
//! `argocd.argoproj.io/sync-options` with `Replace=true` or `Force=true`.

use std::sync::Arc;

use super::super::catalog::MIGRATION_JOB_REPLACEABLE;
use super::super::{Ctx, Violation};
use crate::model::{ImageRef, Object, keys};

pub fn check(job: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    if !job.is_labelled_job() || job.is_hook() || job.name().is_empty() {
        return;
    }
    if !(job.is_migration_job() || migrates_before_an_app(job, ctx)) {
        return;
    }
    if replaced_by_sync_options(job) || name_carries_a_tag(job) {
        return;
    }
    out.push(
        Violation::new(
            MIGRATION_JOB_REPLACEABLE,
            format!(
                "migration Job {} keeps the name {} across releases and is not a hook: the next release changes its image, a Job's pod template is immutable, and the sync fails with \"field is immutable\"; make it an Argo CD PreSync hook, use generateName, put the image tag in the name, or add {}: Replace=true",
                job.qualified_name(),
                job.name(),
                keys::ARGOCD_SYNC_OPTIONS
            ),
        )
        .at("metadata.name"),
    );
}

/// A Job in an earlier sync wave than an app workload it pairs with.
fn migrates_before_an_app(job: &Object, ctx: &Ctx<'_>) -> bool {
    ctx.view
        .app_workloads_for(job)
        .items
        .iter()
        .any(|a: &Arc<Object>| job.is_migration_job_for(a))
}

/// `Replace=true` or `Force=true` in Argo CD's comma list of sync options.
fn replaced_by_sync_options(job: &Object) -> bool {
    job.annotation(keys::ARGOCD_SYNC_OPTIONS).is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|o| o == "Replace=true" || o == "Force=true")
    })
}

/// The name holds one of the Job's image tags (`shop-migrate-sha-1a2b3c4`), so each release
/// creates a new Job. Tags are matched as written and in the form a name can hold them
/// (lower-case, `.` and `_` as `-`), since a tag like `v1.2.3` often becomes `v1-2-3`.
fn name_carries_a_tag(job: &Object) -> bool {
    let name = job.name();
    let Some(w) = job.workload() else { return false };
    w.containers().any(|c| {
        let Some(tag) = ImageRef::parse(c.image()).tag.filter(|t| *t != "latest") else {
            return false;
        };
        let slug: String = tag
            .chars()
            .map(|ch| match ch {
                '.' | '_' => '-',
                ch => ch.to_ascii_lowercase(),
            })
            .collect();
        name.contains(tag) || name.contains(&slug)
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::fixture::{ADMIT_CREATE, COMPLETE, OFFLINE, SHOP, check, edit, messages};

    use super::check as check_fn;

    const JOB: &str = "Job/web-migrate";

    /// The shop Job without its hook annotations, so only `extra` decides.
    fn plain_job(extra: &str) -> String {
        edit(
            SHOP,
            "  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded\n",
            &format!("  annotations:\n    example.com/owner: shop\n{extra}"),
        )
    }

    fn role(yaml: &str) -> String {
        edit(
            yaml,
            "    dbhook.io/cluster: shop-pg\n  annotations:\n    example.com",
            "    dbhook.io/cluster: shop-pg\n    dbhook.io/role: migration\n  annotations:\n    example.com",
        )
    }

    #[test]
    fn a_fixed_name_non_hook_migration_job_is_warned_about() {
        let cases = [
            ("role label", role(&plain_job(""))),
            (
                "sync wave before the app",
                plain_job("    argocd.argoproj.io/sync-wave: \"-1\"\n"),
            ),
            (
                "sync option without Replace",
                role(&plain_job("    argocd.argoproj.io/sync-options: Validate=false\n")),
            ),
            (
                "Replace=false",
                role(&plain_job("    argocd.argoproj.io/sync-options: Replace=false\n")),
            ),
        ];
        for (what, yaml) in cases {
            let got = check(check_fn, &yaml, JOB, OFFLINE);
            assert_eq!(
                messages(&got),
                vec![
                    "migration Job shop/web-migrate keeps the name web-migrate across releases and is not a hook: the next release changes its image, a Job's pod template is immutable, and the sync fails with \"field is immutable\"; make it an Argo CD PreSync hook, use generateName, put the image tag in the name, or add argocd.argoproj.io/sync-options: Replace=true"
                ],
                "{what}"
            );
            assert_eq!(got[0].path.as_deref(), Some("metadata.name"), "{what}");
            assert_eq!(
                check(check_fn, &yaml, JOB, ADMIT_CREATE).len(),
                1,
                "{what} at admission"
            );
        }
    }

    #[test]
    fn hooks_generated_names_tagged_names_and_replace_pass() {
        let tagged_image = |yaml: &str, image: &str| {
            edit(
                yaml,
                "          image: ghcr.io/acme/shop-web:sha-1a2b3c4\n          command:",
                &format!("          image: {image}\n          command:"),
            )
        };
        let cases = [
            ("PreSync hook (the example)", SHOP.to_string()),
            (
                "Helm pre-upgrade hook",
                role(&plain_job("    helm.sh/hook: pre-upgrade\n")),
            ),
            (
                "PostSync hook is no migration and a hook",
                plain_job("    argocd.argoproj.io/hook: PostSync\n"),
            ),
            (
                "generateName",
                edit(
                    &role(&plain_job("")),
                    "  name: web-migrate\n",
                    "  generateName: web-migrate-\n",
                ),
            ),
            (
                "tag in the name",
                edit(
                    &role(&plain_job("")),
                    "  name: web-migrate\n",
                    "  name: web-migrate-sha-1a2b3c4\n",
                ),
            ),
            (
                "dotted tag in the name as dashes",
                tagged_image(
                    &edit(
                        &role(&plain_job("")),
                        "  name: web-migrate\n",
                        "  name: web-migrate-v1-2-3\n",
                    ),
                    "ghcr.io/acme/shop-web:v1.2.3",
                ),
            ),
            (
                "Replace=true",
                role(&plain_job(
                    "    argocd.argoproj.io/sync-options: Validate=false, Replace=true\n",
                )),
            ),
            (
                "Force=true",
                role(&plain_job(
                    "    argocd.argoproj.io/sync-options: Force=true,Replace=true\n",
                )),
            ),
            ("no migration: wave 0 like the app", plain_job("")),
            (
                "no migration: a later wave than the app",
                plain_job("    argocd.argoproj.io/sync-wave: \"5\"\n"),
            ),
        ];
        for (what, yaml) in cases {
            let got = check(
                check_fn,
                &yaml,
                JOB.replace("web-migrate", name_of(&yaml)).as_str(),
                COMPLETE,
            );
            assert!(got.is_empty(), "{what}: {got:?}");
        }
        // `latest` is no release tag: a name holding "latest" is still fixed.
        let latest = tagged_image(
            &edit(
                &role(&plain_job("")),
                "  name: web-migrate\n",
                "  name: web-migrate-latest\n",
            ),
            "ghcr.io/acme/shop-web:latest",
        );
        assert_eq!(check(check_fn, &latest, "Job/web-migrate-latest", OFFLINE).len(), 1);
    }

    /// The Job's name in the fixture (or the generateName prefix's object, named `""`).
    fn name_of(yaml: &str) -> &'static str {
        for n in ["web-migrate-sha-1a2b3c4", "web-migrate-v1-2-3"] {
            if yaml.contains(&format!("name: {n}\n")) {
                return n;
            }
        }
        if yaml.contains("generateName: web-migrate-") {
            return "";
        }
        "web-migrate"
    }
}
