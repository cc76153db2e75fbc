//! Daily usage derived from snapshots of running counters (SPEC §5.7).
//!
//! Providers that only expose running counters (Hostens `bw_in`/`bw_out`,
//! ProxyShard `data_spent`) hand each fetch's readings to
//! [`record_readings`]. Per subject, counter and UTC day the store keeps two
//! rows: the day's first snapshot, and the latest one with the increase
//! accumulated over every snapshot so far. A counter that drops (period
//! reset, recreated sub-user) counts the new value from zero, never a
//! negative day, as vnStat does. Day D is final once D+1 has a snapshot:
//! `latest(D).accumulated + increase(latest(D) → first(D+1))`. A day with no
//! snapshot of its own is never invented.

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::usage::SubjectKey;
use crate::model::{CounterKind, CounterReading, DayUsage, FetchTime};

/// The increase from reading `a` to the next reading `b`; a drop counts `b` from zero.
pub fn increase(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// One stored snapshot row: its value and the increase accumulated through the day.
#[derive(Debug, Clone, Copy)]
struct Slot {
    value_mb: f64,
    accumulated_mb: f64,
}

/// Records the readings of one fetch and returns the day rows they settle, with the
/// instant the readings are taken as (finality is decided from it).
///
/// That instant is the provider's own reading time (`read_at`, Hostens `synch_date`)
/// when it is plausible: not after the fetch, at most [`MAX_READING_AGE`] before it, and
/// not before the subject's previous snapshot. Otherwise it is the fetch time. So a panel that read its counters at 23:50
/// puts the traffic on that day even when the fetch comes after midnight.
///
/// Those are today (provisional) and, when both it and today have
/// snapshots, yesterday (final: the fetch is after yesterday ended).
pub fn record_readings(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    readings: &[CounterReading],
    fetched: FetchTime,
) -> Result<(Vec<DayUsage>, FetchTime), StoreError> {
    // Providers check their figures; a reading that is no counter value is never stored.
    let readings: Vec<&CounterReading> = readings
        .iter()
        .filter(|r| r.value_mb.is_finite() && r.value_mb >= 0.0)
        .collect();
    let fetched = read_at(tx, key, &readings, fetched)?;
    let today = fetched.day();
    let yesterday = today - TimeDelta::days(1);
    let mut today_figures = Vec::new();
    let mut yesterday_figures = Vec::new();
    for reading in &readings {
        let latest = record_one(tx, key, reading, fetched)?;
        today_figures.push((reading.kind, latest.accumulated_mb));
        let before = load_slot(tx, key, reading.kind, yesterday, "latest")?;
        let first_today = load_slot(tx, key, reading.kind, today, "first")?;
        if let (Some(y), Some(t)) = (before, first_today) {
            yesterday_figures.push((
                reading.kind,
                y.accumulated_mb + increase(y.value_mb, t.value_mb),
            ));
        }
    }
    let mut days = Vec::new();
    if yesterday_figures.len() == readings.len() {
        days.extend(combine(yesterday, &yesterday_figures));
    }
    days.extend(combine(today, &today_figures));
    Ok((days, fetched))
}

/// How long before the fetch a provider's reading time may lie: a panel that has not read
/// its counters for longer is stale, and its date no better than the fetch's.
pub const MAX_READING_AGE: TimeDelta = TimeDelta::hours(24);

/// The instant the readings are as of: their own `read_at` (the earliest, should they
/// differ) when it is not after the fetch, not older than [`MAX_READING_AGE`], nor
/// before the subject's latest snapshot.
fn read_at(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    readings: &[&CounterReading],
    fetched: FetchTime,
) -> Result<FetchTime, StoreError> {
    let Some(read) = readings.iter().filter_map(|r| r.read_at).min() else {
        return Ok(fetched);
    };
    if read > fetched.0 || fetched.0 - read > MAX_READING_AGE {
        return Ok(fetched);
    }
    let previous: Option<String> = tx
        .prepare_cached(
            "SELECT max(taken_at) FROM counter_snapshot \
             WHERE provider = ?1 AND account = ?2 AND subject = ?3",
        )?
        .query_row(params![key.provider, key.account, key.subject], |r| {
            r.get(0)
        })?;
    let previous = previous
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(if previous.is_some_and(|p| read < p) {
        fetched
    } else {
        FetchTime(read)
    })
}

/// Stores one reading as today's first and/or latest snapshot; returns today's latest.
fn record_one(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    reading: &CounterReading,
    fetched: FetchTime,
) -> Result<Slot, StoreError> {
    let (day, at, kind) = (fmt(fetched.day()), fetched.rfc3339(), reading.kind.as_str());
    let Some(latest) = load_slot(tx, key, reading.kind, fetched.day(), "latest")? else {
        let mut insert = tx.prepare_cached(
            "INSERT INTO counter_snapshot (provider, account, subject, counter, day, slot, taken_at, value_mb) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for slot in ["first", "latest"] {
            insert.execute(params![
                key.provider,
                key.account,
                key.subject,
                kind,
                day,
                slot,
                at,
                reading.value_mb
            ])?;
        }
        return Ok(Slot {
            value_mb: reading.value_mb,
            accumulated_mb: 0.0,
        });
    };
    if reading.value_mb == latest.value_mb {
        return Ok(latest);
    }
    let next = Slot {
        value_mb: reading.value_mb,
        accumulated_mb: latest.accumulated_mb + increase(latest.value_mb, reading.value_mb),
    };
    tx.prepare_cached(
        "UPDATE counter_snapshot SET taken_at = ?6, value_mb = ?7, accumulated_mb = ?8 \
         WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND counter = ?4 AND day = ?5 AND slot = 'latest'",
    )?
    .execute(params![key.provider, key.account, key.subject, kind, day, at, next.value_mb, next.accumulated_mb])?;
    Ok(next)
}

fn load_slot(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kind: CounterKind,
    day: NaiveDate,
    slot: &str,
) -> Result<Option<Slot>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT value_mb, accumulated_mb FROM counter_snapshot WHERE provider = ?1 AND account = ?2 \
             AND subject = ?3 AND counter = ?4 AND day = ?5 AND slot = ?6",
        )?
        .query_row(params![key.provider, key.account, key.subject, kind.as_str(), fmt(day), slot], |r| {
            Ok(Slot { value_mb: r.get(0)?, accumulated_mb: r.get(1)? })
        })
        .optional()?)
}

/// One day's row from per-counter figures: total from a total counter, else upload + download.
fn combine(day: NaiveDate, figures: &[(CounterKind, f64)]) -> Option<DayUsage> {
    let get = |kind| {
        figures
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| round_mb(*v))
    };
    let (upload_mb, download_mb) = (get(CounterKind::Upload), get(CounterKind::Download));
    let total_mb = get(CounterKind::Total).or_else(|| Some(upload_mb? + download_mb?))?;
    Some(DayUsage {
        day,
        upload_mb,
        download_mb,
        total_mb,
    })
}

/// Rounds to a millionth of a MB (a byte), so float noise does not churn rows.
fn round_mb(mb: f64) -> f64 {
    (mb * 1_000_000.0).round() / 1_000_000.0
}

fn fmt(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::increase;

    #[test]
    fn increase_never_goes_negative() {
        assert_eq!(increase(100.0, 150.0), 50.0);
        assert_eq!(increase(150.0, 150.0), 0.0);
        assert_eq!(
            increase(150.0, 20.0),
            20.0,
            "a reset counts the new value from zero"
        );
    }
}
