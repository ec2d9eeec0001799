//! `migration-image-lockstep`: a migration Job and its app workloads run the same release.
//!
//! For every container image of the Job whose repository (reference without tag and digest,
//! Docker Hub names canonicalised) equals that of an app-workload image, tag and digest must be
//! equal. With an explicit `dbhook.io/rollout`, sharing no repository is itself a violation.
//!
//! Offline every Job/app-workload pair in the input is checked both ways (a finding on each
//! side). At admission only the app workload is checked, against the newest paired migration
//! Job: Argo CD creates the PreSync Job before it updates the Rollout, so judging a new Job
//! against the live Rollout would deny every release.

use std::sync::Arc;

use super::catalog::MIGRATION_IMAGE_LOCKSTEP;
use super::ns_label;
use super::{Ctx, Violation};
use crate::model::workload::dotted;
use crate::model::{ImageRef, Object, keys};
use crate::view::Origin;

pub fn check(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    if obj.is_migration_job() {
        // At admission a Job is never judged against the live app workload (see above).
        if ctx.origin() == Origin::Offline {
            check_job(obj, ctx, out);
        }
    } else if obj.is_app_workload() {
        check_app(obj, ctx, out);
    }
}

/// The names a Job's `dbhook.io/rollout` annotation lists, if it has one.
fn named_apps(job: &Object) -> Option<Vec<&str>> {
    let names: Vec<&str> = job
        .annotation(keys::ROLLOUT)?
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then_some(names)
}

fn check_job(job: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let apps = ctx.view.app_workloads_for(job);
    for app in &apps.items {
        compare(job, app, out);
    }
    // A named app workload that the (complete) input does not contain.
    if let Some(names) = named_apps(job)
        && apps.complete
    {
        for name in names.into_iter().filter(|n| !apps.items.iter().any(|a| a.name() == *n)) {
            out.push(
                Violation::new(
                    MIGRATION_IMAGE_LOCKSTEP,
                    format!(
                        "annotation {}={name}: no Rollout, Deployment or StatefulSet {name} labelled {} exists in namespace {}, so the migration is paired with nothing: fix the name",
                        keys::ROLLOUT,
                        keys::CLUSTER,
                        ns_label(job)
                    ),
                )
                .at(format!("metadata.annotations[{}]", keys::ROLLOUT)),
            );
        }
    }
}

fn check_app(app: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let jobs = ctx.view.migration_jobs_for(app);
    match ctx.origin() {
        Origin::Offline => {
            for job in &jobs.items {
                compare(app, job, out);
            }
        }
        Origin::Admission => {
            // The newest Job that concerns this app: one that names it, or that runs one of its
            // repositories. Several apps can share a cluster label, each with its own Job.
            let app_repos = repositories(app);
            let newest = jobs
                .items
                .iter()
                .filter(|j| names_app(j, app) || repositories(j).iter().any(|r| app_repos.contains(r)))
                .max_by_key(|j| j.created_at());
            if let Some(job) = newest {
                compare(app, job, out);
            }
        }
    }
}

fn names_app(job: &Object, app: &Object) -> bool {
    named_apps(job).is_some_and(|names| names.contains(&app.name()))
}

/// Canonical repositories of every container (init containers included).
fn repositories(obj: &Object) -> Vec<String> {
    images(obj).map(|i| i.repo).collect()
}

struct Image<'a> {
    image: ImageRef<'a>,
    repo: String,
    path: String,
}

fn images(obj: &Object) -> impl Iterator<Item = Image<'_>> {
    obj.workload().into_iter().flat_map(|w| {
        let base = dotted(w.kind.pod_spec_pointer());
        w.containers().map(move |c| {
            let image = ImageRef::parse(c.image());
            Image {
                repo: image.canonical_repository(),
                image,
                path: format!("{base}.{}[{}].image", c.list.field(), c.index),
            }
        })
    })
}

/// Findings on `subject` for the pair (`subject`, `other`), one of them the Job.
fn compare(subject: &Object, other: &Arc<Object>, out: &mut Vec<Violation>) {
    let mine: Vec<Image<'_>> = images(subject).filter(|i| !i.image.repository.is_empty()).collect();
    let theirs: Vec<Image<'_>> = images(other).filter(|i| !i.image.repository.is_empty()).collect();
    // A Rollout with workloadRef (or any object without a template) has no images to compare.
    if mine.is_empty() || theirs.is_empty() {
        return;
    }
    let other_label = format!("{} {}", describe(other), other.qualified_name());
    let mut common = false;
    let mut reported: Vec<(&str, String)> = Vec::new();
    for m in &mine {
        for t in theirs.iter().filter(|t| t.repo == m.repo) {
            common = true;
            if m.image.same_version(&t.image) {
                continue;
            }
            let theirs_version = t.image.version();
            if reported.contains(&(m.path.as_str(), theirs_version.clone())) {
                continue;
            }
            reported.push((m.path.as_str(), theirs_version.clone()));
            let what = if m.image.digest == t.image.digest && m.image.tag.is_some() && t.image.tag.is_some() {
                "tag"
            } else if m.image.tag == t.image.tag && m.image.digest.is_some() && t.image.digest.is_some() {
                "digest"
            } else {
                "version"
            };
            let (mine_v, theirs_v) = match what {
                "tag" => (
                    m.image.tag.unwrap_or_default().to_string(),
                    t.image.tag.unwrap_or_default().to_string(),
                ),
                "digest" => (
                    m.image.digest.unwrap_or_default().to_string(),
                    t.image.digest.unwrap_or_default().to_string(),
                ),
                _ => (m.image.version(), theirs_version),
            };
            // `(no tag)` is already parenthesised.
            let theirs_v = if theirs_v.starts_with('(') {
                theirs_v
            } else {
                format!("({theirs_v})")
            };
            out.push(
                Violation::new(
                    MIGRATION_IMAGE_LOCKSTEP,
                    format!(
                        "image {} {what} {mine_v} differs from {other_label} {theirs_v}: update both to the same {what}",
                        m.image.repository
                    ),
                )
                .at(m.path.clone())
                .evidence(m.image.to_string(), t.image.to_string())
                .consulted(other),
            );
        }
    }
    if common {
        return;
    }
    // No shared repository: only a violation when the Job names the app explicitly.
    let (job, app) = if subject.is_migration_job() {
        (subject, other.as_ref())
    } else {
        (other.as_ref(), subject)
    };
    if names_app(job, app) {
        let list = |v: &[Image<'_>]| v.iter().map(|i| i.image.to_string()).collect::<Vec<_>>().join(", ");
        out.push(
            Violation::new(
                MIGRATION_IMAGE_LOCKSTEP,
                format!(
                    "migration Job {} names {} {} in {} but shares no image repository with it (Job: {}; {}: {}): run the migration from the app's image",
                    job.qualified_name(),
                    describe(app),
                    app.qualified_name(),
                    keys::ROLLOUT,
                    list(if subject.is_migration_job() { &mine } else { &theirs }),
                    app.name(),
                    list(if subject.is_migration_job() { &theirs } else { &mine }),
                ),
            )
            .at(if subject.is_migration_job() {
                format!("metadata.annotations[{}]", keys::ROLLOUT)
            } else {
                mine[0].path.clone()
            })
            .consulted(other),
        );
    }
}

/// `migration Job` for Jobs, the kind otherwise.
fn describe(obj: &Object) -> &str {
    if obj.is_migration_job() {
        "migration Job"
    } else {
        &obj.kind
    }
}

#[cfg(test)]
mod tests;
