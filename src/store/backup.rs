//! Consistent copies of a live archive (`usage-archiver backup`).
//!
//! SQLite's online backup API copies the archive page by page from a read transaction, a
//! few hundred pages a step, so the daemon's writer is never held up for long (in WAL
//! mode a reader does not block it at all; a write in between restarts the copy from the
//! new state). The copy goes to a temporary file created with the archive's mode, is
//! checked (`PRAGMA integrity_check`, this program's `application_id`, the source's
//! `user_version`), synced, and only then renamed into place, with the directory synced
//! after: a failed backup leaves nothing but what was there before.
//!
//! The temporary file has a random name and is created anew, so a file planted at a
//! guessable name neither receives the copy nor is deleted when the backup fails: only
//! the file this process created is ever removed. The credential file (the Hostens token
//! chain a restored archive needs) is read without following a link, checked to be the
//! service's and to parse, and installed beside the copy before the copy itself: a
//! backup never leaves a copy without it. Into a directory, copies are named by UTC time
//! (`archive-<stamp>.db`), and `--keep` prunes only regular files named exactly so,
//! oldest first by the time in their name, never the copy just made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::credentials::CredentialFile;
use super::{APPLICATION_ID, ARCHIVE_MODE, StoreError};

/// Pages copied per step.
const PAGES_PER_STEP: i32 = 512;
/// The pause between steps, when the writer may take its turn.
const PAUSE: Duration = Duration::from_millis(5);

/// How far a copy has come: pages left and in all.
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// What a backup made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The copy of the archive.
    pub archive: PathBuf,
    /// The copy of its credential file, when it has one.
    pub credentials: Option<PathBuf>,
    /// Older copies `--keep` removed (with their credential files).
    pub removed: Vec<PathBuf>,
}

/// What a copy in a destination directory is called: `archive-<UTC time>.db`.
const PREFIX: &str = "archive-";
const SUFFIX: &str = ".db";
/// The time in a copy's name, to the millisecond.
const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

/// Backs up the archive at `source` to `dest`: a file, or a directory where the copy is
/// named by `now` and, with `keep`, only the newest `keep` copies stay. With `keep`, a
/// `dest` that does not exist is created as a directory (mode 0750).
pub fn back_up(
    source: &Path,
    dest: &Path,
    keep: Option<usize>,
    now: chrono::DateTime<chrono::Utc>,
    progress: Progress<'_>,
) -> Result<Copied, StoreError> {
    if keep.is_some() && !dest.exists() {
        crate::files::create_private_dirs(dest).map_err(|e| io(dest, e))?;
    }
    let into_dir = dest.is_dir();
    if keep.is_some() && !into_dir {
        return Err(StoreError::Invalid(format!(
            "--keep needs DEST to be a directory, and {} is not one",
            dest.display()
        )));
    }
    let target = if into_dir {
        dest.join(format!("{PREFIX}{}{SUFFIX}", now.format(STAMP)))
    } else {
        dest.to_path_buf()
    };
    // First, so that a credential file that cannot be copied fails the backup whole.
    let credentials = CredentialFile::beside(source).read_for_copy()?;
    let copy = temp_file(&target, ARCHIVE_MODE)?;
    copy_to(source, copy.path(), progress)?;
    let credentials = match credentials {
        Some(bytes) => Some(install_credentials(&bytes, &target)?),
        None => None,
    };
    install(copy, &target)?;
    let removed = match keep {
        Some(keep) => prune(dest, keep, &target)?,
        None => Vec::new(),
    };
    Ok(Copied {
        archive: target,
        credentials,
        removed,
    })
}

/// Copies the archive at `source` to the file `dest` consistently while it may be
/// written, checks the copy and renames it into place. `progress` hears pages left of all.
pub fn copy_archive(source: &Path, dest: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
    let copy = temp_file(dest, ARCHIVE_MODE)?;
    copy_to(source, copy.path(), progress)?;
    install(copy, dest)
}

/// A new file beside `dest` under a random name, created with `mode`; removed when
/// dropped unless installed (and only it: never a file it did not create).
fn temp_file(dest: &Path, mode: u32) -> Result<tempfile::NamedTempFile, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_of(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))
}

/// Writes the credential file's bytes beside `target` (mode 0600), atomically.
fn install_credentials(bytes: &[u8], target: &Path) -> Result<PathBuf, StoreError> {
    use std::io::Write;
    let to = CredentialFile::beside(target).path().to_path_buf();
    let mut temp = temp_file(&to, 0o600)?;
    temp.write_all(bytes).map_err(|e| io(temp.path(), e))?;
    temp.as_file().sync_all().map_err(|e| io(temp.path(), e))?;
    install(temp, &to)?;
    Ok(to)
}

/// The copies `--keep` may prune in `dir`: regular files (not links) named exactly
/// `archive-<stamp>.db`, with the time in their name.
fn own_copies(dir: &Path) -> Result<Vec<(chrono::NaiveDateTime, PathBuf)>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    let mut copies = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(stamp) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
        else {
            continue;
        };
        let Ok(at) = chrono::NaiveDateTime::parse_from_str(stamp, STAMP) else {
            continue;
        };
        let exact = at.format(STAMP).to_string() == stamp;
        let regular =
            std::fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_file());
        if exact && regular {
            copies.push((at, entry.path()));
        }
    }
    copies.sort();
    Ok(copies)
}

/// Removes the oldest of this command's copies in `dir` so that `keep` stay, counting
/// `made` (the copy just made, never removed); returns what it removed.
fn prune(dir: &Path, keep: usize, made: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let others: Vec<PathBuf> = own_copies(dir)?
        .into_iter()
        .map(|(_, path)| path)
        .filter(|p| p != made)
        .collect();
    let excess = others.len().saturating_sub(keep.saturating_sub(1));
    let mut removed = Vec::new();
    for old in others.into_iter().take(excess) {
        std::fs::remove_file(&old).map_err(|e| io(&old, e))?;
        let credentials = CredentialFile::beside(&old);
        if std::fs::symlink_metadata(credentials.path()).is_ok_and(|m| m.file_type().is_file()) {
            std::fs::remove_file(credentials.path()).map_err(|e| io(credentials.path(), e))?;
        }
        removed.push(old);
    }
    Ok(removed)
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
fn install(temp: tempfile::NamedTempFile, dest: &Path) -> Result<(), StoreError> {
    temp.persist(dest).map_err(|e| io(dest, e.error))?;
    let dir = parent_of(dest);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Write {
        path: path.to_path_buf(),
        source,
    }
}
