//! The integration tests, compiled into one binary: each `tests/*.rs` below is a module of it.
//!
//! One binary instead of one per file: every test binary links all of kube, rustls and tokio,
//! and seventeen of them cost ~600 MB of CI disk and as many link steps. libtest still runs
//! the tests on as many threads as before. `secrecy` (installs a process-wide log capture) and
//! `cluster_memory` (installs a counting global allocator) stay binaries of their own because
//! they own process-wide state; see `[[test]]` in Cargo.toml.

mod support;
// The names the tests have always used for two parts of `support`.
use support::{cli as cli_support, server as server_support};

mod admission;
mod alert_metrics;
mod backup_coverage;
mod cli_check;
mod cli_explain;
mod cli_formats;
mod cli_lockstep;
mod cli_mutate;
mod cli_openreports;
mod cluster_lockstep;
mod cluster_openreports;
mod cluster_rbac;
mod cluster_view;
mod docs;
mod docs_rules;
mod documented_behaviour;
mod exemptions;
mod fuzz_admission;
mod hostile;
mod metrics_openmetrics;
mod properties;
mod server_admission;
mod server_auth;
mod server_cli;
mod server_faults;
mod server_h2_limit;
mod server_lifecycle;
mod server_load;
mod server_lockstep;
mod server_tls;
mod server_updates;
mod yaml_roundtrip;
