//! Where an account's rotating credentials are kept between runs (the provider
//! side is [`TokenVault`]): the credential file beside the archive, never the
//! archive itself. The file's lock is shared by every process, so a daemon,
//! a `backfill` and a `check-config --online` never present the same refresh
//! token. Nothing here logs a token or puts one in an error.

use std::path::Path;
use std::sync::Arc;

use crate::config::{AccountConfig, Secret};
use crate::error::VaultError;
use crate::error::chain as error_chain;
use crate::model::FetchTime;
use crate::providers::{NoVault, StoredToken, TokenGuard, TokenVault};
use crate::store::credentials::{CredentialFile, CredentialLock, TokenRow};

/// One account's chain in the credential file beside the archive.
pub struct FileVault {
    file: CredentialFile,
    provider: &'static str,
    account: String,
}

impl FileVault {
    /// The vault of `account` beside the archive at `archive`.
    pub fn new(archive: &Path, account: &AccountConfig) -> Self {
        Self {
            file: CredentialFile::beside(archive),
            provider: account.kind.as_str(),
            account: account.name.clone(),
        }
    }

    /// Takes the file's lock on the blocking pool.
    async fn take(&self) -> Result<CredentialLock, VaultError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.lock())
            .await
            .map_err(|_| VaultError::Storage("the credential worker stopped".to_owned()))?
            .map_err(|e| VaultError::Storage(error_chain(&e)))
    }
}

#[async_trait::async_trait]
impl TokenVault for FileVault {
    async fn load(&self) -> Result<Option<StoredToken>, VaultError> {
        let lock = self.take().await?;
        Ok(lock.get(self.provider, &self.account).map(stored))
    }

    async fn lock(&self) -> Result<Box<dyn TokenGuard>, VaultError> {
        let lock = self.take().await?;
        Ok(Box::new(FileGuard {
            lock: Some(lock),
            provider: self.provider,
            account: self.account.clone(),
        }))
    }
}

/// The credential file's lock, held for one account.
struct FileGuard {
    /// `None` only while a save runs on the blocking pool.
    lock: Option<CredentialLock>,
    provider: &'static str,
    account: String,
}

#[async_trait::async_trait]
impl TokenGuard for FileGuard {
    fn stored(&self) -> Option<StoredToken> {
        self.lock
            .as_ref()
            .and_then(|l| l.get(self.provider, &self.account))
            .map(stored)
    }

    async fn save(&mut self, token: StoredToken) -> Result<(), VaultError> {
        let mut lock = self
            .lock
            .take()
            .ok_or_else(|| VaultError::Storage("the credential lock was lost".to_owned()))?;
        let (provider, account) = (self.provider, self.account.clone());
        let row = TokenRow {
            seed: token.seed.expose().to_owned(),
            refresh_token: token.refresh.expose().to_owned(),
            access_token: token.access.as_ref().map(|a| a.expose().to_owned()),
            rotated_at: FetchTime::now().rfc3339(),
        };
        let (lock, saved) = tokio::task::spawn_blocking(move || {
            let saved = lock.put(provider, &account, row);
            (lock, saved)
        })
        .await
        .map_err(|_| VaultError::Storage("the credential worker stopped".to_owned()))?;
        self.lock = Some(lock);
        saved.map_err(|e| VaultError::Storage(error_chain(&e)))
    }
}

fn stored(row: &TokenRow) -> StoredToken {
    StoredToken {
        seed: Secret::new(&row.seed),
        refresh: Secret::new(&row.refresh_token),
        access: row.access_token.as_deref().map(Secret::new),
    }
}

/// The account's vault: the credential file beside the archive at `archive` for
/// accounts whose credentials rotate; none otherwise, or without an archive.
pub fn vault(archive: Option<&Path>, account: &AccountConfig) -> Arc<dyn TokenVault> {
    match archive {
        Some(archive) if account.rotates_credentials() => {
            Arc::new(FileVault::new(archive, account))
        }
        _ => Arc::new(NoVault),
    }
}
