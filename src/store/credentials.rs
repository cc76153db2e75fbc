//! The credentials a provider rotates (Hostens refresh tokens), in a file of the
//! service alone beside the archive: `<archive>.credentials`, mode 0600.
//!
//! The archive is what users share (SQL readers through the service's group,
//! Datasette, BI tools), so it holds no credential. The file is replaced
//! atomically (a temporary file created anew with mode 0600, written, synced,
//! renamed over the old one, and the directory synced), so a crash leaves
//! either the old chain or the new one, never half of either. Every process
//! that rotates a token holds an advisory lock on `<archive>.credentials.lock`
//! from reading the stored chain until the new one is stored, so two processes
//! never present the same refresh token. Nothing here logs or formats a token.
//!
//! Neither the file nor its lock is reached through a symbolic link (`O_NOFOLLOW`),
//! and each must be a regular file owned by the service's user (this process's,
//! or the archive's owner when root runs a command for the service): a planted
//! link would make the service create, or `backup` copy, a file anywhere.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One account's token chain as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// The `refresh_token` from the config this chain started from.
    pub seed: String,
    /// The newest refresh token.
    pub refresh_token: String,
    /// The newest access token, if one was issued.
    pub access_token: Option<String>,
    /// When it was stored, RFC 3339.
    pub rotated_at: String,
}

impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRow([redacted])")
    }
}

/// The file's content: a chain per `provider/account`.
#[derive(Default, Serialize, Deserialize)]
struct Content {
    chains: BTreeMap<String, TokenRow>,
}

/// What went wrong with the credential file. Texts name paths, never content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The file or its lock could not be read, written or locked.
    #[error("{what} {}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file or its lock is a link, not a regular file, or another user's.
    #[error("{reason}; move it away and restart")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not what this program writes.
    #[error("{} is not a credential file of usage-archiver ({reason}); move it away and restart", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong, without any of the content.
        reason: String,
    },
}

/// The credential file of one archive.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    path: PathBuf,
    lock_path: PathBuf,
    archive: PathBuf,
}

impl CredentialFile {
    /// The credential file beside the archive at `archive`.
    pub fn beside(archive: &Path) -> Self {
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archive".to_owned());
        Self {
            path: archive.with_file_name(format!("{name}.credentials")),
            lock_path: archive.with_file_name(format!("{name}.credentials.lock")),
            archive: archive.to_path_buf(),
        }
    }

    /// Opens `path` (the file or its lock) without following a link, and checks it is a
    /// regular file of the service's user.
    fn open_private(
        &self,
        path: &Path,
        options: &mut OpenOptions,
    ) -> Result<File, CredentialError> {
        let file = crate::files::open_nofollow(path, options).map_err(|source| {
            let what = if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                "refusing to follow the symbolic link at"
            } else {
                "cannot open"
            };
            CredentialError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        })?;
        let owner = crate::files::owner_of(&self.archive);
        match crate::files::not_private(&file, path, owner) {
            None => Ok(file),
            Some(reason) => Err(CredentialError::Unsafe {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// The file's bytes for a copy (`backup`), once they parse as a credential file;
    /// `None` when there is none. Never through a link, never a file of another user.
    pub fn read_for_copy(&self) -> Result<Option<Vec<u8>>, CredentialError> {
        use std::io::Read;
        let mut file = match self.open_private(&self.path, OpenOptions::new().read(true)) {
            Err(CredentialError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            other => other?,
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| CredentialError::Io {
                what: "cannot read",
                path: self.path.clone(),
                source,
            })?;
        self.parse(&bytes)?;
        Ok(Some(bytes))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Content, CredentialError> {
        serde_json::from_slice(bytes).map_err(|e| CredentialError::Corrupt {
            path: self.path.clone(),
            reason: format!("line {}, column {}", e.line(), e.column()),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock every process shares (waiting for another holder) and reads the
    /// stored chains. Blocking: call it off the async runtime.
    pub fn lock(&self) -> Result<CredentialLock, CredentialError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialError::Io { what, path, source }
        };
        if let Some(dir) = self
            .lock_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            crate::files::create_private_dirs(dir)
                .map_err(io("cannot create the directory", dir))?;
        }
        let lock = self.open_private(
            &self.lock_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )?;
        lock.lock().map_err(io("cannot lock", &self.lock_path))?;
        let content = match self.read_for_copy()? {
            Some(bytes) => self.parse(&bytes)?,
            None => Content::default(),
        };
        Ok(CredentialLock {
            file: self.clone(),
            _lock: lock,
            content,
        })
    }
}

/// The credential file, locked: what it holds, and a way to replace it.
/// The lock is released when this is dropped.
pub struct CredentialLock {
    file: CredentialFile,
    _lock: File,
    content: Content,
}

impl CredentialLock {
    /// The chain of `provider/account`, if stored.
    pub fn get(&self, provider: &str, account: &str) -> Option<&TokenRow> {
        self.content.chains.get(&key(provider, account))
    }

    /// Stores `row` for `provider/account` and returns once it is on disk.
    pub fn put(
        &mut self,
        provider: &str,
        account: &str,
        row: TokenRow,
    ) -> Result<(), CredentialError> {
        let before = self.content.chains.insert(key(provider, account), row);
        let written = self.write();
        if written.is_err() {
            // What is on disk is what the next reader sees; keep memory in step with it.
            match before {
                Some(old) => self.content.chains.insert(key(provider, account), old),
                None => self.content.chains.remove(&key(provider, account)),
            };
        }
        written
    }

    /// Replaces the file atomically: a new temporary file (never an existing one, which
    /// could be a planted link), synced, renamed over the file, and the directory synced.
    fn write(&self) -> Result<(), CredentialError> {
        let path = &self.file.path;
        let io = |what, p: &Path| {
            let p = p.to_path_buf();
            move |source| CredentialError::Io {
                what,
                path: p,
                source,
            }
        };
        let text =
            serde_json::to_vec_pretty(&self.content).map_err(|e| CredentialError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // A new file under a random name (never an existing one, which could be a planted
        // link); removed on failure, and only it.
        let mut tmp = tempfile::Builder::new()
            .prefix(".credentials.")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(io("cannot create a temporary file in", dir))?;
        tmp.write_all(&text)
            .map_err(io("cannot write", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(io("cannot sync", tmp.path()))?;
        tmp.persist(path)
            .map_err(|e| io("cannot replace", path)(e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync the directory", dir))
    }
}

fn key(provider: &str, account: &str) -> String {
    format!("{provider}/{account}")
}
