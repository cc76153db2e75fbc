//! The SQLite archive: opening, migrating, and running work on the connection.
//!
//! One connection per [`Store`], in WAL mode with a busy timeout, so that
//! `sqlite3`, `report` or a second process can read while the daemon
//! writes. Work runs on tokio's blocking pool ([`Store::call`]); each
//! subject's rows are written inside one `BEGIN IMMEDIATE` transaction. Only
//! `sync` and the read-side commands use this module.

pub mod backup;
pub mod batch;
pub mod counters;
pub mod coverage;
pub mod credentials;
pub mod domain;
pub mod entities;
pub mod flags;
mod migrate;
pub mod months;
pub mod plan;
pub mod query;
pub mod rederive;
pub mod runs;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use migrate::{APPLICATION_ID, LATEST_VERSION};

/// How long a writer waits for another writer's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// The size the WAL is cut back to whenever it is reset (a reader holding an old snapshot
/// lets it grow meanwhile); each run also ends with a truncating checkpoint.
pub const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The mode a new archive is created with: the service and its group (SQL readers),
/// never others, whatever the umask. Its `-wal` and `-shm` files take the same.
pub const ARCHIVE_MODE: u32 = 0o640;

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
    /// A migration found the archive in a state it cannot upgrade; nothing was changed.
    #[error("cannot upgrade the archive to version {version}: {reason}")]
    Migration {
        /// The version the migration would reach.
        version: u32,
        /// What was wrong.
        reason: String,
    },
    /// The credential file beside the archive failed.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    /// A query failed.
    #[error("archive query failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A blocking task was cancelled or panicked.
    #[error("archive worker stopped")]
    Worker,
    /// A file beside or away from the archive (a backup) could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why (a full disk, no permission, …).
        #[source]
        source: std::io::Error,
    },
    /// A copy of the archive is not sound.
    #[error("{0}")]
    Invalid(String),
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
            crate::files::create_private_dirs(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        create_private(path)?;
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        // WAL is set by `migrate`, once the file is known to be an archive: switching the
        // journal mode writes the header of whatever file it is.
        migrate::migrate(&mut conn, path)?;
        let crashed = runs::mark_crashed(&conn)?;
        if crashed > 0 {
            tracing::warn!(
                runs = crashed,
                "Runs left unfinished by a process that is gone are marked crashed"
            );
        }
        Ok(Self::wrap(conn, path))
    }

    /// Whether opening the archive for writing would upgrade its schema first (which can
    /// take a while on a large archive); `false` for a new or current one.
    pub fn needs_migration(path: &Path) -> bool {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        path.exists()
            && Connection::open_with_flags(path, flags)
                .map_err(StoreError::from)
                .and_then(|c| migrate::needs_migration(&c))
                .unwrap_or(false)
    }

    /// Opens an existing archive for reading only; never creates or migrates it.
    ///
    /// A WAL archive needs its `-shm` file, which a reader without write access to the
    /// directory cannot create when no writer runs. Then, and only when no `-wal` file is
    /// left either (so the file holds every committed row), the archive is opened as
    /// immutable, which needs neither.
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
        let conn = match migrate::check_readable(&conn, path) {
            Err(StoreError::Open { .. }) if no_wal_files(path) => {
                drop(conn);
                open_immutable(path)?
            }
            checked => checked.map(|()| conn)?,
        };
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

    /// Runs `f` with the connection on the blocking pool; on a current-thread runtime (the
    /// simulation, some tests), on the calling thread: there is no worker to keep free, and
    /// a hop to the pool would only add two thread switches.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let current_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if current_thread {
            return self.with_conn(f);
        }
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
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

/// Ends a run's writes: a truncating checkpoint, so the WAL does not keep growing between
/// runs. It does not wait for readers: while one holds an old snapshot it cannot complete,
/// and the next run's will.
pub fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::ZERO)?;
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(done?)
}

/// Creates the archive file, if it does not exist, with [`ARCHIVE_MODE`].
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(ARCHIVE_MODE)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::CreateDir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether neither a `-shm` nor a `-wal` file is beside the archive: then no writer has
/// it open, and the file alone holds every committed row.
fn no_wal_files(path: &Path) -> bool {
    let sibling = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    !sibling("-shm").exists() && !sibling("-wal").exists()
}

/// Opens the archive as immutable (`file:…?immutable=1`): read-only, no locks, no `-shm`.
fn open_immutable(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut uri = String::from("file:");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{byte:02X}")),
            b if b.is_ascii() && !b.is_ascii_control() => uri.push(char::from(*b)),
            b => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(&uri, flags).map_err(open_err)?;
    migrate::check_readable(&conn, path)?;
    Ok(conn)
}
