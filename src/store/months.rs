//! Figures the provider reports per month (usage, disk and inodes) and per account
//! (balances): upserted like days, replaced only by a fetch at least as recent, a month
//! final once fetched after it ended.

use rusqlite::{Transaction, params};

use super::StoreError;
use super::usage::{SubjectKey, UpsertStats, first_of_month, month_text, upsert_row};
use crate::model::{BalanceSnapshot, FetchTime, MonthResources, MonthUsage};

const INSERT_MONTH: &str = "INSERT INTO month_usage (provider, account, subject, month, upload_mb, \
    download_mb, total_mb, is_final, first_seen_at, last_seen_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) ON CONFLICT DO NOTHING";

const UPDATE_MONTH: &str = "UPDATE month_usage SET upload_mb = ?5, download_mb = ?6, total_mb = ?7, \
    is_final = max(is_final, ?8), last_seen_at = ?9 \
    WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND month = ?4 \
    AND (upload_mb IS NOT ?5 OR download_mb IS NOT ?6 OR total_mb IS NOT ?7 OR is_final < ?8) \
    AND last_seen_at <= ?9";

const UPSERT_BALANCE: &str = "INSERT INTO balance_snapshot (provider, account, day, metric, value, unit, taken_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (provider, account, day, metric) DO UPDATE SET \
    value = excluded.value, unit = excluded.unit, taken_at = excluded.taken_at \
    WHERE (value IS NOT excluded.value OR unit IS NOT excluded.unit) \
    AND taken_at <= excluded.taken_at";

/// Upserts one subject's reported month rows inside `tx`.
pub fn upsert_months(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    months: &[MonthUsage],
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    if months.is_empty() {
        return Ok(UpsertStats::default());
    }
    let mut insert = tx.prepare_cached(INSERT_MONTH)?;
    let mut update = tx.prepare_cached(UPDATE_MONTH)?;
    let now = fetched.rfc3339();
    let this_month = first_of_month(fetched.day());
    let mut stats = UpsertStats::default();
    for m in months {
        let month = month_text(m.month);
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
         OR inode_limit IS NOT ?8) \
    AND last_seen_at <= ?9";

/// Upserts a subject's monthly disk and inode figures; unchanged rows are not rewritten.
pub fn upsert_month_resources(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    rows: &[MonthResources],
    fetched: FetchTime,
) -> Result<UpsertStats, StoreError> {
    if rows.is_empty() {
        return Ok(UpsertStats::default());
    }
    let mut insert = tx.prepare_cached(INSERT_RESOURCES)?;
    let mut update = tx.prepare_cached(UPDATE_RESOURCES)?;
    let now = fetched.rfc3339();
    let mut stats = UpsertStats::default();
    for r in rows {
        let month = month_text(r.month);
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
