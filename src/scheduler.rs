//! Schedules every account on its UTC cron expression, with catch-up and no overlap.
//!
//! tokio-cron-scheduler fires the jobs but keeps no history and lets runs
//! overlap, so [`Runner`] owns both concerns: a per-account lock that a
//! tick must win to start a run (a tick that finds the previous run still
//! going is skipped and logged), and catch-up at start for every account
//! whose last success is older than its schedule's interval. Runs are
//! spawned on a [`TaskTracker`] so shutdown can wait for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::AccountConfig;
use crate::providers::Provider;
use crate::store::runs::load_last_success;
use crate::store::{Store, StoreError};
use crate::sync::{self, RunReport, SyncOptions};

/// The cron expression of the liveness heartbeat the watchdog checks.
pub const HEARTBEAT_SCHEDULE: &str = "*/10 * * * * *";

/// One account and the lock that keeps its runs from overlapping.
struct Slot {
    account: AccountConfig,
    provider: Arc<dyn Provider>,
    running: Arc<Mutex<()>>,
}

/// Starts account runs: at most one per account at a time, all tracked for shutdown.
pub struct Runner {
    slots: Vec<Slot>,
    store: Store,
    options: SyncOptions,
    cancel: CancellationToken,
    tracker: TaskTracker,
    on_finish: Box<dyn Fn(&RunReport) + Send + Sync>,
    metrics_textfile: Option<std::path::PathBuf>,
}

impl Runner {
    /// A runner for `accounts`; `on_finish` is told about every finished run.
    pub fn new(
        accounts: Vec<(AccountConfig, Arc<dyn Provider>)>,
        store: Store,
        options: SyncOptions,
        on_finish: Box<dyn Fn(&RunReport) + Send + Sync>,
    ) -> Self {
        let slots = accounts
            .into_iter()
            .map(|(account, provider)| Slot {
                account,
                provider,
                running: Arc::new(Mutex::new(())),
            })
            .collect();
        Self {
            slots,
            store,
            options,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            on_finish,
            metrics_textfile: None,
        }
    }

    /// Rewrites the metrics file at `path` after every run.
    #[must_use]
    pub fn with_metrics(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.metrics_textfile = path;
        self
    }

    /// Starts a run of account `index` unless one is running or shutdown began.
    ///
    /// Returns whether a run was started. The lock is taken before this
    /// returns, so a second call while the first run goes on returns false.
    pub fn trigger(self: &Arc<Self>, index: usize, reason: &'static str) -> bool {
        let Some(slot) = self.slots.get(index) else {
            return false;
        };
        let label = slot.account.label();
        if self.cancel.is_cancelled() {
            return false;
        }
        let Ok(guard) = Arc::clone(&slot.running).try_lock_owned() else {
            tracing::warn!(account = %label, reason, "Previous run still going; skipping this one");
            return false;
        };
        let this = Arc::clone(self);
        self.tracker.spawn(async move {
            let _guard = guard;
            let Some(slot) = this.slots.get(index) else { return };
            tracing::info!(account = %label, reason, "Starting run");
            let provider = Arc::clone(&slot.provider);
            match sync::run_account(&slot.account, provider, &this.store, &this.options, &this.cancel).await {
                Ok(report) => (this.on_finish)(&report),
                Err(err) => tracing::error!(account = %label, error = %err, "Run could not be recorded in the archive"),
            }
            if let Some(path) = &this.metrics_textfile {
                crate::metrics::update(&this.store, path).await;
            }
        });
        true
    }

    /// Triggers every account whose last success is older than its schedule's interval, or
    /// lies in the future (the clock moved back since).
    pub async fn catch_up(self: &Arc<Self>, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut started = 0;
        for (index, slot) in self.slots.iter().enumerate() {
            let (kind, name) = (slot.account.kind.as_str(), slot.account.name.clone());
            let last = self
                .store
                .call(move |c| load_last_success(c, kind, &name))
                .await?;
            let last = last
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc));
            let due = slot.account.schedule.is_due(last, now);
            if due && self.trigger(index, "catch-up") {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Adds one cron job per account to `scheduler`.
    pub async fn schedule(
        self: &Arc<Self>,
        scheduler: &JobScheduler,
    ) -> Result<(), JobSchedulerError> {
        for (index, slot) in self.slots.iter().enumerate() {
            let this = Arc::clone(self);
            let job = Job::new_async(slot.account.schedule.as_str(), move |_id, _lock| {
                let this = Arc::clone(&this);
                Box::pin(async move {
                    this.trigger(index, "schedule");
                })
            })?;
            scheduler.add(job).await?;
        }
        Ok(())
    }

    /// Stops new runs, cancels the fetches in flight, and waits for running writes.
    pub async fn shutdown(&self, deadline: std::time::Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Waits until every run started so far has finished (tests, one-shot catch-up).
    pub async fn wait_idle(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
    }
}

/// The scheduler's liveness, measured on the monotonic clock.
///
/// tokio-cron-scheduler fires jobs by the wall clock: after the clock moves back, no job
/// fires until the old tick time comes round. The heartbeat job then stops beating, and
/// since the age of the last beat is measured with [`Instant`] (which the wall clock
/// cannot move), the watchdog sees it and lets systemd restart the service.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that beats now.
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A heartbeat that beat at `origin` (tests choose it).
    pub fn starting_at(origin: Instant) -> Self {
        Self {
            origin,
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records a beat at `at`.
    pub fn beat_at(&self, at: Instant) {
        let ms = u64::try_from(at.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long before `now` the last beat was.
    pub fn age_at(&self, now: Instant) -> std::time::Duration {
        let last =
            self.origin + std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds a job that beats `beat` every ten seconds.
pub async fn add_heartbeat(
    scheduler: &JobScheduler,
    beat: Arc<Heartbeat>,
) -> Result<(), JobSchedulerError> {
    beat.beat_at(Instant::now());
    let job = Job::new_async(HEARTBEAT_SCHEDULE, move |_id, _lock| {
        let beat = Arc::clone(&beat);
        Box::pin(async move {
            beat.beat_at(Instant::now());
        })
    })?;
    scheduler.add(job).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// See: issue 15.6 (the watchdog kept pinging after the clock moved back)
    #[test]
    fn heartbeat_age_follows_the_monotonic_clock() {
        let start = Instant::now();
        let beat = Heartbeat::starting_at(start);
        beat.beat_at(start + Duration::from_secs(10));
        assert_eq!(
            beat.age_at(start + Duration::from_secs(15)),
            Duration::from_secs(5)
        );
        // No beat for two minutes (the cron jobs stopped firing): the age grows, whatever
        // the wall clock says.
        assert_eq!(
            beat.age_at(start + Duration::from_secs(130)),
            Duration::from_secs(120)
        );
        // A late beat from before the last one never makes it look older.
        beat.beat_at(start + Duration::from_secs(5));
        assert_eq!(
            beat.age_at(start + Duration::from_secs(15)),
            Duration::from_secs(5)
        );
    }
}
