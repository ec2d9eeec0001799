//! The Prometheus metrics listed in README.md, "The webhook server": one registry for the process, shared by the server and
//! the cluster view.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

// Label sets: small structs of `&'static str`, so counting a review allocates nothing. Label
// names and their order are the fields'.

/// `dbhook_admission_requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub webhook: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    /// allowed|denied|patched|error.
    pub result: &'static str,
}

/// `dbhook_admission_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: &'static str,
}

/// `dbhook_findings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: &'static str,
    pub action: &'static str,
    pub mode: &'static str,
    #[prometheus(flatten)]
    pub state: StateLabel,
}

/// An optional `state` label: absent on ordinary findings, so that the series dashboards
/// already query keep their label set; `pre-existing` on those an UPDATE's old object had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StateLabel(pub Option<&'static str>);

impl EncodeLabelSet for StateLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match self.0 {
            None => Ok(()),
            Some(state) => [("state", state)].encode(encoder),
        }
    }
}

/// `dbhook_patches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// `dbhook_tls_reloads`, `dbhook_policy_reloads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

impl ResultLabels {
    pub const SUCCESS: ResultLabels = ResultLabels { result: "success" };
    pub const ERROR: ResultLabels = ResultLabels { result: "error" };
}

/// `dbhook_view_synced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: &'static str,
}

/// `dbhook_report_findings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RuleActionLabels {
    pub rule: &'static str,
    pub action: &'static str,
}

/// `dbhook_exemptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ExemptionLabels {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// `webhook`, `kind`, `operation`, `result` (allowed|denied|patched|error).
    pub admission_requests: Family<RequestLabels, Counter>,
    /// `webhook`.
    pub admission_duration: Family<WebhookLabels, Histogram>,
    /// `rule`, `action`, `mode`; findings an UPDATE's old object already had (warned, not
    /// denied) also carry `state="pre-existing"`.
    pub findings: Family<FindingLabels, Counter>,
    /// `kind`.
    pub patches: Family<KindLabels, Counter>,
    /// `result` (success|error).
    pub tls_reloads: Family<ResultLabels, Counter>,
    pub tls_cert_expiry: Gauge,
    /// `result` (success|error).
    pub policy_reloads: Family<ResultLabels, Counter>,
    /// `resource`: 1 once the watch has synced, 0 otherwise.
    pub view_synced: Family<ResourceLabels, Gauge>,
    /// `rule`, `action`: findings in the current background report.
    pub report_findings: Family<RuleActionLabels, Gauge>,
    /// `state` (active|expiring|expired): exemptions of the watched objects, per object and rule.
    pub exemptions: Family<ExemptionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn duration_histogram() -> Histogram {
    // 100 µs … ~3 s: admission decisions are sub-millisecond, the apiserver budget is seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 16,
    ))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let admission_requests = Family::default();
        let admission_duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        let findings = Family::default();
        let patches = Family::default();
        let tls_reloads = Family::default();
        let tls_cert_expiry = Gauge::default();
        let policy_reloads = Family::default();
        let view_synced = Family::default();
        let report_findings = Family::default();
        let exemptions = Family::default();
        registry.register(
            "dbhook_admission_requests",
            "Admission reviews answered",
            admission_requests.clone(),
        );
        registry.register(
            "dbhook_admission_duration_seconds",
            "Time to answer one admission review",
            admission_duration.clone(),
        );
        registry.register("dbhook_findings", "Rule findings reported", findings.clone());
        registry.register(
            "dbhook_patches",
            "Objects patched with the DB_URL injection",
            patches.clone(),
        );
        registry.register("dbhook_tls_reloads", "Serving certificate reloads", tls_reloads.clone());
        registry.register(
            "dbhook_tls_cert_expiry_timestamp_seconds",
            "Expiry of the serving certificate (Unix time)",
            tls_cert_expiry.clone(),
        );
        registry.register("dbhook_policy_reloads", "Policy file reloads", policy_reloads.clone());
        registry.register(
            "dbhook_view_synced",
            "Whether the watch cache of a resource has synced (1) or not (0)",
            view_synced.clone(),
        );
        registry.register(
            "dbhook_report_findings",
            "Findings in the background report over every watched object",
            report_findings.clone(),
        );
        registry.register(
            "dbhook_exemptions",
            "Exemptions of the watched objects by state (active, expiring within warnDays, expired)",
            exemptions.clone(),
        );
        Metrics {
            registry,
            admission_requests,
            admission_duration,
            findings,
            patches,
            tls_reloads,
            tls_cert_expiry,
            policy_reloads,
            view_synced,
            report_findings,
            exemptions,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
