//! The write side of a run: batches of fetched subjects committed together,
//! each subject whole; failures, vanished subjects and lost days recorded.
//!
//! One writer takes whatever fetches have arrived (up to [`MAX_BATCH`]
//! subjects) and commits them in one transaction: the batch only saves a
//! commit per subject, which is most of a write's cost.

use chrono::TimeDelta;

use super::{AccountRun, Failure, LostDays, check_periods};
use crate::config::KeepRaw;
use crate::error::ProviderError;
use crate::model::{FetchTime, SubjectUsage};
use crate::providers::SubjectResult;
use crate::store::flags::{self, Ceiling};
use crate::store::plan as store_plan;
use crate::store::runs;
use crate::store::usage::{self, SubjectKey, UpsertStats};
use crate::store::{StoreError, counters, coverage, entities};

/// Most subjects written in one transaction. Large enough that a backfill commits
/// rarely; small enough that a transaction stays short for other writers.
pub(super) const MAX_BATCH: usize = 256;

/// One subject's fetch, on its way to the writer.
pub(super) struct Fetched {
    pub(super) subject: String,
    pub(super) result: SubjectResult,
    pub(super) fetched: FetchTime,
    /// The listing's row the subject's snapshot is taken against, if it has one.
    pub(super) listing: Option<super::ListingRow>,
}

/// One subject's rows, ready to write inside a batch's transaction.
struct SubjectWrite {
    key: SubjectKey,
    data: SubjectUsage,
    fetched: FetchTime,
    /// The oldest day the answer could have held: the window the run believes in.
    window_start: chrono::NaiveDate,
    /// Whether the provider answers with history, whose reach shows its window.
    learns_window: bool,
    /// Whether the subject has usage days to cover: not a daily snapshot of an object
    /// (an order's details), whose missed days are no gap in anyone's usage.
    has_days: bool,
    keep_all: bool,
    /// The account's day ceiling per subject (`max_day_mb`).
    max_day_mb: f64,
    /// The run whose `sync_error` rows the subject's notes go to.
    run_id: i64,
}

impl SubjectWrite {
    /// Writes the subject inside `tx`, with the notes on what its answers had refused.
    fn write(self, tx: &rusqlite::Transaction<'_>) -> Result<Written, StoreError> {
        let Self {
            key,
            data,
            fetched,
            window_start,
            learns_window,
            has_days,
            keep_all,
            max_day_mb,
            run_id,
        } = self;
        let answer_first = data.days.iter().map(|d| d.day).min();
        // A day with use the provider answered before and leaves out now, inside the window
        // the run believes in: the provider keeps fewer days (its window shrank).
        let mut window_start = window_start;
        if learns_window && has_days && data.records.is_empty() {
            let answered: std::collections::BTreeSet<_> = data.days.iter().map(|d| d.day).collect();
            let yesterday = fetched.day() - TimeDelta::days(1);
            let dropped = usage::days_with_use(tx, &key, window_start, yesterday)?
                .into_iter()
                .filter(|d| !answered.contains(d))
                .max();
            if let Some(day) = dropped {
                let at_most = u32::try_from((fetched.day() - day).num_days())
                    .unwrap_or(1)
                    .max(1);
                store_plan::record_window_evidence(
                    tx,
                    key.provider,
                    &key.account,
                    fetched.day(),
                    at_most,
                )?;
                window_start = window_start.max(day + TimeDelta::days(1));
            }
        }
        for note in &data.notes {
            runs::insert_error(tx, run_id, Some(&key.subject), note)?;
        }
        let mut stats = usage::upsert_days(tx, &key, &data.days, false, fetched)?;
        let ceiling = Ceiling {
            allocation_mb: None,
            max_day_mb,
        };
        flags::flag_implausible(tx, &key, &data.days, fetched.day(), ceiling, fetched)?;
        stats += usage::upsert_months(tx, &key, &data.months, fetched)?;
        stats += usage::upsert_month_resources(tx, &key, &data.month_resources, fetched)?;
        let mut final_derived = None;
        if !data.counters.is_empty() {
            let derived = counters::record_readings(tx, &key, &data.counters, fetched)?;
            final_derived = Some(
                derived
                    .days
                    .iter()
                    .map(|d| d.day)
                    .filter(|d| *d < derived.final_before)
                    .collect::<Vec<_>>(),
            );
            let (days, final_before, read) = (&derived.days, derived.final_before, derived.read);
            stats += usage::upsert_days_final_before(tx, &key, days, true, read, final_before)?;
            let ceiling = Ceiling {
                allocation_mb: derived.limit_mb,
                max_day_mb,
            };
            flags::flag_implausible(tx, &key, days, final_before, ceiling, read)?;
        }
        let (inserted, updated) =
            entities::upsert_records(tx, key.provider, &key.account, &data.records, fetched)?;
        stats += UpsertStats {
            inserted,
            updated,
            unchanged: 0,
        };
        // Coverage holds the closed days whose final figures the archive has: for history,
        // those the answer could have held before the fetch's own day (the window, and any
        // older day it did hold); for counters,
        // the days made final (the next day has a snapshot). Never past the real now: a
        // clock set ahead (`--now`, a wrong system clock) must not mark days covered that
        // no answer could have held yet.
        let real_today = chrono::Utc::now().date_naive();
        let lost = match final_derived {
            _ if !has_days => Vec::new(),
            Some(days) => {
                let closed: Vec<_> = days.into_iter().filter(|d| *d < real_today).collect();
                coverage::cover_days(tx, &key, &closed)?
            }
            None => {
                // The whole window: the answer would have held any day of it with use,
                // also the days before the subject's first archived one.
                let to = fetched.day().min(real_today) - TimeDelta::days(1);
                let from = answer_first.map_or(window_start, |a| a.min(window_start));
                if from <= to {
                    coverage::extend_coverage(tx, &key, from, to)?
                } else {
                    Vec::new()
                }
            }
        };
        if let (true, Some(oldest)) = (learns_window, answer_first) {
            let reach = (fetched.day() - oldest).num_days() + 1;
            if let Ok(reach @ 1..) = u32::try_from(reach) {
                store_plan::record_observed_window(
                    tx,
                    key.provider,
                    &key.account,
                    fetched.day(),
                    reach,
                )?;
            }
        }
        if keep_all {
            for raw in &data.raw {
                let subject = Some(key.subject.as_str());
                runs::insert_raw(tx, key.provider, &key.account, subject, raw, None, fetched)?;
            }
        }
        Ok(Written {
            subject: key.subject,
            stats,
            lost,
            notes: data.notes,
        })
    }
}

/// Keeps the listing's row in the snapshot it was taken against (`listing`), so that the
/// fetch plan takes it again exactly when the listing changes, whatever the details say
/// beside it (a Hostens service's listing and details disagree on its status).
fn with_listing(data: &mut SubjectUsage, listing: Option<super::ListingRow>) {
    let Some((kind, id, row)) = listing else {
        return;
    };
    for record in data
        .records
        .iter_mut()
        .filter(|r| r.kind == kind && r.id == id)
    {
        if let Some(fields) = record.data.as_object_mut() {
            fields.insert(super::plan::LISTING_KEY.to_owned(), row.clone());
        }
    }
}

/// What writing one subject did.
struct Written {
    subject: String,
    stats: UpsertStats,
    /// Days the write found lost for good.
    lost: Vec<chrono::NaiveDate>,
    /// What the answers had refused, already recorded in `sync_error`.
    notes: Vec<String>,
}

#[derive(Default)]
pub(super) struct SubjectsOutcome {
    pub(super) ok: u64,
    pub(super) stats: UpsertStats,
    pub(super) failures: Vec<Failure>,
}

impl AccountRun<'_> {
    pub(super) async fn write_batch(
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
            listing,
        } in batch
        {
            match result.and_then(|data| check_periods(&subject, data, fetched)) {
                Ok(mut data) => {
                    with_listing(&mut data, listing);
                    writes.push(self.subject_write(subject, data, fetched));
                }
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
        for w in written {
            outcome.ok += 1;
            outcome.stats += w.stats;
            self.options.observer.subject_done(&label, true);
            for note in w.notes {
                tracing::warn!(subject = %w.subject, note = %note, "Part of an answer was refused");
                outcome.failures.push(Failure {
                    message: format!("subject {}: {note}", w.subject),
                    rejected: false,
                    failed_subject: false,
                });
            }
            self.report_lost(w.subject, &w.lost);
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
        data: SubjectUsage,
        fetched: FetchTime,
    ) -> SubjectWrite {
        let window_start = if self.window_unconfirmed {
            fetched.day()
        } else {
            fetched.day() - TimeDelta::days(i64::from(self.window_days) - 1)
        };
        SubjectWrite {
            window_start,
            learns_window: crate::config::profile(self.account.kind).daily_history,
            has_days: self.provider.cadence(&subject) != crate::providers::Cadence::Daily,
            key: SubjectKey {
                provider: self.account.kind.as_str(),
                account: self.account.name.clone(),
                subject,
            },
            data,
            fetched,
            keep_all: self.options.keep_raw == KeepRaw::All,
            max_day_mb: self.account.max_day_mb,
            run_id: self.run_id,
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
    pub(super) async fn failure(
        &self,
        subject: Option<String>,
        err: &ProviderError,
        fetched: FetchTime,
    ) -> Result<Failure, StoreError> {
        let message = crate::error::bounded(&match &subject {
            Some(s) => format!("subject {s}: {err}"),
            None => err.to_string(),
        });
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
            failed_subject: subject.is_some(),
            message,
            rejected: err.is_rejected(),
        })
    }
}
