//! Which days the archive has seen per subject, and the gaps between them.
//!
//! Every successful fetch of a subject extends its coverage by the days the
//! provider's window showed. A day never covered is a gap: *recoverable*
//! while the provider still keeps it (inside `retention_days`), *lost*
//! after. Gaps between two covered intervals always count. Days after a
//! subject's last coverage count only while the account keeps trying that
//! subject (it was covered or failed in the account's latest run): a
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

/// The first day the archive holds for `key`'s subject, if it holds any.
pub fn first_archived_day(
    tx: &Transaction<'_>,
    key: &SubjectKey,
) -> Result<Option<NaiveDate>, StoreError> {
    let first: Option<String> = tx
        .prepare_cached(
            "SELECT min(d.day) FROM day_usage d JOIN subject s ON s.id = d.subject_id \
             WHERE s.provider = ?1 AND s.account = ?2 AND s.subject = ?3",
        )?
        .query_row(params![key.provider, key.account, key.subject], |r| {
            r.get(0)
        })?;
    Ok(first.as_deref().and_then(parse))
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
pub fn load_gaps(
    conn: &Connection,
    provider: &str,
    account: &str,
    today: NaiveDate,
    retention_days: u32,
) -> Result<Vec<SubjectGaps>, StoreError> {
    let active = load_active_subjects(conn, provider, account)?;
    let oldest_kept = today - TimeDelta::days(i64::from(retention_days.max(1)) - 1);
    let mut out = Vec::new();
    for (subject, spans) in load_intervals(conn, provider, account)? {
        let mut missing: Vec<NaiveDate> = spans
            .windows(2)
            .flat_map(|w| days_between(w[0].1, w[1].0))
            .collect();
        if let Some((_, last)) = spans.last().filter(|_| active.contains(&subject)) {
            missing.extend(days_between(*last, today));
        }
        if missing.is_empty() {
            continue;
        }
        let (recoverable, lost): (Vec<NaiveDate>, Vec<NaiveDate>) =
            missing.into_iter().partition(|d| *d >= oldest_kept);
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
    let mut stmt = conn.prepare_cached(
        "SELECT subject, first_day, last_day FROM subject_coverage \
         WHERE provider = ?1 AND account = ?2 ORDER BY subject, first_day",
    )?;
    let rows = stmt.query_map(params![provider, account], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut intervals = Intervals::new();
    for row in rows {
        let (subject, first, last) = row?;
        if let (Some(first), Some(last)) = (parse(&first), parse(&last)) {
            intervals.entry(subject).or_default().push((first, last));
        }
    }
    Ok(intervals)
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
           WHERE provider = ?1 AND account = ?2 AND last_day >= last.day \
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
