//! `migration-image-lockstep`: a migration Job and its app workloads run the same release.
//!
//! Images are compared as registries resolve them ([`ImageRef::same_version`]): canonical
//! repositories, digests before tags, a missing tag meaning `latest`. The compared images are a
//! workload's containers and init containers except native sidecars and repositories the policy
//! ignores; a Job's `dbhook.io/lockstep-containers` narrows its side. In the default repository
//! mode every app image of a repository the Job also runs must be the same version as the Job's;
//! in tag mode (`dbhook.io/lockstep: tag`) every compared Job image must carry the app's tag,
//! whatever its repository. Everything the rule finds on one object is folded into one finding.
//!
//! Offline every Job/app-workload pair in the input is checked both ways (a finding on each
//! side). At admission only the app workload is checked, against the newest paired migration
//! Job that has not failed: Argo CD creates the PreSync Job before it updates the Rollout, so
//! judging a new Job against the live Rollout would deny every release.

pub mod replaceable;

use std::borrow::Cow;
use std::sync::Arc;

use super::catalog::MIGRATION_IMAGE_LOCKSTEP;
use super::ns_label;
use super::{Consulted, Ctx, Violation};
use crate::model::image::Sameness;
use crate::model::workload::dotted;
use crate::model::{ImageRef, LockstepMode, Object, WorkloadKind, keys};
use crate::policy::image_glob::Glob;
use crate::view::{Lookup, Origin};

pub fn check(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let mut found = Found::default();
    if obj.is_labelled_job() {
        job_config(obj, &mut found);
        // At admission a Job is never judged against the live app workload (see above).
        if ctx.origin() == Origin::Offline {
            check_job(obj, ctx, &mut found);
        }
    } else if obj.is_app_workload() {
        check_app(obj, ctx, &mut found);
    }
    found.fold(out);
}

/// What the rule found on one object, folded into one finding at the end.
#[derive(Default)]
struct Found {
    parts: Vec<Part>,
    /// The images of the first image comparison that failed: (observed, expected).
    evidence: Option<(String, String)>,
    /// The other side of every comparison that produced a part.
    consulted: Vec<Consulted>,
}

struct Part {
    message: String,
    path: String,
    /// Cannot prove a violation (only one side pinned by digest): a warning at most.
    warn: bool,
}

impl Found {
    fn add(&mut self, message: String, path: String, warn: bool) {
        if !self.parts.iter().any(|p| p.message == message) {
            self.parts.push(Part { message, path, warn });
        }
    }

    /// Evidence for the finding: `observed` on the subject, `expected` from `other`.
    fn saw(&mut self, observed: String, expected: String, other: &Side<'_>) {
        self.evidence.get_or_insert((observed, expected));
        for obj in [other.obj, other.source] {
            let c = Consulted::of(obj);
            if !self.consulted.contains(&c) {
                self.consulted.push(c);
            }
        }
    }

    fn fold(self, out: &mut Vec<Violation>) {
        let Some(first) = self.parts.iter().find(|p| !p.warn).or(self.parts.first()) else {
            return;
        };
        let warn = self.parts.iter().all(|p| p.warn);
        let path = first.path.clone();
        let message = self
            .parts
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let mut v = Violation::new(MIGRATION_IMAGE_LOCKSTEP, message).at(path);
        if let Some((observed, expected)) = self.evidence {
            v = v.evidence(observed, expected);
        }
        v.consulted = self.consulted;
        out.push(if warn { v.warn_only() } else { v });
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

fn names_app(job: &Object, app: &Object) -> bool {
    named_apps(job).is_some_and(|names| names.contains(&app.name()))
}

/// `dbhook.io/lockstep-containers` as a list of names, if set.
fn lockstep_containers(job: &Object) -> Option<Vec<&str>> {
    let list = job.annotation(keys::LOCKSTEP_CONTAINERS)?;
    Some(list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect())
}

/// The Job's lockstep annotations are usable.
fn job_config(job: &Object, found: &mut Found) {
    if let Err(value) = job.lockstep_mode() {
        found.add(
            format!(
                "annotation {}: {value:?} is not a lockstep mode (allowed values: {}); lockstep is checked by repository until this is fixed",
                keys::LOCKSTEP,
                LockstepMode::ALLOWED
            ),
            format!("metadata.annotations[{}]", keys::LOCKSTEP),
            false,
        );
    }
    let (Some(names), Some(w)) = (lockstep_containers(job), job.workload()) else {
        return;
    };
    let at = format!("metadata.annotations[{}]", keys::LOCKSTEP_CONTAINERS);
    if names.is_empty() {
        found.add(
            format!("annotation {}: names no container", keys::LOCKSTEP_CONTAINERS),
            at,
            false,
        );
        return;
    }
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !w.containers().any(|c| c.name() == *n))
        .collect();
    if !missing.is_empty() && w.has_containers() {
        let existing: Vec<&str> = w.containers().map(|c| c.name()).collect();
        found.add(
            format!(
                "annotation {}: no container named {} (the pod has {})",
                keys::LOCKSTEP_CONTAINERS,
                missing.join(", "),
                existing.join(", ")
            ),
            at,
            false,
        );
    }
}

/// One side of a comparison: an object, the object its images come from (itself, or the
/// Deployment a `workloadRef` Rollout points at) and its compared images.
struct Side<'a> {
    obj: &'a Object,
    /// Where the images come from: `obj`, or the Deployment its workloadRef names.
    source: &'a Object,
    /// `migration Job shop/web-migrate`, `Rollout shop/web`, `Rollout shop/web (Deployment web)`.
    label: String,
    images: Vec<Image<'a>>,
    /// Compared containers whose image is not a valid reference.
    malformed: Vec<(String, &'a str, &'static str)>,
}

struct Image<'a> {
    image: ImageRef<'a>,
    repo: Cow<'a, str>,
    path: String,
}

/// Where an app workload's pod template is: its own, or (a `workloadRef` Rollout) the
/// referenced Deployment's; `None` when that Deployment cannot be seen.
fn template_of(app: &Object, ctx: &Ctx<'_>) -> Option<Option<Arc<Object>>> {
    let w = app.workload()?;
    if w.kind != WorkloadKind::Rollout || w.has_containers() {
        return Some(None);
    }
    let name = w.workload_ref.as_deref()?;
    match ctx.view.deployment(app.namespace(), name) {
        Lookup::Present(d) => Some(Some(d)),
        Lookup::Absent | Lookup::Unknown => None,
    }
}

fn ignored(globs: &[Glob], image: &ImageRef<'_>, canonical: &str) -> bool {
    globs
        .iter()
        .any(|g| g.matches(canonical) || g.matches(image.repository))
}

impl<'a> Side<'a> {
    /// `obj`'s compared images, read from `source` (`obj` itself or its workloadRef Deployment).
    fn new(obj: &'a Object, source: &'a Object, ctx: &Ctx<'_>) -> Side<'a> {
        let globs = &ctx.policy.params.migration_image_lockstep.ignore_repositories;
        let only = if obj.is_labelled_job() {
            lockstep_containers(obj)
        } else {
            None
        };
        let via_ref = !std::ptr::eq(obj, source);
        let mut images = Vec::new();
        let mut malformed = Vec::new();
        if let Some(w) = source.workload() {
            let base = dotted(w.kind.pod_spec_pointer());
            for c in w.containers() {
                if c.container.is_native_sidecar(c.list) || only.as_ref().is_some_and(|o| !o.contains(&c.name())) {
                    continue;
                }
                let path = if via_ref {
                    "spec.workloadRef".to_string()
                } else {
                    format!("{base}.{}[{}].image", c.list.field(), c.index)
                };
                let image = ImageRef::parse(c.image());
                if let Some(problem) = ImageRef::problem(c.image()) {
                    // A repository the policy ignores is not compared, well-formed or not.
                    if !ignored(globs, &image, image.repository) {
                        malformed.push((path, c.image(), problem));
                    }
                    continue;
                }
                let repo = image.canonical_repository();
                if !ignored(globs, &image, &repo) {
                    images.push(Image { image, repo, path });
                }
            }
        }
        let mut label = format!("{} {}", describe(obj), obj.qualified_name());
        if via_ref {
            label.push_str(&format!(" (through Deployment {})", source.name()));
        }
        Side {
            obj,
            source,
            label,
            images,
            malformed,
        }
    }

    fn shares_repository(&self, other: &Side<'_>) -> bool {
        self.images
            .iter()
            .any(|m| other.images.iter().any(|t| t.repo == m.repo))
    }

    fn list(&self) -> String {
        if self.images.is_empty() {
            return "no compared image".to_string();
        }
        self.images
            .iter()
            .map(|i| i.image.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `migration Job` for Jobs, the kind otherwise.
fn describe(obj: &Object) -> &str {
    if obj.is_labelled_job() {
        "migration Job"
    } else {
        &obj.kind
    }
}

/// Offline: the Job against every app workload it migrates before.
fn check_job(job: &Object, ctx: &Ctx<'_>, found: &mut Found) {
    let apps = ctx.view.app_workloads_for(job);
    let migrates_for: Vec<&Arc<Object>> = apps.items.iter().filter(|a| job.is_migration_job_for(a)).collect();
    // A failed Job is not the release (Argo CD keeps failed hooks around): never compared.
    if !job.is_failed_job() {
        for app in &migrates_for {
            let Some(template) = template_of(app, ctx) else {
                continue;
            };
            let source: &Object = template.as_deref().unwrap_or(app);
            let mine = Side::new(job, job, ctx);
            let theirs = Side::new(app, source, ctx);
            compare(&mine, &theirs, job, app, found);
        }
    }
    // A named app workload that the (complete) input does not contain.
    if let Some(names) = named_apps(job)
        && apps.complete
    {
        for name in names.into_iter().filter(|n| !apps.items.iter().any(|a| a.name() == *n)) {
            found.add(
                format!(
                    "annotation {}={name}: no Rollout, Deployment or StatefulSet {name} labelled {} exists in namespace {}, so the migration is paired with nothing: fix the name",
                    keys::ROLLOUT,
                    keys::CLUSTER,
                    ns_label(job)
                ),
                format!("metadata.annotations[{}]", keys::ROLLOUT),
                false,
            );
        }
    }
}

fn check_app(app: &Object, ctx: &Ctx<'_>, found: &mut Found) {
    let jobs = ctx.view.migration_jobs_for(app);
    if jobs.items.is_empty() {
        return;
    }
    let Some(template) = template_of(app, ctx) else {
        return;
    };
    let source: &Object = template.as_deref().unwrap_or(app);
    let mine = Side::new(app, source, ctx);
    let candidates = jobs.items.iter().filter(|j| !j.is_failed_job());
    match ctx.origin() {
        Origin::Offline => {
            for job in candidates {
                compare(&mine, &Side::new(job, job, ctx), job, app, found);
            }
        }
        Origin::Admission => {
            // The newest Job that concerns this app: one that names it, compares by tag, or
            // runs one of its compared repositories. Several apps can share a cluster label,
            // each with its own Job.
            let newest = candidates
                .map(|j| (j, Side::new(j, j, ctx)))
                // A malformed app image might be of any Job's repository: the newest Job is
                // taken so that the problem is reported rather than silently skipped.
                .filter(|(j, side)| paired(j, app, side, &mine) || !mine.malformed.is_empty())
                .max_by_key(|(j, _)| j.created_at());
            if let Some((job, theirs)) = newest {
                compare(&mine, &theirs, job, app, found);
            }
        }
    }
}

/// Whether `job` (side `job_side`) and `app` (side `app_side`) are compared at all.
fn paired(job: &Object, app: &Object, job_side: &Side<'_>, app_side: &Side<'_>) -> bool {
    names_app(job, app) || job.lockstep_mode() == Ok(LockstepMode::Tag) || job_side.shares_repository(app_side)
}

/// Findings on `mine` (the subject) for the pair (`job`, `app`), `theirs` the other side.
fn compare(mine: &Side<'_>, theirs: &Side<'_>, job: &Object, app: &Object, found: &mut Found) {
    let (job_side, app_side) = if std::ptr::eq(mine.obj, job) {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let paired = paired(job, app, job_side, app_side);
    // The subject's malformed images might be of the other side's repository: said, not skipped.
    if !paired && mine.malformed.is_empty() {
        return;
    }
    for (path, image, problem) in &mine.malformed {
        found.add(
            format!(
                "image {image:?} cannot be compared with {} ({problem}): fix the image reference",
                theirs.label
            ),
            path.clone(),
            false,
        );
    }
    // Nothing to compare on one side (e.g. only ignored repositories): nothing to prove.
    if !paired || mine.images.is_empty() || theirs.images.is_empty() {
        return;
    }
    match job.lockstep_mode().unwrap_or(LockstepMode::Repository) {
        LockstepMode::Tag => compare_tags(mine, theirs, found),
        LockstepMode::Repository => {
            if mine.shares_repository(theirs) {
                compare_versions(mine, theirs, found);
            } else if names_app(job, app) {
                no_common_repository(mine, job_side, app_side, job, app, found);
            }
        }
    }
}

fn compare_versions(mine: &Side<'_>, theirs: &Side<'_>, found: &mut Found) {
    for m in &mine.images {
        for t in theirs.images.iter().filter(|t| t.repo == m.repo) {
            let (mi, ti, of) = (&m.image, &t.image, &theirs.label);
            match mi.same_version(ti) {
                Sameness::Same => {}
                // The reason leads: API clients see 256 characters of a warning, and one
                // digest alone takes 71 of them.
                Sameness::Unproven => {
                    found.add(
                        format!(
                            "cannot prove the same image: {mi} and {ti} of {of} carry the same tag but only one is pinned by digest (compared by repository): pin both by digest, or neither"
                        ),
                        m.path.clone(),
                        true,
                    );
                    found.saw(mi.to_string(), ti.to_string(), theirs);
                }
                Sameness::Different => {
                    let what = if mi.digest.is_some() && ti.digest.is_some() {
                        "digest"
                    } else {
                        "tag"
                    };
                    found.add(
                        format!(
                            "image {mi} differs from {ti} of {of} (compared by repository): update both to the same {what}"
                        ),
                        m.path.clone(),
                        false,
                    );
                    found.saw(mi.to_string(), ti.to_string(), theirs);
                }
            }
        }
    }
}

/// Tag mode: tags compared across repositories; no tag or `latest` proves nothing.
fn compare_tags(mine: &Side<'_>, theirs: &Side<'_>, found: &mut Found) {
    let unprovable = |i: &ImageRef<'_>| match i.tag {
        None => Some("carries no tag"),
        Some("latest") => Some("carries tag latest"),
        Some(_) => None,
    };
    for m in &mine.images {
        for t in &theirs.images {
            let (mi, ti, of) = (&m.image, &t.image, &theirs.label);
            let message = if let Some(why) = unprovable(mi) {
                format!(
                    "image {mi} {why}, which cannot prove it was built with {ti} of {of} (compared by tag): tag both with the release"
                )
            } else if let Some(why) = unprovable(ti) {
                format!(
                    "image {ti} of {of} {why}, which cannot prove it was built with {mi} (compared by tag): tag both with the release"
                )
            } else if mi.tag != ti.tag {
                format!(
                    "image {mi} tag {} differs from {ti} of {of} (compared by tag): build both from the same commit and tag",
                    mi.tag.unwrap_or_default()
                )
            } else {
                continue;
            };
            found.add(message, m.path.clone(), false);
            found.saw(mi.to_string(), ti.to_string(), theirs);
        }
    }
}

fn no_common_repository(
    mine: &Side<'_>,
    job_side: &Side<'_>,
    app_side: &Side<'_>,
    job: &Object,
    app: &Object,
    found: &mut Found,
) {
    let subject_is_job = std::ptr::eq(mine.obj, job);
    found.add(
        format!(
            "migration Job {} names {} {} in {} but shares no image repository with it (Job: {}; {}: {}): run the migration from the app's image, or compare by tag with {}: tag",
            job.qualified_name(),
            describe(app),
            app.qualified_name(),
            keys::ROLLOUT,
            job_side.list(),
            app.name(),
            app_side.list(),
            keys::LOCKSTEP,
        ),
        if subject_is_job {
            format!("metadata.annotations[{}]", keys::ROLLOUT)
        } else {
            mine.images.first().map_or_else(|| "spec".to_string(), |i| i.path.clone())
        },
        false,
    );
}

#[cfg(test)]
mod tests;
