//! The explain entry of every rule: parameters, how to fix, a passing and a failing example.

use super::{Explain, Param};
use crate::rules::catalog as c;

const fn p(name: &'static str, default: &'static str, meaning: &'static str) -> Param {
    Param { name, default, meaning }
}

/// Every rule, in catalog order. Adding a rule: add its entry here and its examples under
/// `examples/<rule-id>/` (manifests as a user writes them; the tests run each through the engine).
pub const EXPLAINED: &[Explain] = &[
    Explain {
        id: c::INJECTION_CONFIG,
        params: &[],
        fix: "Correct the dbhook.io/ annotation the message names: dbhook.io/env-name must be a C identifier \
              (DATABASE_URL, not database-url), dbhook.io/secret-name a DNS-1123 name, dbhook.io/secret-key \
              non-empty, and dbhook.io/containers must list containers of the pod template.",
        passing: include_str!("examples/injection-config/passing.yaml"),
        failing: include_str!("examples/injection-config/failing.yaml"),
    },
    Explain {
        id: c::MIGRATION_IMAGE_LOCKSTEP,
        params: &[
            p(
                "lockstepMemoryMinutes",
                "60",
                "how long a migration Job deleted by its hook policy is still compared with",
            ),
            p(
                "ignoreRepositories",
                "[]",
                "image repositories (globs) never compared, e.g. a shared proxy sidecar",
            ),
        ],
        fix: "Build the migration Job and the app from the same release: give both the same tag or digest \
              (one CI variable for both). A Job of another repository pairs through dbhook.io/rollout, \
              with dbhook.io/lockstep: tag when the migrations image carries the app's tag.",
        passing: include_str!("examples/migration-image-lockstep/passing.yaml"),
        failing: include_str!("examples/migration-image-lockstep/failing.yaml"),
    },
    Explain {
        id: c::IMAGE_TAG_PINNED,
        params: &[
            p("forbiddenTags", "[latest]", "tags that float and never count as pinned"),
            p("tagPattern", "none", "a regular expression every tag must match"),
        ],
        fix: "Deploy a release tag (sha-<commit>, a version) or a digest (@sha256:…) instead of a floating tag.",
        passing: include_str!("examples/image-tag-pinned/passing.yaml"),
        failing: include_str!("examples/image-tag-pinned/failing.yaml"),
    },
    Explain {
        id: c::DB_URL_PLAINTEXT,
        params: &[],
        fix: "Remove the literal value and read the URI from a Secret with valueFrom.secretKeyRef; for a \
              labelled workload, remove the variable and let dbhook inject DB_URL from <cluster>-app. \
              Rotate the password: it has been in your manifests.",
        passing: include_str!("examples/db-url-plaintext/passing.yaml"),
        failing: include_str!("examples/db-url-plaintext/failing.yaml"),
    },
    Explain {
        id: c::DB_URL_SOURCE,
        params: &[],
        fix: "Point the variable at the CNPG app Secret (secretKeyRef <cluster>-app / uri, or what \
              dbhook.io/secret-name and dbhook.io/secret-key say), or remove it and let dbhook inject it.",
        passing: include_str!("examples/db-url-source/passing.yaml"),
        failing: include_str!("examples/db-url-source/failing.yaml"),
    },
    Explain {
        id: c::MIGRATION_JOB_REPLACEABLE,
        params: &[],
        fix: "A Job's pod template is immutable: the next release changes its image and the sync fails with \
              \"field is immutable\". Make the migration an Argo CD PreSync (or Helm pre-upgrade) hook, give it \
              generateName or a per-release name that contains the image tag, or add \
              argocd.argoproj.io/sync-options: Replace=true.",
        passing: include_str!("examples/migration-job-replaceable/passing.yaml"),
        failing: include_str!("examples/migration-job-replaceable/failing.yaml"),
    },
    Explain {
        id: c::CLUSTER_EXISTS,
        params: &[],
        fix: "Fix the dbhook.io/cluster label to name a CNPG Cluster of the workload's namespace, or create that Cluster.",
        passing: include_str!("examples/cluster-exists/passing.yaml"),
        failing: include_str!("examples/cluster-exists/failing.yaml"),
    },
    Explain {
        id: c::APP_SECRET_HAS_KEY,
        params: &[],
        fix: "A Cluster bootstrapped with your own app Secret has no <cluster>-app Secret and no uri key: \
              set dbhook.io/secret-name to your Secret and dbhook.io/secret-key to password (or a key it has).",
        passing: include_str!("examples/app-secret-has-key/passing.yaml"),
        failing: include_str!("examples/app-secret-has-key/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_CONFIGURED,
        params: &[p(
            "allowVolumeSnapshotOnly",
            "false",
            "a Cluster backed up by volume snapshots alone (no WAL archive) is only a warning",
        )],
        fix: "Archive WAL: add the Barman Cloud plugin (spec.plugins with isWALArchiver: true and an \
              ObjectStore), or another CNPG-I archiver.",
        passing: include_str!("examples/backup-configured/passing.yaml"),
        failing: include_str!("examples/backup-configured/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_RETENTION,
        params: &[
            p("minDays", "7", "the shortest retention allowed (m counts as 30 days)"),
            p("maxDays", "none", "the longest retention allowed"),
        ],
        fix: "Set retentionPolicy (on the ObjectStore, or spec.backup.retentionPolicy in-tree) to a value \
              like 30d, 4w or 3m within minDays and maxDays.",
        passing: include_str!("examples/backup-retention/passing.yaml"),
        failing: include_str!("examples/backup-retention/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_COMPRESSION,
        params: &[p(
            "allowed",
            "any value CNPG accepts",
            "the compression algorithms allowed",
        )],
        fix: "Set wal.compression and data.compression (gzip, lz4, snappy, bzip2, xz or zstd for WAL; \
              data without xz and zstd).",
        passing: include_str!("examples/backup-compression/passing.yaml"),
        failing: include_str!("examples/backup-compression/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_S3_COMPAT_CHECKSUMS,
        params: &[p(
            "ignoreEndpoints",
            "[]",
            "endpoint host globs known to work without the variables (e.g. *.amazonaws.com mirrors)",
        )],
        fix: "Set AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \
              in the ObjectStore's spec.instanceSidecarConfiguration.env (or the Cluster's spec.env).",
        passing: include_str!("examples/backup-s3-compat-checksums/passing.yaml"),
        failing: include_str!("examples/backup-s3-compat-checksums/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_IN_TREE_DEPRECATED,
        params: &[],
        fix: "Move spec.backup.barmanObjectStore into a barmancloud.cnpg.io/v1 ObjectStore and use it through \
              the Barman Cloud plugin (spec.plugins, isWALArchiver: true).",
        passing: include_str!("examples/backup-in-tree-deprecated/passing.yaml"),
        failing: include_str!("examples/backup-in-tree-deprecated/failing.yaml"),
    },
    Explain {
        id: c::BACKUP_STORE_EXISTS,
        params: &[],
        fix: "Create the ObjectStore named by parameters.barmanObjectName in the Cluster's namespace, or fix the name.",
        passing: include_str!("examples/backup-store-exists/passing.yaml"),
        failing: include_str!("examples/backup-store-exists/failing.yaml"),
    },
    Explain {
        id: c::SCHEDULED_BACKUP_PRESENT,
        params: &[],
        fix: "Add a ScheduledBackup whose spec.cluster.name names the Cluster (a daily base backup, six-field schedule).",
        passing: include_str!("examples/scheduled-backup-present/passing.yaml"),
        failing: include_str!("examples/scheduled-backup-present/failing.yaml"),
    },
    Explain {
        id: c::SCHEDULED_BACKUP_SCHEDULE,
        params: &[],
        fix: "Write the schedule with six fields, seconds first, as CNPG reads it: \"0 0 2 * * *\" is daily at 02:00.",
        passing: include_str!("examples/scheduled-backup-schedule/passing.yaml"),
        failing: include_str!("examples/scheduled-backup-schedule/failing.yaml"),
    },
    Explain {
        id: c::SCHEDULED_BACKUP_COVERAGE,
        params: &[p(
            "maxIntervalHours",
            "24",
            "the longest gap allowed between two base backups of one Cluster, over all its ScheduledBackups",
        )],
        fix: "Give the Cluster a ScheduledBackup that fires at least every maxIntervalHours (a daily \"0 0 2 * * *\" \
              beside a weekly full backup is enough), not suspended, with a method the Cluster supports.",
        passing: include_str!("examples/scheduled-backup-coverage/passing.yaml"),
        failing: include_str!("examples/scheduled-backup-coverage/failing.yaml"),
    },
    Explain {
        id: c::SCHEDULED_BACKUP_TARGET,
        params: &[],
        fix: "Name an existing Cluster in spec.cluster.name, and use a method it is configured for \
              (plugin with the plugin in the Cluster's spec.plugins; barmanObjectStore with spec.backup.barmanObjectStore).",
        passing: include_str!("examples/scheduled-backup-target/passing.yaml"),
        failing: include_str!("examples/scheduled-backup-target/failing.yaml"),
    },
];
