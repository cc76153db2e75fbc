//! Where an account's rotating credentials are kept between runs (the
//! provider side is [`TokenVault`]). Nothing here logs a token or puts one in
//! an error.

use std::sync::Arc;

use super::error_chain;
use crate::config::{AccountConfig, Secret};
use crate::error::VaultError;
use crate::model::FetchTime;
use crate::providers::{NoVault, StoredToken, TokenVault};
use crate::store::{Store, tokens};

/// The archive as one account's [`TokenVault`]: where a rotated refresh token is kept.
pub struct StoreVault {
    store: Store,
    provider: &'static str,
    account: String,
}

impl StoreVault {
    /// The vault of `account` in `store`.
    pub fn new(store: Store, account: &AccountConfig) -> Self {
        Self {
            store,
            provider: account.kind.as_str(),
            account: account.name.clone(),
        }
    }
}

#[async_trait::async_trait]
impl TokenVault for StoreVault {
    async fn load(&self) -> Result<Option<StoredToken>, VaultError> {
        let (provider, account) = (self.provider, self.account.clone());
        let row = self
            .store
            .call(move |c| tokens::load_token(c, provider, &account))
            .await
            .map_err(|e| VaultError::Storage(error_chain(&e)))?;
        Ok(row.map(|r| StoredToken {
            seed: Secret::new(&r.seed),
            refresh: Secret::new(&r.refresh_token),
            access: r.access_token.as_deref().map(Secret::new),
        }))
    }

    async fn save(&self, token: StoredToken) -> Result<(), VaultError> {
        let (provider, account) = (self.provider, self.account.clone());
        let row = tokens::TokenRow {
            seed: token.seed.expose().to_owned(),
            refresh_token: token.refresh.expose().to_owned(),
            access_token: token.access.as_ref().map(|a| a.expose().to_owned()),
        };
        let at = FetchTime::now().rfc3339();
        self.store
            .call(move |c| tokens::save_token(c, provider, &account, &row, &at))
            .await
            .map_err(|e| VaultError::Storage(error_chain(&e)))
    }
}

/// The account's vault: the archive for accounts whose credentials rotate, none otherwise.
pub fn vault(store: Option<&Store>, account: &AccountConfig) -> Arc<dyn TokenVault> {
    match store {
        Some(store) if account.rotates_credentials() => {
            Arc::new(StoreVault::new(store.clone(), account))
        }
        _ => Arc::new(NoVault),
    }
}
