//! `[[proxyshard]]`: the raw table, its settings, checks and defaults.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::{account_table, secret_sources};
use super::validate::Validator;
use super::{AccountTable, ConfigError, ProviderProfile, ProviderSettings, Secret};
use crate::model::ProviderKind;

/// The documented API base URL.
pub const DEFAULT_BASE_URL: &str = "https://user-api.proxyshard.com";
/// Proxy types snapshotted unless configured (the API's spelling).
pub const DEFAULT_PROXY_TYPES: [&str; 2] = ["standart", "premium"];

/// ProxyShard's defaults: it keeps no history at all, only the present.
pub(super) const PROFILE: ProviderProfile = ProviderProfile {
    base_url: DEFAULT_BASE_URL,
    schedule: "0 0 * * * *",
    retention_days: 1,
    daily_history: false,
    max_day_mb: super::PROXY_MAX_DAY_MB,
};

account_table! {
    /// `[[proxyshard]]` as written.
    pub(crate) struct RawProxyShard {
        pub token: Option<String>,
        pub token_file: Option<PathBuf>,
        pub token_env: Option<String>,
        pub proxy_types: Option<Vec<Spanned<String>>>,
        pub currency: Option<Spanned<String>>,
    }
}

/// `[[proxyshard]]` beyond the common keys.
#[derive(Debug, Clone)]
pub struct ProxyShardSettings {
    /// `Authorization: Bearer …`.
    pub token: Secret,
    /// Residential proxy types whose counters are snapshotted (the API's spelling, `standart`).
    pub proxy_types: Vec<String>,
    /// The currency of `wallet_balance`, which the API gives in cents without naming one.
    pub currency: String,
}

impl AccountTable for RawProxyShard {
    const KIND: ProviderKind = ProviderKind::ProxyShard;
    const SECRET_KEYS: &'static [&'static str] = &["token"];

    fn settings(
        &self,
        v: &Validator<'_>,
        span: std::ops::Range<usize>,
    ) -> Result<(ProviderSettings, bool), ConfigError> {
        let name = self.name.get_ref();
        let sources = secret_sources!(self, token, token_file, token_env);
        let (token, inline) = v.secret(Self::KIND, name, sources, span)?;
        let proxy_types = match &self.proxy_types {
            None => DEFAULT_PROXY_TYPES.map(str::to_owned).to_vec(),
            Some(types) => types
                .iter()
                .map(|t| proxy_type(v, t))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let currency = match &self.currency {
            None => "USD".to_owned(),
            Some(c)
                if c.get_ref().len() == 3
                    && c.get_ref().chars().all(|ch| ch.is_ascii_uppercase()) =>
            {
                c.get_ref().clone()
            }
            Some(c) => {
                return Err(v.invalid(
                    "proxyshard.currency",
                    c.span(),
                    "a three-letter code such as \"USD\"",
                ));
            }
        };
        let settings = ProxyShardSettings {
            token,
            proxy_types,
            currency,
        };
        Ok((ProviderSettings::ProxyShard(settings), inline))
    }
}

fn proxy_type(v: &Validator<'_>, value: &Spanned<String>) -> Result<String, ConfigError> {
    let t = value.get_ref();
    let ok = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(t.clone())
    } else {
        Err(v.invalid(
            "proxyshard.proxy_types",
            value.span(),
            "each type is lowercase letters, digits, '_' or '-' (e.g. \"standart\")",
        ))
    }
}
