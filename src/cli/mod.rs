//! The `dbhook` command line: flags (each with a `DBHOOK_*` env var) parsed into plain configs.

pub mod check;
mod evidence_text;
pub mod explain;
pub mod formats;
pub mod mutate;
pub mod openreports;
pub mod output;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cluster::{ClusterOptions, ReportsOptions};
use crate::policy::{Mode, Policy, PolicyFileError};
use crate::server::certs::CertsConfig;
use crate::server::{ServeConfig, StartError, Stopped};

#[derive(Debug, Parser)]
#[command(
    name = "dbhook",
    version,
    about = "Admission webhook and CI gate for CloudNativePG apps: injects DB_URL, keeps migrations in lockstep, enforces backup policy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS admission webhook (POST /mutate, /validate) and the admin server.
    Serve(ServeArgs),
    /// Apply the policy to manifest files, as a CI gate. Exit 0: no deny finding; 1: deny findings; 2: input error.
    Check(CheckArgs),
    /// Print the input with DB_URL injected (a stdin→stdout filter for Helm post-rendering and kustomize).
    Mutate(MutateArgs),
    /// Write a CA and a serving certificate for the webhook Service; prints the base64 CA bundle.
    Certs(CertsArgs),
    /// Print the embedded default policy.
    Policy,
    /// List rule ids, default actions and summaries.
    Rules(RulesArgs),
    /// Explain a rule: what it checks and why, its parameters, how to fix, a passing and a failing example.
    Explain(ExplainArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The rule id (see `dbhook rules`).
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTPS listen address for the webhook endpoints.
    #[arg(long, env = "DBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: String,
    /// Listen address for /livez, /readyz, /metrics and /report (plain HTTP, or HTTPS with
    /// --admin-tls).
    #[arg(long, env = "DBHOOK_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: String,
    /// Serving certificate chain (PEM); reloaded when the file changes.
    #[arg(long, env = "DBHOOK_TLS_CERT", required_unless_present = "dev")]
    pub tls_cert: Option<PathBuf>,
    /// Serving private key (PEM); reloaded with the certificate.
    #[arg(long, env = "DBHOOK_TLS_KEY", required_unless_present = "dev")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) for client certificates; when set, clients must present one it signed.
    #[arg(long, env = "DBHOOK_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Policy file (YAML); reloaded on change. Default: the embedded policy (`dbhook policy`).
    #[arg(long, env = "DBHOOK_POLICY")]
    pub policy: Option<PathBuf>,
    /// Run without the Kubernetes API: every lookup of another object is unknown.
    #[arg(long, env = "DBHOOK_STANDALONE")]
    pub standalone: bool,
    /// Development mode: self-signed CA and cert for localhost in certs/dev/, reused while valid;
    /// implies --standalone unless --kubeconfig or KUBECONFIG names a kubeconfig (never ~/.kube/config).
    #[arg(long, env = "DBHOOK_DEV")]
    pub dev: bool,
    /// Log format: json (default in a cluster) or text (default on a terminal).
    #[arg(long, env = "DBHOOK_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds to finish in-flight requests after SIGTERM.
    #[arg(long, env = "DBHOOK_SHUTDOWN_TIMEOUT", default_value_t = 20)]
    pub shutdown_timeout: u64,
    /// Kubeconfig file for the cluster view (default: in-cluster config, then KUBECONFIG or
    /// ~/.kube/config; with --dev, only this flag or KUBECONFIG).
    #[arg(long, env = "DBHOOK_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds without contact with the API server after which "absent" answers become "unknown".
    #[arg(long, env = "DBHOOK_VIEW_STALENESS", default_value_t = 300)]
    pub view_staleness: u64,
    /// Seconds a single admission review may take before it is answered with an error; keep it
    /// below the webhook configurations' timeoutSeconds (chart default 5).
    #[arg(long, env = "DBHOOK_REQUEST_TIMEOUT", default_value_t = 4)]
    pub request_timeout: u64,
    /// Require a bearer token for /metrics too, checked like /report's (TokenReview and
    /// SubjectAccessReview for `get` on /metrics). Without a cluster (standalone) it stays open.
    #[arg(long, env = "DBHOOK_METRICS_AUTH")]
    pub metrics_auth: bool,
    /// Serve the admin port over HTTPS with the serving certificate (--tls-cert/--tls-key,
    /// reloaded with it); probes and scrapers then use https.
    #[arg(long, env = "DBHOOK_ADMIN_TLS")]
    pub admin_tls: bool,
    /// How long readiness waits for each watched resource to sync (e.g. 60s, 90, 2m). A resource
    /// not synced by then (API server unreachable, 403, 5xx) is reported degraded on
    /// /readyz?verbose and served as unknown, which never denies, until it syncs.
    #[arg(
        long,
        env = "DBHOOK_SYNC_TIMEOUT",
        default_value = "60s",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = parse_sync_timeout
    )]
    pub sync_timeout: SyncTimeout,
    /// Write the background report as OpenReports (openreports.io/v1alpha1 Report per namespace)
    /// by server-side apply; needs the OpenReports CRD (without it: logged once, stays off).
    #[arg(long, env = "DBHOOK_REPORTS")]
    pub reports: bool,
    /// The most results one Report holds; the summary still counts the rest.
    #[arg(long, env = "DBHOOK_REPORTS_MAX_RESULTS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub reports_max_results: u64,
}

impl ServeArgs {
    /// The flags as the server takes them.
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            addr: self.addr.clone(),
            admin_addr: self.admin_addr.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            client_ca: self.client_ca.clone(),
            policy: self.policy.clone(),
            standalone: self.standalone,
            dev: self.dev,
            log_format: self.log_format.map(|f| match f {
                LogFormat::Json => crate::server::LogFormat::Json,
                LogFormat::Text => crate::server::LogFormat::Text,
            }),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            kubeconfig: self.kubeconfig.clone(),
            request_timeout: Duration::from_secs(self.request_timeout),
            metrics_auth: self.metrics_auth,
            admin_tls: self.admin_tls,
            cluster: ClusterOptions {
                staleness: Duration::from_secs(self.view_staleness),
                sync_timeout: self.sync_timeout.0,
                reports: self.reports.then(|| ReportsOptions {
                    max_results: usize::try_from(self.reports_max_results).unwrap_or(usize::MAX),
                    ..ReportsOptions::default()
                }),
                ..ClusterOptions::default()
            },
        }
    }
}

/// `--sync-timeout`: a positive duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTimeout(pub Duration);

/// Why a `--sync-timeout` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncTimeoutError {
    #[error("{0:?} is not a duration: use whole seconds or minutes, e.g. 60s, 90 or 2m")]
    NotADuration(String),
    #[error("{0:?} is too long: at most 24h")]
    TooLong(String),
    #[error("must be more than 0 (a zero timeout would serve every resource as unknown at start)")]
    Zero,
}

/// Whole seconds with an optional `s`, `m` or `h` unit; zero, negative and fractional values
/// are refused (a zero timeout would make every resource degraded at start).
fn parse_sync_timeout(s: &str) -> Result<SyncTimeout, SyncTimeoutError> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h'))) => (&t[..i], c),
        _ => (t, 's'),
    };
    let usage = || SyncTimeoutError::NotADuration(s.to_string());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage());
    }
    let n: u64 = digits.parse().map_err(|_| usage())?;
    let secs = match unit {
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        _ => Some(n),
    }
    .filter(|&v| v <= 86_400)
    .ok_or_else(|| SyncTimeoutError::TooLong(s.to_string()))?;
    if secs == 0 {
        return Err(SyncTimeoutError::Zero);
    }
    Ok(SyncTimeout(Duration::from_secs(secs)))
}

/// `DBHOOK_OUTPUT` names no output format of `check`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DBHOOK_OUTPUT={value:?} is not an output format of check: use one of {allowed}")]
pub struct UnknownOutput {
    pub value: String,
    /// The formats, comma-separated.
    pub allowed: String,
}

impl CheckArgs {
    /// `--output`, else DBHOOK_CHECK_OUTPUT (both read by clap), else DBHOOK_OUTPUT, else text.
    pub fn output_format(&self) -> Result<OutputFormat, UnknownOutput> {
        if let Some(f) = self.output {
            return Ok(f);
        }
        match std::env::var("DBHOOK_OUTPUT") {
            Ok(v) if !v.is_empty() => <OutputFormat as ValueEnum>::from_str(&v, false).map_err(|_| {
                let allowed: Vec<String> = OutputFormat::value_variants()
                    .iter()
                    .filter_map(|f| f.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                UnknownOutput {
                    value: v.clone(),
                    allowed: allowed.join(", "),
                }
            }),
            _ => Ok(OutputFormat::Text),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Sarif,
    /// JUnit XML (GitLab, Jenkins): one test case per object and rule checked.
    Junit,
    /// GitHub Actions workflow commands: annotations on the files' lines.
    Github,
    /// OpenReports (openreports.io/v1alpha1) Report documents, one per namespace.
    Openreports,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Files or directories (*.yaml, *.yml, *.json, recursively); `-` or nothing reads stdin.
    pub paths: Vec<PathBuf>,
    /// Policy file (default: the embedded policy).
    #[arg(long, env = "DBHOOK_POLICY")]
    pub policy: Option<PathBuf>,
    /// Override the policy mode: audit reports findings and always exits 0.
    #[arg(long, env = "DBHOOK_MODE", value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// The input is the whole picture: objects it does not contain are absent, not unknown.
    #[arg(long, env = "DBHOOK_COMPLETE")]
    pub complete: bool,
    /// Output format [default: text]. Also read from DBHOOK_OUTPUT, which DBHOOK_CHECK_OUTPUT
    /// overrides.
    #[arg(long, short, env = "DBHOOK_CHECK_OUTPUT", value_enum)]
    pub output: Option<OutputFormat>,
    /// Namespace of objects that carry none, as `kubectl apply -n` (kustomize, Flux and Argo CD
    /// set it at deploy time). Its variable is DBHOOK_CHECK_NAMESPACE: DBHOOK_NAMESPACE is
    /// `certs`'.
    #[arg(long, short, env = "DBHOOK_CHECK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Text output: show under each finding what dbhook observed, what would pass and which
    /// other objects it consulted.
    #[arg(long, env = "DBHOOK_EXPLAIN")]
    pub explain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct MutateArgs {
    /// Files or directories; `-` or nothing reads stdin.
    pub paths: Vec<PathBuf>,
    /// Policy file (default: the embedded policy).
    #[arg(long, env = "DBHOOK_POLICY")]
    pub policy: Option<PathBuf>,
    /// Output format of the documents.
    #[arg(long, short, env = "DBHOOK_MUTATE_OUTPUT", value_enum, default_value = "yaml")]
    pub output: DocFormat,
}

impl CertsArgs {
    /// The flags as `certs` takes them.
    pub fn config(&self) -> CertsConfig {
        CertsConfig {
            service: self.service.clone(),
            namespace: self.namespace.clone(),
            out: self.out.clone(),
            days: self.days,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Name of the webhook Service.
    #[arg(long, env = "DBHOOK_SERVICE", default_value = "dbhook")]
    pub service: String,
    /// Namespace of the webhook Service.
    #[arg(long, env = "DBHOOK_NAMESPACE", default_value = "dbhook")]
    pub namespace: String,
    /// Directory for ca.crt, ca.key, tls.crt and tls.key.
    #[arg(long, env = "DBHOOK_OUT", default_value = "certs")]
    pub out: PathBuf,
    /// Validity of the certificates in days.
    #[arg(long, env = "DBHOOK_DAYS", default_value_t = 365)]
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, short, env = "DBHOOK_RULES_OUTPUT", value_enum, default_value = "text")]
    pub output: RulesFormat,
}

/// `--mode` names no mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a mode: use enforce or audit")]
pub struct UnknownMode(String);

fn parse_mode(s: &str) -> Result<Mode, UnknownMode> {
    Mode::parse(s).ok_or_else(|| UnknownMode(s.to_string()))
}

/// Loads `--policy` or the embedded default; the error names the file.
pub fn load_policy(path: Option<&std::path::Path>) -> Result<Policy, PolicyFileError> {
    match path {
        None => Ok(Policy::default()),
        Some(p) => {
            let policy = Policy::from_file(p)?;
            for note in &policy.params.deprecations {
                eprintln!("dbhook: note: {}: {note}", p.display());
            }
            Ok(policy)
        }
    }
}

/// Reads the manifests of `check` and `mutate`, saying on stderr which walked files it skipped.
pub fn load_manifests(
    paths: &[std::path::PathBuf],
) -> Result<Vec<crate::manifest::Document>, crate::manifest::InputError> {
    let loaded = crate::manifest::load(paths)?;
    for skipped in &loaded.skipped {
        eprintln!("dbhook: skipped {skipped}");
    }
    Ok(loaded.docs)
}

/// Exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    /// `check`: an object would be denied.
    pub const DENY: u8 = 1;
    /// The environment failed: an address in use, no API server, a second signal during the
    /// drain.
    pub const FAILED: u8 = 1;
    /// What the user can fix: flags, files, input.
    pub const INPUT: u8 = 2;
}

/// Why a command failed. Commands turn their errors into this, and [`Failure::exit_code`] is
/// the one place errors become exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Certs(#[from] crate::server::certs::CertsError),
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    #[error(transparent)]
    Input(#[from] crate::manifest::InputError),
    #[error(transparent)]
    Output(#[from] UnknownOutput),
    #[error(transparent)]
    UnknownRule(#[from] explain::UnknownRule),
    /// stdout went away (a closed pipe): nothing to say, the reader is gone.
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Start(e) if e.is_environment() => exit::FAILED,
            Failure::Start(_)
            | Failure::Certs(_)
            | Failure::Policy(_)
            | Failure::Input(_)
            | Failure::Output(_)
            | Failure::UnknownRule(_)
            | Failure::Write(_) => exit::INPUT,
        }
    }

    /// Says why on stderr, after `prefix` (`dbhook`, `dbhook serve`), and returns the exit code.
    pub fn report(self, prefix: &str) -> u8 {
        if !matches!(self, Failure::Write(_)) {
            eprintln!("{prefix}: {self}");
        }
        self.exit_code()
    }
}

/// `dbhook serve`: 0 after a drain, 1 when cut short or the environment refused, 2 for what
/// the user can fix.
pub fn serve(args: &ServeArgs) -> u8 {
    match crate::server::main(args.config()) {
        Ok(Stopped::Drained) => exit::OK,
        Ok(Stopped::Interrupted) => exit::FAILED,
        Err(e) => Failure::from(e).report("dbhook serve"),
    }
}

/// `dbhook certs`: the base64 CA bundle on stdout, what was written on stderr.
pub fn certs(args: &CertsArgs) -> u8 {
    let config = args.config();
    match crate::server::certs::run(&config) {
        Ok(bundle) => {
            eprintln!(
                "dbhook certs: wrote ca.crt, ca.key, tls.crt, tls.key to {} for {}; caBundle on stdout. \
                 Put tls.crt/tls.key into a kubernetes.io/tls Secret and remove the keys from disk.",
                config.out.display(),
                crate::server::certs::service_names(&config.service, &config.namespace).join(", ")
            );
            println!("{}", bundle.ca_bundle_base64());
            exit::OK
        }
        Err(e) => Failure::from(e).report("dbhook certs"),
    }
}

/// `dbhook rules`.
pub fn print_rules(args: &RulesArgs) -> String {
    use crate::rules::CATALOG;
    match args.output {
        RulesFormat::Text => {
            let width = CATALOG.iter().map(|r| r.id.len()).max().unwrap_or(0);
            CATALOG
                .iter()
                .map(|r| format!("{:<width$}  {:<4}  {}\n", r.id, r.default_action.as_str(), r.summary))
                .collect()
        }
        RulesFormat::Json => {
            let list: Vec<serde_json::Value> = CATALOG
                .iter()
                .map(|r| serde_json::json!({"id": r.id, "default": r.default_action, "summary": r.summary, "why": r.why}))
                .collect();
            serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
        }
        RulesFormat::Markdown => {
            let mut s = String::from("| rule | default | checks | why |\n|---|---|---|---|\n");
            for r in CATALOG {
                s.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    r.id,
                    r.default_action.as_str(),
                    r.summary,
                    r.why
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod sync_timeout_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sync_timeout_takes_seconds_with_or_without_a_unit() {
        for (text, secs) in [("60s", 60), ("90", 90), ("2m", 120), ("1h", 3600), (" 5s ", 5)] {
            assert_eq!(
                parse_sync_timeout(text),
                Ok(SyncTimeout(Duration::from_secs(secs))),
                "{text}"
            );
        }
    }

    #[test]
    fn sync_timeout_refuses_zero_negative_and_garbled_values() {
        for text in [
            "0",
            "0s",
            "0m",
            "-5",
            "-5s",
            "1.5s",
            "abc",
            "",
            "s",
            "10x",
            "5 m",
            "25h",
            "99999999999999999999",
        ] {
            assert!(parse_sync_timeout(text).is_err(), "{text:?} was accepted");
        }
    }

    /// Parses `argv` as the binary does, but blind to the machine's `DBHOOK_*` variables.
    fn parse_without_env(argv: &[&str]) -> Result<Cli, clap::Error> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let command = Cli::command().mut_subcommands(|sub| sub.mut_args(|arg| arg.env(None)));
        Cli::from_arg_matches(&command.try_get_matches_from(argv)?)
    }

    #[test]
    fn serve_defaults_to_a_60_second_sync_timeout() {
        let cli = parse_without_env(&["dbhook", "serve", "--dev"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.sync_timeout, SyncTimeout(Duration::from_secs(60)));
        let cli = parse_without_env(&["dbhook", "serve", "--dev", "--sync-timeout", "-3"]);
        let err = cli.unwrap_err().to_string();
        assert!(err.contains("--sync-timeout"), "{err}");
    }
}
