//! Daily usage derived from snapshots of running counters (SPEC §5.7).
//!
//! Providers that only expose running counters (Hostens `bw_in`/`bw_out`,
//! ProxyShard `data_spent`) hand each fetch's readings to
//! [`record_readings`]. Per subject, counter and UTC day the store keeps two
//! rows: the day's first snapshot, and the latest one with the increase
//! accumulated over the day's snapshots. Day D is final once D+1 has a
//! snapshot: `latest(D).accumulated + increase(latest(D) → first(D+1))`. A
//! day with no snapshot of its own is never invented.
//!
//! **Time, not arrival, orders snapshots.** A reading is placed by the
//! instant it was taken, whenever it is committed: a clock stepped back, two
//! processes on one archive, or a backup restored elsewhere all deliver
//! readings older than the latest kept one. Such a reading
//! - before its day's first snapshot becomes that day's new first (the day
//!   before ends at it, so that day is derived again);
//! - on a day without snapshots fills that day in;
//! - between its day's first and latest snapshots changes no day's
//!   boundary, and is ignored.
//!
//! So a counter drop is a reset only between neighbours in time, and counts
//! the new value from zero, never a negative day, as vnStat does.

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::usage::SubjectKey;
use crate::model::{CounterKind, CounterReading, DayUsage, FetchTime};

/// The increase from reading `a` to the next reading `b`; a drop counts `b` from zero.
pub fn increase(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// One stored snapshot row: when it was taken, its value, and (in a day's latest row)
/// the increase accumulated through the day.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slot {
    pub(super) taken_at: String,
    pub(super) value_mb: f64,
    pub(super) accumulated_mb: f64,
}

/// A day's two snapshot rows of one counter.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DaySlots {
    pub(super) first: Slot,
    pub(super) latest: Slot,
}

/// The day rows one fetch's readings settle, and the instant they are taken as.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// Rows of the days whose figures the readings may have changed (the reading's day
    /// and the day before), each final or not as [`Derived::final_before`] says.
    pub days: Vec<DayUsage>,
    /// Days before this one are final: the next day has a snapshot, taken after they ended.
    pub final_before: NaiveDate,
    /// The instant the readings are taken as (their provider's reading time, or the fetch).
    pub read: FetchTime,
    /// The counters' own allocation in MB, where the provider gives one (ProxyShard
    /// `data`): a day above it is implausible.
    pub limit_mb: Option<f64>,
}

/// Where a reading went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The first snapshot of its day.
    NewDay,
    /// After its day's latest snapshot: the usual case.
    Appended,
    /// Before its day's first snapshot: the day before ends at it now.
    NewFirst,
    /// Changes nothing: the same value as the latest, or between the day's first and latest.
    Ignored,
}

/// Records the readings of one fetch and returns the day rows they settle.
///
/// The readings are taken as of their provider's own reading time (`read_at`, Hostens
/// `synch_date`) when it is plausible: not after the fetch, at most [`MAX_READING_AGE`]
/// before it, and not before the latest snapshot the archive holds from at or before the
/// fetch. Otherwise as of the fetch. So a panel that read its counters at 23:50 puts the
/// traffic on that day even when the fetch comes after midnight.
pub fn record_readings(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    readings: &[CounterReading],
    fetched: FetchTime,
) -> Result<Derived, StoreError> {
    // Providers check their figures; a reading that is no counter value is never stored.
    let readings: Vec<&CounterReading> = readings
        .iter()
        .filter(|r| r.value_mb.is_finite() && r.value_mb >= 0.0)
        .collect();
    let read = read_at(tx, key, &readings, fetched)?;
    let day = read.day();
    let mut ignored = 0;
    for reading in &readings {
        if place(tx, key, reading.kind, read, reading.value_mb)? == Placement::Ignored {
            ignored += 1;
        }
    }
    if ignored > 0 && ignored == readings.len() {
        tracing::debug!(subject = %key.subject, at = %read.rfc3339(), "Counter snapshot changes no day: older than the day's latest and not before its first");
    }
    let kinds: Vec<CounterKind> = readings.iter().map(|r| r.kind).collect();
    let mut days = Vec::new();
    if let Some((before, true)) = derive_day(tx, key, &kinds, day - TimeDelta::days(1))? {
        days.push(before);
    }
    let mut final_before = day;
    if let Some((usage, is_final)) = derive_day(tx, key, &kinds, day)? {
        if is_final {
            final_before = day + TimeDelta::days(1);
        }
        days.push(usage);
    }
    let limit_mb = readings.iter().filter_map(|r| r.limit_mb).reduce(f64::min);
    Ok(Derived {
        days,
        final_before,
        read,
        limit_mb,
    })
}

/// Day `day`'s row from the counters `kinds`, and whether it is final (the next day has
/// snapshots of every counter); `None` while a counter has no snapshot that day.
fn derive_day(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kinds: &[CounterKind],
    day: NaiveDate,
) -> Result<Option<(DayUsage, bool)>, StoreError> {
    let mut figures = Vec::with_capacity(kinds.len());
    let mut is_final = true;
    for kind in kinds {
        let Some(slots) = load_day(tx, key, *kind, day)? else {
            return Ok(None);
        };
        let next = load_slot(tx, key, *kind, day + TimeDelta::days(1), "first")?;
        let (figure, closed) = day_figure(&slots, next.as_ref());
        is_final &= closed;
        figures.push((*kind, figure));
    }
    Ok(combine(day, &figures).map(|usage| (usage, is_final)))
}

/// A day's figure from its slots and the next day's first snapshot, and whether it is
/// final (that snapshot exists).
pub(super) fn day_figure(slots: &DaySlots, next_first: Option<&Slot>) -> (f64, bool) {
    let latest = &slots.latest;
    match next_first {
        Some(next) => (
            latest.accumulated_mb + increase(latest.value_mb, next.value_mb),
            true,
        ),
        None => (latest.accumulated_mb, false),
    }
}

/// How long before the fetch a provider's reading time may lie: a panel that has not read
/// its counters for longer is stale, and its date no better than the fetch's.
pub const MAX_READING_AGE: TimeDelta = TimeDelta::hours(24);

/// The instant the readings are as of: their own `read_at` (the earliest, should they
/// differ) when it is not after the fetch, not older than [`MAX_READING_AGE`], nor
/// before the latest snapshot taken at or before the fetch (a panel date older than what
/// the archive already saw then is stale). Snapshots after the fetch, committed first by
/// another process or before the clock stepped back, are no evidence against it.
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
             WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND taken_at <= ?4",
        )?
        .query_row(
            params![key.provider, key.account, key.subject, fetched.rfc3339()],
            |r| r.get(0),
        )?;
    let read = FetchTime(read);
    Ok(if previous.is_some_and(|p| read.rfc3339() < p) {
        fetched
    } else {
        read
    })
}

/// Puts one reading in its place in time among its day's snapshots.
fn place(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kind: CounterKind,
    at: FetchTime,
    value_mb: f64,
) -> Result<Placement, StoreError> {
    let (day, taken_at) = (at.day(), at.rfc3339());
    let Some(slots) = load_day(tx, key, kind, day)? else {
        let fresh = Slot {
            taken_at,
            value_mb,
            accumulated_mb: 0.0,
        };
        for slot in ["first", "latest"] {
            insert_slot(tx, key, kind, day, slot, &fresh)?;
        }
        return Ok(Placement::NewDay);
    };
    let (first, latest) = (&slots.first, &slots.latest);
    if taken_at > latest.taken_at {
        if value_mb == latest.value_mb {
            return Ok(Placement::Ignored);
        }
        let next = Slot {
            accumulated_mb: latest.accumulated_mb + increase(latest.value_mb, value_mb),
            taken_at,
            value_mb,
        };
        write_slot(tx, key, kind, day, "latest", &next)?;
        return Ok(Placement::Appended);
    }
    if taken_at < first.taken_at {
        let new_first = Slot {
            taken_at,
            value_mb,
            accumulated_mb: 0.0,
        };
        let latest = Slot {
            accumulated_mb: latest.accumulated_mb + increase(value_mb, first.value_mb),
            ..latest.clone()
        };
        write_slot(tx, key, kind, day, "first", &new_first)?;
        write_slot(tx, key, kind, day, "latest", &latest)?;
        return Ok(Placement::NewFirst);
    }
    Ok(Placement::Ignored)
}

fn insert_slot(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kind: CounterKind,
    day: NaiveDate,
    slot: &str,
    s: &Slot,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO counter_snapshot (provider, account, subject, counter, day, slot, taken_at, value_mb, accumulated_mb) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        key.provider,
        key.account,
        key.subject,
        kind.as_str(),
        fmt(day),
        slot,
        s.taken_at,
        s.value_mb,
        s.accumulated_mb
    ])?;
    Ok(())
}

pub(super) fn write_slot(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kind: CounterKind,
    day: NaiveDate,
    slot: &str,
    s: &Slot,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE counter_snapshot SET taken_at = ?7, value_mb = ?8, accumulated_mb = ?9 \
         WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND counter = ?4 AND day = ?5 AND slot = ?6",
    )?
    .execute(params![
        key.provider,
        key.account,
        key.subject,
        kind.as_str(),
        fmt(day),
        slot,
        s.taken_at,
        s.value_mb,
        s.accumulated_mb
    ])?;
    Ok(())
}

/// Both snapshot rows of a counter's day, if it has any.
fn load_day(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    kind: CounterKind,
    day: NaiveDate,
) -> Result<Option<DaySlots>, StoreError> {
    let first = load_slot(tx, key, kind, day, "first")?;
    let latest = load_slot(tx, key, kind, day, "latest")?;
    Ok(first
        .zip(latest)
        .map(|(first, latest)| DaySlots { first, latest }))
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
            "SELECT taken_at, value_mb, accumulated_mb FROM counter_snapshot WHERE provider = ?1 \
             AND account = ?2 AND subject = ?3 AND counter = ?4 AND day = ?5 AND slot = ?6",
        )?
        .query_row(
            params![
                key.provider,
                key.account,
                key.subject,
                kind.as_str(),
                fmt(day),
                slot
            ],
            |r| {
                Ok(Slot {
                    taken_at: r.get(0)?,
                    value_mb: r.get(1)?,
                    accumulated_mb: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// One day's row from per-counter figures: total from a total counter, else upload + download.
pub(super) fn combine(day: NaiveDate, figures: &[(CounterKind, f64)]) -> Option<DayUsage> {
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
    use super::*;

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

    fn slot(at: &str, value_mb: f64, accumulated_mb: f64) -> Slot {
        Slot {
            taken_at: at.to_owned(),
            value_mb,
            accumulated_mb,
        }
    }

    /// A day is provisional (its increase so far) until the next day has a snapshot.
    #[test]
    fn day_figure_is_final_once_the_next_day_has_a_snapshot() {
        let slots = DaySlots {
            first: slot("2026-01-07T00:10:00Z", 100.0, 0.0),
            latest: slot("2026-01-07T20:00:00Z", 180.0, 80.0),
        };
        assert_eq!(day_figure(&slots, None), (80.0, false));
        let next = slot("2026-01-08T00:10:00Z", 200.0, 0.0);
        assert_eq!(day_figure(&slots, Some(&next)), (100.0, true));
        let reset = slot("2026-01-08T00:10:00Z", 5.0, 0.0);
        assert_eq!(day_figure(&slots, Some(&reset)), (85.0, true));
    }
}
