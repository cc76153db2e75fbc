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

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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
        }
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
            std::fs::create_dir_all(dir).map_err(io("cannot create the directory", dir))?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(io("cannot open the lock", &self.lock_path))?;
        lock.lock().map_err(io("cannot lock", &self.lock_path))?;
        let content = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CredentialError::Corrupt {
                path: self.path.clone(),
                reason: format!("line {}, column {}", e.line(), e.column()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Content::default(),
            Err(e) => return Err(io("cannot read", &self.path)(e)),
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
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("cannot create", &tmp))?;
            out.write_all(&text).map_err(io("cannot write", &tmp))?;
            out.sync_all().map_err(io("cannot sync", &tmp))?;
            std::fs::rename(&tmp, path).map_err(io("cannot replace", path))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io("cannot sync the directory", dir))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn key(provider: &str, account: &str) -> String {
    format!("{provider}/{account}")
}
