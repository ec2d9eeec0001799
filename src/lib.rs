//! dbhook: a Kubernetes admission webhook and CI tool that injects `DB_URL` from CloudNativePG
//! app Secrets, keeps migration Jobs in lockstep with their Rollouts, and enforces backup policy.
// `deny`, not `forbid`: one module (cluster::watch::trim) calls glibc's `malloc_trim`, and says why.
#![deny(unsafe_code)]

pub mod admission;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod evidence;
pub mod exemption;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod mutate;
pub mod offline;
pub mod openreports;
pub mod policy;
pub mod redact;
pub mod report;
pub mod rules;
pub mod server;
pub mod view;
pub mod yaml;

#[cfg(test)]
mod testing;

#[cfg(test)]
#[path = "testing/layers.rs"]
mod layers;
