//! The rule ids of docs/rules.md with their default actions and one-line summaries.

use crate::policy::Action;

#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub default_action: Action,
    pub summary: &'static str,
    /// What goes wrong in production without the rule; shown by `dbhook rules --why` and the README.
    pub why: &'static str,
}

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

const fn rule(id: &'static str, default_action: Action, summary: &'static str, why: &'static str) -> RuleInfo {
    RuleInfo {
        id,
        default_action,
        summary,
        why,
    }
}

/// Every rule, in the order of docs/rules.md.
pub const CATALOG: &[RuleInfo] = &[
    rule(
        INJECTION_CONFIG,
        Action::Deny,
        "dbhook annotations on a labelled workload are usable (env name, Secret name, key, containers)",
        "a typo in an annotation silently skips the injection and the pod starts without DB_URL",
    ),
    rule(
        MIGRATION_IMAGE_LOCKSTEP,
        Action::Deny,
        "a migration Job and its app workload run the same image tag/digest",
        "code ships against a schema that was migrated by another release: outages or data loss",
    ),
    rule(
        IMAGE_TAG_PINNED,
        Action::Warn,
        "images of labelled workloads carry a pinned tag or digest",
        "a floating tag (latest) lets the app and its migration drift apart between pulls",
    ),
    rule(
        DB_URL_PLAINTEXT,
        Action::Deny,
        "no env var holds a literal connection URI with a password",
        "credentials in manifests end up in git, in Argo CD's UI and in every audit log",
    ),
    rule(
        DB_URL_SOURCE,
        Action::Warn,
        "an existing DB_URL comes from a secretKeyRef to the expected Secret",
        "a hand-written DB_URL keeps pointing at the old database after a switchover or rename",
    ),
    rule(
        MIGRATION_JOB_REPLACEABLE,
        Action::Warn,
        "a migration Job that is not a hook can be applied again next release (generateName, tag in the name, Replace=true)",
        "a fixed-name Job gets a new image next release; its pod template is immutable and the sync fails",
    ),
    rule(
        CLUSTER_EXISTS,
        Action::Warn,
        "the dbhook.io/cluster label names a CNPG Cluster in the namespace",
        "pods reference <cluster>-app, which never appears: they hang in CreateContainerConfigError",
    ),
    rule(
        APP_SECRET_HAS_KEY,
        Action::Warn,
        "the referenced key exists in the app Secret",
        "a user-supplied bootstrap Secret has only username/password: pods fail on the missing uri key",
    ),
    rule(
        BACKUP_CONFIGURED,
        Action::Deny,
        "a CNPG Cluster archives WAL (barmanObjectStore or an archiver plugin); replicas warn",
        "without WAL archiving there is no point-in-time recovery: a bad migration is unrecoverable",
    ),
    rule(
        BACKUP_RETENTION,
        Action::Deny,
        "backup retention is set and within policy (minDays, maxDays)",
        "without retention the bucket grows forever, or backups expire before anyone notices a problem",
    ),
    rule(
        BACKUP_COMPRESSION,
        Action::Warn,
        "WAL and data compression are set to values CNPG accepts",
        "uncompressed WAL multiplies storage and transfer cost; an invalid value breaks archiving",
    ),
    rule(
        BACKUP_S3_COMPAT_CHECKSUMS,
        Action::Warn,
        "S3-compatible (non-AWS) stores set the AWS checksum env vars to when_required",
        "newer AWS SDKs send checksums MinIO, R2 and OCI reject: WAL archiving fails silently",
    ),
    rule(
        BACKUP_IN_TREE_DEPRECATED,
        Action::Warn,
        "in-tree barmanObjectStore (backup, externalClusters) is deprecated; use the Barman Cloud plugin",
        "in-tree Barman support is planned for removal in CNPG 1.31: upgrades will break backups",
    ),
    rule(
        BACKUP_STORE_EXISTS,
        Action::Warn,
        "the plugin's barmanObjectName names an existing ObjectStore",
        "the plugin cannot archive to a store that does not exist: WAL piles up on the volume",
    ),
    rule(
        SCHEDULED_BACKUP_PRESENT,
        Action::Deny,
        "a Cluster with backup configured has a ScheduledBackup",
        "WAL alone cannot restore: without base backups recovery replays from nothing",
    ),
    rule(
        SCHEDULED_BACKUP_SCHEDULE,
        Action::Deny,
        "the schedule parses as CNPG reads it: six fields, seconds first, and fires at all",
        "a five-field schedule such as \"0 2 * * *\" runs hourly, not daily",
    ),
    rule(
        SCHEDULED_BACKUP_COVERAGE,
        Action::Deny,
        "the ScheduledBackups of a Cluster together back it up at least every maxIntervalHours",
        "a weekly backup alone, or a suspended daily one, leaves days of changes without a base backup",
    ),
    rule(
        SCHEDULED_BACKUP_TARGET,
        Action::Warn,
        "a ScheduledBackup targets an existing Cluster with a method it supports",
        "a backup aimed at a missing cluster or an unconfigured method fails every night, unseen",
    ),
];

pub fn find(id: &str) -> Option<&'static RuleInfo> {
    CATALOG.iter().find(|r| r.id == id)
}

/// Interns a rule id from input (an exemption, a policy key) to its static form.
pub fn id(id: &str) -> Option<&'static str> {
    find(id).map(|r| r.id)
}
