//! The SQLite archive: opening, migrating, and running work on the connection.
//!
//! One connection per [`Store`], in WAL mode with a busy timeout, so that
//! `sqlite3`, `report` or a second process can read while the daemon
//! writes. Work runs on tokio's blocking pool ([`Store::call`]); each
//! subject's rows are written inside one `BEGIN IMMEDIATE` transaction. Only
//! `sync` and the read-side commands use this module.

pub mod counters;
pub mod coverage;
pub mod entities;
mod migrate;
pub mod query;
pub mod runs;
pub mod tokens;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use migrate::LATEST_VERSION;

/// How long a writer waits for another writer's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong with the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("cannot open archive {}", .path.display())]
    Open {
        /// The archive path.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for a new archive could not be created.
    #[error("cannot create directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The archive was written by a newer usage-archiver.
    #[error(
        "archive schema version {found} is newer than this binary supports ({supported}); upgrade usage-archiver"
    )]
    TooNew {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest version this binary knows.
        supported: u32,
    },
    /// A read-only command met an archive an older binary wrote; only a writer upgrades it.
    #[error(
        "archive {} has schema version {found}, older than this binary reads ({supported}); \
         read-only commands never change it: run `usage-archiver run` or `backfill` once to upgrade it",
        .path.display()
    )]
    TooOld {
        /// The archive path.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The version this binary reads.
        supported: u32,
    },
    /// The file is a SQLite database, but not an archive.
    #[error("{} is a SQLite database but not a usage-archiver archive", .path.display())]
    Foreign {
        /// The archive path.
        path: PathBuf,
    },
    /// The archive does not exist (read-only commands never create one).
    #[error(
        "archive {} does not exist (check --db or [archive] database; `backfill` or `run` creates it)",
        .path.display()
    )]
    Missing {
        /// The archive path.
        path: PathBuf,
    },
    /// A query failed.
    #[error("archive query failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A blocking task was cancelled or panicked.
    #[error("archive worker stopped")]
    Worker,
}

/// The archive. Cheap to clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the archive for writing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        migrate::migrate(&mut conn, path)?;
        Ok(Self::wrap(conn, path))
    }

    /// Opens an existing archive for reading only; never creates or migrates it.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        migrate::check_readable(&conn, path)?;
        Ok(Self::wrap(conn, path))
    }

    fn wrap(conn: Connection, path: &Path) -> Self {
        // Room for every statement the store prepares (about 30, six of them the day
        // inserts of each size), so none is parsed again after the first use.
        conn.set_prepared_statement_cache_capacity(64);
        Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        }
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|_| StoreError::Worker)?
    }

    /// Runs `f` with the connection on the current thread (benchmarks, tests, read commands).
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Refreshes the query planner's statistics where they are stale (`PRAGMA optimize`,
/// bounded by `analysis_limit`, so it takes milliseconds even on a large archive).
///
/// With them, SQLite answers a query that names a subject but not its account
/// (`WHERE provider = ? AND subject = ?`) by a skip-scan of the `subject` table's name
/// index, and a query by day by one key range per subject. Called after every sync run.
pub fn optimize(conn: &Connection) -> Result<(), StoreError> {
    Ok(conn.execute_batch("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")?)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}
