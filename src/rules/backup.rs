//! The backup rules over CNPG Clusters and Barman Cloud ObjectStores.
//!
//! Where a setting lives depends on how the Cluster archives:
//! - in-tree (`spec.backup.barmanObjectStore`, deprecated): retention, compression and the S3
//!   checksum variables are checked on the Cluster;
//! - Barman Cloud plugin: they live on the `barmancloud.cnpg.io/v1` ObjectStore and are checked
//!   there, on the ObjectStore object (at its own admission, or as its own document offline).
//!   The Cluster is not judged for them, so one misconfigured store shared by three Clusters
//!   is one finding, not four. The S3 checksum variables are the exception: the plugin merges
//!   each Cluster's `spec.env` into that Cluster's sidecar, so they are judged per Cluster, with
//!   its ObjectStore from the view.

use super::catalog::{
    BACKUP_COMPRESSION, BACKUP_CONFIGURED, BACKUP_IN_TREE_DEPRECATED, BACKUP_RETENTION, BACKUP_S3_COMPAT_CHECKSUMS,
    BACKUP_STORE_EXISTS,
};
use super::{Ctx, Violation};
use crate::model::cnpg::{BARMAN_PLUGIN, BarmanObjectStore, ClusterSpec, ObjectStoreSpec, PluginConfiguration};
use crate::model::{Object, Spec};
use crate::view::Lookup;
use k8s_openapi::api::core::v1::EnvVar;

/// Compression algorithms CNPG accepts for WAL files.
pub const WAL_COMPRESSIONS: [&str; 6] = ["bzip2", "gzip", "lz4", "snappy", "xz", "zstd"];
/// Compression algorithms CNPG accepts for base backups.
pub const DATA_COMPRESSIONS: [&str; 4] = ["bzip2", "gzip", "lz4", "snappy"];

/// The variables newer AWS SDKs need against S3-compatible stores.
const CHECKSUM_VARS: [&str; 2] = ["AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"];

const IN_TREE_PATH: &str = "spec.backup.barmanObjectStore";

/// The object's backup configuration, by where it lives.
enum Store<'a> {
    /// A Cluster archiving in-tree.
    InTree(&'a ClusterSpec, &'a BarmanObjectStore),
    /// A Barman Cloud ObjectStore; its `spec.configuration` may be missing.
    ObjectStore(&'a ObjectStoreSpec),
}

fn store(obj: &Object) -> Option<Store<'_>> {
    match &obj.spec {
        Spec::Cluster(c) => c.in_tree_store().map(|s| Store::InTree(c, s)),
        Spec::ObjectStore(o) => Some(Store::ObjectStore(o)),
        _ => None,
    }
}

fn cluster(obj: &Object) -> Option<&ClusterSpec> {
    match &obj.spec {
        Spec::Cluster(c) => Some(c),
        _ => None,
    }
}

pub fn configured(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Some(c) = cluster(obj) else { return };
    if c.archives_wal() {
        return;
    }
    let (problem, path, snapshots_only) = not_archiving(c);
    let v = if c.is_replica(obj.name()) {
        Violation::new(
            BACKUP_CONFIGURED,
            // What it means for a replica leads: the API server may cut a warning at 256 characters.
            format!(
                "replica cluster without its own WAL archive: fine while it follows its source, but configure \
                 archiving before promoting it. {problem}"
            ),
        )
        .warn_only()
    } else if snapshots_only && ctx.policy.params.backup_configured.allow_volume_snapshot_only {
        Violation::new(BACKUP_CONFIGURED, problem).warn_only()
    } else {
        Violation::new(BACKUP_CONFIGURED, problem)
    };
    let observed = if snapshots_only {
        "volume snapshots only, no WAL archiver"
    } else {
        "no WAL archiver"
    };
    out.push(v.at(path).evidence(
        observed,
        "spec.backup.barmanObjectStore or an enabled spec.plugins[] entry with isWALArchiver: true",
    ));
}

/// Why a Cluster that does not archive WAL does not, where to fix it, and whether it is backed up
/// by volume snapshots only.
fn not_archiving(c: &ClusterSpec) -> (String, String, bool) {
    let index = |p: &PluginConfiguration| c.plugins.iter().position(|q| std::ptr::eq(p, q)).unwrap_or(0);
    // Enabled entries without isWALArchiver: CNPG runs them but archives through none of them.
    if let Some(p) = c
        .plugins
        .iter()
        .find(|p| p.is_enabled() && p.is_wal_archiver != Some(true))
    {
        let message = format!(
            "WAL is not archived: plugin {} is enabled but not the designated WAL archiver (CNPG treats \
             archiving as inactive): set isWALArchiver: true on the entry that archives",
            p.name
        );
        return (message, format!("spec.plugins[{}].isWALArchiver", index(p)), false);
    }
    if let Some(p) = c.plugins.iter().find(|p| p.is_wal_archiver == Some(true)) {
        let message = format!(
            "WAL is not archived: the {} plugin entry is disabled (enabled: false), so there is no \
             point-in-time recovery: enable it",
            p.name
        );
        return (message, format!("spec.plugins[{}].enabled", index(p)), false);
    }
    if c.has_volume_snapshot() {
        let message = format!(
            "volume snapshots only: no point-in-time recovery, only the last snapshot can be restored: also \
             archive WAL with the {BARMAN_PLUGIN} plugin (isWALArchiver: true)"
        );
        return (message, "spec.backup.volumeSnapshot".to_string(), true);
    }
    let message = format!(
        "WAL is not archived, so there is no point-in-time recovery: add the {BARMAN_PLUGIN} plugin to \
         spec.plugins with isWALArchiver: true and parameters.barmanObjectName: <ObjectStore>"
    );
    (message, "spec.plugins".to_string(), false)
}

pub fn retention(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (value, path) = match store(obj) {
        Some(Store::InTree(c, _)) => (
            c.backup.as_ref().and_then(|b| b.retention_policy.as_deref()),
            "spec.backup.retentionPolicy",
        ),
        Some(Store::ObjectStore(o)) => (o.retention_policy.as_deref(), "spec.retentionPolicy"),
        None => return dead_cluster_retention(obj, out),
    };
    let params = &ctx.policy.params.backup_retention;
    // Not trimmed: CNPG's schema pattern rejects " 30d", so dbhook must not pass it.
    let problem = match value.filter(|v| !v.is_empty()) {
        None => format!(
            "{path} is not set, so backups are never deleted: set it, e.g. \"{}d\"",
            params.min_days.max(30).min(params.max_days.unwrap_or(u32::MAX))
        ),
        Some(v) => match retention_days(v) {
            None => format!(
                "{path} {v:?} is not a retention CNPG understands: use a number and a unit d, w or m (e.g. \"30d\", \"4w\", \"3m\")"
            ),
            Some(days) if days < u64::from(params.min_days) => format!(
                "{path} {v:?} keeps backups {days} days, less than the policy minimum of {} days: raise it",
                params.min_days
            ),
            Some(days) => match params.max_days {
                Some(max) if days > u64::from(max) => format!(
                    "{path} {v:?} keeps backups {}, more than the policy maximum of {max} days: lower it",
                    if days == u64::MAX {
                        "practically forever".to_string()
                    } else {
                        format!("{days} days")
                    }
                ),
                _ => return,
            },
        },
    };
    let bounds = match params.max_days {
        Some(max) => format!("{path} matching ^[1-9][0-9]*[dwm]$, {}..={max} days", params.min_days),
        None => format!("{path} matching ^[1-9][0-9]*[dwm]$, at least {} days", params.min_days),
    };
    let observed = match value {
        Some(v) if !v.is_empty() => format!("{path} {v:?}"),
        _ => format!("{path} unset"),
    };
    out.push(
        Violation::new(BACKUP_RETENTION, problem)
            .at(path)
            .evidence(observed, bounds),
    );
}

/// A plugin-based Cluster that still sets `spec.backup.retentionPolicy`: the plugin ignores it
/// (retention lives on the ObjectStore), so the value on the Cluster only misleads. A warning
/// at most: the ObjectStore's own retention is what this rule enforces.
fn dead_cluster_retention(obj: &Object, out: &mut Vec<Violation>) {
    let Some(c) = cluster(obj) else { return };
    let Some(plugin) = c.barman_plugin() else { return };
    let Some(value) = c.backup.as_ref().and_then(|b| b.retention_policy.as_deref()) else {
        return;
    };
    if value.trim().is_empty() {
        return;
    }
    out.push(
        Violation::new(
            BACKUP_RETENTION,
            format!(
                "spec.backup.retentionPolicy {value:?} has no effect with the Barman Cloud plugin: move it to \
                 spec.retentionPolicy of ObjectStore {}",
                plugin.barman_object_name().unwrap_or("<barmanObjectName>")
            ),
        )
        .at("spec.backup.retentionPolicy")
        .warn_only(),
    );
}

/// Days a retention policy keeps backups: `^[1-9][0-9]*[dwm]$`, `w` = 7 days, `m` = 30 days;
/// `u64::MAX` for numbers too large to count.
pub fn retention_days(policy: &str) -> Option<u64> {
    let unit = policy.chars().last()?;
    let number = &policy[..policy.len() - unit.len_utf8()];
    if number.is_empty() || number.starts_with('0') || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = number.parse().unwrap_or(u64::MAX);
    let per = match unit {
        'd' => 1,
        'w' => 7,
        'm' => 30,
        _ => return None,
    };
    Some(n.saturating_mul(per))
}

pub fn compression(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (cfg, base) = match store(obj) {
        Some(Store::InTree(_, s)) => (Some(s), IN_TREE_PATH),
        Some(Store::ObjectStore(o)) => (o.configuration.as_ref(), "spec.configuration"),
        None => return,
    };
    let allowed = ctx.policy.params.backup_compression.allowed.as_deref();
    let parts = [
        (
            "wal",
            cfg.and_then(|c| c.wal.as_ref()),
            &WAL_COMPRESSIONS[..],
            "WAL files",
        ),
        (
            "data",
            cfg.and_then(|c| c.data.as_ref()),
            &DATA_COMPRESSIONS[..],
            "base backups",
        ),
    ];
    for (field, section, valid, what) in parts {
        let path = format!("{base}.{field}.compression");
        let value = section
            .and_then(|s| s.compression.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let suggestion = allowed
            .and_then(|a| a.iter().find(|x| valid.contains(&x.as_str())).map(String::as_str))
            .unwrap_or("gzip");
        let problem = match value {
            None => format!("{path} is not set, so {what} are stored uncompressed: set it, e.g. to {suggestion}"),
            Some(v) if !valid.contains(&v) => format!(
                "{path} {v:?} is not a compression CNPG supports for {what} ({}): use e.g. {suggestion}",
                valid.join(", ")
            ),
            Some(v) => match allowed {
                Some(list) if !list.iter().any(|a| a == v) => format!(
                    "{path} {v:?} is not allowed by the policy ({}): use e.g. {suggestion}",
                    list.join(", ")
                ),
                _ => continue,
            },
        };
        out.push(Violation::new(BACKUP_COMPRESSION, problem).at(path));
    }
}

/// The variables that can carry the endpoint instead of `endpointURL`, in the AWS SDKs' order.
const ENDPOINT_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];

pub fn s3_compat_checksums(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Some(c) = cluster(obj) else { return };
    let ignore = &ctx.policy.params.backup_s3_compat_checksums.ignore_endpoints;
    // In-tree stores (the Cluster's own and its externalClusters') run with the Cluster's env.
    for (_, store) in c.in_tree_stores() {
        let envs = [("spec.env", &c.env)];
        if let Some(v) = checksum_problem(store, &envs, ignore) {
            out.push(v.at("spec.env"));
        }
    }
    // Plugin stores: the ObjectStore's sidecar env plus the Cluster's spec.env, merged.
    for (_, p) in c.barman_plugins() {
        let Some(name) = p.barman_object_name().map(str::trim).filter(|n| !n.is_empty()) else {
            continue;
        };
        let Lookup::Present(store_obj) = ctx.view.object_store(obj.namespace(), name) else {
            continue; // backup-store-exists reports a missing store
        };
        let Spec::ObjectStore(o) = &store_obj.spec else {
            continue;
        };
        let Some(cfg) = o.configuration.as_ref() else { continue };
        let sidecar = o.instance_sidecar_configuration.as_ref().map_or(&EMPTY_ENV, |s| &s.env);
        let envs = [("spec.env", &c.env), ("the ObjectStore's sidecar env", sidecar)];
        if let Some(v) = checksum_problem(cfg, &envs, ignore) {
            out.push(v.at("spec.env").consulted(&store_obj));
        }
    }
}

/// The finding for one S3 store read with the env lists `envs` (where, vars), if it needs one.
fn checksum_problem(cfg: &BarmanObjectStore, envs: &[(&str, &Vec<EnvVar>)], ignore: &[String]) -> Option<Violation> {
    if !cfg.is_s3() {
        return None;
    }
    let endpoint = cfg
        .endpoint_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| ENDPOINT_VARS.iter().find_map(|name| literal(envs, name)));
    // No endpoint at all: AWS S3 itself.
    let host = endpoint.and_then(endpoint_host_as_written)?;
    let lower = host.to_ascii_lowercase();
    if is_aws_host(&lower) || ignore.iter().any(|g| glob_matches(&g.to_ascii_lowercase(), &lower)) {
        return None;
    }
    let mut missing: Vec<String> = Vec::new();
    for name in CHECKSUM_VARS {
        let found: Vec<&EnvVar> = envs
            .iter()
            .flat_map(|(_, e)| e.iter())
            .filter(|e| e.name == name)
            .collect();
        let fine = found.iter().any(|e| match &e.value {
            // A value from a ConfigMap or Secret cannot be seen here: trust it.
            None => true,
            Some(v) => v.trim().eq_ignore_ascii_case("when_required"),
        });
        if fine {
            continue;
        }
        // Names are case-sensitive: show a near miss exactly as it is written.
        let near = envs
            .iter()
            .flat_map(|(_, e)| e.iter())
            .find(|e| e.name != name && e.name.eq_ignore_ascii_case(name));
        missing.push(match near {
            Some(e) => format!("{name} (not {})", e.name),
            None => name.to_string(),
        });
    }
    if missing.is_empty() {
        return None;
    }
    let whence = envs.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(" or ");
    Some(
        Violation::new(
            BACKUP_S3_COMPAT_CHECKSUMS,
            format!(
                "set {} to when_required in {whence}: newer AWS SDKs fail against {} without it",
                missing.join(" and "),
                display_host(host)
            ),
        )
        .evidence(
            format!("endpoint {} without {}", display_host(host), missing.join(", ")),
            format!("{} set to when_required in {whence}", CHECKSUM_VARS.join(" and ")),
        ),
    )
}

/// The literal value of env var `name` in any of `envs`.
fn literal<'a>(envs: &[(&str, &'a Vec<EnvVar>)], name: &str) -> Option<&'a str> {
    envs.iter()
        .flat_map(|(_, e)| e.iter())
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
        .filter(|v| !v.trim().is_empty())
}

/// `*` matches any run of characters (dots included), `?` exactly one.
fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    // After a mismatch, resume at the glob just past the last `*`, which now swallows one more
    // character of the text: (glob index after the star, text index the star's match ends at).
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                gi += 1;
                resume = Some((gi, ti));
            }
            Some(&c) if c == '?' || c == t[ti] => {
                gi += 1;
                ti += 1;
            }
            _ => match resume {
                Some((after_star, end)) => {
                    let end = end + 1;
                    (gi, ti) = (after_star, end);
                    resume = Some((after_star, end));
                }
                None => return false,
            },
        }
    }
    g[gi.min(g.len())..].iter().all(|c| *c == '*')
}

/// A host short enough for a warning (they are cut at 256 characters): in-cluster names lose
/// only `.cluster.local` (`minio.minio.svc`), long public names keep their last two labels.
fn display_host(host: &str) -> String {
    const MAX: usize = 48;
    let host = host.strip_suffix(".cluster.local").unwrap_or(host);
    if host.len() <= MAX {
        return host.to_string();
    }
    match host.rmatch_indices('.').nth(1) {
        Some((i, _)) => format!("…{}", &host[i..]),
        None => host.to_string(),
    }
}

static EMPTY_ENV: Vec<EnvVar> = Vec::new();

/// The lowercase host of an endpoint URL (`https://user@Host:9000/path` → `host`).
pub fn endpoint_host(url: &str) -> Option<String> {
    endpoint_host_as_written(url).map(|h| h.to_ascii_lowercase())
}

/// The host of an endpoint URL as the user wrote it (`https://user@Host:9000/path` → `Host`).
pub fn endpoint_host_as_written(url: &str) -> Option<&str> {
    let rest = url.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then_some(host)
}

/// AWS S3 endpoints: `amazonaws.com` and `amazonaws.com.cn` and their subdomains.
pub fn is_aws_host(host: &str) -> bool {
    ["amazonaws.com", "amazonaws.com.cn"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

pub fn in_tree_deprecated(obj: &Object, _: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Some(c) = cluster(obj) else { return };
    let mut any = false;
    for (path, _) in c.in_tree_stores() {
        any = true;
        let how = if path == IN_TREE_PATH {
            format!("move it to a barmancloud.cnpg.io/v1 ObjectStore used through plugin {BARMAN_PLUGIN}")
        } else {
            format!(
                "move it to an ObjectStore and give the entry plugin {BARMAN_PLUGIN} with parameters.barmanObjectName"
            )
        };
        out.push(
            Violation::new(
                BACKUP_IN_TREE_DEPRECATED,
                format!("{path} is deprecated since CNPG 1.26 (removal currently announced for 1.31): {how}"),
            )
            .at(path),
        );
    }
    if !any {
        return;
    }
    if let Some(image) = c.image_name.as_deref().filter(|i| lacks_barman_cloud(i)) {
        out.push(
            Violation::new(
                BACKUP_IN_TREE_DEPRECATED,
                format!(
                    "spec.imageName {image} is a minimal/standard operand image without barman-cloud, so in-tree \
                     backup and recovery fail: use the {BARMAN_PLUGIN} plugin (its sidecar brings barman-cloud)"
                ),
            )
            .at("spec.imageName"),
        );
    }
}

/// CNPG's `-minimal-` and `-standard-` operand images (`17.5-minimal-bookworm`) ship without
/// barman-cloud; only the `-system-` flavour (and the legacy images) have it.
fn lacks_barman_cloud(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    let Some((_, tag)) = last.split_once(':') else {
        return false;
    };
    ["-minimal", "-standard"].iter().any(|flavour| {
        tag.match_indices(flavour)
            .any(|(i, _)| matches!(tag[i + flavour.len()..].chars().next(), None | Some('-')))
    })
}

pub fn store_exists(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Some(c) = cluster(obj) else { return };
    for (i, p) in c.plugins.iter().enumerate() {
        if p.name != BARMAN_PLUGIN || p.enabled == Some(false) {
            continue;
        }
        let path = format!("spec.plugins[{i}].parameters.barmanObjectName");
        match p.barman_object_name().map(str::trim).filter(|n| !n.is_empty()) {
            None => out.push(
                Violation::new(
                    BACKUP_STORE_EXISTS,
                    format!(
                        "plugin {BARMAN_PLUGIN} has no parameters.barmanObjectName: name the ObjectStore it archives to"
                    ),
                )
                .at(path),
            ),
            Some(name) => {
                if let Lookup::Absent = ctx.view.object_store(obj.namespace(), name) {
                    let v = Violation::new(
                        BACKUP_STORE_EXISTS,
                        format!(
                            "barmanObjectName {name} names no barmancloud.cnpg.io/v1 ObjectStore{}: create it or fix \
                             the name, or WAL piles up on the volumes",
                            match obj.namespace() {
                                "" => String::new(),
                                ns => format!(" in namespace {ns}"),
                            }
                        ),
                    )
                    .at(path)
                    .evidence(
                        format!("barmanObjectName {name}: no such ObjectStore"),
                        format!("a barmancloud.cnpg.io/v1 ObjectStore {name} in the Cluster's namespace"),
                    );
                    out.push(ctx.lenient_on_create(v));
                }
            }
        }
    }
}

#[cfg(test)]
mod checksum_tests;
#[cfg(test)]
mod tests;
