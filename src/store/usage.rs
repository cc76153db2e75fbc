//! Writes usage and balance rows: idempotent upserts, provisional then final.
//!
//! A row is inserted if new; otherwise it is updated only when a value or
//! its finality changed, so an unchanged re-sync writes nothing. A figure the
//! provider reported is replaced only by a fetch at least as recent as the one
//! that last wrote it: fetches are ordered by time, not by arrival (a second
//! process, a clock stepped back). Derived days are exempt: they are computed
//! from every snapshot kept, in time order, whatever arrived last. A day is
//! final once fetched after it ended (a month: after the month ended); a
//! change to a final row is logged in `usage_revision` by a trigger in
//! `schema.sql`. Rows absent from a response are never touched.
//!
//! Day rows are keyed by the subject's number in the `subject` table (given the
//! first time a subject has days, in the same transaction), not by its names.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::StoreError;
use crate::model::{DayUsage, FetchTime};

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
pub(super) enum RowOutcome {
    Inserted,
    Updated,
    Unchanged,
}

impl UpsertStats {
    pub(super) fn record(&mut self, outcome: RowOutcome) {
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
pub(super) fn upsert_row(
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

const UPDATE_DAY: &str = "UPDATE day_usage SET upload_mb = ?3, download_mb = ?4, total_mb = ?5, \
    is_final = max(is_final, ?6), derived = ?7, last_seen_at = ?8 \
    WHERE subject_id = ?1 AND day = ?2 \
    AND (upload_mb IS NOT ?3 OR download_mb IS NOT ?4 OR total_mb IS NOT ?5 \
         OR is_final < ?6 OR derived IS NOT ?7) \
    AND (?7 OR last_seen_at <= ?8)";

const FIND_SUBJECT: &str =
    "SELECT id FROM subject WHERE provider = ?1 AND account = ?2 AND subject = ?3";

const ADD_SUBJECT: &str = "INSERT INTO subject (provider, account, subject) VALUES (?1, ?2, ?3)";

/// Opens the write transaction every batch uses (`BEGIN IMMEDIATE`, so the busy timeout applies).
pub fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// The archive's number for `key`'s subject (`subject.id`), given on first use.
pub(super) fn subject_id(tx: &Transaction<'_>, key: &SubjectKey) -> Result<i64, StoreError> {
    let name = params![key.provider, key.account, key.subject];
    let found = tx
        .prepare_cached(FIND_SUBJECT)?
        .query_row(name, |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => {
            // `id` is the rowid: no RETURNING, whose rows SQLite gathers in a temporary table.
            tx.prepare_cached(ADD_SUBJECT)?.execute(name)?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// Upserts one subject's day rows inside `tx`.
///
/// New days go in by multi-row inserts that skip the days already archived. Only when
/// some were skipped does each day get an update, whose WHERE rewrites it only if a
/// value or its finality differs. A backfill, or a sync whose days are all new, so
/// costs a few statements per subject instead of one per row.
pub fn upsert_days(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    days: &[DayUsage],
    derived: bool,
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    upsert_days_final_before(tx, key, days, derived, fetched, fetched.day())
}

/// [`upsert_days`] with the days before `final_before` final, instead of the days before
/// the fetch's: a derived day is final once the next day has a snapshot.
pub fn upsert_days_final_before(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    days: &[DayUsage],
    derived: bool,
    fetched: FetchTime,
    final_before: NaiveDate,
) -> Result<UpsertStats, StoreError> {
    if days.is_empty() {
        return Ok(UpsertStats::default());
    }
    let id = subject_id(tx, key)?;
    let now = fetched.rfc3339();
    let today = final_before;
    // In key order: providers often list newest first, and inserting a B-tree's keys
    // backwards leaves its pages half empty (an archive half again as large). A stable
    // sort, so that of a day listed twice the later mention is written last and stays.
    let mut sorted: Vec<&DayUsage> = days.iter().collect();
    sorted.sort_by_key(|d| d.day);
    let inserted = insert_new_days(tx, id, &sorted, derived, &now, today)?;
    let mut stats = UpsertStats {
        inserted,
        ..UpsertStats::default()
    };
    let mut changed_months = BTreeSet::new();
    if inserted == sorted.len() as u64 {
        // Every day was new (a backfill, a new day): a month the archive held no day
        // of gets its rollup from these days without reading them back.
        for month in sorted.chunk_by(|a, b| first_of_month(a.day) == first_of_month(b.day)) {
            if !add_new_month(tx, id, month, today)? {
                changed_months.extend(month.first().map(|d| first_of_month(d.day)));
            }
        }
    } else if inserted > 0 {
        changed_months.extend(sorted.iter().map(|d| first_of_month(d.day)));
    }
    if inserted < sorted.len() as u64 {
        // Some days were archived already: rewrite those whose values changed (a day
        // just inserted has the same values, so its update changes nothing).
        let mut update = tx.prepare_cached(UPDATE_DAY)?;
        for d in &sorted {
            let p = params![
                id,
                day_text(d.day),
                d.upload_mb,
                d.download_mb,
                d.total_mb,
                d.day < today,
                derived,
                now
            ];
            if update.execute(p)? == 1 {
                stats.updated += 1;
                changed_months.insert(first_of_month(d.day));
                // A changed day is judged again by whoever wrote it (store::flags).
                super::flags::clear(tx, id, d.day)?;
            }
        }
    }
    stats.unchanged = sorted.len() as u64 - stats.inserted - stats.updated;
    if !changed_months.is_empty() {
        refresh_rollup(tx, id, &changed_months)?;
    }
    Ok(stats)
}

/// Rows per multi-row `INSERT`, largest first: a response takes the fewest statements
/// these sizes add up to (a month's 30 days: 16 + 8 + 4 + 2), each step inserting many
/// rows instead of one.
const INSERT_SIZES: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `INSERT INTO day_usage … VALUES (…), (…) … ON CONFLICT DO NOTHING` for each of
/// [`INSERT_SIZES`]: `?1` the subject, `?2` derived, `?3` the time seen, then five
/// parameters per row (day, upload, download, total, is_final).
static INSERT_DAYS: LazyLock<[String; INSERT_SIZES.len()]> = LazyLock::new(|| {
    INSERT_SIZES.map(|rows| {
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let p = 4 + 5 * r;
                format!(
                    "(?1, ?{p}, ?{}, ?{}, ?{}, ?{}, ?2, ?3, ?3)",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4
                )
            })
            .collect();
        format!(
            "INSERT INTO day_usage (subject_id, day, upload_mb, download_mb, total_mb, \
             is_final, derived, first_seen_at, last_seen_at) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        )
    })
});

/// Inserts the days not archived yet (`days` in key order); returns how many.
fn insert_new_days(
    tx: &Transaction<'_>,
    id: i64,
    days: &[&DayUsage],
    derived: bool,
    now: &str,
    today: NaiveDate,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    let mut rest = days;
    while !rest.is_empty() {
        let Some((sql, size)) = INSERT_DAYS
            .iter()
            .zip(INSERT_SIZES)
            .find(|&(_, size)| size <= rest.len())
        else {
            break;
        };
        let (chunk, tail) = rest.split_at(size);
        let mut stmt = tx.prepare_cached(sql)?;
        stmt.raw_bind_parameter(1, id)?;
        stmt.raw_bind_parameter(2, derived)?;
        stmt.raw_bind_parameter(3, now)?;
        for (r, d) in chunk.iter().enumerate() {
            let p = 4 + 5 * r;
            stmt.raw_bind_parameter(p, day_text(d.day))?;
            stmt.raw_bind_parameter(p + 1, d.upload_mb)?;
            stmt.raw_bind_parameter(p + 2, d.download_mb)?;
            stmt.raw_bind_parameter(p + 3, d.total_mb)?;
            stmt.raw_bind_parameter(p + 4, d.day < today)?;
        }
        inserted += stmt.raw_execute()? as u64;
        rest = tail;
    }
    Ok(inserted)
}

/// `YYYY-MM`.
pub(super) fn month_text(day: NaiveDate) -> String {
    let mut text = day_text(day);
    text.truncate(text.len() - 3);
    text
}

/// `YYYY-MM-DD`. This runs once per archived row, where strftime (which parses its
/// format every time) and `format!` show in a profile.
pub(super) fn day_text(day: NaiveDate) -> String {
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
    download_mb = excluded.download_mb, total_mb = excluded.total_mb, is_final = excluded.is_final \
    WHERE days IS NOT excluded.days OR last_day IS NOT excluded.last_day \
    OR upload_mb IS NOT excluded.upload_mb OR download_mb IS NOT excluded.download_mb \
    OR total_mb IS NOT excluded.total_mb OR is_final IS NOT excluded.is_final";

const ADD_MONTH: &str = "INSERT INTO month_rollup (subject_id, month, days, last_day, \
    upload_mb, download_mb, total_mb, is_final) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
    ON CONFLICT DO NOTHING";

/// Writes the rollup of a month whose only days are `days` (one month's, in key order,
/// all just inserted); `false` if the month already had days, and so a rollup to re-sum.
fn add_new_month(
    tx: &Transaction<'_>,
    subject_id: i64,
    days: &[&DayUsage],
    today: NaiveDate,
) -> Result<bool, StoreError> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(true);
    };
    let added = tx.prepare_cached(ADD_MONTH)?.execute(params![
        subject_id,
        month_text(first.day),
        days.len() as i64,
        day_text(last.day),
        sql_sum(days.iter().map(|d| d.upload_mb)),
        sql_sum(days.iter().map(|d| d.download_mb)),
        sql_sum(days.iter().map(|d| Some(d.total_mb))),
        days.iter().all(|d| d.day < today),
    ])?;
    Ok(added == 1)
}

/// What the rollup's `sum()` gives for these REAL values in this order, or `None` when
/// one is missing (`CASE WHEN count(x) = count(*)`). SQLite adds with Kahan-Babuska-
/// Neumaier summation (`sumStep`, `sumFinalize` in sqlite3.c); doing the same additions
/// here gives the same bits, so a rollup written from memory equals one summed by SQL
/// (`store::rollup_from_memory_equals_sqlites_sum` checks that on awkward values).
fn sql_sum(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (mut sum, mut err) = (0.0_f64, 0.0_f64);
    for value in values {
        let value = value?;
        let next = sum + value;
        err += if sum.abs() > value.abs() {
            (sum - next) + value
        } else {
            (value - next) + sum
        };
        sum = next;
    }
    Some(if err.is_finite() { sum + err } else { sum })
}

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
        let month = month_text(*first);
        // 'YYYY-MM-31' sorts after every day of the month.
        let (from, to) = (format!("{month}-01"), format!("{month}-31"));
        stmt.execute(params![subject_id, month, from, to])?;
    }
    Ok(())
}

/// The days from `from` to `to` (both included) the archive holds use on for `key`'s
/// subject.
pub fn days_with_use(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT d.day FROM subject s JOIN day_usage d ON d.subject_id = s.id \
         WHERE s.provider = ?1 AND s.account = ?2 AND s.subject = ?3 \
         AND d.day >= ?4 AND d.day <= ?5 AND d.total_mb > 0",
    )?;
    let days = stmt.query_map(
        params![
            key.provider,
            key.account,
            key.subject,
            day_text(from),
            day_text(to)
        ],
        |r| r.get::<_, String>(0),
    )?;
    let mut out = Vec::new();
    for day in days {
        if let Ok(day) = NaiveDate::parse_from_str(&day?, "%Y-%m-%d") {
            out.push(day);
        }
    }
    Ok(out)
}

pub(super) fn first_of_month(d: NaiveDate) -> NaiveDate {
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
            assert_eq!(month_text(day), day.format("%Y-%m").to_string());
        }
        let far = NaiveDate::from_ymd_opt(12_345, 1, 2).unwrap();
        assert_eq!(day_text(far), "12345-01-02");
        assert_eq!(month_text(far), "12345-01");
    }
}
