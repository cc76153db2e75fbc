//! `[[hydraproxy]]`: the raw table, its settings, checks and defaults.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::{account_table, secret_sources};
use super::validate::Validator;
use super::{AccountTable, ConfigError, ProviderProfile, ProviderSettings, Secret};
use crate::model::ProviderKind;

/// The usage-history API (`view_usage_history/`, `get_account_info/`).
pub const DEFAULT_BASE_URL: &str = "https://app.hydraproxy.com/api";
/// The reseller API (`get_orders_status/`).
pub const DEFAULT_RESELLER_BASE_URL: &str = "https://api.hydraproxy.com";

/// HydraProxy's defaults: the document never states a window, 7 days is assumed.
pub(super) const PROFILE: ProviderProfile = ProviderProfile {
    base_url: DEFAULT_BASE_URL,
    schedule: "0 10 * * * *",
    retention_days: 7,
    daily_history: true,
    max_day_mb: super::PROXY_MAX_DAY_MB,
};

account_table! {
    /// `[[hydraproxy]]` as written.
    pub(crate) struct RawHydraProxy {
        pub reseller_base_url: Option<Spanned<String>>,
        pub token: Option<String>,
        pub token_file: Option<PathBuf>,
        pub token_env: Option<String>,
        #[serde(default)]
        pub orders: Vec<Spanned<toml::Value>>,
    }
}

/// `[[hydraproxy]]` beyond the common keys.
#[derive(Debug, Clone)]
pub struct HydraProxySettings {
    /// `Authorization: Token …`.
    pub token: Secret,
    /// The reseller API (`get_orders_status/`), a second host in HydraProxy's docs.
    pub reseller_base_url: String,
    /// Order ids archived beside the discovered ones.
    pub orders: Vec<u64>,
}

impl AccountTable for RawHydraProxy {
    const KIND: ProviderKind = ProviderKind::HydraProxy;
    const SECRET_KEYS: &'static [&'static str] = &["token"];

    fn settings(
        &self,
        v: &Validator<'_>,
        span: std::ops::Range<usize>,
    ) -> Result<(ProviderSettings, bool), ConfigError> {
        let name = self.name.get_ref();
        let sources = secret_sources!(self, token, token_file, token_env);
        let (token, inline) = v.secret(Self::KIND, name, sources, span)?;
        let reseller_base_url = v.url(
            "hydraproxy.reseller_base_url",
            self.reseller_base_url.as_ref(),
            DEFAULT_RESELLER_BASE_URL,
            self.allow_insecure_http,
        )?;
        let orders = self
            .orders
            .iter()
            .map(|o| order_id(v, o))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = HydraProxySettings {
            token,
            reseller_base_url,
            orders,
        };
        Ok((ProviderSettings::HydraProxy(settings), inline))
    }
}

fn order_id(v: &Validator<'_>, value: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
    let id = match value.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_order_id(s),
        _ => None,
    };
    id.filter(|n| *n > 0).ok_or_else(|| {
        v.invalid(
            "hydraproxy.orders",
            value.span(),
            "each order id must be a positive integer or a string of digits",
        )
    })
}

/// Parses a subject or config value as an order id: ASCII digits only (no sign, no space).
pub fn parse_order_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
