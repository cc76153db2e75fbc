//! What a run is told (its options and where its progress goes) and what it
//! reports when it ends.

use std::sync::Arc;

use super::Clock;
use crate::config::KeepRaw;
use crate::store::runs::{RunStatus, RunTotals};

/// Receives progress of a run (for progress bars and log lines).
pub trait Observer: Send + Sync {
    /// The run knows how many subjects it will fetch.
    fn subjects_found(&self, _account: &str, _count: usize) {}
    /// One subject is done.
    fn subject_done(&self, _account: &str, _ok: bool) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoObserver;
impl Observer for NoObserver {}

/// Settings of a sync that are not per account.
#[derive(Clone)]
pub struct SyncOptions {
    /// Which raw bodies to keep.
    pub keep_raw: KeepRaw,
    /// The clock that decides finality.
    pub clock: Clock,
    /// Progress receiver.
    pub observer: Arc<dyn Observer>,
    /// Whether to follow the fetch plan (the daemon and `run --once`) or fetch every
    /// subject (`backfill`).
    pub plan: bool,
}

impl SyncOptions {
    /// System clock, no observer.
    pub fn new(keep_raw: KeepRaw) -> Self {
        Self {
            keep_raw,
            clock: Clock::system(),
            observer: Arc::new(NoObserver),
            plan: false,
        }
    }
}

/// What one run of one account did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `provider/account`.
    pub label: String,
    /// The `sync_run` id.
    pub run_id: i64,
    /// How it ended.
    pub status: RunStatus,
    /// Counts as recorded in `sync_run`.
    pub totals: RunTotals,
    /// Rows that were already archived unchanged.
    pub rows_unchanged: u64,
    /// The first few errors, for the summary.
    pub errors: Vec<String>,
    /// Days this run found lost for good (also logged as warnings).
    pub newly_lost: Vec<LostDays>,
    /// Subjects the fetch plan left for a later run.
    pub planned_skips: u64,
}

/// A stretch of days a sync found lost: never archived, and no longer kept by the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostDays {
    /// The subject.
    pub subject: String,
    /// The first lost day.
    pub first: chrono::NaiveDate,
    /// The last lost day.
    pub last: chrono::NaiveDate,
    /// How many days.
    pub days: usize,
}
