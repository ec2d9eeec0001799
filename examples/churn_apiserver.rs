//! The fake API server of the tests, for `scripts/load`: serves a cluster of realistic migration
//! Jobs and CNPG Clusters, writes a kubeconfig for it, and — while the file `<kubeconfig>.churn`
//! exists — modifies `RATE` Jobs per second (a new resourceVersion and status each time), which
//! `dbhook serve` receives as watch events. The number of events so far is kept in
//! `<kubeconfig>.events`. Runs until killed.
//!
//! ```text
//! cargo run --release --example churn_apiserver -- <kubeconfig path> [jobs] [rate]
//! ```

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(kubeconfig) = args.next() else {
        eprintln!("usage: churn_apiserver <kubeconfig path> [jobs] [events per second]");
        std::process::exit(2);
    };
    let jobs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let rate: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(50).max(1);
    let clusters = jobs.div_ceil(10).min(CLUSTERS_IN_CLUSTER);
    let api = FakeApiServer::start(&ALL_CRDS).await;
    api.preload(JOBS, (0..jobs).map(real_shaped_job));
    api.preload(CLUSTERS, (0..clusters).map(real_shaped_cluster));
    api.preload(SCHEDULED_BACKUPS, (0..clusters).map(real_shaped_scheduled_backup));
    api.preload(OBJECT_STORES, (0..clusters).map(real_shaped_object_store));
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\nusers:\n- name: dbhook\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: dbhook}}\ncurrent-context: fake\n",
        api.url()
    );
    std::fs::write(&kubeconfig, config).expect("writing the kubeconfig");
    let switch = std::path::PathBuf::from(format!("{kubeconfig}.churn"));
    let count = std::path::PathBuf::from(format!("{kubeconfig}.events"));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut n: usize = 0;
    loop {
        tick.tick().await;
        if !switch.exists() {
            continue;
        }
        let mut job = real_shaped_job(n % jobs.max(1));
        job["status"]["ready"] = json!(n % 2);
        api.apply(JOBS, job);
        // The fake server keeps every change for watch replays (tens of MB a minute at 50/s):
        // fine for the script's bounded runs.
        n += 1;
        if n.is_multiple_of(10) {
            let _ = std::fs::write(&count, n.to_string());
        }
    }
}
