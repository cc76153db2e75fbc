//! Serde mirror of `daemon.toml`, exactly as written.
//!
//! Every table denies unknown keys, and values that are validated later are
//! [`Spanned`] so that errors can name their line. Nothing here is checked
//! beyond its TOML type; `config::load` turns this into a [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub archive: RawArchive,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub hydraproxy: Vec<Spanned<RawHydraProxy>>,
    #[serde(default)]
    pub infiniteproxies: Vec<Spanned<RawInfiniteProxies>>,
    #[serde(default)]
    pub hostens: Vec<Spanned<RawHostens>>,
    #[serde(default)]
    pub proxyshard: Vec<Spanned<RawProxyShard>>,
}

/// `[archive]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArchive {
    pub database: Option<PathBuf>,
    pub keep_raw: Option<super::KeepRaw>,
    pub metrics_textfile: Option<PathBuf>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub timeout_secs: Option<Spanned<u64>>,
    pub connect_timeout_secs: Option<Spanned<u64>>,
    pub max_retries: Option<Spanned<u32>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub backoff_initial_ms: Option<Spanned<u64>>,
    pub backoff_max_secs: Option<Spanned<u64>>,
}

/// The keys every account table has (besides `name`), borrowed from whichever table holds them.
///
/// serde cannot `flatten` a shared struct into a table that denies unknown
/// keys, so each table lists these fields itself and lends them out here.
pub(crate) struct Common<'a> {
    pub base_url: Option<&'a Spanned<String>>,
    pub allow_insecure_http: bool,
    pub schedule: Option<&'a Spanned<String>>,
    pub max_concurrency: Option<&'a Spanned<i64>>,
    pub retention_days: Option<&'a Spanned<i64>>,
}

macro_rules! common_keys {
    ($($table:ty),*) => {$(
        impl $table {
            pub(crate) fn common(&self) -> Common<'_> {
                Common {
                    base_url: self.base_url.as_ref(),
                    allow_insecure_http: self.allow_insecure_http,
                    schedule: self.schedule.as_ref(),
                    max_concurrency: self.max_concurrency.as_ref(),
                    retention_days: self.retention_days.as_ref(),
                }
            }
        }
    )*};
}

common_keys!(RawHydraProxy, RawInfiniteProxies, RawHostens, RawProxyShard);

/// `[[hydraproxy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHydraProxy {
    pub name: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    pub reseller_base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub schedule: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub retention_days: Option<Spanned<i64>>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    #[serde(default)]
    pub orders: Vec<Spanned<toml::Value>>,
}

/// `[[infiniteproxies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInfiniteProxies {
    pub name: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub schedule: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub retention_days: Option<Spanned<i64>>,
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    pub auth_header: Option<Spanned<String>>,
    pub auth_prefix: Option<String>,
    #[serde(default)]
    pub customers: Vec<Spanned<String>>,
}

/// `[[hostens]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHostens {
    pub name: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub schedule: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub retention_days: Option<Spanned<i64>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub refresh_token: Option<String>,
    pub refresh_token_file: Option<PathBuf>,
    pub refresh_token_env: Option<String>,
    pub bandwidth_unit: Option<Spanned<String>>,
}

/// `[[proxyshard]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxyShard {
    pub name: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub schedule: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub retention_days: Option<Spanned<i64>>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub proxy_types: Option<Vec<Spanned<String>>>,
    pub currency: Option<Spanned<String>>,
}
