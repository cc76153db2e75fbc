//! Figures that cannot be right are marked, never silent (issue 22).
//!
//! A final day above what its subject could use in a day (the counter's own
//! allocation, or the account's `max_day_mb`) is kept as the provider gave it
//! and marked in `day_flag` (the `suspect_days` view). A later change to the
//! day clears its mark (`clear`, called by the upsert), and the write that
//! changed it marks it again if it is still implausible. The read side gives
//! `status` the recent marks, and the revisions of final rows: a final
//! figure that changes is news to whoever billed from it, and one that
//! changes by more than [`LARGE_REVISION_FACTOR`] is suspect too.

use chrono::NaiveDate;
use rusqlite::{Connection, Transaction, params};

use super::StoreError;
use super::usage::{SubjectKey, day_text, subject_id};
use crate::model::{DayUsage, FetchTime};

/// A revision of a final row by more than this factor (either way) is suspect.
pub const LARGE_REVISION_FACTOR: f64 = 10.0;

/// Below this many MB, a figure's change is never called large (0 → 0.5 MB is no news).
const REVISION_FLOOR_MB: f64 = 1.0;

/// What one subject can plausibly use in a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    /// The counter's own allocation in MB (ProxyShard `data`), when known.
    pub allocation_mb: Option<f64>,
    /// The account's `max_day_mb`.
    pub max_day_mb: f64,
}

impl Ceiling {
    /// Why `total_mb` is implausible, and the limit it is above; `None` when it is not.
    pub fn exceeded_by(&self, total_mb: f64) -> Option<(&'static str, f64)> {
        match self.allocation_mb {
            Some(allocation) if total_mb > allocation => Some(("over_allocation", allocation)),
            _ if total_mb > self.max_day_mb => Some(("over_ceiling", self.max_day_mb)),
            _ => None,
        }
    }
}

/// Marks the final days of `days` (those before `final_before`) that exceed `ceiling`;
/// returns how many marks were new or changed. An unchanged mark is not rewritten.
pub fn flag_implausible(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    days: &[DayUsage],
    final_before: NaiveDate,
    ceiling: Ceiling,
    at: FetchTime,
) -> Result<u64, StoreError> {
    let mut marked = 0;
    for d in days.iter().filter(|d| d.day < final_before) {
        let Some((reason, limit_mb)) = ceiling.exceeded_by(d.total_mb) else {
            continue;
        };
        let id = subject_id(tx, key)?;
        let changed = tx
            .prepare_cached(
                "INSERT INTO day_flag (subject_id, day, reason, total_mb, limit_mb, flagged_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (subject_id, day) DO UPDATE SET \
                 reason = excluded.reason, total_mb = excluded.total_mb, limit_mb = excluded.limit_mb, \
                 flagged_at = excluded.flagged_at \
                 WHERE reason IS NOT excluded.reason OR total_mb IS NOT excluded.total_mb \
                 OR limit_mb IS NOT excluded.limit_mb",
            )?
            .execute(params![id, day_text(d.day), reason, d.total_mb, limit_mb, at.rfc3339()])?;
        if changed > 0 {
            tracing::warn!(
                subject = %key.subject, day = %d.day, total_mb = d.total_mb, limit_mb, reason,
                "Implausible final day: kept as the provider gave it, and flagged"
            );
        }
        marked += changed as u64;
    }
    Ok(marked)
}

/// Removes the mark of a day whose figure changed.
pub(super) fn clear(
    tx: &Transaction<'_>,
    subject_id: i64,
    day: NaiveDate,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM day_flag WHERE subject_id = ?1 AND day = ?2")?
        .execute(params![subject_id, day_text(day)])?;
    Ok(())
}

/// A day marked implausible.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SuspectDay {
    /// Provider name.
    pub provider: String,
    /// Account label.
    pub account: String,
    /// Subject id.
    pub subject: String,
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The day's figure as archived.
    pub total_mb: f64,
    /// What it exceeds.
    pub limit_mb: f64,
    /// `over_allocation` or `over_ceiling`.
    pub reason: String,
    /// When a write marked it.
    pub flagged_at: String,
}

/// Days marked since `since` (RFC 3339), oldest first.
pub fn load_suspect_days(conn: &Connection, since: &str) -> Result<Vec<SuspectDay>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT provider, account, subject, day, total_mb, limit_mb, reason, flagged_at \
         FROM suspect_days WHERE flagged_at >= ?1 ORDER BY provider, account, day, subject",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok(SuspectDay {
            provider: r.get(0)?,
            account: r.get(1)?,
            subject: r.get(2)?,
            day: r.get(3)?,
            total_mb: r.get(4)?,
            limit_mb: r.get(5)?,
            reason: r.get(6)?,
            flagged_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A change to a row that was already final.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Revision {
    /// Provider name.
    pub provider: String,
    /// Account label.
    pub account: String,
    /// Subject id.
    pub subject: String,
    /// The day or month that changed.
    pub period: String,
    /// Its total before.
    pub old_total_mb: Option<f64>,
    /// Its total after.
    pub new_total_mb: Option<f64>,
    /// When.
    pub changed_at: String,
}

impl Revision {
    /// Whether the change is by more than [`LARGE_REVISION_FACTOR`] either way.
    pub fn is_large(&self) -> bool {
        let (old, new) = (
            self.old_total_mb.unwrap_or(0.0),
            self.new_total_mb.unwrap_or(0.0),
        );
        let (low, high) = (old.min(new), old.max(new));
        high > LARGE_REVISION_FACTOR * low.max(REVISION_FLOOR_MB)
    }
}

/// Revisions of final rows since `since` (RFC 3339), oldest first.
pub fn load_revisions(conn: &Connection, since: &str) -> Result<Vec<Revision>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT provider, account, subject, period, old_total_mb, new_total_mb, changed_at \
         FROM usage_revisions WHERE changed_at >= ?1 ORDER BY changed_at, provider, account, subject",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok(Revision {
            provider: r.get(0)?,
            account: r.get(1)?,
            subject: r.get(2)?,
            period: r.get(3)?,
            old_total_mb: r.get(4)?,
            new_total_mb: r.get(5)?,
            changed_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation is checked first, then the account's ceiling; at the limit is fine.
    #[test]
    fn ceiling_names_what_is_exceeded() {
        let c = Ceiling {
            allocation_mb: Some(500.0),
            max_day_mb: 1000.0,
        };
        assert_eq!(c.exceeded_by(500.0), None);
        assert_eq!(c.exceeded_by(500.5), Some(("over_allocation", 500.0)));
        let c = Ceiling {
            allocation_mb: None,
            max_day_mb: 1000.0,
        };
        assert_eq!(c.exceeded_by(1000.0), None);
        assert_eq!(c.exceeded_by(1000.1), Some(("over_ceiling", 1000.0)));
    }

    /// A revision is large past the factor either way, never below a floor of 1 MB.
    #[test]
    fn large_revisions_are_by_a_factor() {
        let rev = |old: f64, new: f64| Revision {
            provider: "p".into(),
            account: "a".into(),
            subject: "s".into(),
            period: "2026-01-01".into(),
            old_total_mb: Some(old),
            new_total_mb: Some(new),
            changed_at: "2026-01-02T00:00:00Z".into(),
        };
        assert!(!rev(100.0, 1000.0).is_large());
        assert!(rev(100.0, 1000.5).is_large());
        assert!(rev(1000.5, 100.0).is_large());
        assert!(!rev(0.0, 0.5).is_large(), "below the floor");
        assert!(!rev(0.0, 10.0).is_large());
        assert!(rev(0.0, 10.5).is_large());
    }
}
