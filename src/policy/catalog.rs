//! The rule vocabulary of docs/rules.md: ids, default actions, summaries and how each rule's
//! parameters decode. `rules` pairs every entry with its check; this layer never names a check.

use serde_json::{Map, Value};

use super::Action;
use super::params::{self, ParamError, Params};

#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub default_action: Action,
    pub summary: &'static str,
    /// What goes wrong in production without the rule; shown by `dbhook rules --why` and the README.
    pub why: &'static str,
    /// Applies the rule's parameter keys (all but `action`, `allowExemption` and
    /// `allowExistingViolations`); a rule without parameters rejects any key.
    pub params: DecodeParams,
}

/// How a rule's parameter keys go into [`Params`]; the error is `<key>: <problem>`.
pub type DecodeParams = fn(&mut Params, Map<String, Value>) -> Result<(), ParamError>;

pub const INJECTION_CONFIG: &str = "injection-config";
pub const MIGRATION_IMAGE_LOCKSTEP: &str = "migration-image-lockstep";
pub const IMAGE_TAG_PINNED: &str = "image-tag-pinned";
pub const DB_URL_PLAINTEXT: &str = "db-url-plaintext";
pub const DB_URL_SOURCE: &str = "db-url-source";
pub const CLUSTER_EXISTS: &str = "cluster-exists";
pub const APP_SECRET_HAS_KEY: &str = "app-secret-has-key";
pub const BACKUP_CONFIGURED: &str = "backup-configured";
pub const BACKUP_RETENTION: &str = "backup-retention";
pub const BACKUP_COMPRESSION: &str = "backup-compression";
pub const BACKUP_S3_COMPAT_CHECKSUMS: &str = "backup-s3-compat-checksums";
pub const BACKUP_IN_TREE_DEPRECATED: &str = "backup-in-tree-deprecated";
pub const BACKUP_STORE_EXISTS: &str = "backup-store-exists";
pub const SCHEDULED_BACKUP_PRESENT: &str = "scheduled-backup-present";
pub const SCHEDULED_BACKUP_SCHEDULE: &str = "scheduled-backup-schedule";
pub const SCHEDULED_BACKUP_TARGET: &str = "scheduled-backup-target";
pub const MIGRATION_JOB_REPLACEABLE: &str = "migration-job-replaceable";
pub const SCHEDULED_BACKUP_COVERAGE: &str = "scheduled-backup-coverage";

const fn rule(
    id: &'static str,
    default_action: Action,
    summary: &'static str,
    why: &'static str,
    params: DecodeParams,
) -> RuleInfo {
    RuleInfo {
        id,
        default_action,
        summary,
        why,
        params,
    }
}

/// Each rule's entry by name, so that the rule table refers to entries, not to id strings.
pub mod entry {
    use super::{Action, RuleInfo, params, rule};

    pub const INJECTION_CONFIG: RuleInfo = rule(
        super::INJECTION_CONFIG,
        Action::Deny,
        "dbhook annotations on a labelled workload are usable (env name, Secret name, key, containers)",
        "a typo in an annotation silently skips the injection and the pod starts without DB_URL",
        params::none,
    );
    pub const MIGRATION_IMAGE_LOCKSTEP: RuleInfo = rule(
        super::MIGRATION_IMAGE_LOCKSTEP,
        Action::Deny,
        "a migration Job and its app workload run the same image tag/digest",
        "code ships against a schema that was migrated by another release: outages or data loss",
        params::lockstep,
    );
    pub const IMAGE_TAG_PINNED: RuleInfo = rule(
        super::IMAGE_TAG_PINNED,
        Action::Warn,
        "images of labelled workloads carry a pinned tag or digest",
        "a floating tag (latest) lets the app and its migration drift apart between pulls",
        params::image_tag,
    );
    pub const DB_URL_PLAINTEXT: RuleInfo = rule(
        super::DB_URL_PLAINTEXT,
        Action::Deny,
        "no env var holds a literal connection URI with a password",
        "credentials in manifests end up in git, in Argo CD's UI and in every audit log",
        params::none,
    );
    pub const DB_URL_SOURCE: RuleInfo = rule(
        super::DB_URL_SOURCE,
        Action::Warn,
        "an existing DB_URL comes from a secretKeyRef to the expected Secret",
        "a hand-written DB_URL keeps pointing at the old database after a switchover or rename",
        params::none,
    );
    pub const MIGRATION_JOB_REPLACEABLE: RuleInfo = rule(
        super::MIGRATION_JOB_REPLACEABLE,
        Action::Warn,
        "a migration Job that is not a hook can be applied again next release (generateName, tag in the name, Replace=true)",
        "a fixed-name Job gets a new image next release; its pod template is immutable and the sync fails",
        params::none,
    );
    pub const CLUSTER_EXISTS: RuleInfo = rule(
        super::CLUSTER_EXISTS,
        Action::Warn,
        "the dbhook.io/cluster label names a CNPG Cluster in the namespace",
        "pods reference <cluster>-app, which never appears: they hang in CreateContainerConfigError",
        params::none,
    );
    pub const APP_SECRET_HAS_KEY: RuleInfo = rule(
        super::APP_SECRET_HAS_KEY,
        Action::Warn,
        "the referenced key exists in the app Secret",
        "a user-supplied bootstrap Secret has only username/password: pods fail on the missing uri key",
        params::none,
    );
    pub const BACKUP_CONFIGURED: RuleInfo = rule(
        super::BACKUP_CONFIGURED,
        Action::Deny,
        "a CNPG Cluster archives WAL (barmanObjectStore or an archiver plugin); replicas warn",
        "without WAL archiving there is no point-in-time recovery: a bad migration is unrecoverable",
        params::backup_configured,
    );
    pub const BACKUP_RETENTION: RuleInfo = rule(
        super::BACKUP_RETENTION,
        Action::Deny,
        "backup retention is set and within policy (minDays, maxDays)",
        "without retention the bucket grows forever, or backups expire before anyone notices a problem",
        params::retention,
    );
    pub const BACKUP_COMPRESSION: RuleInfo = rule(
        super::BACKUP_COMPRESSION,
        Action::Warn,
        "WAL and data compression are set to values CNPG accepts",
        "uncompressed WAL multiplies storage and transfer cost; an invalid value breaks archiving",
        params::compression,
    );
    pub const BACKUP_S3_COMPAT_CHECKSUMS: RuleInfo = rule(
        super::BACKUP_S3_COMPAT_CHECKSUMS,
        Action::Warn,
        "S3-compatible (non-AWS) stores set the AWS checksum env vars to when_required",
        "newer AWS SDKs send checksums MinIO, R2 and OCI reject: WAL archiving fails silently",
        params::checksums,
    );
    pub const BACKUP_IN_TREE_DEPRECATED: RuleInfo = rule(
        super::BACKUP_IN_TREE_DEPRECATED,
        Action::Warn,
        "in-tree barmanObjectStore (backup, externalClusters) is deprecated; use the Barman Cloud plugin",
        "in-tree Barman support is planned for removal in CNPG 1.31: upgrades will break backups",
        params::none,
    );
    pub const BACKUP_STORE_EXISTS: RuleInfo = rule(
        super::BACKUP_STORE_EXISTS,
        Action::Warn,
        "the plugin's barmanObjectName names an existing ObjectStore",
        "the plugin cannot archive to a store that does not exist: WAL piles up on the volume",
        params::none,
    );
    pub const SCHEDULED_BACKUP_PRESENT: RuleInfo = rule(
        super::SCHEDULED_BACKUP_PRESENT,
        Action::Deny,
        "a Cluster with backup configured has a ScheduledBackup",
        "WAL alone cannot restore: without base backups recovery replays from nothing",
        params::none,
    );
    pub const SCHEDULED_BACKUP_SCHEDULE: RuleInfo = rule(
        super::SCHEDULED_BACKUP_SCHEDULE,
        Action::Deny,
        "the schedule parses as CNPG reads it: six fields, seconds first, and fires at all",
        "a five-field schedule such as \"0 2 * * *\" runs hourly, not daily",
        params::schedule,
    );
    pub const SCHEDULED_BACKUP_COVERAGE: RuleInfo = rule(
        super::SCHEDULED_BACKUP_COVERAGE,
        Action::Deny,
        "the ScheduledBackups of a Cluster together back it up at least every maxIntervalHours",
        "a weekly backup alone, or a suspended daily one, leaves days of changes without a base backup",
        params::coverage,
    );
    pub const SCHEDULED_BACKUP_TARGET: RuleInfo = rule(
        super::SCHEDULED_BACKUP_TARGET,
        Action::Warn,
        "a ScheduledBackup targets an existing Cluster with a method it supports",
        "a backup aimed at a missing cluster or an unconfigured method fails every night, unseen",
        params::none,
    );
}

/// Every rule, in the order of docs/rules.md.
pub const CATALOG: &[RuleInfo] = &[
    entry::INJECTION_CONFIG,
    entry::MIGRATION_IMAGE_LOCKSTEP,
    entry::IMAGE_TAG_PINNED,
    entry::DB_URL_PLAINTEXT,
    entry::DB_URL_SOURCE,
    entry::MIGRATION_JOB_REPLACEABLE,
    entry::CLUSTER_EXISTS,
    entry::APP_SECRET_HAS_KEY,
    entry::BACKUP_CONFIGURED,
    entry::BACKUP_RETENTION,
    entry::BACKUP_COMPRESSION,
    entry::BACKUP_S3_COMPAT_CHECKSUMS,
    entry::BACKUP_IN_TREE_DEPRECATED,
    entry::BACKUP_STORE_EXISTS,
    entry::SCHEDULED_BACKUP_PRESENT,
    entry::SCHEDULED_BACKUP_SCHEDULE,
    entry::SCHEDULED_BACKUP_COVERAGE,
    entry::SCHEDULED_BACKUP_TARGET,
];

// Ids are unique: the rule table pairs checks with entries by position, so a duplicate id
// would make two checks report under one name.
const _: () = assert!(ids_are_unique(CATALOG), "duplicate rule id in CATALOG");

/// No two entries of `list` share an id (a `const` check of [`CATALOG`]).
pub const fn ids_are_unique(list: &[RuleInfo]) -> bool {
    let mut i = 0;
    while i < list.len() {
        // Each entry against the ones before it.
        let mut j = 0;
        while j < i {
            if same_id(list[i].id, list[j].id) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// String equality for `const` checks.
pub const fn same_id(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub fn find(id: &str) -> Option<&'static RuleInfo> {
    CATALOG.iter().find(|r| r.id == id)
}

/// Interns a rule id from input (an exemption, a policy key) to its static form.
pub fn id(id: &str) -> Option<&'static str> {
    find(id).map(|r| r.id)
}
