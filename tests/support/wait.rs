//! The one way the tests wait: poll a condition until it holds, with a deadline that is a hang
//! guard (never a timing assertion) and a message naming what was awaited.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long any condition may take before a test gives up. Generous: the machine is shared.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Between two polls: short enough not to slow a test down, long enough not to busy-loop.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// Polls `check` until it returns `Some`, panicking with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {}s waiting until {what}",
            PATIENCE.as_secs()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls until `cond` holds: [`eventually`] for a condition that needs no `.await`.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(cond().then_some(()))).await;
}
