//! Versioned schema: `schema.sql` for fresh archives, append-only migrations for old ones.
//!
//! `PRAGMA user_version` holds the archive's version. A fresh file gets the
//! whole current `schema.sql` and the latest version in one transaction. An
//! older archive applies each later file of `MIGRATIONS` in its own
//! transaction. Never edit a migration once released; add a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

const SCHEMA: &str = include_str!("../../schema.sql");

/// Upgrades from version `N - 1` to `N`, in order, starting at version 2.
const MIGRATIONS: &[(u32, &str)] = &[
    (2, include_str!("migrations/0002_subject_coverage.sql")),
    (3, include_str!("migrations/0003_counter_snapshot.sql")),
    (4, include_str!("migrations/0004_entity_snapshot.sql")),
    (5, include_str!("migrations/0005_hostens.sql")),
    (6, include_str!("migrations/0006_coverage_gaps.sql")),
    (7, include_str!("migrations/0007_month_rollup.sql")),
    (8, include_str!("migrations/0008_subject_ids.sql")),
];

/// The schema version this binary writes.
pub const LATEST_VERSION: u32 = 1 + MIGRATIONS.len() as u32;

/// Brings the archive to [`LATEST_VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = user_version(conn)?;
    if version > LATEST_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: LATEST_VERSION,
        });
    }
    if version == 0 {
        if table_count(conn)? > 0 {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
            });
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", LATEST_VERSION)?;
        tx.commit()?;
        tracing::info!(version = LATEST_VERSION, "Created archive schema");
        return Ok(());
    }
    for (target, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > version) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "Migrated archive schema");
    }
    Ok(())
}

/// Checks that a file opened read-only is an archive of exactly this binary's version
/// (an older one needs a migration, which only a writer may run).
pub(super) fn check_readable(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version = user_version(conn).map_err(|source| match source {
        StoreError::Sqlite(source) => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    })?;
    match version {
        0 => Err(StoreError::Foreign {
            path: path.to_path_buf(),
        }),
        v if v > LATEST_VERSION => Err(StoreError::TooNew {
            found: v,
            supported: LATEST_VERSION,
        }),
        v if v < LATEST_VERSION => Err(StoreError::TooOld {
            path: path.to_path_buf(),
            found: v,
            supported: LATEST_VERSION,
        }),
        _ => Ok(()),
    }
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn table_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?)
}
