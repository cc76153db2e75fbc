//! `[[infiniteproxies]]`: the raw table, its settings, checks and defaults.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::{account_table, secret_sources};
use super::validate::Validator;
use super::{AccountTable, ConfigError, ProviderProfile, ProviderSettings};
use crate::model::ProviderKind;

/// The documented API base URL.
pub const DEFAULT_BASE_URL: &str = "https://reseller.infiniteproxies.com/v2";
/// Header the API key goes in, unless configured otherwise.
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";
/// Text before the API key in that header, unless configured otherwise.
pub const DEFAULT_AUTH_PREFIX: &str = "Bearer ";

/// InfiniteProxies' defaults: it shows the last 14 days.
pub(super) const PROFILE: ProviderProfile = ProviderProfile {
    base_url: DEFAULT_BASE_URL,
    schedule: "0 20 0,6,12,18 * * *",
    retention_days: 14,
    daily_history: true,
    max_day_mb: super::PROXY_MAX_DAY_MB,
};

account_table! {
    /// `[[infiniteproxies]]` as written.
    pub(crate) struct RawInfiniteProxies {
        pub api_key: Option<String>,
        pub api_key_file: Option<PathBuf>,
        pub api_key_env: Option<String>,
        pub auth_header: Option<Spanned<String>>,
        pub auth_prefix: Option<String>,
        #[serde(default)]
        pub customers: Vec<Spanned<String>>,
    }
}

/// `[[infiniteproxies]]` beyond the common keys.
#[derive(Debug, Clone)]
pub struct InfiniteProxiesSettings {
    /// The header the key goes in (`auth_header`).
    pub auth_header: reqwest::header::HeaderName,
    /// `auth_prefix` + the API key, marked sensitive so it is never printed.
    pub auth_value: reqwest::header::HeaderValue,
    /// Customer usernames archived beside the listed ones.
    pub customers: Vec<String>,
}

impl AccountTable for RawInfiniteProxies {
    const KIND: ProviderKind = ProviderKind::InfiniteProxies;
    const SECRET_KEYS: &'static [&'static str] = &["api_key"];

    fn settings(
        &self,
        v: &Validator<'_>,
        span: std::ops::Range<usize>,
    ) -> Result<(ProviderSettings, bool), ConfigError> {
        let name = self.name.get_ref();
        let sources = secret_sources!(self, api_key, api_key_file, api_key_env);
        let (api_key, inline) = v.secret(Self::KIND, name, sources, span.clone())?;
        let header = self
            .auth_header
            .as_ref()
            .map_or(DEFAULT_AUTH_HEADER, |h| h.get_ref().as_str());
        let auth_header =
            reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                let at = self
                    .auth_header
                    .as_ref()
                    .map_or(span.clone(), Spanned::span);
                v.invalid(
                    "infiniteproxies.auth_header",
                    at,
                    "not a valid HTTP header name",
                )
            })?;
        let prefix = self.auth_prefix.as_deref().unwrap_or(DEFAULT_AUTH_PREFIX);
        let mut auth_value =
            reqwest::header::HeaderValue::from_str(&format!("{prefix}{}", api_key.expose()))
                .map_err(|_| {
                    v.invalid(
                        "infiniteproxies.api_key",
                        span,
                        "auth_prefix and api_key must be printable ASCII",
                    )
                })?;
        auth_value.set_sensitive(true);
        let customers = self
            .customers
            .iter()
            .map(|c| match c.get_ref().trim() {
                "" => Err(v.invalid(
                    "infiniteproxies.customers",
                    c.span(),
                    "a username cannot be empty",
                )),
                u => Ok(u.to_lowercase()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let settings = InfiniteProxiesSettings {
            auth_header,
            auth_value,
            customers,
        };
        Ok((ProviderSettings::InfiniteProxies(settings), inline))
    }
}
