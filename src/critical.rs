//! Work that must finish once it has started, even when the process is told to stop.
//!
//! Rotating a refresh token is one such step: once `POST /token` is sent the
//! provider may have rotated, and only storing its answer keeps the account
//! usable. Such work runs as a task of its own, which a cancelled caller
//! cannot abort, and shutdown waits for it ([`wait`]) before the process
//! exits. Nothing else belongs here.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// Every critical task of the process.
static CRITICAL: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Runs `work` to its end on a task of its own, whatever happens to the caller, and
/// returns its output (`None` only if the task panicked).
pub async fn run<F>(work: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    CRITICAL.spawn(work).await.ok()
}

/// Waits up to `deadline` for every critical task to finish; `false` if some did not.
pub async fn wait(deadline: Duration) -> bool {
    let tracker = &*CRITICAL;
    tracker.close();
    let finished = tokio::time::timeout(deadline, tracker.wait()).await.is_ok();
    tracker.reopen();
    finished
}
