//! A run's subjects: what the listings name (refused when there are too many or their ids
//! are unusable) and what the archive still holds in the window, each classed by the fetch
//! plan, which decides the ones fetched now.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::guards::{MAX_SUBJECT_BYTES, clean_label};
use super::{AccountRun, Failure, Planned, cancellable, plan};
use crate::error::ProviderError;
use crate::model::FetchTime;
use crate::store::StoreError;
use crate::store::plan as store_plan;

impl AccountRun<'_> {
    /// Discovered subjects, plus archived ones that may still have history at the provider.
    pub(super) async fn subjects(
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
        let archived = self.store.recent_subjects(&self.key(), since).await?;
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
        let (today, window) = (at.day(), self.window_days);
        let facts = self.store.plan_facts(&self.key(), today, window).await?;
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
        // The listing seen today vouches for yesterday, now closed.
        let vouched_day = today.min(chrono::Utc::now().date_naive());
        self.store
            .record_plan(&self.key(), states, account_plan, vouched, vouched_day, at)
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
}
