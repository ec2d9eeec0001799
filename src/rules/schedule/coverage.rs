//! `scheduled-backup-coverage`: the ScheduledBackups of one Cluster, together, leave no gap
//! longer than `maxIntervalHours` between base backups.
//!
//! A ScheduledBackup counts when it is not suspended, its schedule parses and fires, and its
//! method is one the Cluster is configured for. `@every D` counts when D is at most the limit:
//! it starts whenever the operator does, so its firings cannot be lined up with the others, but
//! alone it never leaves a longer gap. `spec.immediate` is a one-off and never counts.
//!
//! The rule judges the Cluster, and at admission also each ScheduledBackup change: the target
//! Cluster's coverage with the reviewed object in place of the view's copy, so suspending the
//! only daily backup is caught on the ScheduledBackup itself. Messages depend only on the
//! Cluster's set of ScheduledBackups, so judging the old and the new object of an unrelated
//! change yields the same finding.

use std::sync::Arc;

use chrono::TimeDelta;

use super::super::catalog::SCHEDULED_BACKUP_COVERAGE;
use super::super::cron::{self, Schedule};
use super::super::{Ctx, Violation};
use super::plugin_name;
use crate::model::cnpg::{ClusterSpec, ScheduledBackupSpec};
use crate::model::{Object, Spec};
use crate::view::{Lookup, Origin};

/// Characters of names a message lists before "and N more", so that it fits a warning.
const LIST_BUDGET: usize = 40;

pub fn coverage(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    match &obj.spec {
        Spec::Cluster(c) => {
            let listing = ctx.view.scheduled_backups_for(obj.namespace(), obj.name());
            let backups = entries(&listing.items, None);
            if let Some(v) = judge(ctx, obj.name(), c, &backups, listing.complete) {
                out.push(consulted(v, &listing.items, None));
            }
        }
        // Offline and in the report every ScheduledBackup is also in the view, so the Cluster
        // carries the finding; at admission the change is judged where it is made.
        Spec::ScheduledBackup(sb) if ctx.origin() == Origin::Admission => {
            let Some(name) = sb.cluster_name() else { return };
            let Lookup::Present(cluster) = ctx.view.cluster(obj.namespace(), name) else {
                return;
            };
            let Spec::Cluster(c) = &cluster.spec else { return };
            let listing = ctx.view.scheduled_backups_for(obj.namespace(), name);
            let backups = entries(&listing.items, Some(obj));
            if let Some(v) = judge(ctx, name, c, &backups, listing.complete) {
                out.push(consulted(
                    v.at("spec.cluster.name").consulted(&cluster),
                    &listing.items,
                    Some(obj),
                ));
            }
        }
        _ => {}
    }
}

/// `v` with the ScheduledBackups it was judged from (the reviewed one is the subject itself).
fn consulted(mut v: Violation, items: &[Arc<Object>], reviewed: Option<&Object>) -> Violation {
    let replaced = reviewed.map(Object::name);
    // By name, as the message lists them: the view's order must not change the finding.
    let mut read: Vec<&Arc<Object>> = items.iter().filter(|o| Some(o.name()) != replaced).collect();
    read.sort_by(|a, b| a.name().cmp(b.name()));
    for item in read {
        v = v.consulted(item);
    }
    v
}

/// The ScheduledBackups of a Cluster as `(name, spec)`, with `reviewed` in place of the view's
/// copy of it, sorted by name so that messages do not depend on the view's order.
fn entries<'a>(items: &'a [Arc<Object>], reviewed: Option<&'a Object>) -> Vec<(&'a str, &'a ScheduledBackupSpec)> {
    let replaced = reviewed.map(Object::name).filter(|n| !n.is_empty());
    let mut out: Vec<(&str, &ScheduledBackupSpec)> = items
        .iter()
        .map(Arc::as_ref)
        .filter(|o| Some(o.name()) != replaced)
        .chain(reviewed)
        .filter_map(|o| match &o.spec {
            Spec::ScheduledBackup(sb) => Some((o.name(), sb.as_ref())),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

fn judge(
    ctx: &Ctx<'_>,
    cluster: &str,
    c: &ClusterSpec,
    backups: &[(&str, &ScheduledBackupSpec)],
    complete: bool,
) -> Option<Violation> {
    if !c.archives_wal() && !c.has_volume_snapshot() {
        return None; // backup-configured reports that
    }
    // No ScheduledBackup, or all suspended for maintenance: scheduled-backup-present says so.
    if backups.iter().all(|(_, sb)| sb.is_suspended()) {
        return None;
    }
    let max_hours = ctx.policy.params.coverage_max_interval_hours();
    let max = TimeDelta::hours(i64::from(max_hours));
    let plan = Plan::of(backups.iter().map(|(name, sb)| (*name, *sb, None)), Some(c), max);
    let problem = plan.problem(max)?;
    let message = match problem {
        Problem::Gap(gap) => format!(
            "ScheduledBackups of Cluster {cluster} ({}) leave up to {} without a base backup, over \
             maxIntervalHours {max_hours}{}: add or resume a daily one, e.g. \"0 0 2 * * *\"",
            listed(plan.counted.iter().map(|n| n.to_string()), false),
            human(gap),
            plan.not_counted_note(),
        ),
        Problem::Never => format!(
            "no ScheduledBackup of Cluster {cluster} takes base backups ({}): fix or resume one to run at least \
             every {max_hours} hours, e.g. \"0 0 2 * * *\"",
            listed_with_reasons(&plan.excluded),
        ),
    };
    let observed = match problem {
        Problem::Gap(gap) => format!("up to {} between base backups", human(gap)),
        Problem::Never => "no ScheduledBackup that counts".to_string(),
    };
    let v = Violation::new(SCHEDULED_BACKUP_COVERAGE, message).evidence(
        observed,
        format!("a base backup at least every {max_hours} hours (maxIntervalHours)"),
    );
    // A replica cluster may rely on its source's backups; CREATE and an incomplete view may
    // lack a ScheduledBackup that is being applied alongside.
    let lenient = !complete || ctx.is_admission_create() || c.is_replica(cluster);
    Some(if lenient { v.warn_only() } else { v })
}

/// Why a ScheduledBackup does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Excluded {
    Suspended,
    NoSchedule,
    /// Standard five-field cron: CNPG runs it seconds first, not as written, and
    /// scheduled-backup-schedule denies it.
    FiveFields,
    Invalid,
    NeverFires,
    Method(String),
    EveryTooLong,
}

impl Excluded {
    fn reason(&self) -> String {
        match self {
            Excluded::Suspended => "suspended".into(),
            Excluded::NoSchedule => "no schedule".into(),
            Excluded::FiveFields => "five-field schedule, see scheduled-backup-schedule".into(),
            Excluded::Invalid => "schedule does not parse".into(),
            Excluded::NeverFires => "never fires".into(),
            Excluded::Method(m) => format!("method {m} not configured on the Cluster"),
            Excluded::EveryTooLong => "@every longer than the limit".into(),
        }
    }
}

/// The ScheduledBackups of one Cluster sorted into those that count and those that do not.
pub(super) struct Plan<'a> {
    pub counted: Vec<&'a str>,
    pub excluded: Vec<(&'a str, Excluded)>,
    schedules: Vec<Schedule>,
    every_within_limit: bool,
}

/// What is wrong with a Cluster's coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    /// The longest time without a backup, over the limit.
    Gap(TimeDelta),
    /// Nothing that counts ever fires.
    Never,
}

impl<'a> Plan<'a> {
    /// Sorts `backups` (name, spec, schedule to use instead of `spec.schedule`). With no Cluster
    /// (not in the view) every method is taken to fit.
    pub fn of(
        backups: impl IntoIterator<Item = (&'a str, &'a ScheduledBackupSpec, Option<&'a str>)>,
        cluster: Option<&ClusterSpec>,
        max: TimeDelta,
    ) -> Plan<'a> {
        let mut plan = Plan {
            counted: Vec::new(),
            excluded: Vec::new(),
            schedules: Vec::new(),
            every_within_limit: false,
        };
        for (name, sb, schedule) in backups {
            match plan.assess(sb, schedule, cluster, max) {
                Ok(s) => {
                    plan.every_within_limit |= s.every().is_some();
                    plan.schedules.push(s);
                    plan.counted.push(name);
                }
                Err(why) => plan.excluded.push((name, why)),
            }
        }
        plan
    }

    fn assess(
        &self,
        sb: &ScheduledBackupSpec,
        schedule: Option<&str>,
        cluster: Option<&ClusterSpec>,
        max: TimeDelta,
    ) -> Result<Schedule, Excluded> {
        if sb.is_suspended() {
            return Err(Excluded::Suspended);
        }
        if let Some(c) = cluster
            && !method_fits(sb, c)
        {
            return Err(Excluded::Method(sb.method_or_default().to_string()));
        }
        let expr = schedule
            .or(sb.schedule.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(Excluded::NoSchedule)?;
        let parsed = cron::parse(expr).map_err(|e| match e {
            cron::CronError::FiveFields { .. } => Excluded::FiveFields,
            _ => Excluded::Invalid,
        })?;
        match parsed.every() {
            Some(d) if d > max => Err(Excluded::EveryTooLong),
            Some(_) => Ok(parsed),
            None if !parsed.fires_at_all() => Err(Excluded::NeverFires),
            None => Ok(parsed),
        }
    }

    /// The coverage problem, if any: None when the union fires at least every `max`.
    pub fn problem(&self, max: TimeDelta) -> Option<Problem> {
        if self.every_within_limit {
            return None;
        }
        match cron::union_max_gap(&self.schedules) {
            None => Some(Problem::Never),
            Some(gap) if gap > max => Some(Problem::Gap(gap)),
            Some(_) => None,
        }
    }

    fn not_counted_note(&self) -> String {
        if self.excluded.is_empty() {
            return String::new();
        }
        format!("; not counted: {}", listed_with_reasons(&self.excluded))
    }
}

/// The ScheduledBackup's method is configured on the Cluster (`scheduled-backup-target`
/// explains a misfit).
pub(super) fn method_fits(sb: &ScheduledBackupSpec, c: &ClusterSpec) -> bool {
    match sb.method_or_default() {
        "barmanObjectStore" => c.in_tree_store().is_some(),
        "volumeSnapshot" => c.has_volume_snapshot(),
        "plugin" => plugin_name(sb).is_some_and(|p| c.plugin(p).is_some()),
        _ => false,
    }
}

/// Names joined with commas while they fit [`LIST_BUDGET`], then "and N more" (or "N of them"
/// when not even the first fits, unless `keep_first`).
fn listed(items: impl ExactSizeIterator<Item = String>, keep_first: bool) -> String {
    let total = items.len();
    let mut shown: Vec<String> = Vec::new();
    let mut used = 0;
    for item in items {
        if (!keep_first || !shown.is_empty()) && used + item.len() > LIST_BUDGET {
            break;
        }
        used += item.len() + 2;
        shown.push(item);
    }
    let rest = total - shown.len();
    match (shown.is_empty(), rest) {
        (true, n) => format!("{n} of them"),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

fn listed_with_reasons(excluded: &[(&str, Excluded)]) -> String {
    // The first reason is always shown: a bare "1 of them" hid why a lone ScheduledBackup
    // does not count.
    listed(
        excluded.iter().map(|(name, why)| format!("{name}: {}", why.reason())),
        true,
    )
}

/// A duration in the largest unit that divides it: `7 days`, `36 hours`, `90 minutes`.
pub(super) fn human(d: TimeDelta) -> String {
    let s = d.num_seconds();
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if s % 86_400 == 0 {
        plural(s / 86_400, "day")
    } else if s % 3600 == 0 {
        plural(s / 3600, "hour")
    } else if s % 60 == 0 {
        plural(s / 60, "minute")
    } else {
        plural(s, "second")
    }
}

#[cfg(test)]
mod tests;
