//! Which days the archive has seen per subject, and the gaps between them.
//!
//! Every successful fetch of a subject extends its coverage by the closed days
//! whose final figures it held: the days before the fetch's own the provider's
//! window showed (for counters, the days whose next day has a snapshot). A day
//! fetched only before it ended is not covered yet. A day never covered is a gap: *recoverable*
//! while the provider still keeps it (inside `retention_days`), *lost*
//! after. Gaps between two covered intervals always count. Days after a
//! subject's last coverage count only while the account keeps trying that
//! subject (it was covered through the day before the account's latest run, or
//! failed in it): a
//! subject the provider dropped has ended, it is not missing days.

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::StoreError;
use super::usage::SubjectKey;

const DAY: &str = "%Y-%m-%d";

/// Records that a fetch covered `from ..= to`; returns the days it shows were lost before it.
///
/// A stretch recorded past `to` (a clock that was ahead, then moved back) was never seen:
/// it is trimmed back to `to` first, so those days become gaps again instead of passing
/// for covered when their time comes.
pub fn extend_coverage(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, StoreError> {
    let latest = loop {
        match load_latest(tx, key)? {
            Some((first, last)) if last > to => trim(tx, key, first, to)?,
            latest => break latest,
        }
    };
    match latest {
        Some((first, last)) if from <= last + TimeDelta::days(1) => {
            if to > last {
                tx.prepare_cached(
                    "UPDATE subject_coverage SET last_day = ?5 \
                     WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND first_day = ?4",
                )?
                .execute(params![
                    key.provider,
                    key.account,
                    key.subject,
                    fmt(first),
                    fmt(to)
                ])?;
            }
            Ok(Vec::new())
        }
        previous => {
            tx.prepare_cached(
                "INSERT INTO subject_coverage (provider, account, subject, first_day, last_day) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                key.provider,
                key.account,
                key.subject,
                fmt(from),
                fmt(to)
            ])?;
            Ok(previous.map_or_else(Vec::new, |(_, last)| days_between(last, from)))
        }
    }
}

/// Records that the days `days` are covered, each merged with the stretches beside it;
/// returns the days that appending after the latest stretch shows lost for good. Unlike
/// [`extend_coverage`], nothing is trimmed: a day older than the latest covered one (its
/// snapshot came late) fills its own place.
pub fn cover_days(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    days: &[NaiveDate],
) -> Result<Vec<NaiveDate>, StoreError> {
    let mut lost = Vec::new();
    for day in days {
        lost.extend(cover_day(tx, key, *day)?);
    }
    Ok(lost)
}

fn cover_day(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    day: NaiveDate,
) -> Result<Vec<NaiveDate>, StoreError> {
    let stretch =
        |sql: &str, at: NaiveDate| -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
            let found: Option<(String, String)> = tx
                .prepare_cached(sql)?
                .query_row(
                    params![key.provider, key.account, key.subject, fmt(at)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(found.and_then(|(f, l)| Some((parse(&f)?, parse(&l)?))))
        };
    const HOLDING: &str = "SELECT first_day, last_day FROM subject_coverage WHERE provider = ?1 \
        AND account = ?2 AND subject = ?3 AND first_day <= ?4 ORDER BY first_day DESC LIMIT 1";
    const STARTING: &str = "SELECT first_day, last_day FROM subject_coverage WHERE provider = ?1 \
        AND account = ?2 AND subject = ?3 AND first_day = ?4";
    let before = stretch(HOLDING, day)?;
    if before.is_some_and(|(_, last)| last >= day) {
        return Ok(Vec::new());
    }
    let after = stretch(STARTING, day + TimeDelta::days(1))?;
    let joins_before = before.filter(|(_, last)| *last + TimeDelta::days(1) == day);
    let first = joins_before.map_or(day, |(first, _)| first);
    let last = after.map_or(day, |(_, last)| last);
    for (old_first, _) in [joins_before, after].into_iter().flatten() {
        tx.prepare_cached(
            "DELETE FROM subject_coverage WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND first_day = ?4",
        )?
        .execute(params![key.provider, key.account, key.subject, fmt(old_first)])?;
    }
    tx.prepare_cached(
        "INSERT INTO subject_coverage (provider, account, subject, first_day, last_day) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![key.provider, key.account, key.subject, fmt(first), fmt(last)])?;
    // Appended after the latest stretch, past a hole: the hole is lost for good.
    let latest = load_latest(tx, key)?;
    match (before, after, latest) {
        (Some((_, prev)), None, Some((f, _))) if f == first && joins_before.is_none() => {
            Ok(days_between(prev, day))
        }
        _ => Ok(Vec::new()),
    }
}

/// The subject's latest covered stretch.
fn load_latest(
    tx: &Transaction<'_>,
    key: &SubjectKey,
) -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
    let latest: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT first_day, last_day FROM subject_coverage \
             WHERE provider = ?1 AND account = ?2 AND subject = ?3 ORDER BY first_day DESC LIMIT 1",
        )?
        .query_row(params![key.provider, key.account, key.subject], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(latest.and_then(|(f, l)| Some((parse(&f)?, parse(&l)?))))
}

/// Cuts the stretch starting at `first` back to end at `to`, or removes it if it starts later.
fn trim(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    first: NaiveDate,
    to: NaiveDate,
) -> Result<(), StoreError> {
    let sql = if first > to {
        "DELETE FROM subject_coverage \
         WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND first_day = ?4"
    } else {
        "UPDATE subject_coverage SET last_day = ?5 \
         WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND first_day = ?4"
    };
    let p = params![key.provider, key.account, key.subject, fmt(first), fmt(to)];
    // DELETE has no ?5: bind only what the statement names.
    let mut stmt = tx.prepare_cached(sql)?;
    let count = stmt.parameter_count();
    stmt.execute(&p[..count])?;
    Ok(())
}

/// A subject's missing days.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SubjectGaps {
    /// The subject.
    pub subject: String,
    /// What the provider calls it, if known (`subjects.label`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Missing days the provider still keeps: the next successful sync fills them.
    pub recoverable: Vec<String>,
    /// Missing days the provider no longer keeps.
    pub lost: Vec<String>,
}

/// Gaps of every subject of one account as of `today` (today itself is never a gap).
///
/// A subject whose days are derived from counter snapshots counts its days from its
/// first snapshot (a day before its first final one is a gap too), and a day of it stays
/// recoverable one day longer than the window: its final figure needs a snapshot of the
/// next day, which can still be taken the day after.
pub fn load_gaps(
    conn: &Connection,
    provider: &str,
    account: &str,
    today: NaiveDate,
    retention_days: u32,
) -> Result<Vec<SubjectGaps>, StoreError> {
    let active = load_active_subjects(conn, provider, account)?;
    let oldest_kept = today - TimeDelta::days(i64::from(retention_days.max(1)) - 1);
    let snapshots = load_snapshot_days(conn, provider, account)?;
    let mut intervals = load_intervals(conn, provider, account)?;
    for subject in snapshots.keys() {
        intervals.entry(subject.clone()).or_default();
    }
    let mut out = Vec::new();
    for (subject, spans) in intervals {
        let (missing, kept_from) = match snapshots.get(&subject) {
            Some(&(first, last)) => {
                let active = last
                    >= active_day(conn, provider, account)?.unwrap_or(last) - TimeDelta::days(1);
                let until = if active { today } else { last };
                let missing = first
                    .iter_days()
                    .take_while(|d| *d < until)
                    .filter(|d| !spans.iter().any(|(a, b)| a <= d && d <= b))
                    .collect::<Vec<_>>();
                (missing, oldest_kept - TimeDelta::days(1))
            }
            None => {
                let mut missing: Vec<NaiveDate> = spans
                    .windows(2)
                    .flat_map(|w| days_between(w[0].1, w[1].0))
                    .collect();
                if let Some((_, last)) = spans.last().filter(|_| active.contains(&subject)) {
                    missing.extend(days_between(*last, today));
                }
                (missing, oldest_kept)
            }
        };
        if missing.is_empty() {
            continue;
        }
        let (recoverable, lost): (Vec<NaiveDate>, Vec<NaiveDate>) =
            missing.into_iter().partition(|d| *d >= kept_from);
        let label = conn
            .prepare_cached(
                "SELECT label FROM subject_info WHERE provider = ?1 AND account = ?2 AND subject = ?3",
            )?
            .query_row(params![provider, account, subject], |r| r.get(0))
            .optional()?
            .flatten();
        out.push(SubjectGaps {
            subject,
            label,
            recoverable: recoverable.into_iter().map(fmt).collect(),
            lost: lost.into_iter().map(fmt).collect(),
        });
    }
    Ok(out)
}

/// The first and the latest day with a counter snapshot, per subject of the account.
fn load_snapshot_days(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<std::collections::BTreeMap<String, (NaiveDate, NaiveDate)>, StoreError> {
    let sql = "SELECT subject, min(day), max(day) FROM counter_snapshot \
               WHERE provider = ?1 AND account = ?2 GROUP BY subject";
    Ok(day_spans(conn, sql, provider, account)?.collect())
}

/// The day the account's latest finished run started, if it ran.
fn active_day(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Option<NaiveDate>, StoreError> {
    let day: Option<String> = conn
        .prepare_cached(
            "SELECT substr(started_at, 1, 10) FROM sync_run WHERE provider = ?1 AND account = ?2 \
             AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![provider, account], |r| r.get(0))
        .optional()?;
    Ok(day.as_deref().and_then(parse))
}

/// The days from `from` to `to` that no coverage interval of `subjects` holds, per
/// subject (those with none left out).
///
/// Stricter than [`load_gaps`]: the days after a subject's last coverage count whether
/// or not the latest run tried it. The benchmarks and tests of the fetch plan check with
/// it that every day is covered, including those of subjects the plan left for later.
pub fn uncovered_days(
    conn: &Connection,
    provider: &str,
    account: &str,
    subjects: impl IntoIterator<Item = String>,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<std::collections::BTreeMap<String, Vec<NaiveDate>>, StoreError> {
    let intervals = load_intervals(conn, provider, account)?;
    let mut out = std::collections::BTreeMap::new();
    for subject in subjects {
        let spans = intervals.get(&subject).map_or(&[][..], Vec::as_slice);
        let missing: Vec<NaiveDate> = from
            .iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| !spans.iter().any(|(a, b)| a <= d && d <= b))
            .collect();
        if !missing.is_empty() {
            out.insert(subject, missing);
        }
    }
    Ok(out)
}

/// Covered intervals per subject, in day order.
type Intervals = std::collections::BTreeMap<String, Vec<(NaiveDate, NaiveDate)>>;

fn load_intervals(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Intervals, StoreError> {
    let sql = "SELECT subject, first_day, last_day FROM subject_coverage \
               WHERE provider = ?1 AND account = ?2 ORDER BY subject, first_day";
    let mut intervals = Intervals::new();
    for (subject, span) in day_spans(conn, sql, provider, account)? {
        intervals.entry(subject).or_default().push(span);
    }
    Ok(intervals)
}

/// The rows of `sql` (subject, first day, last day) for an account, days parsed; a row
/// with a day that does not parse is left out.
fn day_spans(
    conn: &Connection,
    sql: &str,
    provider: &str,
    account: &str,
) -> Result<impl Iterator<Item = (String, (NaiveDate, NaiveDate))>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params![provider, account], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(subject, first, last)| Some((subject, (parse(&first)?, parse(&last)?)))))
}

/// Subjects the account's latest finished run covered or failed on (not those found gone).
fn load_active_subjects(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH last AS (SELECT id, substr(started_at, 1, 10) AS day FROM sync_run \
                       WHERE provider = ?1 AND account = ?2 AND finished_at IS NOT NULL \
                       ORDER BY id DESC LIMIT 1) \
         SELECT subject FROM subject_coverage, last \
           WHERE provider = ?1 AND account = ?2 AND last_day >= date(last.day, '-1 day') \
         UNION SELECT subject FROM sync_error, last WHERE run_id = last.id AND subject IS NOT NULL \
           AND substr(error, 1, length(?3)) <> ?3",
    )?;
    let rows = stmt.query_map(params![provider, account, super::runs::GONE_NOTE], |r| {
        r.get(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The days strictly between `a` and `b`.
fn days_between(a: NaiveDate, b: NaiveDate) -> Vec<NaiveDate> {
    a.iter_days().skip(1).take_while(|d| *d < b).collect()
}

fn parse(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, DAY).ok()
}

fn fmt(day: NaiveDate) -> String {
    day.format(DAY).to_string()
}
