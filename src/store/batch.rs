//! A batch of fetched subjects written in one transaction, each subject whole: its days,
//! months, counters (days derived), objects, coverage, the window its answer showed, and
//! the raw bodies kept. The sync layer hands over [`SubjectWrite`]s and gets [`Written`]s
//! back; it never sees the transaction.

use chrono::TimeDelta;
use rusqlite::Transaction;

use super::flags::{self, Ceiling};
use super::plan as store_plan;
use super::usage::{self, SubjectKey, UpsertStats};
use super::{Store, StoreError, counters, coverage, entities, months, runs};
use crate::model::{FetchTime, SubjectUsage};

impl Store {
    /// Writes `writes` in one transaction, in their order (after an outage the sync layer
    /// puts the answer reaching back furthest first): all of them, or none when one fails.
    pub async fn write_subjects(
        &self,
        writes: Vec<SubjectWrite>,
    ) -> Result<Vec<Written>, StoreError> {
        self.call(move |c| {
            let tx = usage::begin(c)?;
            let written = writes
                .into_iter()
                .map(|w| w.write(&tx))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(written)
        })
        .await
    }
}

/// One subject's rows, ready to write inside a batch's transaction.
pub struct SubjectWrite {
    pub key: SubjectKey,
    pub data: SubjectUsage,
    pub fetched: FetchTime,
    /// The oldest day the answer could have held: the window the run believes in.
    pub window_start: chrono::NaiveDate,
    /// After an outage, the window the run would trust if an answer of today confirmed it
    /// (`window_start` is then only yesterday): a subject with an answer earlier in the
    /// batch, or in an earlier batch of the run, that reached as far confirms it.
    pub unconfirmed_window: Option<u32>,
    /// Whether the provider answers with history, whose reach shows its window.
    pub learns_window: bool,
    /// Whether the subject has usage days to cover: not a daily snapshot of an object
    /// (an order's details), whose missed days are no gap in anyone's usage.
    pub has_days: bool,
    pub keep_all: bool,
    /// The account's day ceiling per subject (`max_day_mb`).
    pub max_day_mb: f64,
    /// The run whose `sync_error` rows the subject's notes go to.
    pub run_id: i64,
}

impl SubjectWrite {
    /// Writes the subject inside `tx`, with the notes on what its answers had refused.
    fn write(self, tx: &Transaction<'_>) -> Result<Written, StoreError> {
        let Self {
            key,
            data,
            fetched,
            window_start,
            unconfirmed_window,
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
        if let Some(days) = unconfirmed_window
            && let Some(seen) =
                store_plan::observed_on(tx, key.provider, &key.account, fetched.day())?
        {
            let days = days.min(seen).max(1);
            window_start = window_start.min(fetched.day() - TimeDelta::days(i64::from(days) - 1));
        }
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
        stats += months::upsert_months(tx, &key, &data.months, fetched)?;
        stats += months::upsert_month_resources(tx, &key, &data.month_resources, fetched)?;
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

/// What writing one subject did.
pub struct Written {
    pub subject: String,
    pub stats: UpsertStats,
    /// Days the write found lost for good.
    pub lost: Vec<chrono::NaiveDate>,
    /// What the answers had refused, already recorded in `sync_error`.
    pub notes: Vec<String>,
}
