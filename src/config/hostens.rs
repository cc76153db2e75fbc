//! `[[hostens]]`: the raw table, its settings, checks and defaults.
//!
//! Two ways to authenticate: HTTP Basic (`username` + `password`) or the
//! token flow (`refresh_token` alone, or the systemd credential).

use std::path::PathBuf;

use toml::Spanned;

use super::raw::{account_table, secret_sources};
use super::secret::credential_exists;
use super::validate::{Validator, credential_name};
use super::{AccountTable, ConfigError, ProviderProfile, ProviderSettings, Secret};
use crate::model::ProviderKind;

/// The documented API base URL.
pub const DEFAULT_BASE_URL: &str = "https://billing.hostens.com/api";

/// Hostens' defaults: daily figures are derived from counters, so a missed day
/// cannot be fetched later (a window of 1 day).
pub(super) const PROFILE: ProviderProfile = ProviderProfile {
    base_url: DEFAULT_BASE_URL,
    schedule: "0 0 * * * *",
    retention_days: 1,
    daily_history: false,
    max_day_mb: 100_000_000.0,
};

account_table! {
    /// `[[hostens]]` as written.
    pub(crate) struct RawHostens {
        pub username: Option<Spanned<String>>,
        pub password: Option<String>,
        pub password_file: Option<PathBuf>,
        pub password_env: Option<String>,
        pub refresh_token: Option<String>,
        pub refresh_token_file: Option<PathBuf>,
        pub refresh_token_env: Option<String>,
        pub bandwidth_unit: Option<Spanned<String>>,
    }
}

/// How a Hostens account authenticates.
#[derive(Debug, Clone)]
pub enum HostensAuth {
    /// HTTP Basic with the client-area email and password.
    Basic {
        /// The client-area email.
        username: String,
        /// The client-area password.
        password: Secret,
    },
    /// `POST /token`: the configured refresh token seeds a chain the service keeps.
    Token {
        /// The refresh token from the config; only the first link of the chain.
        seed: Secret,
    },
}

/// `[[hostens]]` beyond the common keys.
#[derive(Debug, Clone)]
pub struct HostensSettings {
    /// Basic auth or the token flow.
    pub auth: HostensAuth,
    /// MB per unit of `bw_in`/`bw_out` as Hostens reports them (`bandwidth_unit`: 1 for MB, 1024 for GB).
    pub mb_per_unit: f64,
}

impl AccountTable for RawHostens {
    const KIND: ProviderKind = ProviderKind::Hostens;
    const SECRET_KEYS: &'static [&'static str] = &["password", "refresh_token"];

    fn settings(
        &self,
        v: &Validator<'_>,
        span: std::ops::Range<usize>,
    ) -> Result<(ProviderSettings, bool), ConfigError> {
        let (auth, inline) = self.auth(v, span)?;
        let mb_per_unit = match &self.bandwidth_unit {
            None => 1.0,
            Some(u) => match u.get_ref().as_str() {
                "MB" => 1.0,
                "GB" => 1024.0,
                _ => {
                    return Err(v.invalid(
                        "hostens.bandwidth_unit",
                        u.span(),
                        "must be \"MB\" or \"GB\"",
                    ));
                }
            },
        };
        let settings = HostensSettings { auth, mb_per_unit };
        Ok((ProviderSettings::Hostens(settings), inline))
    }
}

impl RawHostens {
    /// Basic auth or the token flow, never both, never neither.
    fn auth(
        &self,
        v: &Validator<'_>,
        span: std::ops::Range<usize>,
    ) -> Result<(HostensAuth, bool), ConfigError> {
        let name = self.name.get_ref();
        let password = secret_sources!(self, password, password_file, password_env);
        let refresh = secret_sources!(self, refresh_token, refresh_token_file, refresh_token_env);
        match &self.username {
            Some(user) if refresh.given() => Err(v.invalid(
                "hostens.refresh_token",
                user.span(),
                "set either `username` and `password` (Basic auth) or `refresh_token` (token flow), not both",
            )),
            Some(user) if user.get_ref().trim().is_empty() || user.get_ref().contains(':') => {
                Err(v.invalid(
                    "hostens.username",
                    user.span(),
                    "must be the client-area email address (not empty, no ':')",
                ))
            }
            Some(user) => {
                let (password, inline) = v.secret(Self::KIND, name, password, span)?;
                let username = user.get_ref().trim().to_owned();
                Ok((HostensAuth::Basic { username, password }, inline))
            }
            None if password.given() => Err(v.invalid(
                "hostens.username",
                span,
                "a `password` needs a `username` (the client-area email)",
            )),
            None if !refresh.given()
                && !credential_exists(&credential_name(Self::KIND, name)) =>
            {
                Err(v.invalid(
                    "hostens",
                    span,
                    &format!(
                        "no credentials: set `username` and `password` (Basic auth) or `refresh_token` \
                         (token flow), or pass the refresh token as the systemd credential `hostens-{name}`"
                    ),
                ))
            }
            None => {
                let (seed, inline) = v.secret(Self::KIND, name, refresh, span)?;
                Ok((HostensAuth::Token { seed }, inline))
            }
        }
    }
}
