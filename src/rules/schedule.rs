//! `scheduled-backup-present`, `scheduled-backup-schedule`, `scheduled-backup-coverage` and
//! `scheduled-backup-target`: base backups are scheduled, on a schedule CNPG runs the way the
//! user meant, often enough, for a Cluster and a method that can take them.
//!
//! A suspended ScheduledBackup (`spec.suspend: true`) is still checked for its schedule and its
//! target: resuming it is a one-field change that nobody reviews, and it then runs exactly as
//! written. It does not count as a backup for `scheduled-backup-present`, which warns (never
//! denies, so maintenance can suspend backups) when every ScheduledBackup of a Cluster is
//! suspended.

mod coverage;

use chrono::TimeDelta;

use super::catalog::{SCHEDULED_BACKUP_PRESENT, SCHEDULED_BACKUP_SCHEDULE, SCHEDULED_BACKUP_TARGET};
use super::cron::{self, CronError};
use super::{Ctx, Violation};
use crate::model::cnpg::{BARMAN_PLUGIN, ClusterSpec, ScheduledBackupSpec};
use crate::model::{Object, Spec};
use crate::view::Lookup;
pub use coverage::coverage;
use coverage::{Plan, Problem, human};

/// A ScheduledBackup `spec.method`; CNPG defaults to `barmanObjectStore` when it is unset.
const METHODS: [&str; 3] = ["barmanObjectStore", "volumeSnapshot", "plugin"];

pub fn present(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Spec::Cluster(c) = &obj.spec else { return };
    if !c.archives_wal() && !c.has_volume_snapshot() {
        return; // backup-configured reports that
    }
    let listing = ctx.view.scheduled_backups_for(obj.namespace(), obj.name());
    if listing.items.is_empty() {
        if listing.is_absent() {
            let why = if c.archives_wal() {
                "there are no base backups and WAL alone cannot be restored"
            } else {
                "no volume snapshot is ever taken"
            };
            let replica = if c.is_replica(obj.name()) {
                " (a replica cluster: its source's backups may be enough, so this is a warning)"
            } else {
                ""
            };
            let v = Violation::new(
                SCHEDULED_BACKUP_PRESENT,
                format!(
                    "no ScheduledBackup targets this Cluster, so {why}{replica}: add one with spec.cluster.name: {}, \
                     schedule \"0 0 2 * * *\", method {}",
                    obj.name(),
                    suggested_method(c)
                ),
            );
            let v = v.evidence(
                format!("no ScheduledBackup with spec.cluster.name {}", obj.name()),
                "at least one ScheduledBackup targeting the Cluster",
            );
            let v = if replica.is_empty() { v } else { v.warn_only() };
            out.push(ctx.lenient_on_create(v));
        }
        return;
    }
    let suspended = |o: &Object| matches!(&o.spec, Spec::ScheduledBackup(s) if s.suspend == Some(true));
    if listing.items.iter().all(|o| suspended(o)) {
        let names: Vec<&str> = listing.items.iter().map(|o| o.name()).collect();
        let mut v = Violation::new(
            SCHEDULED_BACKUP_PRESENT,
            format!(
                "every ScheduledBackup of this Cluster is suspended ({}), so no base backup is taken: set \
                 spec.suspend: false when the maintenance is over",
                names.join(", ")
            ),
        )
        .evidence(
            format!("{} ScheduledBackup(s), all with spec.suspend: true", names.len()),
            "at least one ScheduledBackup not suspended",
        )
        .warn_only();
        for item in &listing.items {
            v = v.consulted(item);
        }
        out.push(v);
    }
}

fn suggested_method(c: &ClusterSpec) -> &'static str {
    if c.wal_archiver().is_some() {
        "plugin"
    } else if c.in_tree_store().is_some() {
        "barmanObjectStore"
    } else {
        "volumeSnapshot"
    }
}

pub fn schedule(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Spec::ScheduledBackup(sb) = &obj.spec else { return };
    let Some(expr) = sb.schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        out.push(
            Violation::new(
                SCHEDULED_BACKUP_SCHEDULE,
                "spec.schedule is not set: use six fields, seconds first, e.g. \"0 0 2 * * *\" for 02:00 every day",
            )
            .at("spec.schedule"),
        );
        return;
    };
    let problem = match cron::parse(expr) {
        Err(CronError::FiveFields { suggestion }) => {
            let still = converted_coverage(obj, sb, &suggestion, ctx);
            five_field_hint(expr, &suggestion, &still)
        }
        Err(CronError::Invalid(reason)) => format!(
            "spec.schedule \"{expr}\" is invalid: {reason}; use six fields, seconds first, e.g. \"0 0 2 * * *\""
        ),
        Ok(s) if !s.fires_at_all() => format!(
            "spec.schedule \"{expr}\" never fires (no date matches it), so no backup is ever taken: fix the \
             day-of-month and month fields"
        ),
        Ok(_) => return,
    };
    out.push(
        Violation::new(SCHEDULED_BACKUP_SCHEDULE, problem)
            .at("spec.schedule")
            .evidence(
                format!("spec.schedule {expr:?}"),
                "six fields, seconds first, that fire (e.g. \"0 0 2 * * *\")",
            ),
    );
}

/// What the literal six-field conversion would leave uncovered, as a clause for the hint: the
/// target Cluster's ScheduledBackups with the converted schedule in place of this one (all of
/// them taken to fit when the Cluster is not in the view). Empty when it would be covered.
fn converted_coverage(obj: &Object, sb: &ScheduledBackupSpec, suggestion: &str, ctx: &Ctx<'_>) -> String {
    if sb.is_suspended() {
        return String::new();
    }
    let max_hours = ctx.policy.params.coverage_max_interval_hours();
    let max = TimeDelta::hours(i64::from(max_hours));
    let name = sb.cluster_name();
    let cluster = name.and_then(|n| ctx.view.cluster(obj.namespace(), n).present());
    let spec = cluster.as_deref().and_then(|c| match &c.spec {
        Spec::Cluster(c) => Some(c.as_ref()),
        _ => None,
    });
    let listing = name.map(|n| ctx.view.scheduled_backups_for(obj.namespace(), n));
    let others = listing.iter().flat_map(|l| &l.items).filter_map(|o| match &o.spec {
        Spec::ScheduledBackup(other) if o.name() != obj.name() => Some((o.name(), other.as_ref(), None)),
        _ => None,
    });
    let plan = Plan::of(others.chain([(obj.name(), sb, Some(suggestion))]), spec, max);
    let whom = match name {
        Some(n) => format!("Cluster {n}"),
        None => "the Cluster".to_string(),
    };
    match plan.problem(max) {
        Some(Problem::Gap(gap)) => format!(
            ", which would still leave {whom} up to {} without a base backup (over maxIntervalHours {max_hours})",
            human(gap)
        ),
        Some(Problem::Never) => ", which would never fire".to_string(),
        None => String::new(),
    }
}

/// What a five-field schedule does under CNPG's parser (robfig/cron with seconds first and an
/// optional day-of-week): `a b c d e` is second `a`, minute `b`, hour `c`, day-of-month `d`,
/// month `e`, any weekday.
fn five_field_hint(expr: &str, suggestion: &str, still: &str) -> String {
    let body = expr.trim();
    let f: Vec<&str> = body.split_whitespace().collect();
    let question = format!("did you mean \"{suggestion}\"{still}?");
    let [sec, min, hour, dom, month] = f[..] else {
        return format!("\"{expr}\" has five fields, read with a seconds field first — {question}");
    };
    let as_read = format!(
        "\"{expr}\" is read seconds first by CNPG (second {sec}, minute {min}, hour {hour}, day {dom}, month {month})"
    );
    if let Err(e) = cron::parse(&format!("{body} *")) {
        return format!("{as_read} and rejected: {e} — {question}");
    }
    let num = |s: &str, max: u32| s.parse::<u32>().ok().filter(|n| *n <= max);
    let any = |s: &str| s == "*" || s == "?";
    let what = match (num(sec, 59), num(min, 59), num(hour, 23)) {
        (Some(s), Some(m), None) if any(hour) && any(dom) && any(month) => match s {
            0 => format!("runs hourly at minute {m}"),
            s => format!("runs hourly at minute {m}, second {s}"),
        },
        (Some(s), Some(m), Some(h)) if any(dom) && any(month) => format!("runs daily at {h:02}:{m:02}:{s:02}"),
        (Some(_), None, None) if any(min) && any(hour) && any(dom) && any(month) => "runs every minute".to_string(),
        _ => return format!("{as_read} — {question}"),
    };
    format!("\"{expr}\" {what} — {question} (CloudNativePG schedules have six fields, seconds first)")
}

pub fn target(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Spec::ScheduledBackup(sb) = &obj.spec else { return };
    let method = sb.method.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if let Some(m) = method.filter(|m| !METHODS.contains(m)) {
        out.push(
            Violation::new(
                SCHEDULED_BACKUP_TARGET,
                format!(
                    "spec.method {m:?} is not a backup method: use one of {}",
                    METHODS.join(", ")
                ),
            )
            .at("spec.method"),
        );
        return;
    }
    if method == Some("plugin") && plugin_name(sb).is_none() {
        out.push(
            Violation::new(
                SCHEDULED_BACKUP_TARGET,
                format!(
                    "spec.method is plugin but spec.pluginConfiguration.name is not set: set it to {BARMAN_PLUGIN}"
                ),
            )
            .at("spec.pluginConfiguration.name"),
        );
    }
    let Some(name) = sb.cluster.as_ref().map(|c| c.name.trim()).filter(|n| !n.is_empty()) else {
        out.push(
            Violation::new(
                SCHEDULED_BACKUP_TARGET,
                "spec.cluster.name is not set: name the CNPG Cluster to back up",
            )
            .at("spec.cluster.name"),
        );
        return;
    };
    match ctx.view.cluster(obj.namespace(), name) {
        Lookup::Unknown => {}
        Lookup::Absent => {
            let v = Violation::new(
                SCHEDULED_BACKUP_TARGET,
                format!(
                    "spec.cluster.name names Cluster {name}, which does not exist{}: fix the name or create the Cluster",
                    match obj.namespace() {
                        "" => String::new(),
                        ns => format!(" in namespace {ns}"),
                    }
                ),
            )
            .at("spec.cluster.name")
            .evidence(
                format!("spec.cluster.name {name}: no such Cluster"),
                format!("a postgresql.cnpg.io/v1 Cluster {name} in the same namespace"),
            );
            out.push(ctx.lenient_on_create(v));
        }
        Lookup::Present(cluster) => {
            if let Spec::Cluster(c) = &cluster.spec
                && let Some(v) = method_misfit(sb, method, name, c)
            {
                let observed = format!("spec.method {}", method.unwrap_or("barmanObjectStore (unset)"));
                out.push(
                    v.evidence(observed, format!("a method Cluster {name} is configured for"))
                        .consulted(&cluster),
                );
            }
        }
    }
}

fn plugin_name(sb: &ScheduledBackupSpec) -> Option<&str> {
    sb.plugin_configuration
        .as_ref()
        .map(|p| p.name.trim())
        .filter(|n| !n.is_empty())
}

/// Why the Cluster cannot take backups with the ScheduledBackup's method, if it cannot.
fn method_misfit(sb: &ScheduledBackupSpec, method: Option<&str>, name: &str, c: &ClusterSpec) -> Option<Violation> {
    let v = |msg: String| Some(Violation::new(SCHEDULED_BACKUP_TARGET, msg).at("spec.method"));
    match method.unwrap_or("barmanObjectStore") {
        "barmanObjectStore" if c.in_tree_store().is_none() => {
            let subject = match method {
                None => "spec.method is unset (barmanObjectStore)",
                Some(_) => "spec.method is barmanObjectStore",
            };
            if c.plugin(BARMAN_PLUGIN).is_some() {
                v(format!(
                    "{subject} but Cluster {name} uses the Barman Cloud plugin: set method: plugin and \
                     pluginConfiguration.name: {BARMAN_PLUGIN}"
                ))
            } else if c.has_volume_snapshot() {
                v(format!(
                    "{subject} but Cluster {name} backs up with volume snapshots only (spec.backup.volumeSnapshot): \
                     set method: volumeSnapshot"
                ))
            } else {
                v(format!(
                    "{subject} but Cluster {name} has no spec.backup.barmanObjectStore: configure backups on the \
                     Cluster (the Barman Cloud plugin) and set spec.method to match"
                ))
            }
        }
        "volumeSnapshot" if !c.has_volume_snapshot() => v(format!(
            "spec.method volumeSnapshot needs spec.backup.volumeSnapshot on Cluster {name}, which has none: add it \
             (with a VolumeSnapshotClass) or use method {}",
            if c.plugin(BARMAN_PLUGIN).is_some() {
                "plugin"
            } else {
                "barmanObjectStore"
            }
        )),
        "plugin" => {
            let plugin = plugin_name(sb)?;
            if c.plugin(plugin).is_some() {
                return None;
            }
            let listed = c.plugins.iter().any(|p| p.name == plugin);
            let hint = if listed {
                ": its spec.plugins entry has enabled: false; enable it or suspend this ScheduledBackup".to_string()
            } else if plugin != BARMAN_PLUGIN && c.plugin(BARMAN_PLUGIN).is_some() {
                format!(": did you mean {BARMAN_PLUGIN}?")
            } else {
                ": add it to the Cluster's spec.plugins (with parameters.barmanObjectName)".to_string()
            };
            Some(
                Violation::new(
                    SCHEDULED_BACKUP_TARGET,
                    format!("spec.pluginConfiguration.name {plugin} is not a plugin enabled on Cluster {name}{hint}"),
                )
                .at("spec.pluginConfiguration.name"),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
