//! Watching files that are replaced under us: the serving pair, the client CA and the policy.
//!
//! Kubernetes updates Secret and ConfigMap volumes by swapping a `..data` symlink in the mount
//! directory, never by writing the files we were given, so the *directory* is watched (notify)
//! and every event only means "look again". A poll catches what events miss (network
//! filesystems, a watcher that could not start). Either way the callback runs only when the
//! content changed, so an unchanged bad file is reported once, not on every poll.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, ResultLabels};
use crate::policy::{Policy, PolicyFileError};

use super::shutdown::Signal;

/// The files' bytes in the order given, or why they could not all be read.
pub type Contents = Result<Vec<Vec<u8>>, ReadError>;

/// A watched file that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    /// Shared, so that the contents can be kept and compared.
    #[source]
    pub source: Arc<std::io::Error>,
}

/// Writers rarely replace several files in one step; wait this long after an event so a pair
/// is read after both halves landed.
const SETTLE: Duration = Duration::from_millis(100);

/// Reads every file.
pub async fn read(paths: &[PathBuf]) -> Contents {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        match tokio::fs::read(path).await {
            Ok(bytes) => out.push(bytes),
            Err(e) => {
                return Err(ReadError {
                    path: path.clone(),
                    source: Arc::new(e),
                });
            }
        }
    }
    Ok(out)
}

/// What "changed" is measured by: the bytes, or the error's text (an unchanged failure is
/// not a change).
pub fn fingerprint(contents: &Contents) -> u64 {
    let mut h = DefaultHasher::new();
    match contents {
        Ok(files) => (0u8, files).hash(&mut h),
        Err(e) => (1u8, e.to_string()).hash(&mut h),
    }
    h.finish()
}

/// When to look at the files again.
#[derive(Debug, Clone, Copy)]
pub struct Every {
    pub poll: Duration,
    /// Also on file-system events in the files' directories.
    pub watch: bool,
}

/// Calls `apply` with the files' new contents whenever they differ from the last seen (starting
/// from `seen`, the fingerprint of what the caller loaded itself), until `shutdown`.
pub fn spawn<F>(
    what: &'static str,
    paths: Vec<PathBuf>,
    seen: u64,
    every: Every,
    shutdown: Signal,
    mut apply: F,
) -> JoinHandle<()>
where
    F: FnMut(&Contents) + Send + 'static,
{
    tokio::spawn(async move {
        let (tx, mut events) = mpsc::channel::<()>(1);
        // Kept alive for the life of the task; dropping it stops the OS watch.
        let _watcher = if every.watch {
            watch_dirs(what, &paths, tx)
        } else {
            None
        };
        let mut seen = seen;
        let mut tick = tokio::time::interval(every.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                Some(()) = events.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
            let contents = read(&paths).await;
            let now = fingerprint(&contents);
            if now != seen {
                seen = now;
                apply(&contents);
            }
        }
    })
}

fn watch_dirs(what: &str, paths: &[PathBuf], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // Access events are our own reads; everything else may be a swap. A full channel
        // already holds a wake-up.
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(files = what, error = %e, "cannot watch files; polling only");
            return None;
        }
    };
    let dirs: BTreeSet<&Path> = paths
        .iter()
        .map(|p| {
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        })
        .collect();
    for dir in dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(files = what, dir = %dir.display(), error = %e, "cannot watch directory; polling only");
        }
    }
    Some(watcher)
}

/// Parses a policy file's contents (as [`read`] returned them for `[path]`); the error names
/// the file.
pub fn parse_policy(path: &Path, contents: &Contents) -> Result<Policy, PolicyFileError> {
    let files = contents.as_ref().map_err(|e| PolicyFileError::Read {
        path: e.path.clone(),
        source: e.source.clone(),
    })?;
    let bytes = files.first().map_or(&[][..], Vec::as_slice);
    let policy = Policy::from_file_contents(path, bytes)?;
    log_deprecations(path, &policy);
    Ok(policy)
}

/// The policy's deprecation notes, as warnings in the log.
pub fn log_deprecations(path: &Path, policy: &Policy) {
    for note in &policy.params.deprecations {
        tracing::warn!(policy = %path.display(), "{note}");
    }
}

/// The reload callback for `--policy`: a good file replaces the policy for the next review; a
/// bad one is logged and counted, and the policy in force stays.
pub fn apply_policy(path: &Path, slot: &ArcSwap<Policy>, metrics: &Metrics, contents: &Contents) {
    match parse_policy(path, contents) {
        Ok(policy) => {
            slot.store(Arc::new(policy));
            metrics.policy_reloads.get_or_create(&ResultLabels::SUCCESS).inc();
            tracing::info!(policy = %path.display(), "policy reloaded");
        }
        Err(e) => {
            metrics.policy_reloads.get_or_create(&ResultLabels::ERROR).inc();
            tracing::error!(error = %e, "policy not reloaded; the previous policy stays in force");
        }
    }
}
