//! The provider abstraction: every source returns domain rows, none touches the store.
//!
//! A provider discovers its subjects, fetches each subject's usage and the
//! account's balances, and turns responses into [`crate::model`] values with
//! pure `parse_*` functions. `sync` decides what to write. Adding a provider
//! means its own file here, one arm in [`build`], and its config section
//! (`docs/adding-a-provider.md`).

mod endpoint;
pub mod hostens;
pub mod hydraproxy;
pub mod infiniteproxies;
mod json;
pub mod proxyshard;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{AccountConfig, ProviderSettings, Secret};
use crate::error::{ProviderError, VaultError};
use crate::http::{AccountClient, HttpClient};
pub use crate::model::ProviderKind;
use crate::model::{BalanceSnapshot, RawResponse, SubjectUsage};
pub(crate) use json::quote;

/// One subject's usage, or why it could not be had.
pub type SubjectResult = Result<SubjectUsage, ProviderError>;

/// How often a subject needs fetching, by what its data is (SPEC §5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// History the provider keeps a window of: hot, quiet or dormant by the archive.
    History,
    /// A running counter: every tick, since derived days need the first snapshot after
    /// each UTC midnight and the day's latest.
    EveryTick,
    /// A daily snapshot of an object: once per UTC day, or again when its listing row
    /// differs from the day's snapshot.
    Daily,
}

/// What a listing says of one subject's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedState {
    /// In use (HydraProxy `ACTIVE`, `PENDING`, `PROCESSING`): fetched every tick.
    Active,
    /// Ended for good (HydraProxy `TERMINATED`, `CANCELED`): may become dormant.
    Ended,
    /// Anything else, or a provider whose listing has no states.
    Other,
}

/// One subject as its listing showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// What the listing says of its state.
    pub state: ListedState,
    /// For a [`Cadence::Daily`] subject: the entity its snapshot is kept as (kind, id)
    /// and the listing's row, compared with the latest snapshot field by field.
    pub row: Option<(String, String, serde_json::Value)>,
    /// What the provider calls the subject (a sub-user's name, a server's label, an
    /// order's network type), for the `subjects` view.
    pub label: Option<String>,
}

impl Listed {
    /// A subject the listing names with `state`, no row and no label.
    pub fn new(state: ListedState) -> Self {
        Self {
            state,
            row: None,
            label: None,
        }
    }
}

/// What discovery found: the subjects, and anything the listing already carried.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Subject ids, lower-cased or normalised as the provider requires.
    pub subjects: Vec<String>,
    /// Figures that came with the listing (e.g. each customer's balance).
    pub balances: Vec<BalanceSnapshot>,
    /// Subjects whose usage the listing already carried; they are not fetched again. A row
    /// of the listing that is malformed fails only its own subject.
    pub prefetched: BTreeMap<String, SubjectResult>,
    /// Listings that failed while others answered: the run goes on with what was found
    /// (and is partial). Rejected credentials are never here; they fail discovery whole.
    pub errors: Vec<ProviderError>,
    /// What the listings said of each subject they named (the fetch plan reads it).
    pub listed: BTreeMap<String, Listed>,
}

/// One account at one provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Subjects (orders, customers, …) the provider lists now, plus configured extras.
    async fn discover_subjects(&self) -> Result<Discovery, ProviderError>;

    /// Everything the provider exposes now for one subject.
    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError>;

    /// How often `subject` needs fetching (the fetch plan; `backfill` ignores it).
    fn cadence(&self, _subject: &str) -> Cadence {
        Cadence::History
    }

    /// Account-level figures (balance, credit) as of now, with the response they came from.
    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError>;

    /// Checks that the credentials are accepted, with one cheap request.
    async fn check_credentials(&self) -> Result<(), ProviderError> {
        self.fetch_balance().await.map(|_| ())
    }
}

/// A provider's rotating credentials as kept between runs (Hostens refresh tokens).
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The configured token the chain started from; a different one in the config starts anew.
    pub seed: Secret,
    /// The newest refresh token.
    pub refresh: Secret,
    /// The newest access token, if one was issued.
    pub access: Option<Secret>,
}

/// Where a provider keeps credentials that rotate, scoped to one account.
///
/// The sync layer provides it. Every process using the same archive shares its lock, so
/// a chain is rotated by one process at a time, always from the newest stored link.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// The stored chain, if any.
    async fn load(&self) -> Result<Option<StoredToken>, VaultError>;
    /// Takes the lock every process shares (waiting for another holder) and reads the
    /// stored chain under it. The lock is held until the guard is dropped.
    async fn lock(&self) -> Result<Box<dyn TokenGuard>, VaultError>;
}

/// A vault's lock, held: the chain as stored when it was taken, and a way to replace it.
#[async_trait]
pub trait TokenGuard: Send {
    /// The chain stored when the lock was taken (or last saved through this guard).
    fn stored(&self) -> Option<StoredToken>;
    /// Stores `token` durably, replacing the chain; returns once it is on disk.
    async fn save(&mut self, token: StoredToken) -> Result<(), VaultError>;
}

/// A vault for accounts whose credentials never rotate: nothing stored, nothing can be saved.
#[derive(Debug, Default)]
pub struct NoVault;

#[async_trait]
impl TokenVault for NoVault {
    async fn load(&self) -> Result<Option<StoredToken>, VaultError> {
        Ok(None)
    }

    async fn lock(&self) -> Result<Box<dyn TokenGuard>, VaultError> {
        Ok(Box::new(NoVault))
    }
}

#[async_trait]
impl TokenGuard for NoVault {
    fn stored(&self) -> Option<StoredToken> {
        None
    }

    async fn save(&mut self, _token: StoredToken) -> Result<(), VaultError> {
        Err(VaultError::Unavailable)
    }
}

/// Builds the provider for one configured account; `vault` keeps its rotating credentials.
pub fn build(
    account: &AccountConfig,
    http: &HttpClient,
    vault: Arc<dyn TokenVault>,
) -> Arc<dyn Provider> {
    let client = AccountClient::new(http.clone(), account.max_concurrency);
    match &account.settings {
        ProviderSettings::HydraProxy(settings) => {
            Arc::new(hydraproxy::HydraProxy::new(account, settings, client))
        }
        ProviderSettings::InfiniteProxies(s) => {
            Arc::new(infiniteproxies::InfiniteProxies::new(account, s, client))
        }
        ProviderSettings::Hostens(s) => Arc::new(hostens::Hostens::new(account, s, client, vault)),
        ProviderSettings::ProxyShard(s) => {
            Arc::new(proxyshard::ProxyShard::new(account, s, client))
        }
    }
}
