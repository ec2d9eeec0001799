//! The policy file (README.md, "Policy"): schema, embedded default, validation and mode resolution.

pub mod catalog;
pub mod image_glob;
mod params;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use catalog::{CATALOG, RuleInfo};
pub use params::{
    BackupConfiguredParams, ChecksumParams, CompressionParams, CoverageParams, ImageTagParams, LockstepParams,
    ParamError, Params, RetentionParams, ScheduleParams,
};

/// The embedded default policy, printed by `dbhook policy`.
pub const DEFAULT_POLICY_YAML: &str = include_str!("default.yaml");

pub const API_VERSION: &str = "dbhook.io/v1alpha1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deny,
    Warn,
    Off,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Off => "off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Injection {
    #[serde(default = "default_env_name")]
    pub env_name: String,
    #[serde(default = "default_secret_key")]
    pub secret_key: String,
}

fn default_env_name() -> String {
    "DB_URL".to_string()
}
fn default_secret_key() -> String {
    "uri".to_string()
}

impl Default for Injection {
    fn default() -> Self {
        Injection {
            env_name: default_env_name(),
            secret_key: default_secret_key(),
        }
    }
}

/// How one rule is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSetting {
    pub action: Action,
    pub allow_exemption: bool,
    /// On UPDATE, a deny finding the old object already had is only a warning; only what the
    /// update introduces denies.
    pub allow_existing_violations: bool,
}

/// A validated policy. Build it with [`Policy::from_yaml`] or [`Policy::default`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub allow_namespace_mode: bool,
    pub injection: Injection,
    pub exclude_namespaces: Vec<String>,
    settings: BTreeMap<&'static str, RuleSetting>,
    pub params: Params,
    pub exemptions: Exemptions,
}

/// How `dbhook.io/exempt-until` is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exemptions {
    /// Days before the expiry during which an exemption still applies but warns.
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
    /// An exemption without `dbhook.io/exempt-until` does not apply.
    #[serde(default)]
    pub require_expiry: bool,
    /// An expiry further ahead than this many days does not apply.
    #[serde(default)]
    pub max_days: Option<u32>,
}

fn default_warn_days() -> u32 {
    14
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            warn_days: default_warn_days(),
            require_expiry: false,
            max_days: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is not valid YAML: {0}")]
    Yaml(String),
    #[error("policy: {0}")]
    Invalid(String),
}

/// A policy file that cannot be used; every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        /// Shared: the reloader keeps the failed read to compare it with the next one.
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("{}: not UTF-8: {source}", path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

/// A `rules.<id>` entry that cannot be applied; shown after `rules.<id>.`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum RuleEntryError {
    #[error("action: expected a mapping, got {0}")]
    NotAMapping(Value),
    #[error("action: {0} is not one of deny, warn, off (quote \"off\": a bare on/off is a YAML 1.1 boolean)")]
    Action(Value),
    #[error("{key}: {value} is not a boolean")]
    NotABoolean { key: &'static str, value: Value },
    #[error(transparent)]
    Params(#[from] ParamError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    api_version: Option<String>,
    kind: Option<String>,
    mode: Option<Mode>,
    allow_namespace_mode: Option<bool>,
    injection: Option<Injection>,
    exclude_namespaces: Option<Vec<String>>,
    /// Also accepted as a parameter of `migration-image-lockstep`, which wins.
    lockstep_memory_minutes: Option<u64>,
    exemptions: Option<Value>,
    #[serde(default)]
    rules: BTreeMap<String, Value>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Enforce,
            allow_namespace_mode: true,
            injection: Injection::default(),
            exclude_namespaces: vec!["kube-system".to_string()],
            settings: CATALOG
                .iter()
                .map(|r| {
                    (
                        r.id,
                        RuleSetting {
                            action: r.default_action,
                            allow_exemption: false,
                            allow_existing_violations: true,
                        },
                    )
                })
                .collect(),
            params: Params::default(),
            exemptions: Exemptions::default(),
        }
    }
}

impl Policy {
    /// Reads and validates the policy file at `path`: `dbhook check`, `mutate` and `serve` all
    /// load `--policy` here. Deprecation notes are in `params.deprecations` for the caller to
    /// show the way it shows things.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyFileError> {
        let bytes = std::fs::read(path).map_err(|source| PolicyFileError::Read {
            path: path.to_path_buf(),
            source: Arc::new(source),
        })?;
        Policy::from_file_contents(path, &bytes)
    }

    /// [`Policy::from_file`] over bytes already read from `path` (the reloader reads the file
    /// itself to notice changes).
    pub fn from_file_contents(path: &Path, bytes: &[u8]) -> Result<Policy, PolicyFileError> {
        let text = std::str::from_utf8(bytes).map_err(|source| PolicyFileError::NotUtf8 {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_yaml(text).map_err(|source| PolicyFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses and validates a policy document; every error names the offending key.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Yaml(e.to_string()))?;
        if value.is_null() {
            return Err(PolicyError::Invalid("the document is empty".into()));
        }
        let raw: RawPolicy = params::decode(value).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let mut policy = Policy::default();
        if let Some(v) = raw.api_version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(PolicyError::Invalid(format!(
                "apiVersion: expected {API_VERSION}, got {v}"
            )));
        }
        if let Some(k) = raw.kind.as_deref().filter(|k| *k != "Policy") {
            return Err(PolicyError::Invalid(format!("kind: expected Policy, got {k}")));
        }
        if let Some(m) = raw.mode {
            policy.mode = m;
        }
        if let Some(a) = raw.allow_namespace_mode {
            policy.allow_namespace_mode = a;
        }
        if let Some(inj) = raw.injection {
            if !crate::model::names::is_c_identifier(&inj.env_name) {
                return Err(PolicyError::Invalid(format!(
                    "injection.envName: {:?} is not a valid environment variable name (C identifier)",
                    inj.env_name
                )));
            }
            if inj.secret_key.trim().is_empty() {
                return Err(PolicyError::Invalid("injection.secretKey: must not be empty".into()));
            }
            policy.injection = inj;
        }
        if let Some(ns) = raw.exclude_namespaces {
            policy.exclude_namespaces = ns;
        }
        if let Some(m) = raw.lockstep_memory_minutes {
            policy.params.migration_image_lockstep.lockstep_memory_minutes = m;
        }
        if let Some(e) = raw.exemptions {
            policy.exemptions = params::decode(e).map_err(|e| PolicyError::Invalid(format!("exemptions.{e}")))?;
        }
        for (id, entry) in raw.rules {
            let Some(info) = catalog::find(&id) else {
                return Err(PolicyError::Invalid(format!(
                    "rules.{id}: unknown rule id (see `dbhook rules`)"
                )));
            };
            let setting = policy
                .parse_rule(info, entry)
                .map_err(|e| PolicyError::Invalid(format!("rules.{id}.{e}")))?;
            policy.settings.insert(info.id, setting);
        }
        Ok(policy)
    }

    fn parse_rule(&mut self, info: &'static RuleInfo, entry: Value) -> Result<RuleSetting, RuleEntryError> {
        let mut map = match entry {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            // `rule-id: deny` is a natural shorthand; `false` is a bare `off` as Helm reads it.
            Value::String(_) | Value::Bool(false) => {
                let mut m = serde_json::Map::new();
                m.insert("action".into(), entry);
                m
            }
            other => return Err(RuleEntryError::NotAMapping(other)),
        };
        let default = self.setting(info.id);
        let action = match map.remove("action") {
            None => default.action,
            // YAML 1.1 readers (Helm values, kubectl) turn a bare `off` into `false` before
            // dbhook sees the document; `true` (a bare `on` or `yes`) has no such meaning.
            Some(Value::Bool(false)) => Action::Off,
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| RuleEntryError::Action(v))?,
        };
        let allow_exemption = match map.remove("allowExemption") {
            None => default.allow_exemption,
            Some(Value::Bool(b)) => b,
            Some(value) => {
                return Err(RuleEntryError::NotABoolean {
                    key: "allowExemption",
                    value,
                });
            }
        };
        let allow_existing_violations = match map.remove("allowExistingViolations") {
            None => default.allow_existing_violations,
            Some(Value::Bool(b)) => b,
            Some(value) => {
                return Err(RuleEntryError::NotABoolean {
                    key: "allowExistingViolations",
                    value,
                });
            }
        };
        (info.params)(&mut self.params, map).map_err(RuleEntryError::Params)?;
        Ok(RuleSetting {
            action,
            allow_exemption,
            allow_existing_violations,
        })
    }

    pub fn setting(&self, id: &str) -> RuleSetting {
        self.settings.get(id).copied().unwrap_or(RuleSetting {
            action: Action::Off,
            allow_exemption: false,
            allow_existing_violations: true,
        })
    }

    pub fn action(&self, id: &str) -> Action {
        self.setting(id).action
    }

    pub fn is_excluded(&self, namespace: &str) -> bool {
        self.exclude_namespaces.iter().any(|n| n == namespace)
    }

    /// The policy's mode unless the namespace label overrides it and the policy allows
    /// that. An unrecognised label value keeps the policy mode.
    pub fn mode_for(&self, namespace_label: Option<&str>) -> Mode {
        match namespace_label.and_then(Mode::parse) {
            Some(m) if self.allow_namespace_mode => m,
            _ => self.mode,
        }
    }
}

#[cfg(test)]
mod tests;
