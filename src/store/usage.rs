//! Writes usage and balance rows: idempotent upserts, provisional then final.
//!
//! A row is inserted if new; otherwise it is updated only when a value or
//! its finality changed, so an unchanged re-sync writes nothing. A day is
//! final once fetched after it ended (a month: after the month ended); a
//! change to a final row is logged in `usage_revision` by a trigger in
//! `schema.sql`. Rows absent from a response are never touched.
//!
//! Day rows are keyed by the subject's number in the `subject` table (given the
//! first time a subject has days, in the same transaction), not by its names.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::StoreError;
use crate::model::{BalanceSnapshot, DayUsage, FetchTime, MonthResources, MonthUsage};

/// Identifies the rows of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectKey {
    /// Provider name (`hydraproxy`).
    pub provider: &'static str,
    /// Account label.
    pub account: String,
    /// Subject id (order, customer, server, …).
    pub subject: String,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertStats {
    /// New rows.
    pub inserted: u64,
    /// Rows whose values or finality changed.
    pub updated: u64,
    /// Rows already archived with the same values.
    pub unchanged: u64,
}

impl std::ops::AddAssign for UpsertStats {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// What one row's upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowOutcome {
    Inserted,
    Updated,
    Unchanged,
}

impl UpsertStats {
    fn record(&mut self, outcome: RowOutcome) {
        match outcome {
            RowOutcome::Inserted => self.inserted += 1,
            RowOutcome::Updated => self.updated += 1,
            RowOutcome::Unchanged => self.unchanged += 1,
        }
    }
}

/// Inserts the row if new, else updates it if anything differs (the update's WHERE says what).
///
/// The insert comes first because a backfill mostly inserts: one statement per new row.
fn upsert_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    update: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn rusqlite::ToSql],
) -> Result<RowOutcome, StoreError> {
    if insert.execute(params)? == 1 {
        Ok(RowOutcome::Inserted)
    } else if update.execute(params)? == 1 {
        Ok(RowOutcome::Updated)
    } else {
        Ok(RowOutcome::Unchanged)
    }
}

const INSERT_DAY: &str = "INSERT INTO day_usage (subject_id, day, upload_mb, download_mb, \
    total_mb, is_final, derived, first_seen_at, last_seen_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT DO NOTHING";

const UPDATE_DAY: &str = "UPDATE day_usage SET upload_mb = ?3, download_mb = ?4, total_mb = ?5, \
    is_final = max(is_final, ?6), derived = ?7, last_seen_at = ?8 \
    WHERE subject_id = ?1 AND day = ?2 \
    AND (upload_mb IS NOT ?3 OR download_mb IS NOT ?4 OR total_mb IS NOT ?5 \
         OR is_final < ?6 OR derived IS NOT ?7)";

const FIND_SUBJECT: &str =
    "SELECT id FROM subject WHERE provider = ?1 AND account = ?2 AND subject = ?3";

const ADD_SUBJECT: &str =
    "INSERT INTO subject (provider, account, subject) VALUES (?1, ?2, ?3) RETURNING id";

const INSERT_MONTH: &str = "INSERT INTO month_usage (provider, account, subject, month, upload_mb, \
    download_mb, total_mb, is_final, first_seen_at, last_seen_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) ON CONFLICT DO NOTHING";

const UPDATE_MONTH: &str = "UPDATE month_usage SET upload_mb = ?5, download_mb = ?6, total_mb = ?7, \
    is_final = max(is_final, ?8), last_seen_at = ?9 \
    WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND month = ?4 \
    AND (upload_mb IS NOT ?5 OR download_mb IS NOT ?6 OR total_mb IS NOT ?7 OR is_final < ?8)";

const UPSERT_BALANCE: &str = "INSERT INTO balance_snapshot (provider, account, day, metric, value, unit, taken_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (provider, account, day, metric) DO UPDATE SET \
    value = excluded.value, unit = excluded.unit, taken_at = excluded.taken_at \
    WHERE value IS NOT excluded.value OR unit IS NOT excluded.unit";

/// Opens the write transaction every batch uses (`BEGIN IMMEDIATE`, so the busy timeout applies).
pub fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// The archive's number for `key`'s subject (`subject.id`), given on first use.
fn subject_id(tx: &Transaction<'_>, key: &SubjectKey) -> Result<i64, StoreError> {
    let name = params![key.provider, key.account, key.subject];
    let found = tx
        .prepare_cached(FIND_SUBJECT)?
        .query_row(name, |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => Ok(tx
            .prepare_cached(ADD_SUBJECT)?
            .query_row(name, |r| r.get(0))?),
    }
}

/// Upserts one subject's day rows inside `tx`.
pub fn upsert_days(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    days: &[DayUsage],
    derived: bool,
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    if days.is_empty() {
        return Ok(UpsertStats::default());
    }
    let id = subject_id(tx, key)?;
    let mut insert = tx.prepare_cached(INSERT_DAY)?;
    let mut update = tx.prepare_cached(UPDATE_DAY)?;
    let now = fetched.rfc3339();
    let today = fetched.day();
    let mut stats = UpsertStats::default();
    let mut changed_months = BTreeSet::new();
    // In key order: providers often list newest first, and inserting a B-tree's keys
    // backwards leaves its pages half empty (an archive half again as large).
    let mut sorted: Vec<&DayUsage> = days.iter().collect();
    sorted.sort_unstable_by_key(|d| d.day);
    for d in sorted {
        let day = day_text(d.day);
        let p = params![
            id,
            day,
            d.upload_mb,
            d.download_mb,
            d.total_mb,
            d.day < today,
            derived,
            now
        ];
        let outcome = upsert_row(&mut insert, &mut update, p)?;
        if outcome != RowOutcome::Unchanged {
            changed_months.insert(first_of_month(d.day));
        }
        stats.record(outcome);
    }
    if !changed_months.is_empty() {
        refresh_rollup(tx, id, &changed_months)?;
    }
    Ok(stats)
}

/// `YYYY-MM-DD`. This runs once per archived row, where strftime (which parses its
/// format every time) and `format!` show in a profile.
fn day_text(day: NaiveDate) -> String {
    let Ok(year @ 0..=9999) = u32::try_from(day.year()) else {
        return format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day());
    };
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let (month, dom) = (day.month(), day.day());
    let text = [
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(dom / 10),
        digit(dom),
    ];
    String::from_utf8_lossy(&text).into_owned()
}

const REFRESH_ROLLUP: &str = "INSERT INTO month_rollup (subject_id, month, days, \
    last_day, upload_mb, download_mb, total_mb, is_final) \
    SELECT ?1, ?2, count(*), max(day), \
    CASE WHEN count(upload_mb) = count(*) THEN sum(upload_mb) END, \
    CASE WHEN count(download_mb) = count(*) THEN sum(download_mb) END, \
    sum(total_mb), min(is_final) FROM day_usage \
    WHERE subject_id = ?1 AND day >= ?3 AND day <= ?4 \
    ON CONFLICT (subject_id, month) DO UPDATE SET days = excluded.days, \
    last_day = excluded.last_day, upload_mb = excluded.upload_mb, \
    download_mb = excluded.download_mb, total_mb = excluded.total_mb, is_final = excluded.is_final";

/// Re-sums `month_rollup` for each month (given by its first day) whose days changed.
///
/// One aggregate per month over a range of the key: no grouping, so no sorter.
fn refresh_rollup(
    tx: &Transaction<'_>,
    subject_id: i64,
    months: &BTreeSet<NaiveDate>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(REFRESH_ROLLUP)?;
    for first in months {
        let month = first.format("%Y-%m").to_string();
        // 'YYYY-MM-31' sorts after every day of the month.
        let (from, to) = (format!("{month}-01"), format!("{month}-31"));
        stmt.execute(params![subject_id, month, from, to])?;
    }
    Ok(())
}

/// Upserts one subject's reported month rows inside `tx`.
pub fn upsert_months(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    months: &[MonthUsage],
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    let mut insert = tx.prepare_cached(INSERT_MONTH)?;
    let mut update = tx.prepare_cached(UPDATE_MONTH)?;
    let now = fetched.rfc3339();
    let this_month = first_of_month(fetched.day());
    let mut stats = UpsertStats::default();
    for m in months {
        let month = m.month.format("%Y-%m").to_string();
        let p = params![
            key.provider,
            key.account,
            key.subject,
            month,
            m.upload_mb,
            m.download_mb,
            m.total_mb,
            first_of_month(m.month) < this_month,
            now
        ];
        stats.record(upsert_row(&mut insert, &mut update, p)?);
    }
    Ok(stats)
}

const INSERT_RESOURCES: &str = "INSERT INTO month_resources (provider, account, subject, month, \
    quota_usage, quota_limit, inode_usage, inode_limit, first_seen_at, last_seen_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) ON CONFLICT DO NOTHING";

const UPDATE_RESOURCES: &str = "UPDATE month_resources SET quota_usage = ?5, quota_limit = ?6, \
    inode_usage = ?7, inode_limit = ?8, last_seen_at = ?9 \
    WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND month = ?4 \
    AND (quota_usage IS NOT ?5 OR quota_limit IS NOT ?6 OR inode_usage IS NOT ?7 \
         OR inode_limit IS NOT ?8)";

/// Upserts a subject's monthly disk and inode figures; unchanged rows are not rewritten.
pub fn upsert_month_resources(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    rows: &[MonthResources],
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    let mut insert = tx.prepare_cached(INSERT_RESOURCES)?;
    let mut update = tx.prepare_cached(UPDATE_RESOURCES)?;
    let now = fetched.rfc3339();
    let mut stats = UpsertStats::default();
    for r in rows {
        let month = r.month.format("%Y-%m").to_string();
        let p = params![
            key.provider,
            key.account,
            key.subject,
            month,
            r.quota_usage,
            r.quota_limit,
            r.inode_usage,
            r.inode_limit,
            now
        ];
        stats.record(upsert_row(&mut insert, &mut update, p)?);
    }
    Ok(stats)
}

/// Upserts the account's balance figures for the fetch's UTC day; returns rows changed.
pub fn upsert_balances(
    tx: &Transaction<'_>,
    provider: &str,
    account: &str,
    balances: &[BalanceSnapshot],
    fetched: FetchTime,
) -> Result<u64, StoreError> {
    let mut stmt = tx.prepare_cached(UPSERT_BALANCE)?;
    let day = fetched.day().format("%Y-%m-%d").to_string();
    let now = fetched.rfc3339();
    let mut changed = 0;
    for b in balances {
        changed += stmt.execute(params![
            provider, account, day, b.metric, b.value, b.unit, now
        ])? as u64;
    }
    Ok(changed)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_text_is_iso_8601() {
        for (y, m, d) in [
            (2026, 1, 1),
            (2024, 2, 29),
            (999, 12, 31),
            (1, 10, 9),
            (9999, 7, 20),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(day_text(day), day.format("%Y-%m-%d").to_string());
        }
        let far = NaiveDate::from_ymd_opt(12_345, 1, 2).unwrap();
        assert_eq!(day_text(far), "12345-01-02");
    }
}
