//! Files and directories of the service: private, and never reached through a link.
//!
//! The credential file, its lock and the archive's directories hold what only
//! the service may touch. Whoever can plant a symbolic link where one of them
//! is expected could make the service (often root for a backup) create or copy
//! a file anywhere, and whoever can replace a file in a directory writable by
//! others can swap the config and point `base_url` elsewhere. So these are
//! opened with `O_NOFOLLOW`, checked to be regular files owned by the
//! service's user, created in directories made 0750, and loose directories
//! are warned about. This module is a bottom layer: it imports nothing of the
//! crate.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode directories are created with: the service and its group (SQL readers).
pub const PRIVATE_DIR_MODE: u32 = 0o750;

/// Creates `dir` and any missing parent with mode 0750 (never wider, whatever the umask).
pub fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// Opens `path` with `options`, refusing a symbolic link as its last component (`ELOOP`).
pub fn open_nofollow(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits();
    options
        .custom_flags(i32::try_from(nofollow).unwrap_or(i32::MAX))
        .open(path)
}

/// What is wrong with the open `file` (at `path`) as a file of the service: not a regular
/// file, or owned by someone other than this process's user or `owner` (the archive's).
pub fn not_private(file: &File, path: &Path, owner: Option<u32>) -> Option<String> {
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot inspect {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Some(format!("{} is not a regular file", path.display()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && Some(meta.uid()) != owner {
        return Some(format!(
            "{} belongs to uid {}, not to the service's user (uid {me}); \
             whoever planted it could read or redirect the credentials",
            path.display(),
            meta.uid()
        ));
    }
    None
}

/// The owner of the file at `path`, when it exists.
pub fn owner_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.uid())
}

/// A warning when the directory holding `file` (`what` names it: "the config") is
/// writable by its group or others without the sticky bit: whoever can write there can
/// replace the file.
pub fn loose_dir_warning(file: &Path, what: &str) -> Option<String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = std::fs::metadata(dir).ok()?.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    (mode & 0o022 != 0 && !sticky).then(|| {
        format!(
            "the directory of {what} ({}) is writable by its group or others: whoever can \
             write there can replace the file (a config pointing base_url elsewhere receives \
             the token); run: chmod go-w {}",
            dir.display(),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symbolic link is never followed: opening it fails, and nothing is created where
    /// it points.
    #[test]
    fn links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let opened = open_nofollow(
            &link,
            OpenOptions::new().read(true).write(true).create(true),
        );
        assert!(opened.is_err());
        assert!(!target.exists(), "nothing created through the link");
    }

    /// Directories are created 0750 even under umask 000 (the test sets no umask; the
    /// mode given is never wider than 0750, which DirBuilder narrows by the umask).
    #[test]
    fn directories_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        create_private_dirs(&nested).unwrap();
        for d in [dir.path().join("a"), dir.path().join("a/b"), nested] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !PRIVATE_DIR_MODE, 0, "{} is {mode:o}", d.display());
        }
    }

    /// A directory others can write is warned about, unless it has the sticky bit.
    #[test]
    fn loose_directories_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.toml");
        let chmod = |mode| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        chmod(0o750);
        assert_eq!(loose_dir_warning(&file, "the config"), None);
        chmod(0o770);
        let warning = loose_dir_warning(&file, "the config").unwrap();
        assert!(warning.contains("the config") && warning.contains("chmod go-w"));
        chmod(0o1777);
        assert_eq!(loose_dir_warning(&file, "the config"), None, "sticky");
        chmod(0o700);
    }
}
