//! The write side of a run: batches of fetched subjects committed together,
//! each subject whole; failures, vanished subjects and lost days recorded.
//!
//! One writer takes whatever fetches have arrived (up to [`MAX_BATCH`]
//! subjects) and commits them in one transaction: the batch only saves a
//! commit per subject, which is most of a write's cost.

use chrono::TimeDelta;

use super::guards::check_periods;
use super::{AccountRun, Failure, LostDays};
use crate::config::KeepRaw;
use crate::error::ProviderError;
use crate::model::{FetchTime, SubjectUsage};
use crate::providers::SubjectResult;
use crate::store::StoreError;
use crate::store::batch::SubjectWrite;
use crate::store::runs;
use crate::store::usage::{SubjectKey, UpsertStats};

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
        let written = self.store.write_subjects(writes).await?;
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
        let note = format!("{}: {message}", runs::GONE_NOTE);
        let fetched = self.options.clock.now();
        self.store
            .record_failure(&self.key(), self.run_id, Some(subject), note, None, fetched)
            .await
    }

    /// What writing one subject's data takes: its rows, minus refused future periods.
    fn subject_write(
        &self,
        subject: String,
        data: SubjectUsage,
        fetched: FetchTime,
    ) -> SubjectWrite {
        // After an outage the window observed before may have shrunk: the fetch covers
        // what its answer reached, and yesterday, which any window of two days holds.
        let days = if self.window_unconfirmed {
            self.window_days.min(2)
        } else {
            self.window_days
        };
        let window_start = fetched.day() - TimeDelta::days(i64::from(days) - 1);
        SubjectWrite {
            window_start,
            unconfirmed_window: self.window_unconfirmed.then_some(self.window_days),
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
        let subj = subject.clone();
        self.store
            .record_failure(
                &self.key(),
                self.run_id,
                subj,
                message.clone(),
                raw,
                fetched,
            )
            .await?;
        Ok(Failure {
            failed_subject: subject.is_some(),
            message,
            rejected: err.is_rejected(),
        })
    }
}
