//! Daily snapshots of provider objects (`entity_snapshot`): one row per object and UTC day.
//!
//! The row holds the object's JSON as last seen that day; an object that has
//! not changed since is not rewritten, so an unchanged re-sync writes nothing,
//! and one seen earlier than the kept row (a fetch that commits late) never
//! replaces it.

use rusqlite::{Transaction, params};

use super::StoreError;
use crate::model::{EntityRecord, FetchTime};

/// Upserts the day's snapshot of each record; returns `(inserted, updated)`.
pub fn upsert_records(
    tx: &Transaction<'_>,
    provider: &str,
    account: &str,
    records: &[EntityRecord],
    fetched: FetchTime,
) -> Result<(u64, u64), StoreError> {
    if records.is_empty() {
        return Ok((0, 0));
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO entity_snapshot (provider, account, kind, entity_id, day, data, taken_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE entity_snapshot SET data = ?6, taken_at = ?7 WHERE provider = ?1 AND account = ?2 \
         AND kind = ?3 AND entity_id = ?4 AND day = ?5 AND data IS NOT ?6 AND taken_at <= ?7",
    )?;
    let (day, at) = (
        fetched.day().format("%Y-%m-%d").to_string(),
        fetched.rfc3339(),
    );
    let (mut inserted, mut updated) = (0, 0);
    for r in records {
        // serde_json's map keeps keys sorted, so equal objects give equal text.
        let data = r.data.to_string();
        let p = params![provider, account, r.kind, r.id, day, data, at];
        if insert.execute(p)? == 1 {
            inserted += 1;
        } else {
            updated += update.execute(p)? as u64;
        }
    }
    Ok((inserted, updated))
}
