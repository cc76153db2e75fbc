//! The read side: what `status` and `report` show. Reads the SPEC §4 views
//! and internal tables; never writes.

use chrono::Datelike;
use rusqlite::{Connection, params_from_iter, types::Value};
use serde::Serialize;

use super::StoreError;
use crate::model::Period;

/// One account's health, as `status` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountStatus {
    /// Provider name.
    pub provider: String,
    /// Account label.
    pub account: String,
    /// The cron schedule last used, if known.
    pub schedule: Option<String>,
    /// The retention window last used, if known.
    pub retention_days: Option<u32>,
    /// Start of the latest run.
    pub last_attempt_at: Option<String>,
    /// Status of the latest run (`ok`, `partial`, `failed`, `running`, `interrupted`).
    pub last_status: Option<String>,
    /// End of the latest run that synced anything (`ok` or `partial`).
    pub last_success_at: Option<String>,
    /// The latest run's first error, if it had one.
    pub last_error: Option<String>,
    /// Distinct subjects with day rows.
    pub subjects: i64,
    /// Day rows archived.
    pub rows: i64,
}

const ACCOUNTS: &str = "SELECT provider, account FROM account_state \
    UNION SELECT provider, account FROM sync_run ORDER BY 1, 2";

/// Every account the archive knows, with its latest runs and row counts.
pub fn load_account_statuses(conn: &Connection) -> Result<Vec<AccountStatus>, StoreError> {
    let accounts: Vec<(String, String)> = conn
        .prepare(ACCOUNTS)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    accounts
        .into_iter()
        .map(|(provider, account)| load_account_status(conn, provider, account))
        .collect()
}

fn load_account_status(
    conn: &Connection,
    provider: String,
    account: String,
) -> Result<AccountStatus, StoreError> {
    let p = [&provider, &account];
    let (schedule, retention_days) = conn
        .query_row(
            "SELECT schedule, retention_days FROM account_state WHERE provider = ?1 AND account = ?2",
            p,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .or_else(|e| none_if_no_rows(e).map(|()| (None, None)))?;
    let (last_attempt_at, last_status, last_error) = conn
        .query_row(
            "SELECT started_at, status, error FROM sync_run WHERE provider = ?1 AND account = ?2 \
             ORDER BY id DESC LIMIT 1",
            p,
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .or_else(|e| none_if_no_rows(e).map(|()| (None, None, None)))?;
    let last_success_at = super::runs::load_last_success(conn, &provider, &account)?;
    let (subjects, rows) = conn.query_row(
        "SELECT count(DISTINCT s.id), coalesce(sum(r.days), 0) \
         FROM subject s JOIN month_rollup r ON r.subject_id = s.id \
         WHERE s.provider = ?1 AND s.account = ?2",
        p,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(AccountStatus {
        provider,
        account,
        schedule,
        retention_days,
        last_attempt_at,
        last_status,
        last_success_at,
        last_error,
        subjects,
        rows,
    })
}

fn none_if_no_rows<T: Default>(e: rusqlite::Error) -> Result<T, rusqlite::Error> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(T::default()),
        e => Err(e),
    }
}

/// What `report` selects.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Day or month.
    pub by: Period,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// First day included, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day included, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// One row per subject instead of per account.
    pub per_subject: bool,
}

/// One line of a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportRow {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// Provider name.
    pub provider: String,
    /// Account label.
    pub account: String,
    /// The subject, when the report is per subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What the provider calls the subject, when the report is per subject and it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Subjects with usage in the period.
    pub subjects: i64,
    /// Upload MB, where every row has it.
    pub upload_mb: Option<f64>,
    /// Download MB, where every row has it.
    pub download_mb: Option<f64>,
    /// Total MB.
    pub total_mb: f64,
    /// Whether every day in it is final.
    pub is_final: bool,
}

/// `month_rollup` with its subjects' names, as the report filters and groups it.
const MONTH_ROLLUP_NAMED: &str = "(SELECT s.provider, s.account, s.subject, r.month, r.days, \
    r.upload_mb, r.download_mb, r.total_mb, r.is_final \
    FROM month_rollup r JOIN subject s ON s.id = r.subject_id)";

/// Usage totals grouped by period, provider and account.
///
/// Months whole (no `from`/`to`, or ones on month boundaries) are read from
/// `month_rollup`, one row per subject and month; anything else sums `usage_daily`.
pub fn load_report(conn: &Connection, filter: &ReportFilter) -> Result<Vec<ReportRow>, StoreError> {
    let whole_months = filter.by == Period::Month
        && filter.from.as_deref().is_none_or(starts_month)
        && filter.to.as_deref().is_none_or(ends_month);
    let (period, table, from, to) = if whole_months {
        let month = |d: &Option<String>| d.as_ref().map(|d| d.chars().take(7).collect());
        (
            "month",
            MONTH_ROLLUP_NAMED,
            month(&filter.from),
            month(&filter.to),
        )
    } else {
        let period = match filter.by {
            Period::Day => "day",
            Period::Month => "substr(day, 1, 7)",
        };
        (
            period,
            "usage_daily",
            filter.from.clone(),
            filter.to.clone(),
        )
    };
    let bound = if whole_months { "month" } else { "day" };
    let mut clauses = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    for (column, op, value) in [
        ("provider", "=", &filter.provider),
        ("account", "=", &filter.account),
        ("subject", "=", &filter.subject),
        (bound, ">=", &from),
        (bound, "<=", &to),
    ] {
        if let Some(v) = value {
            args.push(Value::Text(v.clone()));
            clauses.push(format!("{column} {op} ?{}", args.len()));
        }
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let subject = if filter.per_subject {
        "subject"
    } else {
        "NULL"
    };
    let sql = format!(
        "SELECT q.*, i.label FROM (\
         SELECT {period} AS period, provider, account, {subject} AS subj, count(DISTINCT subject), \
         CASE WHEN count(upload_mb) = count(*) THEN round(sum(upload_mb), 6) END, \
         CASE WHEN count(download_mb) = count(*) THEN round(sum(download_mb), 6) END, \
         round(sum(total_mb), 6), min(is_final) FROM {table} {filter_sql} \
         GROUP BY period, provider, account, subj) q \
         LEFT JOIN subject_info i \
         ON i.provider = q.provider AND i.account = q.account AND i.subject = q.subj \
         ORDER BY q.period, q.provider, q.account, q.subj"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(ReportRow {
            period: r.get(0)?,
            provider: r.get(1)?,
            account: r.get(2)?,
            subject: r.get(3)?,
            subjects: r.get(4)?,
            upload_mb: r.get(5)?,
            download_mb: r.get(6)?,
            total_mb: r.get(7)?,
            is_final: r.get(8)?,
            label: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `day` (`YYYY-MM-DD`) is the first of its month.
fn starts_month(day: &str) -> bool {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok_and(|d| d.day() == 1)
}

/// Whether `day` (`YYYY-MM-DD`) is the last of its month.
fn ends_month(day: &str) -> bool {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .is_some_and(|next| next.day() == 1)
}

/// The latest run of one account, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    /// `ok`, `partial`, `failed`, `interrupted` or `running`.
    pub status: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339; `None` while running.
    pub finished_at: Option<String>,
    /// Rows inserted plus rows updated.
    pub rows_written: i64,
    /// Errors recorded (subjects gone from the provider are not errors).
    pub errors: i64,
}

/// The latest run of `provider/account`, if any.
pub fn load_last_run(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Option<LastRun>, StoreError> {
    let found = conn.query_row(
        "SELECT r.status, r.started_at, r.finished_at, r.rows_inserted + r.rows_updated, \
         (SELECT count(*) FROM sync_error e WHERE e.run_id = r.id AND e.error NOT LIKE ?3) \
         FROM sync_run r WHERE r.provider = ?1 AND r.account = ?2 ORDER BY r.id DESC LIMIT 1",
        rusqlite::params![provider, account, format!("{}%", super::runs::GONE_NOTE)],
        |r| {
            Ok(LastRun {
                status: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                rows_written: r.get(3)?,
                errors: r.get(4)?,
            })
        },
    );
    match found {
        Ok(run) => Ok(Some(run)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
