//! Runs one account once: balance, discovery, then every subject, into the store.
//!
//! This is the only module that connects providers to the store. Subjects
//! are fetched concurrently; one writer commits whatever has arrived, many
//! subjects to a transaction, each subject whole; a failing subject is
//! recorded and the others go on (SPEC §5.5). Rejected
//! credentials stop the account's run at once, since every further request
//! would be refused too. A cancelled run finishes the writes in progress,
//! starts no new fetch, and is recorded as `interrupted`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Secret;
use crate::config::{AccountConfig, KeepRaw};
use crate::error::ProviderError;
use crate::model::{BalanceSnapshot, FetchTime, RawResponse, SubjectResult, SubjectUsage};
use crate::providers::{NoVault, Provider, StoredToken, TokenVault};
use crate::store::runs::{self, RunStatus, RunTotals};
use crate::store::usage::{self, SubjectKey, UpsertStats};
use crate::store::{Store, StoreError};
use crate::store::{counters, coverage, entities, tokens};

/// How many errors a run report keeps for its summary.
const MAX_REPORTED_ERRORS: usize = 5;

/// Where "now" comes from: the system clock, a fixed instant, or (in tests) one that steps.
#[derive(Debug, Clone, Default)]
pub struct Clock(ClockKind);

#[derive(Debug, Clone, Default)]
enum ClockKind {
    #[default]
    System,
    Fixed(DateTime<Utc>),
    Stepping {
        start: DateTime<Utc>,
        step: TimeDelta,
        ticks: Arc<std::sync::atomic::AtomicI32>,
    },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// Always `at`.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(ClockKind::Fixed(at))
    }

    /// `start`, then `step` later at every reading: a run that spans a moment (tests).
    pub fn stepping(start: DateTime<Utc>, step: TimeDelta) -> Self {
        Self(ClockKind::Stepping {
            start,
            step,
            ticks: Arc::default(),
        })
    }

    /// The current time.
    pub fn now(&self) -> FetchTime {
        FetchTime(match &self.0 {
            ClockKind::System => Utc::now(),
            ClockKind::Fixed(at) => *at,
            ClockKind::Stepping { start, step, ticks } => {
                *start + *step * ticks.fetch_add(1, Ordering::Relaxed)
            }
        })
    }
}

/// The archive as one account's [`TokenVault`]: where a rotated refresh token is kept.
pub struct StoreVault {
    store: Store,
    provider: &'static str,
    account: String,
}

impl StoreVault {
    /// The vault of `account` in `store`.
    pub fn new(store: Store, account: &AccountConfig) -> Self {
        Self {
            store,
            provider: account.kind.as_str(),
            account: account.name.clone(),
        }
    }
}

#[async_trait::async_trait]
impl TokenVault for StoreVault {
    async fn load(&self) -> Result<Option<StoredToken>, String> {
        let (provider, account) = (self.provider, self.account.clone());
        let row = self
            .store
            .call(move |c| tokens::load_token(c, provider, &account))
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(row.map(|r| StoredToken {
            seed: Secret::new(&r.seed),
            refresh: Secret::new(&r.refresh_token),
            access: r.access_token.as_deref().map(Secret::new),
        }))
    }

    async fn save(&self, token: StoredToken) -> Result<(), String> {
        let (provider, account) = (self.provider, self.account.clone());
        let row = tokens::TokenRow {
            seed: token.seed.expose().to_owned(),
            refresh_token: token.refresh.expose().to_owned(),
            access_token: token.access.as_ref().map(|a| a.expose().to_owned()),
        };
        let at = FetchTime::now().rfc3339();
        self.store
            .call(move |c| tokens::save_token(c, provider, &account, &row, &at))
            .await
            .map_err(|e| error_chain(&e))
    }
}

/// The account's vault: the archive for accounts whose credentials rotate, none otherwise.
pub fn vault(store: Option<&Store>, account: &AccountConfig) -> Arc<dyn TokenVault> {
    match store {
        Some(store) if account.rotates_credentials() => {
            Arc::new(StoreVault::new(store.clone(), account))
        }
        _ => Arc::new(NoVault),
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

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
}

impl SyncOptions {
    /// System clock, no observer.
    pub fn new(keep_raw: KeepRaw) -> Self {
        Self {
            keep_raw,
            clock: Clock::system(),
            observer: Arc::new(NoObserver),
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

/// A subject's or the account's failure, already worded for the operator.
struct Failure {
    subject: Option<String>,
    message: String,
    rejected: bool,
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
    AccountRun::start(account, provider, store, options)
        .await?
        .execute(cancel)
        .instrument(span)
        .await
}

/// The state of one run in progress.
struct AccountRun<'a> {
    account: &'a AccountConfig,
    provider: Arc<dyn Provider>,
    store: &'a Store,
    options: &'a SyncOptions,
    run_id: i64,
    started: FetchTime,
    lost: std::sync::Mutex<Vec<LostDays>>,
}

impl<'a> AccountRun<'a> {
    async fn start(
        account: &'a AccountConfig,
        provider: Arc<dyn Provider>,
        store: &'a Store,
        options: &'a SyncOptions,
    ) -> Result<Self, StoreError> {
        let started = options.clock.now();
        let (kind, name) = (account.kind.as_str(), account.name.clone());
        let (schedule, retention) = (account.schedule.as_str().to_owned(), account.retention_days);
        let run_id = store
            .call(move |c| {
                runs::upsert_account_state(c, kind, &name, &schedule, retention)?;
                runs::start_run(c, kind, &name, started)
            })
            .await?;
        Ok(Self {
            account,
            provider,
            store,
            options,
            run_id,
            started,
            lost: std::sync::Mutex::new(Vec::new()),
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
        let (kind, name) = (self.account.kind.as_str(), self.account.name.clone());
        let raw = raw.filter(|_| self.options.keep_raw == KeepRaw::All);
        self.store
            .call(move |c| {
                let tx = usage::begin(c)?;
                usage::upsert_balances(&tx, kind, &name, &balances, fetched)?;
                if let Some(raw) = raw {
                    runs::insert_raw(&tx, kind, &name, None, &raw, None, fetched)?;
                }
                Ok(tx.commit()?)
            })
            .await
    }

    /// Discovered subjects, plus archived ones that may still have history at the provider.
    async fn subjects(
        &self,
        failures: &mut Vec<Failure>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Planned>, StoreError> {
        let mut subjects = BTreeSet::new();
        let fetched = self.options.clock.now();
        let mut prefetched = std::collections::BTreeMap::new();
        match cancellable(cancel, self.provider.discover_subjects()).await {
            Some(Ok(found)) => {
                subjects.extend(found.subjects);
                subjects.extend(found.prefetched.keys().cloned());
                prefetched = found.prefetched;
                if !found.balances.is_empty() {
                    self.write_balances(found.balances, None, fetched).await?;
                }
            }
            Some(Err(e)) => failures.push(self.failure(None, &e, self.options.clock.now()).await?),
            None => return Ok(Vec::new()),
        }
        let since = self.started.day() - TimeDelta::days(i64::from(self.account.retention_days));
        let since = since.format("%Y-%m-%d").to_string();
        let (kind, name) = (self.account.kind.as_str(), self.account.name.clone());
        let archived = self
            .store
            .call(move |c| runs::load_recent_subjects(c, kind, &name, &since))
            .await?;
        subjects.extend(archived);
        Ok(subjects
            .into_iter()
            .map(|s| {
                let data = prefetched.remove(&s).map(|d| (d, fetched));
                (s, data)
            })
            .collect())
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
                .map(|(subject, prefetched)| self.fetch_subject(subject, prefetched, cancel, stop))
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
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let written = self
                    .write_batch(std::mem::take(&mut batch), &mut outcome)
                    .await;
                if written.is_err() {
                    receiver.close();
                }
                written?;
            }
            Ok(outcome)
        };
        let ((), outcome) = tokio::join!(fetch, write);
        outcome
    }

    /// One subject's data: fetched, or carried by discovery. `None` when skipped.
    async fn fetch_subject(
        &self,
        subject: String,
        prefetched: Option<(SubjectResult, FetchTime)>,
        cancel: &CancellationToken,
        stop: &AtomicBool,
    ) -> Option<Fetched> {
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
                let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                    async move { provider.fetch_usage(&id).await }.instrument(span),
                ));
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
        })
    }

    /// Records a batch of fetched subjects: the data in one transaction, then each
    /// failure and vanished subject.
    async fn write_batch(
        &self,
        batch: Vec<Fetched>,
        outcome: &mut SubjectsOutcome,
    ) -> Result<(), StoreError> {
        let label = self.account.label();
        let mut writes = Vec::with_capacity(batch.len());
        for Fetched {
            subject,
            result,
            fetched,
        } in batch
        {
            match result {
                Ok(data) => writes.push(self.subject_write(subject, data, fetched)),
                Err(ProviderError::NotFound { message, .. }) => {
                    self.record_gone(subject, message).await?;
                    outcome.ok += 1;
                    self.options.observer.subject_done(&label, true);
                }
                Err(e) => {
                    outcome
                        .failures
                        .push(self.failure(Some(subject), &e, fetched).await?);
                    self.options.observer.subject_done(&label, false);
                }
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let written = self
            .store
            .call(move |c| {
                let tx = usage::begin(c)?;
                let written = writes
                    .into_iter()
                    .map(|w| w.write(&tx))
                    .collect::<Result<Vec<_>, _>>()?;
                tx.commit()?;
                Ok(written)
            })
            .await?;
        for (subject, stats, lost) in written {
            outcome.ok += 1;
            outcome.stats += stats;
            self.options.observer.subject_done(&label, true);
            self.report_lost(subject, &lost);
        }
        Ok(())
    }

    /// A subject the provider no longer has: its archived rows stay, the run does not fail.
    async fn record_gone(&self, subject: String, message: String) -> Result<(), StoreError> {
        tracing::warn!(subject = %subject, reason = %message, "Subject no longer exists at the provider; its archived days are kept");
        let run_id = self.run_id;
        let note = format!("{}: {message}", runs::GONE_NOTE);
        self.store
            .call(move |c| runs::insert_error(c, run_id, Some(&subject), &note))
            .await
    }

    /// What writing one subject's data takes: its rows, minus refused future periods.
    fn subject_write(
        &self,
        subject: String,
        mut data: SubjectUsage,
        fetched: FetchTime,
    ) -> SubjectWrite {
        drop_future_periods(&subject, &mut data, fetched);
        let window = i64::from(self.account.retention_days.max(1)) - 1;
        let window_start = fetched.day() - TimeDelta::days(window);
        let covered_from = data
            .days
            .iter()
            .map(|d| d.day)
            .min()
            .map_or(window_start, |d| d.min(window_start));
        SubjectWrite {
            key: SubjectKey {
                provider: self.account.kind.as_str(),
                account: self.account.name.clone(),
                subject,
            },
            data,
            fetched,
            covered_from,
            keep_all: self.options.keep_raw == KeepRaw::All,
        }
    }

    /// Logs and remembers days a write found lost for good.
    fn report_lost(&self, subject: String, lost: &[chrono::NaiveDate]) {
        let (Some(first), Some(last)) = (lost.first(), lost.last()) else {
            return;
        };
        tracing::warn!(
            subject = %subject, first = %first, last = %last, days = lost.len(),
            "Days lost: never archived, and no longer kept by the provider"
        );
        let found = LostDays {
            subject,
            first: *first,
            last: *last,
            days: lost.len(),
        };
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(found);
    }

    /// Logs a failure, records it in `sync_error`, and keeps its raw body if allowed.
    async fn failure(
        &self,
        subject: Option<String>,
        err: &ProviderError,
        fetched: FetchTime,
    ) -> Result<Failure, StoreError> {
        let message = match &subject {
            Some(s) => format!("subject {s}: {err}"),
            None => err.to_string(),
        };
        if err.is_rejected() {
            tracing::error!(error = %message, "Credentials rejected; stopping this account's run");
        } else {
            tracing::warn!(error = %message, "Fetch failed");
        }
        let raw = err
            .raw()
            .filter(|_| self.options.keep_raw != KeepRaw::None)
            .cloned();
        let (kind, name, run_id) = (
            self.account.kind.as_str(),
            self.account.name.clone(),
            self.run_id,
        );
        let (msg, subj) = (message.clone(), subject.clone());
        self.store
            .call(move |c| {
                runs::insert_error(c, run_id, subj.as_deref(), &msg)?;
                if let Some(raw) = raw {
                    runs::insert_raw(c, kind, &name, subj.as_deref(), &raw, Some(&msg), fetched)?;
                }
                Ok(())
            })
            .await?;
        Ok(Failure {
            subject,
            message,
            rejected: err.is_rejected(),
        })
    }

    async fn finish(
        self,
        mut totals: RunTotals,
        unchanged: u64,
        failures: Vec<Failure>,
        cancelled: bool,
    ) -> Result<RunReport, StoreError> {
        totals.subjects_failed = failures.iter().filter(|f| f.subject.is_some()).count() as u64;
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
        let (id, t) = (self.run_id, totals.clone());
        self.store
            .call(move |c| {
                runs::finish_run(c, id, status, &t, finished)?;
                // Only query speed depends on it: a failure must not fail a recorded run.
                if let Err(e) = crate::store::optimize(c) {
                    tracing::warn!(error = %error_chain(&e), "Could not refresh query statistics");
                }
                Ok(())
            })
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

/// Removes days after the fetch's UTC day and months after its month: a provider
/// cannot have measured them, so they are refused with a warning and never stored.
fn drop_future_periods(subject: &str, data: &mut SubjectUsage, fetched: FetchTime) {
    let today = fetched.day();
    let this_month = today.with_day(1).unwrap_or(today);
    let mut future: Vec<String> = Vec::new();
    data.days.retain(|d| {
        let keep = d.day <= today;
        if !keep {
            future.push(d.day.to_string());
        }
        keep
    });
    data.months.retain(|m| {
        let keep = m.month <= this_month;
        if !keep {
            future.push(m.month.format("%Y-%m").to_string());
        }
        keep
    });
    data.month_resources.retain(|m| m.month <= this_month);
    if !future.is_empty() {
        tracing::warn!(
            subject = %subject,
            periods = %future.join(", "),
            fetched_day = %today,
            "Refused periods dated after the fetch; they were not stored"
        );
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

/// A subject to sync, with its data when discovery already carried it.
type Planned = (String, Option<(SubjectResult, FetchTime)>);

/// Most subjects written in one transaction. Large enough that a backfill commits
/// rarely; small enough that a transaction stays short for other writers.
const MAX_BATCH: usize = 256;

/// One subject's fetch, on its way to the writer.
struct Fetched {
    subject: String,
    result: SubjectResult,
    fetched: FetchTime,
}

/// One subject's rows, ready to write inside a batch's transaction.
struct SubjectWrite {
    key: SubjectKey,
    data: SubjectUsage,
    fetched: FetchTime,
    covered_from: chrono::NaiveDate,
    keep_all: bool,
}

impl SubjectWrite {
    /// Writes the subject inside `tx`; returns the subject, its counts and newly lost days.
    fn write(
        self,
        tx: &rusqlite::Transaction<'_>,
    ) -> Result<(String, UpsertStats, Vec<chrono::NaiveDate>), StoreError> {
        let Self {
            key,
            data,
            fetched,
            covered_from,
            keep_all,
        } = self;
        let mut stats = usage::upsert_days(tx, &key, &data.days, false, fetched)?;
        stats += usage::upsert_months(tx, &key, &data.months, fetched)?;
        stats += usage::upsert_month_resources(tx, &key, &data.month_resources, fetched)?;
        if !data.counters.is_empty() {
            let derived = counters::record_readings(tx, &key, &data.counters, fetched)?;
            stats += usage::upsert_days(tx, &key, &derived, true, fetched)?;
        }
        let (inserted, updated) =
            entities::upsert_records(tx, key.provider, &key.account, &data.records, fetched)?;
        stats += UpsertStats {
            inserted,
            updated,
            unchanged: 0,
        };
        let lost = coverage::extend_coverage(tx, &key, covered_from, fetched.day())?;
        if keep_all {
            for raw in &data.raw {
                let subject = Some(key.subject.as_str());
                runs::insert_raw(tx, key.provider, &key.account, subject, raw, None, fetched)?;
            }
        }
        Ok((key.subject, stats, lost))
    }
}

#[derive(Default)]
struct SubjectsOutcome {
    ok: u64,
    stats: UpsertStats,
    failures: Vec<Failure>,
}
