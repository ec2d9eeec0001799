//! The parts of CloudNativePG and Barman Cloud plugin resources the backup rules read.
//!
//! Every field is optional and unknown fields are ignored, so CRD version drift does not break
//! decoding; the rules decide what a missing field means.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use serde::Deserialize;

/// The plugin name CNPG uses for the Barman Cloud plugin.
pub const BARMAN_PLUGIN: &str = "barman-cloud.cloudnative-pg.io";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSpec {
    pub backup: Option<BackupConfiguration>,
    pub plugins: Vec<PluginConfiguration>,
    pub env: Vec<EnvVar>,
    pub bootstrap: Option<Bootstrap>,
    /// `spec.replica`: a replica cluster follows another one and may have no archive of its own.
    pub replica: Option<ReplicaConfiguration>,
    /// The operand image; its tag says which flavour (`-minimal-`, `-standard-`) it is.
    pub image_name: Option<String>,
    pub external_clusters: Vec<ExternalCluster>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReplicaConfiguration {
    pub enabled: Option<bool>,
    pub primary: Option<String>,
    #[serde(rename = "self")]
    pub self_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalCluster {
    pub name: String,
    pub barman_object_store: Option<BarmanObjectStore>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupConfiguration {
    pub barman_object_store: Option<BarmanObjectStore>,
    pub retention_policy: Option<String>,
    /// `spec.backup.volumeSnapshot`; only its presence matters to the rules.
    pub volume_snapshot: Option<serde_json::Value>,
}

/// `BarmanObjectStoreConfiguration`: the same shape in-tree and in an ObjectStore's
/// `spec.configuration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BarmanObjectStore {
    pub destination_path: Option<String>,
    #[serde(rename = "endpointURL")]
    pub endpoint_url: Option<String>,
    pub s3_credentials: Option<serde_json::Value>,
    pub azure_credentials: Option<serde_json::Value>,
    pub google_credentials: Option<serde_json::Value>,
    pub wal: Option<Compression>,
    pub data: Option<Compression>,
}

impl BarmanObjectStore {
    /// Azure and GCS stores carry their own credentials blocks; anything else (including a
    /// store with only `s3Credentials` or none) talks the S3 protocol.
    pub fn is_s3(&self) -> bool {
        let path = self.destination_path.as_deref().unwrap_or("");
        self.azure_credentials.is_none()
            && self.google_credentials.is_none()
            && !path.starts_with("gs://")
            && !path.starts_with("https://") // Azure blob URLs
            && !path.starts_with("http://")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Compression {
    pub compression: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginConfiguration {
    pub name: String,
    pub enabled: Option<bool>,
    #[serde(rename = "isWALArchiver")]
    pub is_wal_archiver: Option<bool>,
    pub parameters: BTreeMap<String, String>,
}

impl PluginConfiguration {
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }
    /// Enabled and designated as the WAL archiver; CNPG accepts one archiver of any name.
    pub fn is_wal_archiver(&self) -> bool {
        self.is_wal_archiver == Some(true) && self.is_enabled()
    }
    pub fn is_barman_wal_archiver(&self) -> bool {
        self.name == BARMAN_PLUGIN && self.is_wal_archiver()
    }
    pub fn barman_object_name(&self) -> Option<&str> {
        self.parameters.get("barmanObjectName").map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Bootstrap {
    pub initdb: Option<BootstrapMethod>,
    pub recovery: Option<BootstrapMethod>,
    pub pg_basebackup: Option<BootstrapMethod>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BootstrapMethod {
    pub secret: Option<LocalRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LocalRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScheduledBackupSpec {
    pub schedule: Option<String>,
    pub cluster: Option<LocalRef>,
    /// `barmanObjectStore` (CNPG's default when unset), `volumeSnapshot` or `plugin`.
    pub method: Option<String>,
    pub plugin_configuration: Option<LocalRef>,
    pub suspend: Option<bool>,
    /// `spec.immediate`: one backup right after creation; it does not make a schedule.
    pub immediate: Option<bool>,
}

impl ScheduledBackupSpec {
    /// `spec.cluster.name`, when set to a non-empty value.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.name.trim()).filter(|n| !n.is_empty())
    }
    /// The backup method, with CNPG's default applied.
    pub fn method_or_default(&self) -> &str {
        self.method
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("barmanObjectStore")
    }
    pub fn is_suspended(&self) -> bool {
        self.suspend == Some(true)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectStoreSpec {
    pub configuration: Option<BarmanObjectStore>,
    pub retention_policy: Option<String>,
    pub instance_sidecar_configuration: Option<SidecarConfiguration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SidecarConfiguration {
    pub env: Vec<EnvVar>,
}

impl ClusterSpec {
    /// The in-tree store, if configured.
    pub fn in_tree_store(&self) -> Option<&BarmanObjectStore> {
        self.backup.as_ref()?.barman_object_store.as_ref()
    }
    /// The Barman Cloud plugin entry that archives WAL, if any.
    pub fn barman_plugin(&self) -> Option<&PluginConfiguration> {
        self.plugins.iter().find(|p| p.is_barman_wal_archiver())
    }
    /// The enabled plugin entry designated as WAL archiver (Barman Cloud, pgBackRest, any
    /// CNPG-I archiver), if any.
    pub fn wal_archiver(&self) -> Option<&PluginConfiguration> {
        self.plugins.iter().find(|p| p.is_wal_archiver())
    }
    /// WAL archiving is configured, in-tree or through an archiver plugin of any name.
    pub fn archives_wal(&self) -> bool {
        self.in_tree_store().is_some() || self.wal_archiver().is_some()
    }
    /// CNPG's `IsReplica()`: `spec.replica.enabled` when set; otherwise the cluster is a replica
    /// unless `spec.replica.primary` names itself (`spec.replica.self`, default its own name).
    pub fn is_replica(&self, own_name: &str) -> bool {
        let Some(r) = &self.replica else { return false };
        if let Some(enabled) = r.enabled {
            return enabled;
        }
        let me = r.self_name.as_deref().filter(|s| !s.is_empty()).unwrap_or(own_name);
        r.primary.as_deref().unwrap_or("") != me
    }
    /// Where in-tree Barman configuration is used: `spec.backup.barmanObjectStore` and every
    /// `spec.externalClusters[i].barmanObjectStore`, with their paths.
    pub fn in_tree_stores(&self) -> impl Iterator<Item = (String, &BarmanObjectStore)> {
        let own = self
            .in_tree_store()
            .map(|s| ("spec.backup.barmanObjectStore".to_string(), s));
        let external = self.external_clusters.iter().enumerate().filter_map(|(i, e)| {
            let s = e.barman_object_store.as_ref()?;
            Some((format!("spec.externalClusters[{i}].barmanObjectStore"), s))
        });
        own.into_iter().chain(external)
    }
    /// `spec.backup.volumeSnapshot` is set (and not null).
    pub fn has_volume_snapshot(&self) -> bool {
        self.backup
            .as_ref()
            .and_then(|b| b.volume_snapshot.as_ref())
            .is_some_and(|v| !v.is_null())
    }
    /// An enabled `spec.plugins[]` entry with this name, whatever its role.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfiguration> {
        self.plugins.iter().find(|p| p.name == name && p.enabled != Some(false))
    }
    /// The name of a user-supplied app Secret from whichever bootstrap method is set.
    ///
    /// Returns `(method, secret name)`; the precedence is CNPG's `GetApplicationSecretName`:
    /// recovery, then pg_basebackup, then initdb. With such a Secret CNPG does not create
    /// `<cluster>-app`.
    pub fn user_app_secret(&self) -> Option<(&'static str, &str)> {
        let b = self.bootstrap.as_ref()?;
        [
            ("recovery", &b.recovery),
            ("pg_basebackup", &b.pg_basebackup),
            ("initdb", &b.initdb),
        ]
        .into_iter()
        .find_map(|(method, m)| {
            let name = m.as_ref()?.secret.as_ref()?.name.trim();
            (!name.is_empty()).then_some((method, name))
        })
    }
    /// Barman Cloud plugin entries that are not disabled, WAL archiver or not.
    pub fn barman_plugins(&self) -> impl Iterator<Item = (usize, &PluginConfiguration)> {
        self.plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == BARMAN_PLUGIN && p.enabled != Some(false))
    }
}
