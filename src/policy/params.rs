//! Per-rule parameters: typed, defaulted, and rejected when unknown or out of range.

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::catalog as ids;

#[derive(Debug, Clone)]
pub struct Params {
    pub migration_image_lockstep: LockstepParams,
    pub image_tag_pinned: ImageTagParams,
    pub backup_retention: RetentionParams,
    pub backup_compression: CompressionParams,
    pub scheduled_backup_schedule: ScheduleParams,
    pub scheduled_backup_coverage: CoverageParams,
    pub backup_configured: BackupConfiguredParams,
    pub backup_s3_compat_checksums: ChecksumParams,
    /// Keys the file uses that still work but have moved; shown when the policy is loaded.
    pub deprecations: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            migration_image_lockstep: LockstepParams {
                lockstep_memory_minutes: 60,
                ignore_repositories: Vec::new(),
            },
            image_tag_pinned: ImageTagParams {
                forbidden_tags: vec!["latest".to_string()],
                tag_pattern: None,
            },
            backup_retention: RetentionParams {
                min_days: 7,
                max_days: None,
            },
            backup_compression: CompressionParams { allowed: None },
            scheduled_backup_schedule: ScheduleParams { max_interval_hours: 24 },
            scheduled_backup_coverage: CoverageParams {
                max_interval_hours: None,
            },
            backup_configured: BackupConfiguredParams {
                allow_volume_snapshot_only: false,
            },
            backup_s3_compat_checksums: ChecksumParams {
                ignore_endpoints: Vec::new(),
            },
            deprecations: Vec::new(),
        }
    }
}

impl Params {
    /// `scheduled-backup-coverage`'s limit; a policy that still sets it on
    /// `scheduled-backup-schedule` keeps its meaning.
    pub fn coverage_max_interval_hours(&self) -> u32 {
        self.scheduled_backup_coverage
            .max_interval_hours
            .unwrap_or(self.scheduled_backup_schedule.max_interval_hours)
    }
}

#[derive(Debug, Clone)]
pub struct LockstepParams {
    /// How long a migration Job deleted by its hook policy is still paired with.
    pub lockstep_memory_minutes: u64,
    /// Repositories never compared (shared utility images such as a database proxy).
    pub ignore_repositories: Vec<super::image_glob::Glob>,
}

#[derive(Debug, Clone)]
pub struct ImageTagParams {
    pub forbidden_tags: Vec<String>,
    pub tag_pattern: Option<Regex>,
}

#[derive(Debug, Clone)]
pub struct RetentionParams {
    pub min_days: u32,
    pub max_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct CompressionParams {
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct ScheduleParams {
    /// Deprecated here: read through [`Params::coverage_max_interval_hours`].
    pub max_interval_hours: u32,
}

#[derive(Debug, Clone)]
pub struct CoverageParams {
    /// Unset: the deprecated `scheduled-backup-schedule` value, default 24.
    pub max_interval_hours: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct BackupConfiguredParams {
    /// A Cluster backed up by volume snapshots only is a warning instead of a denial.
    pub allow_volume_snapshot_only: bool,
}

#[derive(Debug, Clone)]
pub struct ChecksumParams {
    /// Host globs (`*` any run of characters, `?` one) of S3-compatible stores known to be fine.
    pub ignore_endpoints: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLockstep {
    lockstep_memory_minutes: Option<u64>,
    ignore_repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawImageTag {
    forbidden_tags: Option<Vec<String>>,
    tag_pattern: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRetention {
    min_days: Option<u32>,
    max_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCompression {
    allowed: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSchedule {
    max_interval_hours: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBackupConfigured {
    allow_volume_snapshot_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawChecksums {
    ignore_endpoints: Option<Vec<String>>,
}

fn max_interval_hours(h: u32) -> Result<u32, ParamError> {
    if h == 0 {
        return Err(ParamError::ZeroInterval);
    }
    Ok(h)
}

/// Deserializes with the failing key named: the error is `<key.path>: <problem>` (an unknown
/// key too: serde reaches it as a path segment and says what it expected instead).
pub(super) fn decode<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ParamError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            ParamError::Shape(inner)
        } else {
            ParamError::Value { path, problem: inner }
        }
    })
}

/// A rule parameter that cannot be applied; the message starts with the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// What serde says about the parameters as a whole (e.g. not a mapping).
    #[error("{0}")]
    Shape(String),
    #[error("{path}: {problem}")]
    Value { path: String, problem: String },
    #[error("maxIntervalHours: must be at least 1")]
    ZeroInterval,
    #[error("ignoreRepositories[{index}]: invalid glob {glob:?}: {source}")]
    Glob {
        index: usize,
        glob: String,
        #[source]
        source: super::image_glob::GlobError,
    },
    #[error("tagPattern: invalid regex: {0}")]
    TagPattern(#[source] regex::Error),
    #[error("maxDays: {max} is below minDays {min}")]
    MaxBelowMin { max: u32, min: u32 },
    #[error("allowed: {given:?} is not a CNPG compression ({known})")]
    Compression { given: String, known: String },
    #[error("ignoreEndpoints: {0:?} is not a host glob")]
    EndpointGlob(String),
    #[error("{0}: unknown key (this rule takes only action, allowExemption and allowExistingViolations)")]
    NoParams(String),
}

/// `migration-image-lockstep`.
pub(super) fn lockstep(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawLockstep = decode(Value::Object(map))?;
    if let Some(m) = raw.lockstep_memory_minutes {
        p.migration_image_lockstep.lockstep_memory_minutes = m;
    }
    if let Some(globs) = raw.ignore_repositories {
        p.migration_image_lockstep.ignore_repositories = globs
            .iter()
            .enumerate()
            .map(|(i, g)| {
                super::image_glob::Glob::new(g).map_err(|source| ParamError::Glob {
                    index: i,
                    glob: g.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// `image-tag-pinned`.
pub(super) fn image_tag(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawImageTag = decode(Value::Object(map))?;
    if let Some(t) = raw.forbidden_tags {
        p.image_tag_pinned.forbidden_tags = t;
    }
    if let Some(pattern) = raw.tag_pattern {
        let re = Regex::new(&pattern).map_err(ParamError::TagPattern)?;
        p.image_tag_pinned.tag_pattern = Some(re);
    }
    Ok(())
}

/// `backup-retention`.
pub(super) fn retention(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawRetention = decode(Value::Object(map))?;
    let p = &mut p.backup_retention;
    if let Some(d) = raw.min_days {
        p.min_days = d;
    }
    p.max_days = raw.max_days.or(p.max_days);
    if let Some(max) = p.max_days
        && max < p.min_days
    {
        return Err(ParamError::MaxBelowMin { max, min: p.min_days });
    }
    Ok(())
}

/// `backup-compression`.
pub(super) fn compression(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawCompression = decode(Value::Object(map))?;
    if let Some(allowed) = raw.allowed {
        const KNOWN: [&str; 6] = ["bzip2", "gzip", "lz4", "snappy", "xz", "zstd"];
        if let Some(bad) = allowed.iter().find(|a| !KNOWN.contains(&a.as_str())) {
            return Err(ParamError::Compression {
                given: bad.clone(),
                known: KNOWN.join(", "),
            });
        }
        p.backup_compression.allowed = Some(allowed);
    }
    Ok(())
}

/// `scheduled-backup-schedule`: its `maxIntervalHours` is deprecated in favour of
/// `scheduled-backup-coverage`'s.
pub(super) fn schedule(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawSchedule = decode(Value::Object(map))?;
    if let Some(h) = raw.max_interval_hours {
        p.scheduled_backup_schedule.max_interval_hours = max_interval_hours(h)?;
        p.deprecations.push(format!(
            "rules.{}.maxIntervalHours is deprecated: the gap between backups is judged per Cluster \
             by {}; move the key there (until then it applies there)",
            ids::SCHEDULED_BACKUP_SCHEDULE,
            ids::SCHEDULED_BACKUP_COVERAGE
        ));
    }
    Ok(())
}

/// `scheduled-backup-coverage`.
pub(super) fn coverage(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawSchedule = decode(Value::Object(map))?;
    if let Some(h) = raw.max_interval_hours {
        p.scheduled_backup_coverage.max_interval_hours = Some(max_interval_hours(h)?);
    }
    Ok(())
}

/// `backup-configured`.
pub(super) fn backup_configured(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawBackupConfigured = decode(Value::Object(map))?;
    if let Some(b) = raw.allow_volume_snapshot_only {
        p.backup_configured.allow_volume_snapshot_only = b;
    }
    Ok(())
}

/// `backup-s3-compat-checksums`.
pub(super) fn checksums(p: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    let raw: RawChecksums = decode(Value::Object(map))?;
    if let Some(globs) = raw.ignore_endpoints {
        if let Some(bad) = globs.iter().find(|g| g.trim().is_empty()) {
            return Err(ParamError::EndpointGlob(bad.clone()));
        }
        p.backup_s3_compat_checksums.ignore_endpoints = globs;
    }
    Ok(())
}

/// A rule without parameters: any key is unknown.
pub(super) fn none(_: &mut Params, map: Map<String, Value>) -> Result<(), ParamError> {
    match map.keys().next() {
        Some(key) => Err(ParamError::NoParams(key.clone())),
        None => Ok(()),
    }
}
