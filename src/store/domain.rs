//! The archive as the sync layer sees it: a run started, failures and vanished
//! subjects noted, account figures and plan decisions recorded, a run finished. Each
//! method is one transaction or statement on the store's connection; the sync layer
//! names no SQL type (`scripts/house.py` checks it).

use chrono::{NaiveDate, TimeDelta};

use super::plan::{self as store_plan, AccountPlan, ObservedWindow, PlanFacts, SubjectState};
use super::runs::{self, RunStatus, RunTotals};
use super::usage::{self, SubjectKey};
use super::{Store, StoreError, coverage};
use crate::model::{BalanceSnapshot, FetchTime, RawResponse};

/// One account of the archive: its provider kind and its name.
#[derive(Debug, Clone)]
pub struct AccountRef {
    /// The provider kind (`hydraproxy`, …).
    pub provider: &'static str,
    /// The account's name in the config.
    pub name: String,
}

impl Store {
    /// Starts a run of `account`: its schedule and window recorded, its run row inserted.
    /// Returns the run's id and, where the provider shows its window, what was observed.
    pub async fn start_run(
        &self,
        account: &AccountRef,
        schedule: &str,
        retention_days: u32,
        learns_window: bool,
        started: FetchTime,
    ) -> Result<(i64, Option<ObservedWindow>), StoreError> {
        let (kind, name, schedule) = (account.provider, account.name.clone(), schedule.to_owned());
        self.call(move |c| {
            runs::upsert_account_state(c, kind, &name, &schedule, retention_days)?;
            let observed = if learns_window {
                store_plan::load_observed_window(c, kind, &name, started.day())?
            } else {
                None
            };
            Ok((runs::start_run(c, kind, &name, started)?, observed))
        })
        .await
    }

    /// Notes a failure in the run's `sync_error`, with the body it came with if given.
    pub async fn record_failure(
        &self,
        account: &AccountRef,
        run_id: i64,
        subject: Option<String>,
        message: String,
        raw: Option<RawResponse>,
        fetched: FetchTime,
    ) -> Result<(), StoreError> {
        let (kind, name) = (account.provider, account.name.clone());
        self.call(move |c| {
            runs::insert_error(c, run_id, subject.as_deref(), &message)?;
            if let Some(raw) = raw {
                let subject = subject.as_deref();
                runs::insert_raw(c, kind, &name, subject, &raw, Some(&message), fetched)?;
            }
            Ok(())
        })
        .await
    }

    /// Upserts account figures in one transaction, with the raw body if given.
    pub async fn write_balances(
        &self,
        account: &AccountRef,
        balances: Vec<BalanceSnapshot>,
        raw: Option<RawResponse>,
        fetched: FetchTime,
    ) -> Result<(), StoreError> {
        let (kind, name) = (account.provider, account.name.clone());
        self.call(move |c| {
            let tx = usage::begin(c)?;
            super::months::upsert_balances(&tx, kind, &name, &balances, fetched)?;
            if let Some(raw) = raw {
                runs::insert_raw(&tx, kind, &name, None, &raw, None, fetched)?;
            }
            Ok(tx.commit()?)
        })
        .await
    }

    /// Subjects of `account` with history since `since` (they may still have days to fetch).
    pub async fn recent_subjects(
        &self,
        account: &AccountRef,
        since: NaiveDate,
    ) -> Result<Vec<String>, StoreError> {
        let (kind, name) = (account.provider, account.name.clone());
        let since = since.format("%Y-%m-%d").to_string();
        self.call(move |c| runs::load_recent_subjects(c, kind, &name, &since))
            .await
    }

    /// What the fetch plan decides from: the archive's facts on each subject.
    pub async fn plan_facts(
        &self,
        account: &AccountRef,
        today: NaiveDate,
        window_days: u32,
    ) -> Result<PlanFacts, StoreError> {
        let (kind, name) = (account.provider, account.name.clone());
        self.call(move |c| store_plan::load_facts(c, kind, &name, today, window_days))
            .await
    }

    /// Records the plan's classes and counts in one transaction, with the days the
    /// listing vouched for: `vouched` subjects are covered on the day before `today`.
    pub async fn record_plan(
        &self,
        account: &AccountRef,
        states: Vec<SubjectState>,
        plan: AccountPlan,
        vouched: Vec<String>,
        today: NaiveDate,
        at: FetchTime,
    ) -> Result<(), StoreError> {
        let (kind, name, stamp) = (account.provider, account.name.clone(), at.rfc3339());
        self.call(move |c| {
            let tx = usage::begin(c)?;
            store_plan::upsert_subject_states(&tx, kind, &name, &states, &stamp)?;
            store_plan::upsert_account_plan(&tx, kind, &name, &plan, &stamp)?;
            let yesterday = today - TimeDelta::days(1);
            for subject in vouched {
                let key = SubjectKey {
                    provider: kind,
                    account: name.clone(),
                    subject,
                };
                coverage::extend_coverage(&tx, &key, yesterday, yesterday)?;
            }
            Ok(tx.commit()?)
        })
        .await
    }

    /// Finishes run `id`, then refreshes query statistics and checkpoints the WAL (a
    /// failure of those is logged: it must not fail a recorded run).
    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        totals: RunTotals,
        finished: FetchTime,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            runs::finish_run(c, id, status, &totals, finished)?;
            if let Err(e) = super::optimize(c) {
                tracing::warn!(error = %crate::error::chain(&e), "Could not refresh query statistics");
            }
            if let Err(e) = super::checkpoint(c) {
                tracing::warn!(error = %crate::error::chain(&e), "Could not checkpoint the WAL");
            }
            Ok(())
        })
        .await
    }
}
