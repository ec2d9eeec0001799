//! What `dbhook explain <rule-id>` prints beyond the catalog entry: parameters with defaults,
//! how to fix, and a passing and a failing example. One entry per catalog id (a test keeps them
//! in step); the examples are checked by the engine in tests, so they cannot rot.

/// A rule parameter in the policy (`rules.<id>.<name>`).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// The explain entry of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Explain {
    pub id: &'static str,
    /// Parameters besides the common `action`, `allowExemption` and `allowExistingViolations`.
    pub params: &'static [Param],
    pub fix: &'static str,
    /// Manifests (multi-document YAML) the rule accepts, checked as a complete input.
    pub passing: &'static str,
    /// Manifests the rule reports, checked as a complete input.
    pub failing: &'static str,
}

/// The keys every rule takes.
pub const COMMON_PARAMS: &[Param] = &[
    Param {
        name: "action",
        default: "(the rule's default)",
        meaning: "deny, warn or \"off\"",
    },
    Param {
        name: "allowExemption",
        default: "false",
        meaning: "honour dbhook.io/exempt on an object (bounded by dbhook.io/exempt-until)",
    },
    Param {
        name: "allowExistingViolations",
        default: "true",
        meaning: "on UPDATE, a denial the old object already had is only a warning",
    },
];

pub fn find(id: &str) -> Option<&'static Explain> {
    EXPLAINED.iter().find(|e| e.id == id)
}

const fn p(name: &'static str, default: &'static str, meaning: &'static str) -> Param {
    Param { name, default, meaning }
}

use super::catalog as c;

/// Every rule, in catalog order. Adding a rule: add its entry here.
pub const EXPLAINED: &[Explain] = &[
    Explain {
        id: c::INJECTION_CONFIG,
        params: &[],
        fix: "Correct the dbhook.io/ annotation the message names: dbhook.io/env-name must be a C identifier \
              (DATABASE_URL, not database-url), dbhook.io/secret-name a DNS-1123 name, dbhook.io/secret-key \
              non-empty, and dbhook.io/containers must list containers of the pod template.",
        passing: "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
  annotations: {dbhook.io/env-name: DATABASE_URL}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
        failing: "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
  annotations: {dbhook.io/env-name: database-url}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
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
        passing: "apiVersion: batch/v1
kind: Job
metadata:
  name: web-migrate
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
  annotations: {argocd.argoproj.io/hook: PreSync}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: 'ghcr.io/acme/web:sha-2222222'}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-2222222'}]
",
        failing: "apiVersion: batch/v1
kind: Job
metadata:
  name: web-migrate
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
  annotations: {argocd.argoproj.io/hook: PreSync}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: 'ghcr.io/acme/web:sha-1111111'}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-2222222'}]
",
    },
    Explain {
        id: c::IMAGE_TAG_PINNED,
        params: &[
            p("forbiddenTags", "[latest]", "tags that float and never count as pinned"),
            p("tagPattern", "none", "a regular expression every tag must match"),
        ],
        fix: "Deploy a release tag (sha-<commit>, a version) or a digest (@sha256:…) instead of a floating tag.",
        passing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
        failing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:latest'}]
",
    },
    Explain {
        id: c::DB_URL_PLAINTEXT,
        params: &[],
        fix: "Remove the literal value and read the URI from a Secret with valueFrom.secretKeyRef; for a \
              labelled workload, remove the variable and let dbhook inject DB_URL from <cluster>-app. \
              Rotate the password: it has been in your manifests.",
        passing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'ghcr.io/acme/web:sha-1a2b3c4'
          env: [{name: DB_URL, valueFrom: {secretKeyRef: {name: shop-pg-app, key: uri}}}]
",
        failing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'ghcr.io/acme/web:sha-1a2b3c4'
          env: [{name: DB_URL, value: 'postgresql://app:PASSWORD@shop-pg-rw:5432/app'}]
",
    },
    Explain {
        id: c::DB_URL_SOURCE,
        params: &[],
        fix: "Point the variable at the CNPG app Secret (secretKeyRef <cluster>-app / uri, or what \
              dbhook.io/secret-name and dbhook.io/secret-key say), or remove it and let dbhook inject it.",
        passing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'ghcr.io/acme/web:sha-1a2b3c4'
          env: [{name: DB_URL, valueFrom: {secretKeyRef: {name: shop-pg-app, key: uri}}}]
",
        failing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'ghcr.io/acme/web:sha-1a2b3c4'
          env: [{name: DB_URL, valueFrom: {secretKeyRef: {name: old-db, key: url}}}]
",
    },
    Explain {
        id: c::MIGRATION_JOB_REPLACEABLE,
        params: &[],
        fix: "A Job's pod template is immutable: the next release changes its image and the sync fails with \
              \"field is immutable\". Make the migration an Argo CD PreSync (or Helm pre-upgrade) hook, give it \
              generateName or a per-release name that contains the image tag, or add \
              argocd.argoproj.io/sync-options: Replace=true.",
        passing: "apiVersion: batch/v1
kind: Job
metadata:
  name: web-migrate-sha-2222222
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg, dbhook.io/role: migration}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: 'ghcr.io/acme/web:sha-2222222'}]
",
        failing: "apiVersion: batch/v1
kind: Job
metadata:
  name: web-migrate
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg, dbhook.io/role: migration}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: 'ghcr.io/acme/web:sha-2222222'}]
",
    },
    Explain {
        id: c::CLUSTER_EXISTS,
        params: &[],
        fix: "Fix the dbhook.io/cluster label to name a CNPG Cluster of the workload's namespace, or create that Cluster.",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec: {instances: 3}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
        failing: "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pgg}}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
    },
    Explain {
        id: c::APP_SECRET_HAS_KEY,
        params: &[],
        fix: "A Cluster bootstrapped with your own app Secret has no <cluster>-app Secret and no uri key: \
              set dbhook.io/secret-name to your Secret and dbhook.io/secret-key to password (or a key it has).",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  bootstrap: {initdb: {database: app, owner: app, secret: {name: shop-app-user}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {dbhook.io/cluster: shop-pg}
  annotations: {dbhook.io/secret-name: shop-app-user, dbhook.io/secret-key: password, dbhook.io/env-name: PGPASSWORD}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  bootstrap: {initdb: {database: app, owner: app, secret: {name: shop-app-user}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {dbhook.io/cluster: shop-pg}}
spec:
  template:
    spec:
      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]
",
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
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec: {instances: 3}
",
    },
    Explain {
        id: c::BACKUP_RETENTION,
        params: &[
            p("minDays", "7", "the shortest retention allowed (m counts as 30 days)"),
            p("maxDays", "none", "the longest retention allowed"),
        ],
        fix: "Set retentionPolicy (on the ObjectStore, or spec.backup.retentionPolicy in-tree) to a value \
              like 30d, 4w or 3m within minDays and maxDays.",
        passing: "apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration: {destinationPath: 's3://backups/shop'}
",
        failing: "apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 3d
  configuration: {destinationPath: 's3://backups/shop'}
",
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
        passing: "apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: 's3://backups/shop'
    wal: {compression: gzip}
    data: {compression: gzip}
",
        failing: "apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: 's3://backups/shop'
    wal: {compression: zip}
    data: {compression: gzip}
",
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
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  storage: {size: 10Gi}
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: 's3://backups/shop'
    endpointURL: 'https://minio.storage.svc:9000'
    wal: {compression: gzip}
    data: {compression: gzip}
  instanceSidecarConfiguration:
    env:
      - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_required}
      - {name: AWS_RESPONSE_CHECKSUM_VALIDATION, value: when_required}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  storage: {size: 10Gi}
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: 's3://backups/shop'
    endpointURL: 'https://minio.storage.svc:9000'
    wal: {compression: gzip}
    data: {compression: gzip}
",
    },
    Explain {
        id: c::BACKUP_IN_TREE_DEPRECATED,
        params: &[],
        fix: "Move spec.backup.barmanObjectStore into a barmancloud.cnpg.io/v1 ObjectStore and use it through \
              the Barman Cloud plugin (spec.plugins, isWALArchiver: true).",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  backup:
    retentionPolicy: 30d
    barmanObjectStore:
      destinationPath: 's3://backups/shop'
      wal: {compression: gzip}
      data: {compression: gzip}
",
    },
    Explain {
        id: c::BACKUP_STORE_EXISTS,
        params: &[],
        fix: "Create the ObjectStore named by parameters.barmanObjectName in the Cluster's namespace, or fix the name.",
        passing: "apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: shop-backups, namespace: shop}
spec:
  retentionPolicy: 30d
  configuration: {destinationPath: 's3://backups/shop'}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backup}
",
    },
    Explain {
        id: c::SCHEDULED_BACKUP_PRESENT,
        params: &[],
        fix: "Add a ScheduledBackup whose spec.cluster.name names the Cluster (a daily base backup, six-field schedule).",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 0 2 * * *'
  cluster: {name: shop-pg}
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
",
    },
    Explain {
        id: c::SCHEDULED_BACKUP_SCHEDULE,
        params: &[],
        fix: "Write the schedule with six fields, seconds first, as CNPG reads it: \"0 0 2 * * *\" is daily at 02:00.",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 0 2 * * *'
  cluster: {name: shop-pg}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 2 * * *'
  cluster: {name: shop-pg}
",
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
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  storage: {size: 10Gi}
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-store}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 0 2 * * *'
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
  cluster: {name: shop-pg}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-weekly, namespace: shop}
spec:
  schedule: '0 0 3 * * 0'
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
  cluster: {name: shop-pg}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  storage: {size: 10Gi}
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-store}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-weekly, namespace: shop}
spec:
  schedule: '0 0 3 * * 0'
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
  cluster: {name: shop-pg}
",
    },
    Explain {
        id: c::SCHEDULED_BACKUP_TARGET,
        params: &[],
        fix: "Name an existing Cluster in spec.cluster.name, and use a method it is configured for \
              (plugin with the plugin in the Cluster's spec.plugins; barmanObjectStore with spec.backup.barmanObjectStore).",
        passing: "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shop-pg, namespace: shop}
spec:
  instances: 3
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: shop-backups}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 0 2 * * *'
  cluster: {name: shop-pg}
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
",
        failing: "apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: shop-pg-daily, namespace: shop}
spec:
  schedule: '0 0 2 * * *'
  cluster: {name: shop-pgg}
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::check_documents;
    use crate::policy::Policy;
    use crate::rules::CATALOG;

    fn rules_reported(yaml: &str) -> Vec<&'static str> {
        let docs = crate::manifest::parse("example.yaml", yaml).expect("the example parses");
        let checked =
            check_documents(&docs, &Policy::default(), true, chrono::Utc::now()).expect("the example decodes");
        checked.report.findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn every_catalog_rule_has_explain_content_and_nothing_else_does() {
        for r in CATALOG {
            let e = find(r.id).unwrap_or_else(|| panic!("{} has no explain entry", r.id));
            assert_eq!(e.id, r.id, "the entry found is the rule's own");
            assert!(
                !e.fix.trim().is_empty() && !e.passing.is_empty() && !e.failing.is_empty(),
                "{}",
                r.id
            );
        }
        assert!(find("no-such-rule").is_none());
        for e in EXPLAINED {
            assert!(
                crate::rules::catalog::find(e.id).is_some(),
                "{} is not in the catalog",
                e.id
            );
        }
    }

    #[test]
    fn each_failing_example_breaks_its_rule_and_each_passing_example_does_not() {
        for e in EXPLAINED {
            assert!(
                rules_reported(e.failing).contains(&e.id),
                "{}: the failing example passes",
                e.id
            );
            let passing = rules_reported(e.passing);
            assert!(
                !passing.contains(&e.id),
                "{}: the passing example fails: {passing:?}",
                e.id
            );
        }
    }

    #[test]
    fn documented_parameters_are_parameters_the_policy_accepts() {
        for e in EXPLAINED {
            for param in e.params {
                // An unknown key is an error naming it; a known one with a bad value names it too,
                // so probe with null, which every optional parameter accepts or rejects by name.
                let yaml = format!("rules: {{{}: {{{}: null}}}}", e.id, param.name);
                if let Err(err) = Policy::from_yaml(&yaml) {
                    assert!(!err.to_string().contains("unknown"), "{}.{}: {err}", e.id, param.name);
                }
            }
        }
    }
}
