//! Versioned schema: `schema.sql` for fresh archives, append-only migrations for old ones.
//!
//! `PRAGMA user_version` holds the archive's version and `PRAGMA
//! application_id` marks it as this program's ([`APPLICATION_ID`]). A file
//! that is not an archive (another application_id, or tables an archive never
//! had) is refused before anything touches it. A fresh file gets the whole
//! current `schema.sql` and the latest version in one transaction. An older
//! archive applies each later file of `MIGRATIONS` in its own transaction,
//! with foreign keys off so a rebuilt table keeps the rows that refer to it.
//! Never edit a migration once released; add a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;
use super::credentials::{CredentialFile, TokenRow};

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
    (9, include_str!("migrations/0009_ours_and_crashed_runs.sql")),
    (10, include_str!("migrations/0010_fetch_plan.sql")),
    (
        11,
        include_str!("migrations/0011_orders_invoices_services.sql"),
    ),
    (12, include_str!("migrations/0012_figures_and_spend.sql")),
];

/// The version whose upgrade re-derives every counter-derived day ([`super::rederive`]).
const REDERIVED_AT: u32 = 12;

/// `PRAGMA application_id` of every archive: 0x55415243, "UARC".
pub const APPLICATION_ID: i32 = 0x5541_5243;

/// The first version that carries [`APPLICATION_ID`]; older archives are recognised by
/// the tables every version had.
const MARKED_SINCE: u32 = 9;

/// Tables and views every version of the archive had, for recognising old archives.
const ALWAYS_THERE: [(&str, &str); 5] = [
    ("table", "sync_run"),
    ("table", "sync_error"),
    ("table", "balance_snapshot"),
    ("table", "usage_revision"),
    ("view", "sync_runs"),
];

/// The schema version this binary writes.
pub const LATEST_VERSION: u32 = 1 + MIGRATIONS.len() as u32;

/// Whether opening the archive at `conn` for writing will migrate it (a long step).
pub(super) fn needs_migration(conn: &Connection) -> Result<bool, StoreError> {
    let version = user_version(conn)?;
    Ok(version > 0 && version < LATEST_VERSION)
}

/// Brings the archive to [`LATEST_VERSION`], refusing any file that is not an archive.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = user_version(conn)?;
    check_ours(conn, path, version)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    if version > LATEST_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: LATEST_VERSION,
        });
    }
    if version == 0 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", LATEST_VERSION)?;
        tx.commit()?;
        tracing::info!(version = LATEST_VERSION, "Created archive schema");
        return Ok(());
    }
    if version == LATEST_VERSION {
        return Ok(());
    }
    // A rebuilt table must not take the rows that refer to it along (ON DELETE CASCADE).
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = apply_migrations(conn, path, version);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated?;
    // The frames of the old pages (tokens among them) leave the WAL.
    super::checkpoint(conn)
}

fn apply_migrations(conn: &mut Connection, path: &Path, from: u32) -> Result<(), StoreError> {
    for (target, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        if *target == MARKED_SINCE {
            move_tokens_out(conn, path)?;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        if *target == REDERIVED_AT {
            let repaired = super::rederive::rederive_all(&tx, crate::model::FetchTime::now())?;
            tracing::info!(
                days = repaired.days,
                corrected = repaired.corrected,
                slots = repaired.slots,
                "Re-derived the days computed from counter snapshots"
            );
        }
        let dangling: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if dangling > 0 {
            return Err(StoreError::Migration {
                version: *target,
                reason: format!("{dangling} rows refer to rows that are gone"),
            });
        }
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "Migrated archive schema");
    }
    Ok(())
}

/// Moves the token chains of `auth_token` (schema 5 to 8) to the credential file beside
/// the archive, and turns on `secure_delete` so the pages that held them are zeroed when
/// migration 9 deletes them. A chain already in the file is kept.
fn move_tokens_out(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'auth_token'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT provider, account, seed, refresh_token, access_token, rotated_at FROM auth_token",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                TokenRow {
                    seed: r.get(2)?,
                    refresh_token: r.get(3)?,
                    access_token: r.get(4)?,
                    rotated_at: r.get(5)?,
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    let file = CredentialFile::beside(path);
    let mut locked = file.lock()?;
    for (provider, account, row) in rows {
        if locked.get(&provider, &account).is_none() {
            locked.put(&provider, &account, row)?;
        }
    }
    tracing::info!(file = %file.path().display(), "Moved the rotating tokens out of the archive");
    Ok(())
}

/// Refuses a file that is not an archive of this program, before anything touches it.
fn check_ours(conn: &Connection, path: &Path, version: u32) -> Result<(), StoreError> {
    let ours = match application_id(conn)? {
        APPLICATION_ID => true,
        0 if version == 0 => table_count(conn)? == 0,
        0 if version < MARKED_SINCE => looks_like_an_old_archive(conn)?,
        _ => false,
    };
    if ours {
        Ok(())
    } else {
        Err(StoreError::Foreign {
            path: path.to_path_buf(),
        })
    }
}

/// Whether a file without our application_id has every table an archive always had.
fn looks_like_an_old_archive(conn: &Connection) -> Result<bool, StoreError> {
    let mut stmt =
        conn.prepare("SELECT count(*) FROM sqlite_schema WHERE type = ?1 AND name = ?2")?;
    for (kind, name) in ALWAYS_THERE {
        let found: i64 = stmt.query_row([kind, name], |r| r.get(0))?;
        if found == 0 {
            return Ok(false);
        }
    }
    Ok(true)
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
    let foreign = || StoreError::Foreign {
        path: path.to_path_buf(),
    };
    if version == 0 {
        return Err(foreign());
    }
    check_ours(conn, path, version)?;
    match version {
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

fn application_id(conn: &Connection) -> Result<i32, StoreError> {
    Ok(conn.pragma_query_value(None, "application_id", |r| r.get(0))?)
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn table_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?)
}
