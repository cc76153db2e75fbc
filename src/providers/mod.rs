//! The provider abstraction: every source returns domain rows, none touches the store.
//!
//! A provider discovers its subjects, fetches each subject's usage and the
//! account's balances, and turns responses into [`crate::model`] values with
//! pure `parse_*` functions. `sync` decides what to write. Adding a provider
//! means its own file here, one arm in [`build`], and its config section.

pub mod hostens;
pub mod hydraproxy;
pub mod infiniteproxies;
mod json;
pub mod proxyshard;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{AccountConfig, ProviderSettings, Secret};
use crate::error::ProviderError;
use crate::http::{AccountClient, HttpClient};
use crate::model::{BalanceSnapshot, Discovery, RawResponse, SubjectUsage};

/// The providers this archiver knows. [`ProviderKind::as_str`] is the only
/// place their SQL names are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// HydraProxy: per-order daily history.
    HydraProxy,
    /// InfiniteProxies: per-customer daily totals, last 14 days.
    InfiniteProxies,
    /// Hostens: per-server monthly history and running bandwidth counters.
    Hostens,
    /// ProxyShard: running counters and order snapshots, no history.
    ProxyShard,
}

impl ProviderKind {
    /// Every provider, in display order.
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::HydraProxy,
        ProviderKind::InfiniteProxies,
        ProviderKind::Hostens,
        ProviderKind::ProxyShard,
    ];

    /// The lowercase name used in SQL, config tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HydraProxy => "hydraproxy",
            Self::InfiniteProxies => "infiniteproxies",
            Self::Hostens => "hostens",
            Self::ProxyShard => "proxyshard",
        }
    }

    /// Parses the lowercase name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The documented API base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::HydraProxy => hydraproxy::DEFAULT_BASE_URL,
            Self::InfiniteProxies => infiniteproxies::DEFAULT_BASE_URL,
            Self::Hostens => hostens::DEFAULT_BASE_URL,
            Self::ProxyShard => proxyshard::DEFAULT_BASE_URL,
        }
    }

    /// The schedule used when an account sets none.
    pub fn default_schedule(self) -> &'static str {
        match self {
            Self::HydraProxy => "0 10 * * * *",
            Self::InfiniteProxies => "0 20 0,6,12,18 * * *",
            Self::Hostens => "0 0 * * * *",
            Self::ProxyShard => "0 0 * * * *",
        }
    }

    /// How many past days the provider is assumed to keep, unless an account overrides it.
    pub fn default_retention_days(self) -> u32 {
        match self {
            Self::HydraProxy => hydraproxy::DEFAULT_RETENTION_DAYS,
            Self::InfiniteProxies => infiniteproxies::DEFAULT_RETENTION_DAYS,
            Self::Hostens => hostens::DEFAULT_RETENTION_DAYS,
            Self::ProxyShard => proxyshard::DEFAULT_RETENTION_DAYS,
        }
    }
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
/// The sync layer provides it over the archive. `save` returns only once the
/// token is durable, and a provider uses a new token only after that.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// The stored chain, if any.
    async fn load(&self) -> Result<Option<StoredToken>, String>;
    /// Stores `token` durably, replacing the previous one.
    async fn save(&self, token: StoredToken) -> Result<(), String>;
}

/// A vault for accounts whose credentials never rotate: nothing stored, nothing can be saved.
#[derive(Debug, Default)]
pub struct NoVault;

#[async_trait]
impl TokenVault for NoVault {
    async fn load(&self) -> Result<Option<StoredToken>, String> {
        Ok(None)
    }

    async fn save(&self, _token: StoredToken) -> Result<(), String> {
        Err("no archive is open to keep the rotated token in".to_owned())
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
