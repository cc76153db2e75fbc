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
pub mod plan;
mod report;
mod vault;
mod write;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Datelike, TimeDelta};
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
use crate::model::{BalanceSnapshot, FetchTime, RawResponse, SubjectUsage};
use crate::providers::{Provider, SubjectResult};
use crate::store::runs::{self, RunStatus, RunTotals};
use crate::store::{Store, StoreError};
use crate::store::{plan as store_plan, usage};

/// How many errors a run report keeps for its summary.
const MAX_REPORTED_ERRORS: usize = 5;

/// The longest subject id a listing may name: a longer one is no real id, and would make
/// every error about it long.
const MAX_SUBJECT_BYTES: usize = 256;

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
    async fn start(
        account: &'a AccountConfig,
        provider: Arc<dyn Provider>,
        store: &'a Store,
        options: &'a SyncOptions,
    ) -> Result<Self, StoreError> {
        let started = options.clock.now();
        let (kind, name) = (account.kind.as_str(), account.name.clone());
        let (schedule, retention) = (account.schedule.as_str().to_owned(), account.retention_days);
        let learns = crate::config::profile(account.kind).daily_history;
        let (run_id, observed) = store
            .call(move |c| {
                runs::upsert_account_state(c, kind, &name, &schedule, retention)?;
                let observed = if learns {
                    store_plan::load_observed_window(c, kind, &name, started.day())?
                } else {
                    None
                };
                Ok((runs::start_run(c, kind, &name, started)?, observed))
            })
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
        let mut listed = std::collections::BTreeMap::new();
        match cancellable(cancel, self.provider.discover_subjects()).await {
            Some(Ok(found))
                if found.subjects.len() + found.prefetched.len() > self.account.max_subjects =>
            {
                let e = ProviderError::Api {
                    endpoint: "discovery".to_owned(),
                    message: format!(
                        "the listings named {} subjects, more than max_subjects = {} of [[{}]] {:?}; \
                         none of them was fetched (raise max_subjects if the account really has that many)",
                        found.subjects.len() + found.prefetched.len(),
                        self.account.max_subjects,
                        self.account.kind.as_str(),
                        self.account.name
                    ),
                };
                failures.push(self.failure(None, &e, fetched).await?);
            }
            Some(Ok(found)) => {
                listed = found.listed;
                for e in &found.errors {
                    failures.push(self.failure(None, e, fetched).await?);
                }
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
        let (subjects, unprintable): (Vec<String>, Vec<String>) = subjects
            .into_iter()
            .partition(|s| !s.chars().any(char::is_control));
        for id in unprintable {
            let shown = crate::redact::escape_control(&id);
            let e = ProviderError::Api {
                endpoint: "discovery".to_owned(),
                message: format!(
                    "the id {} holds control characters (a terminal would act on them); the subject is skipped",
                    crate::providers::quote(&shown)
                ),
            };
            failures.push(self.failure(Some(shown), &e, fetched).await?);
        }
        let (usable, too_long): (Vec<String>, Vec<String>) = subjects
            .into_iter()
            .partition(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES);
        if let Some(first) = too_long.first() {
            let e = ProviderError::Api {
                endpoint: "discovery".to_owned(),
                message: format!(
                    "{} subject ids are empty or longer than {MAX_SUBJECT_BYTES} bytes and were skipped, e.g. {}",
                    too_long.len(),
                    crate::providers::quote(first)
                ),
            };
            failures.push(self.failure(None, &e, fetched).await?);
        }
        let due = self.plan(usable, &listed, fetched).await?;
        Ok(due
            .into_iter()
            .map(|subject| Planned {
                prefetched: prefetched.remove(&subject).map(|d| (d, fetched)),
                listing: listed.get(&subject).and_then(|l| l.row.clone()),
                subject,
            })
            .collect())
    }

    /// Classes every subject (recorded for `status` and the `subjects` view) and, when
    /// the run follows the plan, keeps only those due now; `backfill` keeps them all.
    async fn plan(
        &self,
        subjects: Vec<String>,
        listed: &std::collections::BTreeMap<String, crate::providers::Listed>,
        at: FetchTime,
    ) -> Result<Vec<String>, StoreError> {
        let (kind, name, window) = (
            self.account.kind.as_str(),
            self.account.name.clone(),
            self.window_days,
        );
        let today = at.day();
        let facts = self
            .store
            .call(move |c| store_plan::load_facts(c, kind, &name, today, window))
            .await?;
        let candidates: Vec<plan::Candidate<'_>> = subjects
            .iter()
            .map(|s| plan::Candidate {
                subject: s,
                cadence: self.provider.cadence(s),
                listed: listed.get(s),
            })
            .collect();
        let ticks = f64::from(self.account.schedule.ticks_per_day(at.0));
        let (decisions, account_plan) = plan::decide(&candidates, &facts, today, window, ticks);
        let states: Vec<store_plan::SubjectState> = decisions
            .iter()
            .map(|d| store_plan::SubjectState {
                subject: d.subject.clone(),
                state: d.class.as_str(),
                label: listed
                    .get(&d.subject)
                    .and_then(|l| clean_label(l.label.as_deref()?)),
            })
            .collect();
        // Backfill fetches every subject, so only a planned run leaves any to the listing.
        let vouched: Vec<String> = decisions
            .iter()
            .filter(|d| self.options.plan && d.vouched)
            .map(|d| d.subject.clone())
            .collect();
        let vouched_day = today.min(chrono::Utc::now().date_naive());
        let (name, stamp) = (self.account.name.clone(), at.rfc3339());
        self.store
            .call(move |c| {
                let tx = usage::begin(c)?;
                store_plan::upsert_subject_states(&tx, kind, &name, &states, &stamp)?;
                store_plan::upsert_account_plan(&tx, kind, &name, &account_plan, &stamp)?;
                for subject in vouched {
                    let key = usage::SubjectKey {
                        provider: kind,
                        account: name.clone(),
                        subject,
                    };
                    // The listing seen today vouches for yesterday, now closed.
                    let yesterday = vouched_day - TimeDelta::days(1);
                    crate::store::coverage::extend_coverage(&tx, &key, yesterday, yesterday)?;
                }
                Ok(tx.commit()?)
            })
            .await?;
        if !self.options.plan {
            return Ok(subjects);
        }
        let due: Vec<String> = decisions
            .into_iter()
            .filter(|d| d.due)
            .map(|d| d.subject)
            .collect();
        let skipped = (subjects.len() - due.len()) as u64;
        self.planned_skips.store(skipped, Ordering::Relaxed);
        tracing::info!(
            due = due.len(),
            skipped,
            hot = account_plan.hot,
            quiet = account_plan.quiet,
            dormant = account_plan.dormant,
            "Fetch plan"
        );
        Ok(due)
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
        let (id, t) = (self.run_id, totals.clone());
        self.store
            .call(move |c| {
                runs::finish_run(c, id, status, &t, finished)?;
                // Only query speed and the WAL's size depend on these: a failure must not
                // fail a recorded run.
                if let Err(e) = crate::store::optimize(c) {
                    tracing::warn!(error = %error_chain(&e), "Could not refresh query statistics");
                }
                if let Err(e) = crate::store::checkpoint(c) {
                    tracing::warn!(error = %error_chain(&e), "Could not checkpoint the WAL");
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

/// Checks a subject's periods against the fetch. A day after tomorrow (UTC) cannot be a
/// reading: the answer is malformed and nothing of it is stored. Tomorrow (a provider a
/// little ahead of UTC) and months after the fetch's month are dropped with a warning.
fn check_periods(
    subject: &str,
    mut data: SubjectUsage,
    fetched: FetchTime,
) -> Result<SubjectUsage, ProviderError> {
    let today = fetched.day();
    let tomorrow = today + TimeDelta::days(1);
    if let Some(far) = data
        .days
        .iter()
        .map(|d| d.day)
        .filter(|d| *d > tomorrow)
        .max()
    {
        let raw = data.raw.first().cloned().unwrap_or_else(|| RawResponse {
            endpoint: "response".to_owned(),
            status: 0,
            body: bytes::Bytes::new(),
            secret_keys: &[],
        });
        return Err(ProviderError::Malformed {
            endpoint: raw.endpoint.clone(),
            reason: format!("day {far} is after tomorrow ({tomorrow}) at the fetch; not a reading"),
            raw: Box::new(raw),
        });
    }
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
    Ok(data)
}

/// Runs `work` unless `cancel` fires first; `None` when cancelled.
///
/// Dropping a fetch is safe: nothing is written until a subject's data is
/// complete, and a write already handed to the store's blocking pool commits
/// or rolls back as a whole.
/// A provider's name for a subject as the archive keeps it: control characters (which a
/// terminal would act on) dropped, whitespace trimmed, at most [`MAX_LABEL_CHARS`]
/// characters; `None` when nothing is left.
fn clean_label(label: &str) -> Option<String> {
    let clean: String = label
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_LABEL_CHARS)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// The longest label kept.
const MAX_LABEL_CHARS: usize = 100;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels come from providers: no control character (a terminal escape) is kept, and
    /// none is longer than the cap.
    #[test]
    fn labels_are_cleaned() {
        assert_eq!(clean_label("  Sub 0 "), Some("Sub 0".to_owned()));
        assert_eq!(
            clean_label("\u{1b}[31mred\u{1b}[0m\n"),
            Some("[31mred[0m".to_owned())
        );
        assert_eq!(clean_label(" \t\r\n"), None);
        assert_eq!(
            clean_label(&"é".repeat(300)).map(|l| l.chars().count()),
            Some(MAX_LABEL_CHARS)
        );
    }
}
