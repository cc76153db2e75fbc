//! Writes `sync_run`, `sync_error`, `raw_response` and `account_state`.
//!
//! Every sync of every account leaves a row in `sync_run`, opened as
//! `running` before the first request and closed with its outcome, so a
//! crash shows up as a run that never finished. Error texts are kept to
//! [`crate::error::MAX_ERROR_BYTES`] each.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::error::bounded;
use crate::model::{FetchTime, RawResponse};

/// How a `sync_error` row for a subject the provider no longer has begins.
///
/// Such a subject is not a failure, and its silence afterwards is no gap.
pub const GONE_NOTE: &str = "gone, not found at the provider";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every subject synced.
    Ok,
    /// Some subjects failed.
    Partial,
    /// Nothing could be synced.
    Failed,
    /// Stopped by a shutdown signal before it finished.
    Interrupted,
    /// Its process ended without finishing it (a crash, `kill -9`, a full disk); marked
    /// by the next process that opens the archive for writing.
    Crashed,
}

impl RunStatus {
    /// The text stored in `sync_run.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Crashed => "crashed",
        }
    }
}

/// The totals a finished run records.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    /// Subjects synced.
    pub subjects_ok: u64,
    /// Subjects that failed.
    pub subjects_failed: u64,
    /// Rows inserted.
    pub rows_inserted: u64,
    /// Rows updated.
    pub rows_updated: u64,
    /// The first error, if any.
    pub error: Option<String>,
}

/// Opens a run; returns its id.
pub fn start_run(
    conn: &Connection,
    provider: &str,
    account: &str,
    at: FetchTime,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO sync_run (provider, account, started_at, status, pid) VALUES (?1, ?2, ?3, 'running', ?4)",
        params![provider, account, at.rfc3339(), std::process::id()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// What a run marked `crashed` says about itself.
pub const CRASHED_NOTE: &str = "its process ended without finishing it (a crash, kill -9, a full disk); the next run fetches again";

/// Marks `crashed` every run left `running` by a process that is gone, and returns how
/// many. A run whose process still runs (another `backfill`, the daemon) is left alone.
pub fn mark_crashed(conn: &Connection) -> Result<usize, StoreError> {
    let running: Vec<(i64, Option<u32>)> = conn
        .prepare("SELECT id, pid FROM sync_run WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut marked = 0;
    for (id, pid) in running {
        if pid.is_some_and(process_runs_us) {
            continue;
        }
        marked += conn.execute(
            "UPDATE sync_run SET status = 'crashed', error = coalesce(error, ?2) \
             WHERE id = ?1 AND status = 'running'",
            params![id, CRASHED_NOTE],
        )?;
    }
    Ok(marked)
}

/// Whether process `pid` is alive and is this program (Linux `/proc`; where there is no
/// `/proc` to ask, every process is taken to be alive, so nothing is marked wrongly).
fn process_runs_us(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    if pid == std::process::id() {
        return true;
    }
    let comm = |p: &std::path::Path| std::fs::read_to_string(p.join("comm")).ok();
    match (comm(&proc.join(pid.to_string())), comm(&proc.join("self"))) {
        (Some(theirs), Some(ours)) => theirs == ours,
        (None, _) => false,
        (Some(_), None) => true,
    }
}

/// Closes a run with its outcome.
pub fn finish_run(
    conn: &Connection,
    id: i64,
    status: RunStatus,
    totals: &RunTotals,
    at: FetchTime,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sync_run SET finished_at = ?2, status = ?3, subjects_ok = ?4, subjects_failed = ?5, \
         rows_inserted = ?6, rows_updated = ?7, error = ?8 WHERE id = ?1",
        params![
            id, at.rfc3339(), status.as_str(), count(totals.subjects_ok),
            count(totals.subjects_failed), count(totals.rows_inserted),
            count(totals.rows_updated), totals.error.as_deref().map(bounded)
        ],
    )?;
    Ok(())
}

/// SQLite integers are signed; counts never reach `i64::MAX`.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records one failure of a run (a subject, or the account when `subject` is `None`).
pub fn insert_error(
    conn: &Connection,
    run_id: i64,
    subject: Option<&str>,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sync_error (run_id, subject, error) VALUES (?1, ?2, ?3)",
        params![run_id, subject, bounded(error)],
    )?;
    Ok(())
}

/// Keeps a raw response body.
pub fn insert_raw(
    conn: &Connection,
    provider: &str,
    account: &str,
    subject: Option<&str>,
    raw: &RawResponse,
    error: Option<&str>,
    at: FetchTime,
) -> Result<(), StoreError> {
    // Secrets leave the body here, where it is kept, and only here.
    let body = crate::redact::redact_body(&raw.body, raw.secret_keys);
    conn.prepare_cached(
        "INSERT INTO raw_response (provider, account, subject, endpoint, http_status, fetched_at, error, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![provider, account, subject, raw.endpoint, raw.status, at.rfc3339(), error.map(bounded), body.as_ref()])?;
    Ok(())
}

/// Remembers an account's schedule and retention, so `status --db` works without a config.
pub fn upsert_account_state(
    conn: &Connection,
    provider: &str,
    account: &str,
    schedule: &str,
    retention_days: u32,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO account_state (provider, account, schedule, retention_days) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (provider, account) DO UPDATE SET schedule = excluded.schedule, \
         retention_days = excluded.retention_days \
         WHERE schedule IS NOT excluded.schedule OR retention_days IS NOT excluded.retention_days",
        params![provider, account, schedule, retention_days],
    )?;
    Ok(())
}

/// Subjects of an account whose newest archived day is on or after `since` (`YYYY-MM-DD`).
pub fn load_recent_subjects(
    conn: &Connection,
    provider: &str,
    account: &str,
    since: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT s.subject FROM subject s JOIN month_rollup r ON r.subject_id = s.id \
         WHERE s.provider = ?1 AND s.account = ?2 \
         AND r.month >= substr(?3, 1, 7) AND r.last_day >= ?3 ORDER BY s.subject",
    )?;
    let rows = stmt.query_map(params![provider, account, since], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the account last finished a run that synced anything (`ok` or `partial`).
pub fn load_last_success(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT max(finished_at) FROM sync_run WHERE provider = ?1 AND account = ?2 \
             AND status IN ('ok', 'partial')",
            params![provider, account],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}
