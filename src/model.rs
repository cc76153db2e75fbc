//! Domain rows that providers return and the store writes.
//!
//! These types are neutral: no wire names, no SQL. Providers convert their
//! responses into them (`parse_*`), and only `sync` hands them to the store.
//! This module is the bottom layer: it imports nothing else of the crate.

use chrono::{DateTime, NaiveDate, Utc};

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
}

/// How usage is grouped in time: by UTC day or by calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// One row per UTC day.
    Day,
    /// One row per calendar month.
    #[default]
    Month,
}

/// Usage of one subject (order, customer, server, sub-user) on one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayUsage {
    /// The UTC day the usage belongs to.
    pub day: NaiveDate,
    /// Uploaded megabytes, `None` where the provider reports only a total.
    pub upload_mb: Option<f64>,
    /// Downloaded megabytes, `None` where the provider reports only a total.
    pub download_mb: Option<f64>,
    /// Total megabytes.
    pub total_mb: f64,
}

/// Usage of one subject in one calendar month, as the provider reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthUsage {
    /// First day of the month.
    pub month: NaiveDate,
    /// Uploaded megabytes, if known.
    pub upload_mb: Option<f64>,
    /// Downloaded megabytes, if known.
    pub download_mb: Option<f64>,
    /// Total megabytes.
    pub total_mb: f64,
}

/// Disk and inode figures of one server in one calendar month, as the provider reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthResources {
    /// First day of the month.
    pub month: NaiveDate,
    /// Disk quota used.
    pub quota_usage: Option<f64>,
    /// Disk quota.
    pub quota_limit: Option<f64>,
    /// Inodes used.
    pub inode_usage: Option<f64>,
    /// Inode limit.
    pub inode_limit: Option<f64>,
}

/// One account-level figure (balance, credit, remaining traffic) at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceSnapshot {
    /// What is measured, e.g. `balance_usd`.
    pub metric: String,
    /// The value in `unit`.
    pub value: f64,
    /// The unit of `value`, e.g. `USD` or `MB`.
    pub unit: String,
}

/// Which usage figure a running counter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CounterKind {
    /// Uploaded traffic (e.g. Hostens `bw_out`).
    Upload,
    /// Downloaded traffic (e.g. Hostens `bw_in`).
    Download,
    /// All traffic (e.g. ProxyShard `data_spent`).
    Total,
}

impl CounterKind {
    /// The name stored in `counter_snapshot.counter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Total => "total",
        }
    }

    /// Parses the stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Upload, Self::Download, Self::Total]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// The value of a provider's running traffic counter at the moment of the fetch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterReading {
    /// What it counts.
    pub kind: CounterKind,
    /// Its value in MB (it only grows, except when the provider resets it).
    pub value_mb: f64,
    /// When the provider read the counter, if it says (Hostens `synch_date`); else the
    /// reading is as of the fetch.
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The counter's own allocation in MB, where the provider gives one (ProxyShard
    /// `data`): no day can plausibly use more.
    pub limit_mb: Option<f64>,
}

/// A response body as it came from the provider, kept for `keep_raw`.
///
/// The body is as it came: whatever keeps it removes the secrets first
/// (`redact::redact_body` with [`RawResponse::secret_keys`]), so a body that is not
/// kept costs no redaction. Its `Debug` shows the body's length, never the body.
#[derive(Clone, PartialEq)]
pub struct RawResponse {
    /// The endpoint it came from, without host or query (e.g. `view_usage_history/`).
    pub endpoint: String,
    /// The HTTP status code.
    pub status: u16,
    /// The body bytes, capped by `max_body_bytes`; secrets still in it.
    pub body: bytes::Bytes,
    /// The provider's own names of credential fields, removed before the body is kept.
    pub secret_keys: &'static [&'static str],
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("endpoint", &self.endpoint)
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Everything a provider fetched for one subject in one request cycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectUsage {
    /// Day rows, in any order. Days the provider no longer lists are simply absent.
    pub days: Vec<DayUsage>,
    /// Month rows reported by the provider (not rollups).
    pub months: Vec<MonthUsage>,
    /// Monthly figures beyond usage (Hostens quota and inodes).
    pub month_resources: Vec<MonthResources>,
    /// Running counters as of the fetch, from which days are derived (SPEC §5.7).
    pub counters: Vec<CounterReading>,
    /// Snapshots of provider objects (e.g. a ProxyShard order) kept per UTC day.
    pub records: Vec<EntityRecord>,
    /// The responses these rows were parsed from.
    pub raw: Vec<RawResponse>,
    /// Parts of the answers refused without failing the subject (a history row with an
    /// impossible period), worded for the operator; recorded with the run.
    pub notes: Vec<String>,
}

/// A provider object as it was on one UTC day, kept whole (secrets removed).
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRecord {
    /// What it is, e.g. `order`.
    pub kind: String,
    /// Its id at the provider.
    pub id: String,
    /// Its fields, as the provider sent them, minus credentials.
    pub data: serde_json::Value,
}

/// The result of a fetch, stamped with the moment it was taken.
///
/// The store decides finality from `fetched_at`: a day is final once it
/// was fetched after that UTC day ended (SPEC §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTime(pub DateTime<Utc>);

impl FetchTime {
    /// The current wall-clock time in UTC.
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// The UTC day of the fetch.
    pub fn day(self) -> NaiveDate {
        self.0.date_naive()
    }

    /// RFC 3339 text with second precision and a `Z` suffix, as stored.
    pub fn rfc3339(self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}
