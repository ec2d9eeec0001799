//! Memory of the cluster view's caches: loads 10,000 labelled Jobs and 1,000 CNPG Clusters
//! (real-shaped, with managed fields, last-applied copies and status, as the API server returns
//! them) through the fake API server and prints the live-heap and RSS growth per 1,000 cached
//! objects. A measurement, not an assertion:
//!
//! ```text
//! cargo test --release --test cluster_memory -- --ignored --nocapture
//! ```

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dbhook::cluster::Res;
use dbhook::view::LiveView;
use support::*;

/// The system allocator, counting live bytes: exact heap growth, unlike RSS.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Figures {
    heap: usize,
    rss_kib: usize,
    secs: f64,
}

/// Starts a view over `server`, waits until it cached `expect`, returns the growth.
async fn measure(server: &FakeApiServer, expect: &[(Res, usize)]) -> Figures {
    // Let what the previous measurement dropped (aborted tasks, the previous fake server) go.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (heap0, rss0, t0) = (LIVE.load(Ordering::Relaxed), rss_kib(), Instant::now());
    let h = start(server).await;
    h.synced().await;
    until("everything is cached", || {
        expect.iter().all(|&(r, n)| h.view.cached(r) == n)
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    // Let the transient list buffers go.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let figures = Figures {
        heap: LIVE.load(Ordering::Relaxed).saturating_sub(heap0),
        rss_kib: rss_kib().saturating_sub(rss0),
        secs,
    };
    let report = eventually("the report is computed", || {
        let r = h.view.report();
        (r.summary.objects > 0).then_some(r)
    })
    .await;
    println!(
        "  report: {} objects, {} findings; live heap with report: +{:.1} MiB",
        report.summary.objects,
        report.findings.len(),
        LIVE.load(Ordering::Relaxed).saturating_sub(heap0) as f64 / 1048576.0
    );
    drop(h);
    figures
}

fn print(what: &str, objects: usize, f: &Figures) {
    let per_k = |b: f64| b / objects as f64 * 1000.0;
    println!(
        "{what}: synced in {:.2}s; live heap +{:.1} MiB ({:.0} KiB per 1,000 = {:.1} KB per object), RSS +{:.1} MiB ({:.0} KiB per 1,000)",
        f.secs,
        f.heap as f64 / 1048576.0,
        per_k(f.heap as f64) / 1024.0,
        f.heap as f64 / objects as f64 / 1000.0,
        f.rss_kib as f64 / 1024.0,
        per_k(f.rss_kib as f64),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture (ideally --release)"]
async fn memory_per_thousand_cached_objects() {
    let sample = serde_json::to_string(&real_shaped_job(1)).unwrap().len();
    println!("a Job as the API server returns it: {sample} bytes of JSON");

    // Both together first (RSS grows from a cold process), then each kind alone (live heap).
    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.preload(JOBS, (0..10_000).map(real_shaped_job));
    server.preload(CLUSTERS, (0..1_000).map(real_shaped_cluster));
    let both = measure(&server, &[(Res::Jobs, 10_000), (Res::Clusters, 1_000)]).await;
    print("10,000 Jobs + 1,000 Clusters", 11_000, &both);
    drop(server);

    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.preload(JOBS, (0..10_000).map(real_shaped_job));
    let jobs = measure(&server, &[(Res::Jobs, 10_000)]).await;
    print("10,000 Jobs", 10_000, &jobs);
    drop(server);

    let server = FakeApiServer::start(&ALL_CRDS).await;
    server.preload(CLUSTERS, (0..1_000).map(real_shaped_cluster));
    let clusters = measure(&server, &[(Res::Clusters, 1_000)]).await;
    print("1,000 Clusters", 1_000, &clusters);
}

/// What `serve --reports` adds to the view: the same 10,000 Jobs and 1,000 Clusters (100
/// namespaces, each with findings), measured without and with the OpenReports writer once its
/// Reports are written. The fake API server runs in this process: its objects are loaded before
/// the baseline, and the Reports it stored, its history and its request log are dropped before
/// the figure is taken, so what is left is the view's and the writer's. The transient cost of
/// building the largest Report (the writer builds one at a time) is printed apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture (ideally --release)"]
async fn memory_of_report_writing() {
    use dbhook::cluster::ReportsOptions;
    let mut heaps = Vec::new();
    for reports in [false, true] {
        let server = FakeApiServer::start(&[ALL_CRDS.as_slice(), OPENREPORTS.as_slice()].concat()).await;
        server.preload(JOBS, (0..10_000).map(real_shaped_job));
        server.preload(CLUSTERS, (0..1_000).map(real_shaped_cluster));
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let heap0 = LIVE.load(Ordering::Relaxed);
        let h = start_with(&server, dbhook::policy::Policy::default(), |o| {
            if reports {
                o.reports = Some(ReportsOptions {
                    poll: std::time::Duration::from_millis(100),
                    ..ReportsOptions::default()
                });
            }
        })
        .await;
        h.synced().await;
        until("everything is cached", || {
            h.view.cached(Res::Jobs) == 10_000 && h.view.cached(Res::Clusters) == 1_000
        })
        .await;
        let report = eventually("the report is computed", || {
            let r = h.view.report();
            (r.summary.objects > 0).then_some(r)
        })
        .await;
        let namespaces = report
            .findings
            .iter()
            .map(|f| f.object.namespace.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut stored = 0;
        if reports {
            until("every namespace with findings has its Report", || {
                server.list(REPORTS).len() == namespaces
            })
            .await;
            for r in server.list(REPORTS) {
                stored += r.to_string().len();
                server.delete(REPORTS, r["metadata"]["namespace"].as_str().unwrap(), "dbhook");
            }
        }
        server.compact();
        server.clear_requests();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let heap = LIVE.load(Ordering::Relaxed).saturating_sub(heap0);
        // The writer builds one Report at a time: its transient peak is the largest one.
        let mut transient = 0;
        for (scope, findings) in dbhook::openreports::group(&report) {
            let before_build = LIVE.load(Ordering::Relaxed);
            let built = dbhook::openreports::build(&scope, &findings, 1000);
            transient = transient.max(LIVE.load(Ordering::Relaxed).saturating_sub(before_build));
            drop(built);
        }
        println!(
            "reports {}: {} findings in {namespaces} namespaces ({:.1} MiB of Report JSON); view live heap +{:.1} MiB; building the largest Report: {:.2} MiB transient",
            if reports { "on " } else { "off" },
            report.findings.len(),
            stored as f64 / 1048576.0,
            heap as f64 / 1048576.0,
            transient as f64 / 1048576.0,
        );
        heaps.push(heap);
        drop(h);
        drop(server);
    }
    println!(
        "report writing adds {:.1} % to the view's live heap",
        (heaps[1] as f64 - heaps[0] as f64) / heaps[0] as f64 * 100.0
    );
}
