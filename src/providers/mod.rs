//! The provider abstraction: every source returns domain rows, none touches the store.
//!
//! A provider discovers its subjects, fetches each subject's usage and the
//! account's balances, and turns responses into [`crate::model`] values with
//! pure `parse_*` functions. `sync` decides what to write. Adding a provider
//! means its own file here, one arm in [`build`], and its config section.

pub mod hydraproxy;
pub mod infiniteproxies;
mod json;
pub mod proxyshard;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{AccountConfig, ProviderSettings};
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
    /// ProxyShard: running counters and order snapshots, no history.
    ProxyShard,
}

impl ProviderKind {
    /// Every provider, in display order.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::HydraProxy,
        ProviderKind::InfiniteProxies,
        ProviderKind::ProxyShard,
    ];

    /// The lowercase name used in SQL, config tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HydraProxy => "hydraproxy",
            Self::InfiniteProxies => "infiniteproxies",
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
            Self::ProxyShard => proxyshard::DEFAULT_BASE_URL,
        }
    }

    /// The schedule used when an account sets none.
    pub fn default_schedule(self) -> &'static str {
        match self {
            Self::HydraProxy => "0 10 * * * *",
            Self::InfiniteProxies => "0 20 0,6,12,18 * * *",
            Self::ProxyShard => "0 0 * * * *",
        }
    }

    /// How many past days the provider is assumed to keep, unless an account overrides it.
    pub fn default_retention_days(self) -> u32 {
        match self {
            Self::HydraProxy => hydraproxy::DEFAULT_RETENTION_DAYS,
            Self::InfiniteProxies => infiniteproxies::DEFAULT_RETENTION_DAYS,
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

/// Builds the provider for one configured account.
pub fn build(account: &AccountConfig, http: &HttpClient) -> Arc<dyn Provider> {
    let client = AccountClient::new(http.clone(), account.max_concurrency);
    match &account.settings {
        ProviderSettings::HydraProxy(settings) => {
            Arc::new(hydraproxy::HydraProxy::new(account, settings, client))
        }
        ProviderSettings::InfiniteProxies(s) => {
            Arc::new(infiniteproxies::InfiniteProxies::new(account, s, client))
        }
        ProviderSettings::ProxyShard(s) => {
            Arc::new(proxyshard::ProxyShard::new(account, s, client))
        }
    }
}
