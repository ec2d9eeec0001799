//! The explain entry of every rule: parameters, how to fix, a passing and a failing example.

use super::{Explain, Param};
use crate::rules::catalog as c;

const fn p(name: &'static str, default: &'static str, meaning: &'static str) -> Param {
    Param { name, default, meaning }
}

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
