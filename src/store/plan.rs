//! What the fetch plan reads from the archive, and what it leaves there for `status`.
//!
//! The plan (SPEC §5.9) is derived from the archive on every run, never from
//! state of its own that could drift: the last day a successful fetch covered
//! (`subject_coverage`), recent usage (`day_usage`), provisional days
//! (`month_rollup`) and the day's snapshots (`entity_snapshot`). What it
//! decided is written back for display only: each subject's class
//! (`subject_info`, the `subjects` view) and the account's plan
//! (`account_plan`). The provider's window as its answers showed it is kept
//! per day (`observed_window`).

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;

/// How many days back answers count for the observed window: few enough that a provider
/// that shrinks its window is believed within a week of answers; enough that a few quiet
/// days (HydraProxy leaves out days without use) do not pass for a shorter window. Older
/// answers (after an outage) tell nothing of today's window.
pub const OBSERVED_RECENT_DAYS: i64 = 7;

/// What the archive says of one account's subjects, as of a day.
#[derive(Debug, Default, Clone)]
pub struct PlanFacts {
    /// The last day a successful fetch covered, per subject.
    pub covered: HashMap<String, NaiveDate>,
    /// Subjects with usage on the day or the day before.
    pub recent: HashSet<String>,
    /// Subjects with usage within the provider's window.
    pub in_window: HashSet<String>,
    /// Subjects with a closed archived day (before today) that is not final yet.
    pub provisional: HashSet<String>,
    /// The latest snapshot of each entity, by kind and id: the day it was taken, and it.
    pub snapshots: HashMap<(String, String), (NaiveDate, serde_json::Value)>,
}

/// Loads the plan's facts of `provider/account` as of `today`, for a window of `window_days`.
pub fn load_facts(
    conn: &Connection,
    provider: &str,
    account: &str,
    today: NaiveDate,
    window_days: u32,
) -> Result<PlanFacts, StoreError> {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let window_start = today - TimeDelta::days(i64::from(window_days.max(1)) - 1);
    let mut facts = PlanFacts::default();
    let mut stmt = conn.prepare_cached(
        "SELECT subject, max(last_day) FROM subject_coverage \
         WHERE provider = ?1 AND account = ?2 GROUP BY subject",
    )?;
    let rows = stmt.query_map(params![provider, account], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (subject, last) = row?;
        if let Ok(last) = NaiveDate::parse_from_str(&last, "%Y-%m-%d") {
            facts.covered.insert(subject, last);
        }
    }
    facts.recent = used_since(conn, provider, account, &day(today - TimeDelta::days(1)))?;
    facts.in_window = used_since(conn, provider, account, &day(window_start))?;
    // A closed day not final yet: only the months the rollup marks provisional are read.
    facts.provisional = conn
        .prepare_cached(
            "SELECT DISTINCT s.subject FROM subject s JOIN month_rollup r ON r.subject_id = s.id \
             WHERE s.provider = ?1 AND s.account = ?2 AND r.is_final = 0 \
             AND EXISTS (SELECT 1 FROM day_usage d WHERE d.subject_id = s.id \
                         AND d.day >= r.month || '-01' AND d.day <= r.month || '-31' \
                         AND d.day < ?3 AND d.is_final = 0)",
        )?
        .query_map(params![provider, account, day(today)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // SQLite takes the bare columns from the row holding max(day).
    let mut stmt = conn.prepare_cached(
        "SELECT kind, entity_id, max(day), data FROM entity_snapshot \
         WHERE provider = ?1 AND account = ?2 AND day <= ?3 GROUP BY kind, entity_id",
    )?;
    let rows = stmt.query_map(params![provider, account, day(today)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (kind, id, taken, data) = row?;
        let taken = NaiveDate::parse_from_str(&taken, "%Y-%m-%d");
        if let (Ok(taken), Ok(data)) = (taken, serde_json::from_str(&data)) {
            facts.snapshots.insert((kind, id), (taken, data));
        }
    }
    Ok(facts)
}

/// Subjects of the account with usage (more than 0 MB) on or after `since`.
fn used_since(
    conn: &Connection,
    provider: &str,
    account: &str,
    since: &str,
) -> Result<HashSet<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.subject FROM subject s WHERE s.provider = ?1 AND s.account = ?2 \
             AND EXISTS (SELECT 1 FROM day_usage d \
                         WHERE d.subject_id = s.id AND d.day >= ?3 AND d.total_mb > 0)",
        )?
        .query_map(params![provider, account, since], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// A subject's class as the plan saw it, with its name at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectState {
    /// The subject.
    pub subject: String,
    /// `hot`, `quiet` or `dormant`.
    pub state: &'static str,
    /// What the provider calls it, when it says.
    pub label: Option<String>,
}

/// Records each subject's class and label; `last_seen_at` moves once a UTC day, so an
/// unchanged re-sync writes nothing.
pub fn upsert_subject_states(
    tx: &Transaction<'_>,
    provider: &str,
    account: &str,
    states: &[SubjectState],
    at: &str,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO subject_info (provider, account, subject, label, state, first_seen_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
         ON CONFLICT (provider, account, subject) DO UPDATE SET \
           state = excluded.state, \
           label = coalesce(excluded.label, label), \
           last_seen_at = CASE WHEN substr(last_seen_at, 1, 10) < substr(excluded.last_seen_at, 1, 10) \
                               THEN excluded.last_seen_at ELSE last_seen_at END \
         WHERE state IS NOT excluded.state \
            OR (excluded.label IS NOT NULL AND label IS NOT excluded.label) \
            OR substr(last_seen_at, 1, 10) < substr(excluded.last_seen_at, 1, 10)",
    )?;
    for s in states {
        stmt.execute(params![provider, account, s.subject, s.label, s.state, at])?;
    }
    Ok(())
}

/// The latest run's plan of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct AccountPlan {
    /// Subjects fetched every tick.
    pub hot: u64,
    /// Subjects fetched once a UTC day.
    pub quiet: u64,
    /// Subjects probed seldom.
    pub dormant: u64,
    /// Subject requests a day the plan costs at the schedule.
    pub requests_per_day: f64,
    /// Subject requests a day fetching every subject every tick would cost.
    pub everything_per_day: f64,
}

/// Records the account's plan (unchanged: no write).
pub fn upsert_account_plan(
    conn: &Connection,
    provider: &str,
    account: &str,
    plan: &AccountPlan,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO account_plan (provider, account, hot, quiet, dormant, requests_per_day, \
         everything_per_day, planned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (provider, account) DO UPDATE SET hot = excluded.hot, quiet = excluded.quiet, \
         dormant = excluded.dormant, requests_per_day = excluded.requests_per_day, \
         everything_per_day = excluded.everything_per_day, planned_at = excluded.planned_at \
         WHERE hot IS NOT excluded.hot OR quiet IS NOT excluded.quiet OR dormant IS NOT excluded.dormant \
            OR requests_per_day IS NOT excluded.requests_per_day \
            OR everything_per_day IS NOT excluded.everything_per_day",
    )?
    .execute(params![
        provider,
        account,
        count(plan.hot),
        count(plan.quiet),
        count(plan.dormant),
        plan.requests_per_day,
        plan.everything_per_day,
        at
    ])?;
    Ok(())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The account's latest plan, if a planned run recorded one.
pub fn load_account_plan(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Option<AccountPlan>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT hot, quiet, dormant, requests_per_day, everything_per_day FROM account_plan \
             WHERE provider = ?1 AND account = ?2",
        )?
        .query_row(params![provider, account], |r| {
            Ok(AccountPlan {
                hot: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                quiet: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                dormant: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                requests_per_day: r.get(3)?,
                everything_per_day: r.get(4)?,
            })
        })
        .optional()?)
}

/// Records that an answer fetched on `day` held a day `window_days` back (today being 1);
/// the day's row keeps the largest.
pub fn record_observed_window(
    conn: &Connection,
    provider: &str,
    account: &str,
    day: NaiveDate,
    window_days: u32,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO observed_window (provider, account, day, window_days) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (provider, account, day) DO UPDATE SET window_days = excluded.window_days \
         WHERE excluded.window_days > window_days",
    )?
    .execute(params![
        provider,
        account,
        day.format("%Y-%m-%d").to_string(),
        window_days
    ])?;
    Ok(())
}

/// The provider's window as its answers showed it: the most days back any answer held
/// on the latest [`OBSERVED_RECENT_DAYS`] days answers were seen (so a window that shrinks
/// is learned within a week of answers), and on how many days answers were seen in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ObservedWindow {
    /// The most days back any recent answer held (today being 1).
    pub days: u32,
    /// On how many days answers were seen.
    pub seen_on: u32,
    /// The fewest days the provider can be keeping, where an answer left out a day with
    /// use it had answered before (a window that shrank), until a later answer reaches
    /// further (the evidence holds through an outage).
    pub at_most: Option<u32>,
    /// Whether answers were seen in the last [`OBSERVED_RECENT_DAYS`] days, or a run of the
    /// account succeeded yesterday or today (quiet days, not an outage: every closed day
    /// was fetched while any window holds it). If not (an outage), `days` is what answers
    /// showed before, which may no longer hold.
    pub recent: bool,
}

impl ObservedWindow {
    /// The window answers can be trusted to hold, given `assumed`: the smaller of the two
    /// once answers were seen on at least `assumed` days. Before that a short reach may
    /// only mean quiet subjects (HydraProxy leaves out days without usage), not a short
    /// window, so the assumed one stands.
    ///
    /// A day with use that a later answer left out bounds the window at once: the provider
    /// no longer keeps it, whatever the reach of earlier answers.
    pub fn trusted(observed: Option<Self>, assumed: u32) -> u32 {
        let learned = match observed {
            Some(o) if o.seen_on >= assumed && o.days < assumed => o.days.max(1),
            _ => assumed,
        };
        observed
            .and_then(|o| o.at_most)
            .map_or(learned, |bound| learned.min(bound.max(1)))
    }
}

/// The observed window of `provider/account` as of `today`; `None` before any answer held
/// a day.
pub fn load_observed_window(
    conn: &Connection,
    provider: &str,
    account: &str,
    today: NaiveDate,
) -> Result<Option<ObservedWindow>, StoreError> {
    let since = (today - TimeDelta::days(OBSERVED_RECENT_DAYS - 1))
        .format("%Y-%m-%d")
        .to_string();
    let yesterday = (today - TimeDelta::days(1)).format("%Y-%m-%d").to_string();
    let today = today.format("%Y-%m-%d").to_string();
    let (recent, before, seen_on, at_most, ran): (Option<i64>, Option<i64>, i64, Option<i64>, bool) = conn
        .prepare_cached(
            "SELECT (SELECT max(window_days) FROM observed_window \
                     WHERE provider = ?1 AND account = ?2 AND day >= ?5 AND day <= ?3), \
                    (SELECT max(window_days) FROM (SELECT window_days FROM observed_window \
                     WHERE provider = ?1 AND account = ?2 AND day <= ?3 ORDER BY day DESC LIMIT ?4)), \
                    (SELECT count(*) FROM observed_window WHERE provider = ?1 AND account = ?2 AND day <= ?3), \
                    (SELECT min(e.at_most) FROM window_evidence e \
                     WHERE e.provider = ?1 AND e.account = ?2 AND e.day <= ?3 \
                     AND NOT EXISTS (SELECT 1 FROM observed_window o \
                       WHERE o.provider = ?1 AND o.account = ?2 AND o.day > e.day AND o.day <= ?3 \
                       AND o.window_days > e.at_most)), \
                    EXISTS (SELECT 1 FROM sync_run WHERE provider = ?1 AND account = ?2 \
                     AND status IN ('ok', 'partial') AND started_at >= ?6 AND started_at < ?3 || 'U')",
        )?
        .query_row(
            params![provider, account, today, OBSERVED_RECENT_DAYS, since, yesterday],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
    Ok(recent.or(before).and_then(|d| {
        Some(ObservedWindow {
            days: u32::try_from(d).ok()?,
            seen_on: u32::try_from(seen_on).ok()?,
            at_most: at_most.and_then(|a| u32::try_from(a).ok()),
            recent: recent.is_some() || ran,
        })
    }))
}

/// The most days back an answer fetched on `day` reached, if one held any day.
pub fn observed_on(
    conn: &Connection,
    provider: &str,
    account: &str,
    day: NaiveDate,
) -> Result<Option<u32>, StoreError> {
    let days: Option<i64> = conn
        .prepare_cached(
            "SELECT max(window_days) FROM observed_window WHERE provider = ?1 AND account = ?2 AND day = ?3",
        )?
        .query_row(
            params![provider, account, day.format("%Y-%m-%d").to_string()],
            |r| r.get(0),
        )?;
    Ok(days.and_then(|d| u32::try_from(d).ok()))
}

/// Records that an answer fetched on `day` left out a day with use it had answered before,
/// `at_most` days back (today being 1): the provider keeps at most that many days less one.
/// The day's row keeps the smallest.
pub fn record_window_evidence(
    conn: &Connection,
    provider: &str,
    account: &str,
    day: NaiveDate,
    at_most: u32,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO window_evidence (provider, account, day, at_most) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (provider, account, day) DO UPDATE SET at_most = excluded.at_most \
         WHERE excluded.at_most < at_most",
    )?
    .execute(params![
        provider,
        account,
        day.format("%Y-%m-%d").to_string(),
        at_most
    ])?;
    Ok(())
}
