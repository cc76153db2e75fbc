//! Runs one account once: balance, discovery, then every subject, into the store.
//!
//! This is the only module that connects providers to the store. Subjects
//! are fetched concurrently; one writer commits whatever has arrived, many
//! subjects to a transaction, each subject whole; a failing subject is
//! recorded and the others go on (SPEC §5.5). Rejected
//! credentials stop the account's run at once, since every further request
//! would be refused too. A cancelled run finishes the writes in progress,
//! starts no new fetch, and is recorded as `interrupted`.

mod clock;
mod discover;
mod guards;
pub mod plan;
mod report;
mod vault;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use clock::Clock;
pub use report::{LostDays, NoObserver, Observer, RunReport, SyncOptions};
pub use vault::{FileVault, vault};
use write::{Fetched, MAX_BATCH, SubjectsOutcome};

use crate::config::{AccountConfig, KeepRaw};
use crate::error::ProviderError;
use crate::http::RunMemo;
use crate::model::{BalanceSnapshot, FetchTime, RawResponse};
use crate::providers::{Provider, SubjectResult};
use crate::store::domain::AccountRef;
use crate::store::plan as store_plan;
use crate::store::runs::{RunStatus, RunTotals};
use crate::store::{Store, StoreError};

/// How many errors a run report keeps for its summary.
const MAX_REPORTED_ERRORS: usize = 5;

/// A subject's or the account's failure, already worded for the operator.
struct Failure {
    message: String,
    rejected: bool,
    /// Whether the subject failed whole (not only part of its answer refused).
    failed_subject: bool,
}

/// Syncs one account once and records the run.
pub async fn run_account(
    account: &AccountConfig,
    provider: Arc<dyn Provider>,
    store: &Store,
    options: &SyncOptions,
    cancel: &CancellationToken,
) -> Result<RunReport, StoreError> {
    let span =
        tracing::info_span!("sync", provider = account.kind.as_str(), account = %account.name);
    // A request that fails after all its retries is not sent again in this run.
    let run = async {
        AccountRun::start(account, provider, store, options)
            .await?
            .execute(cancel)
            .await
    };
    RunMemo::default().scope(run.instrument(span)).await
}

/// The state of one run in progress.
struct AccountRun<'a> {
    account: &'a AccountConfig,
    provider: Arc<dyn Provider>,
    store: &'a Store,
    options: &'a SyncOptions,
    run_id: i64,
    started: FetchTime,
    /// Days an answer can hold: the assumed window, or fewer if answers showed fewer.
    window_days: u32,
    /// Whether no answer was seen for a week (an outage): the provider's window may have
    /// changed meanwhile, so a fetch covers only the days its own answer reaches.
    window_unconfirmed: bool,
    lost: std::sync::Mutex<Vec<LostDays>>,
    /// Subjects the plan left for a later run.
    planned_skips: std::sync::atomic::AtomicU64,
}

impl<'a> AccountRun<'a> {
    /// The account, as the archive names it.
    fn key(&self) -> AccountRef {
        AccountRef {
            provider: self.account.kind.as_str(),
            name: self.account.name.clone(),
        }
    }

    async fn start(
        account: &'a AccountConfig,
        provider: Arc<dyn Provider>,
        store: &'a Store,
        options: &'a SyncOptions,
    ) -> Result<Self, StoreError> {
        let started = options.clock.now();
        let learns = crate::config::profile(account.kind).daily_history;
        let key = AccountRef {
            provider: account.kind.as_str(),
            name: account.name.clone(),
        };
        let retention = account.retention_days;
        let (run_id, observed) = store
            .start_run(&key, account.schedule.as_str(), retention, learns, started)
            .await?;
        let window_days = store_plan::ObservedWindow::trusted(observed, retention).max(1);
        let window_unconfirmed = observed.is_some_and(|o| !o.recent);
        Ok(Self {
            account,
            provider,
            store,
            options,
            run_id,
            started,
            window_days,
            window_unconfirmed,
            lost: std::sync::Mutex::new(Vec::new()),
            planned_skips: std::sync::atomic::AtomicU64::new(0),
        })
    }

    async fn execute(self, cancel: &CancellationToken) -> Result<RunReport, StoreError> {
        tracing::info!(run_id = self.run_id, "Sync started");
        let mut failures = Vec::new();
        let mut totals = RunTotals::default();
        let mut unchanged = 0;
        if let Some(Err(f)) = cancellable(cancel, self.sync_balance()).await.transpose()? {
            failures.push(f);
        }
        if !failures.iter().any(|f| f.rejected) && !cancel.is_cancelled() {
            let subjects = self.subjects(&mut failures, cancel).await?;
            self.options
                .observer
                .subjects_found(&self.account.label(), subjects.len());
            if !failures.iter().any(|f| f.rejected) {
                let outcome = self.sync_subjects(subjects, cancel).await?;
                totals.subjects_ok = outcome.ok;
                totals.rows_inserted = outcome.stats.inserted;
                totals.rows_updated = outcome.stats.updated;
                unchanged = outcome.stats.unchanged;
                failures.extend(outcome.failures);
            }
        }
        self.finish(totals, unchanged, failures, cancel.is_cancelled())
            .await
    }

    async fn sync_balance(&self) -> Result<Result<(), Failure>, StoreError> {
        let fetched = self.options.clock.now();
        match self.provider.fetch_balance().await {
            Ok((balances, raw)) => self
                .write_balances(balances, Some(raw), fetched)
                .await
                .map(Ok),
            Err(e) => Ok(Err(self.failure(None, &e, fetched).await?)),
        }
    }

    /// Upserts account figures in one transaction, keeping the raw body with `keep_raw = "all"`.
    async fn write_balances(
        &self,
        balances: Vec<BalanceSnapshot>,
        raw: Option<RawResponse>,
        fetched: FetchTime,
    ) -> Result<(), StoreError> {
        let raw = raw.filter(|_| self.options.keep_raw == KeepRaw::All);
        self.store
            .write_balances(&self.key(), balances, raw, fetched)
            .await
    }

    /// Fetches subjects concurrently and writes them as they arrive.
    ///
    /// Fetching and writing overlap: fetches send their results down a channel, and
    /// one writer takes whatever has arrived (up to [`MAX_BATCH`] subjects) and commits
    /// it in one transaction. Each subject is still written whole or not at all; the
    /// batch only saves a commit per subject, which is most of a write's cost.
    async fn sync_subjects(
        &self,
        subjects: Vec<Planned>,
        cancel: &CancellationToken,
    ) -> Result<SubjectsOutcome, StoreError> {
        let stop = AtomicBool::new(false);
        let parallel = self.account.max_concurrency.max(1) * 2;
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Fetched>(parallel * 4);
        let fetch = async {
            let stop = &stop;
            futures_util::stream::iter(subjects)
                .map(|planned| self.fetch_subject(planned, cancel, stop))
                .buffer_unordered(parallel)
                .for_each(|fetched| {
                    let sender = &sender;
                    async move {
                        // A closed channel means the writer failed: fetch nothing more.
                        if let Some(fetched) = fetched
                            && sender.send(fetched).await.is_err()
                        {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                })
                .await;
            drop(sender);
        };
        let write = async {
            let mut outcome = SubjectsOutcome::default();
            let mut batch = Vec::with_capacity(MAX_BATCH);
            // After an outage, answers wait for the end of the run and are written widest
            // reach first: the window the first one confirms is the one the others cover.
            let mut deferred = Vec::new();
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                if self.window_unconfirmed {
                    deferred.append(&mut batch);
                    continue;
                }
                let written = self
                    .write_batch(std::mem::take(&mut batch), &mut outcome)
                    .await;
                if written.is_err() {
                    receiver.close();
                }
                written?;
            }
            deferred.sort_by_key(|f: &Fetched| {
                let first = f
                    .result
                    .as_ref()
                    .ok()
                    .and_then(|d| d.days.iter().map(|d| d.day).min());
                (first.is_none(), first)
            });
            while !deferred.is_empty() {
                let rest = deferred.split_off(deferred.len().min(MAX_BATCH));
                let chunk = std::mem::replace(&mut deferred, rest);
                self.write_batch(chunk, &mut outcome).await?;
            }
            Ok(outcome)
        };
        let ((), outcome) = tokio::join!(fetch, write);
        outcome
    }

    /// One subject's data: fetched, or carried by discovery. `None` when skipped.
    async fn fetch_subject(
        &self,
        planned: Planned,
        cancel: &CancellationToken,
        stop: &AtomicBool,
    ) -> Option<Fetched> {
        let Planned {
            subject,
            prefetched,
            listing,
        } = planned;
        if cancel.is_cancelled() || stop.load(Ordering::Relaxed) {
            return None;
        }
        let (result, fetched) = match prefetched {
            Some(prefetched) => prefetched,
            None => {
                let fetched = self.options.clock.now();
                let span = tracing::debug_span!("subject", subject = %subject);
                // A task of its own, so that parsing spreads over the runtime's workers
                // instead of sharing this run's task with every other subject.
                let (provider, id) = (Arc::clone(&self.provider), subject.clone());
                let fetch = async move { provider.fetch_usage(&id).await }.instrument(span);
                let memo = RunMemo::current().unwrap_or_default();
                let task =
                    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(memo.scope(fetch)));
                let result = cancellable(cancel, task).await?.unwrap_or_else(|e| {
                    Err(ProviderError::Api {
                        endpoint: "fetch".to_owned(),
                        message: format!("the fetch stopped unexpectedly: {e}"),
                    })
                });
                (result, fetched)
            }
        };
        // Rejected credentials stop the account's other fetches at once.
        if result.as_ref().is_err_and(ProviderError::is_rejected) {
            stop.store(true, Ordering::Relaxed);
        }
        Some(Fetched {
            subject,
            result,
            fetched,
            listing,
        })
    }

    /// Records a batch of fetched subjects: the data in one transaction, then each
    /// failure and vanished subject.
    async fn finish(
        self,
        mut totals: RunTotals,
        unchanged: u64,
        failures: Vec<Failure>,
        cancelled: bool,
    ) -> Result<RunReport, StoreError> {
        totals.subjects_failed = failures.iter().filter(|f| f.failed_subject).count() as u64;
        totals.error = failures.first().map(|f| f.message.clone());
        let status = if cancelled {
            RunStatus::Interrupted
        } else if failures.is_empty() {
            RunStatus::Ok
        } else if totals.subjects_ok == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Partial
        };
        let finished = self.options.clock.now();
        self.store
            .finish_run(self.run_id, status, totals.clone(), finished)
            .await?;
        tracing::info!(
            run_id = self.run_id,
            status = status.as_str(),
            subjects_ok = totals.subjects_ok,
            subjects_failed = totals.subjects_failed,
            rows_inserted = totals.rows_inserted,
            rows_updated = totals.rows_updated,
            rows_unchanged = unchanged,
            "Sync finished"
        );
        Ok(RunReport {
            planned_skips: self.planned_skips.load(Ordering::Relaxed),
            label: self.account.label(),
            run_id: self.run_id,
            status,
            totals,
            rows_unchanged: unchanged,
            newly_lost: std::mem::take(
                &mut *self
                    .lost
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            errors: failures
                .into_iter()
                .take(MAX_REPORTED_ERRORS)
                .map(|f| f.message)
                .collect(),
        })
    }
}

/// Runs `work` unless `cancel` fires first; `None` when cancelled.
///
/// Dropping a fetch is safe: nothing is written until a subject's data is
/// complete, and a write already handed to the store's blocking pool commits
/// or rolls back as a whole.
async fn cancellable<T>(cancel: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        out = work => Some(out),
        () = cancel.cancelled() => None,
    }
}

/// A subject to sync, with its data when discovery already carried it, and the listing's
/// row its snapshot is taken against.
struct Planned {
    subject: String,
    prefetched: Option<(SubjectResult, FetchTime)>,
    listing: Option<ListingRow>,
}

/// The entity a daily snapshot is kept as (kind, id), and the listing's row of it.
pub(super) type ListingRow = (String, String, serde_json::Value);
