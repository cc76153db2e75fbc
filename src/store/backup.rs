//! Consistent copies of a live archive (`usage-archiver backup`).
//!
//! SQLite's online backup API copies the archive page by page from a read transaction, a
//! few hundred pages a step, so the daemon's writer is never held up for long (in WAL
//! mode a reader does not block it at all; a write in between restarts the copy from the
//! new state). The copy goes to a temporary file created with the archive's mode, is
//! checked (`PRAGMA integrity_check`, this program's `application_id`, the source's
//! `user_version`), synced, and only then renamed into place, with the directory synced
//! after: a failed backup leaves nothing but what was there before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{APPLICATION_ID, ARCHIVE_MODE, StoreError};

/// Pages copied per step.
const PAGES_PER_STEP: i32 = 512;
/// The pause between steps, when the writer may take its turn.
const PAUSE: Duration = Duration::from_millis(5);

/// How far a copy has come: pages left and in all.
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// Copies the archive at `source` to `dest` (a file path) consistently while it may be
/// written, checks the copy and renames it into place. `progress` hears pages left of all.
pub fn copy_archive(source: &Path, dest: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
    let temp = temp_beside(dest);
    let result = copy_to(source, &temp, progress).and_then(|()| install(&temp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn copy_to(source: &Path, temp: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
    let open_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Open { path, source }
    };
    if !source.exists() {
        return Err(StoreError::Missing {
            path: source.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let src = Connection::open_with_flags(source, flags).map_err(open_err(source))?;
    src.busy_timeout(super::BUSY_TIMEOUT)
        .map_err(open_err(source))?;
    super::migrate::check_readable(&src, source)?;
    create_new(temp)?;
    let mut dst = Connection::open(temp).map_err(open_err(temp))?;
    {
        use rusqlite::backup::StepResult;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            progress(
                u64::try_from(p.remaining).unwrap_or(0),
                u64::try_from(p.pagecount).unwrap_or(0),
            );
            match step {
                StepResult::Done => break,
                // More to copy, or the writer holds a lock: let it have its turn.
                _ => std::thread::sleep(PAUSE),
            }
        }
    }
    let check: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Invalid(format!(
            "the copy failed its integrity check: {check}"
        )));
    }
    let pragma = |c: &Connection, name: &str| -> Result<i64, StoreError> {
        Ok(c.pragma_query_value(None, name, |r| r.get(0))?)
    };
    if pragma(&dst, "application_id")? != i64::from(APPLICATION_ID) {
        return Err(StoreError::Invalid(
            "the copy does not carry this program's application_id".to_owned(),
        ));
    }
    if pragma(&dst, "user_version")? != pragma(&src, "user_version")? {
        return Err(StoreError::Invalid(
            "the copy's schema version differs from the archive's".to_owned(),
        ));
    }
    // One file, no -wal beside it: a copy restores by copying it back.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    drop(dst);
    std::fs::File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(temp, e))?;
    Ok(())
}

/// Renames `temp` to `dest` and syncs the directory.
fn install(temp: &Path, dest: &Path) -> Result<(), StoreError> {
    std::fs::rename(temp, dest).map_err(|e| io(dest, e))?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// A temporary name beside `dest`, unique to this process.
pub fn temp_beside(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(name)
}

/// Creates `path` anew with the archive's mode; never follows or reuses a file there.
fn create_new(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(ARCHIVE_MODE)
        .open(path)
        .map(drop)
        .map_err(|e| io(path, e))
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Write {
        path: path.to_path_buf(),
        source,
    }
}
