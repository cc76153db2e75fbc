//! The validated configuration, and how `daemon.toml` is found and checked.
//!
//! `raw` mirrors the file; [`Config`] is what the rest of the program uses and
//! cannot hold an invalid value: URLs are checked for `https://`, schedules
//! are parsed, secrets are resolved. Errors name the key and its line.

mod raw;
mod schedule;
mod secret;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use schedule::Schedule;
pub use secret::Secret;
use secret::{SecretOrigin, SecretSources};

use crate::providers::ProviderKind;

/// Where the config is looked for when neither `--config` nor `$USAGE_ARCHIVER_CONFIG` is given.
pub const DEFAULT_PATHS: [&str; 2] = ["daemon.toml", "/etc/usage-archiver/daemon.toml"];
/// The account tables a config may hold, for messages.
pub const ACCOUNT_TABLES: &str =
    "[[hydraproxy]], [[infiniteproxies]], [[hostens]] or [[proxyshard]]";
/// The archive's location when `[archive] database` is not set.
pub const DEFAULT_DATABASE: &str = "/var/lib/usage-archiver/archive.db";
/// Default whole-request timeout, 30 s.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default connect timeout, 10 s.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default number of retries after the first attempt, 5.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default response size cap, 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Default first backoff delay, 500 ms (doubles each retry, with jitter).
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 500;
/// Default longest backoff delay and cap on `Retry-After`, 300 s.
pub const DEFAULT_BACKOFF_MAX_SECS: u64 = 300;
/// Default per-account number of requests in flight, 4.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;

/// Which raw response bodies the archive keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepRaw {
    /// None at all.
    None,
    /// Only bodies that failed to parse (the default).
    #[default]
    Errors,
    /// Every body fetched.
    All,
}

/// A checked `daemon.toml`.
#[derive(Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// `[archive]`.
    pub archive: ArchiveConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// Every account of every provider, in file order.
    pub accounts: Vec<AccountConfig>,
    /// Things worth telling the operator that do not stop the program.
    pub warnings: Vec<String>,
}

/// `[archive]`.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The SQLite file.
    pub database: PathBuf,
    /// Which response bodies to keep.
    pub keep_raw: KeepRaw,
    /// Prometheus text file rewritten after each run (node_exporter's textfile collector).
    pub metrics_textfile: Option<PathBuf>,
}

/// `[http]`, shared by every account.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whole-request timeout, body included.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Largest body accepted.
    pub max_body_bytes: u64,
    /// First backoff delay.
    pub backoff_initial: Duration,
    /// Longest backoff delay, and the cap on `Retry-After`.
    pub backoff_max: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            max_retries: DEFAULT_MAX_RETRIES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            backoff_initial: Duration::from_millis(DEFAULT_BACKOFF_INITIAL_MS),
            backoff_max: Duration::from_secs(DEFAULT_BACKOFF_MAX_SECS),
        }
    }
}

/// One provider account.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// The provider.
    pub kind: ProviderKind,
    /// The account label, unique per provider.
    pub name: String,
    /// The API base URL, without a trailing slash.
    pub base_url: String,
    /// When to sync, in UTC.
    pub schedule: Schedule,
    /// Requests in flight at once for this account.
    pub max_concurrency: usize,
    /// Days of history the provider keeps (for discovery and gap reports).
    pub retention_days: u32,
    /// What only this provider needs.
    pub settings: ProviderSettings,
}

impl AccountConfig {
    /// `provider/account`, for logs and messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }
}

/// Provider-specific settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderSettings {
    /// `[[hydraproxy]]`.
    HydraProxy(HydraProxySettings),
    /// `[[infiniteproxies]]`.
    InfiniteProxies(InfiniteProxiesSettings),
    /// `[[hostens]]`.
    Hostens(HostensSettings),
    /// `[[proxyshard]]`.
    ProxyShard(ProxyShardSettings),
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
    /// `POST /token`: the configured refresh token seeds a chain the archive keeps.
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

impl AccountConfig {
    /// Whether the account's credentials rotate, so that its runs need the archive to keep them.
    pub fn rotates_credentials(&self) -> bool {
        matches!(
            &self.settings,
            ProviderSettings::Hostens(HostensSettings {
                auth: HostensAuth::Token { .. },
                ..
            })
        )
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

/// A config that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file was given and none exists at the default locations.
    #[error(
        "no config file found (looked for {}); pass --config PATH or set USAGE_ARCHIVER_CONFIG \
         (daemon.toml in the repository is a commented example; `usage-archiver demo` needs none)",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// The paths tried.
        searched: Vec<PathBuf>,
    },
    /// The file exists but cannot be read.
    #[error("cannot read config {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("{}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the key, line and column.
        message: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{}:{line}: `{key}`: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, as `table.key`.
        key: String,
        /// 1-based line of the value (or of its table).
        line: usize,
        /// What is wrong and what would be right.
        reason: String,
    },
}

/// Finds the config file: the explicit path, else the first default that exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let searched: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
    searched
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(ConfigError::NotFound { searched })
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let Parsed {
        mut config,
        has_inline_secret,
    } = parse(&text, path)?;
    config.path = Some(path.to_path_buf());
    if has_inline_secret && world_readable(path) {
        config.warnings.push(format!(
            "{} holds a secret and is readable by every user on this machine; run: chmod 640 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(config)
}

/// Validates config text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    Validator { text, path }.config(raw)
}

/// A validated config plus facts about how it was written.
#[derive(Debug)]
pub struct Parsed {
    /// The config.
    pub config: Config,
    /// Whether a secret is written inline in the file.
    pub has_inline_secret: bool,
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn world_readable(_path: &Path) -> bool {
    false
}

/// Turns raw values into checked ones, naming key and line on failure.
struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    fn config(&self, raw: raw::RawConfig) -> Result<Parsed, ConfigError> {
        let archive = ArchiveConfig {
            database: raw
                .archive
                .database
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE)),
            keep_raw: raw.archive.keep_raw.unwrap_or_default(),
            metrics_textfile: raw.archive.metrics_textfile,
        };
        let http = self.http(&raw.http)?;
        let mut accounts = Vec::new();
        let mut has_inline_secret = false;
        let hydraproxy = raw
            .hydraproxy
            .iter()
            .map(|t| (t.span(), self.hydraproxy(t)));
        let infiniteproxies = raw
            .infiniteproxies
            .iter()
            .map(|t| (t.span(), self.infiniteproxies(t)));
        let hostens = raw.hostens.iter().map(|t| (t.span(), self.hostens(t)));
        let proxyshard = raw
            .proxyshard
            .iter()
            .map(|t| (t.span(), self.proxyshard(t)));
        let tables = hydraproxy
            .chain(infiniteproxies)
            .chain(hostens)
            .chain(proxyshard);
        for (span, result) in tables {
            let (account, inline) = result?;
            has_inline_secret |= inline;
            self.check_unique(&accounts, &account, span)?;
            accounts.push(account);
        }
        let config = Config {
            path: None,
            archive,
            http,
            accounts,
            warnings: Vec::new(),
        };
        Ok(Parsed {
            config,
            has_inline_secret,
        })
    }

    fn http(&self, raw: &raw::RawHttp) -> Result<HttpConfig, ConfigError> {
        let d = HttpConfig::default();
        let secs = |v: &Option<Spanned<u64>>, key: &str, default: Duration| match v {
            Some(s) if *s.get_ref() == 0 => Err(self.invalid(key, s.span(), "must be at least 1")),
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(default),
        };
        let timeout = secs(&raw.timeout_secs, "http.timeout_secs", d.timeout)?;
        let connect_timeout = secs(
            &raw.connect_timeout_secs,
            "http.connect_timeout_secs",
            d.connect_timeout,
        )?;
        let backoff_max = secs(
            &raw.backoff_max_secs,
            "http.backoff_max_secs",
            d.backoff_max,
        )?;
        let max_body_bytes = match &raw.max_body_bytes {
            Some(s) if *s.get_ref() < 1024 => {
                return Err(self.invalid("http.max_body_bytes", s.span(), "must be at least 1024"));
            }
            Some(s) => *s.get_ref(),
            None => d.max_body_bytes,
        };
        let max_retries = match &raw.max_retries {
            Some(s) if *s.get_ref() > 20 => {
                return Err(self.invalid("http.max_retries", s.span(), "must be at most 20"));
            }
            Some(s) => *s.get_ref(),
            None => d.max_retries,
        };
        let backoff_initial = raw
            .backoff_initial_ms
            .as_ref()
            .map_or(d.backoff_initial, |s| Duration::from_millis(*s.get_ref()));
        Ok(HttpConfig {
            timeout,
            connect_timeout,
            max_retries,
            max_body_bytes,
            backoff_initial,
            backoff_max,
        })
    }

    /// Checks the keys every account has and assembles the account.
    fn account(
        &self,
        kind: ProviderKind,
        name: String,
        common: &raw::Common<'_>,
        settings: ProviderSettings,
    ) -> Result<AccountConfig, ConfigError> {
        let key = |k: &str| format!("{}.{k}", kind.as_str());
        Ok(AccountConfig {
            kind,
            base_url: self.url(
                &key("base_url"),
                common.base_url,
                kind.default_base_url(),
                common.allow_insecure_http,
            )?,
            schedule: self.schedule(&key("schedule"), common.schedule, kind)?,
            max_concurrency: self.concurrency(&key("max_concurrency"), common.max_concurrency)?,
            retention_days: self.retention(&key("retention_days"), common.retention_days, kind)?,
            name,
            settings,
        })
    }

    /// Resolves one secret (inline, `*_file`, `*_env` or systemd credential); says whether it was inline.
    #[allow(clippy::too_many_arguments)]
    fn secret(
        &self,
        kind: ProviderKind,
        name: &str,
        key: &'static str,
        inline: Option<&str>,
        file: Option<&Path>,
        env: Option<&str>,
        span: Range<usize>,
    ) -> Result<(Secret, bool), ConfigError> {
        let credential = format!("{}-{name}", kind.as_str());
        let (secret, origin) = SecretSources {
            key,
            inline,
            file,
            env,
            credential,
        }
        .resolve()
        .map_err(|reason| self.invalid(&format!("{}.{key}", kind.as_str()), span, &reason))?;
        Ok((secret, origin == SecretOrigin::Inline))
    }

    fn hydraproxy(
        &self,
        table: &Spanned<raw::RawHydraProxy>,
    ) -> Result<(AccountConfig, bool), ConfigError> {
        use crate::providers::hydraproxy::DEFAULT_RESELLER_BASE_URL;
        let (kind, raw) = (ProviderKind::HydraProxy, table.get_ref());
        let name = self.name(kind, &raw.name)?;
        let (token, inline) = self.secret(
            kind,
            &name,
            "token",
            raw.token.as_deref(),
            raw.token_file.as_deref(),
            raw.token_env.as_deref(),
            table.span(),
        )?;
        let reseller_base_url = self.url(
            "hydraproxy.reseller_base_url",
            raw.reseller_base_url.as_ref(),
            DEFAULT_RESELLER_BASE_URL,
            raw.allow_insecure_http,
        )?;
        let orders = raw
            .orders
            .iter()
            .map(|o| self.order_id(o))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = ProviderSettings::HydraProxy(HydraProxySettings {
            token,
            reseller_base_url,
            orders,
        });
        Ok((self.account(kind, name, &raw.common(), settings)?, inline))
    }

    fn infiniteproxies(
        &self,
        table: &Spanned<raw::RawInfiniteProxies>,
    ) -> Result<(AccountConfig, bool), ConfigError> {
        use crate::providers::infiniteproxies::{DEFAULT_AUTH_HEADER, DEFAULT_AUTH_PREFIX};
        let (kind, raw) = (ProviderKind::InfiniteProxies, table.get_ref());
        let name = self.name(kind, &raw.name)?;
        let (api_key, inline) = self.secret(
            kind,
            &name,
            "api_key",
            raw.api_key.as_deref(),
            raw.api_key_file.as_deref(),
            raw.api_key_env.as_deref(),
            table.span(),
        )?;
        let header = raw
            .auth_header
            .as_ref()
            .map_or(DEFAULT_AUTH_HEADER, |h| h.get_ref().as_str());
        let auth_header =
            reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                let span = raw.auth_header.as_ref().map_or(table.span(), Spanned::span);
                self.invalid(
                    "infiniteproxies.auth_header",
                    span,
                    "not a valid HTTP header name",
                )
            })?;
        let prefix = raw.auth_prefix.as_deref().unwrap_or(DEFAULT_AUTH_PREFIX);
        let mut auth_value =
            reqwest::header::HeaderValue::from_str(&format!("{prefix}{}", api_key.expose()))
                .map_err(|_| {
                    self.invalid(
                        "infiniteproxies.api_key",
                        table.span(),
                        "auth_prefix and api_key must be printable ASCII",
                    )
                })?;
        auth_value.set_sensitive(true);
        let customers = raw
            .customers
            .iter()
            .map(|c| match c.get_ref().trim() {
                "" => Err(self.invalid(
                    "infiniteproxies.customers",
                    c.span(),
                    "a username cannot be empty",
                )),
                u => Ok(u.to_lowercase()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let settings = ProviderSettings::InfiniteProxies(InfiniteProxiesSettings {
            auth_header,
            auth_value,
            customers,
        });
        Ok((self.account(kind, name, &raw.common(), settings)?, inline))
    }

    fn hostens(
        &self,
        table: &Spanned<raw::RawHostens>,
    ) -> Result<(AccountConfig, bool), ConfigError> {
        let (kind, raw) = (ProviderKind::Hostens, table.get_ref());
        let name = self.name(kind, &raw.name)?;
        let token_given = raw.refresh_token.is_some()
            || raw.refresh_token_file.is_some()
            || raw.refresh_token_env.is_some();
        let (auth, inline) = match &raw.username {
            Some(user) if token_given => {
                return Err(self.invalid(
                    "hostens.refresh_token",
                    user.span(),
                    "set either `username` and `password` (Basic auth) or `refresh_token` (token flow), not both",
                ));
            }
            Some(user) if user.get_ref().trim().is_empty() || user.get_ref().contains(':') => {
                return Err(self.invalid(
                    "hostens.username",
                    user.span(),
                    "must be the client-area email address (not empty, no ':')",
                ));
            }
            Some(user) => {
                let (password, inline) = self.secret(
                    kind,
                    &name,
                    "password",
                    raw.password.as_deref(),
                    raw.password_file.as_deref(),
                    raw.password_env.as_deref(),
                    table.span(),
                )?;
                let username = user.get_ref().trim().to_owned();
                (HostensAuth::Basic { username, password }, inline)
            }
            None if raw.password.is_some()
                || raw.password_file.is_some()
                || raw.password_env.is_some() =>
            {
                return Err(self.invalid(
                    "hostens.username",
                    table.span(),
                    "a `password` needs a `username` (the client-area email)",
                ));
            }
            None if !token_given && !secret::credential_exists(&format!("hostens-{name}")) => {
                return Err(self.invalid(
                    "hostens",
                    table.span(),
                    &format!(
                        "no credentials: set `username` and `password` (Basic auth) or `refresh_token` \
                         (token flow), or pass the refresh token as the systemd credential `hostens-{name}`"
                    ),
                ));
            }
            None => {
                let (seed, inline) = self.secret(
                    kind,
                    &name,
                    "refresh_token",
                    raw.refresh_token.as_deref(),
                    raw.refresh_token_file.as_deref(),
                    raw.refresh_token_env.as_deref(),
                    table.span(),
                )?;
                (HostensAuth::Token { seed }, inline)
            }
        };
        let mb_per_unit = match &raw.bandwidth_unit {
            None => 1.0,
            Some(u) => match u.get_ref().as_str() {
                "MB" => 1.0,
                "GB" => 1024.0,
                _ => {
                    return Err(self.invalid(
                        "hostens.bandwidth_unit",
                        u.span(),
                        "must be \"MB\" or \"GB\"",
                    ));
                }
            },
        };
        let settings = ProviderSettings::Hostens(HostensSettings { auth, mb_per_unit });
        Ok((self.account(kind, name, &raw.common(), settings)?, inline))
    }

    fn proxyshard(
        &self,
        table: &Spanned<raw::RawProxyShard>,
    ) -> Result<(AccountConfig, bool), ConfigError> {
        use crate::providers::proxyshard::DEFAULT_PROXY_TYPES;
        let (kind, raw) = (ProviderKind::ProxyShard, table.get_ref());
        let name = self.name(kind, &raw.name)?;
        let (token, inline) = self.secret(
            kind,
            &name,
            "token",
            raw.token.as_deref(),
            raw.token_file.as_deref(),
            raw.token_env.as_deref(),
            table.span(),
        )?;
        let proxy_types = match &raw.proxy_types {
            None => DEFAULT_PROXY_TYPES.map(str::to_owned).to_vec(),
            Some(types) => types
                .iter()
                .map(|t| self.proxy_type(t))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let currency = match &raw.currency {
            None => "USD".to_owned(),
            Some(c)
                if c.get_ref().len() == 3
                    && c.get_ref().chars().all(|ch| ch.is_ascii_uppercase()) =>
            {
                c.get_ref().clone()
            }
            Some(c) => {
                return Err(self.invalid(
                    "proxyshard.currency",
                    c.span(),
                    "a three-letter code such as \"USD\"",
                ));
            }
        };
        let settings = ProviderSettings::ProxyShard(ProxyShardSettings {
            token,
            proxy_types,
            currency,
        });
        Ok((self.account(kind, name, &raw.common(), settings)?, inline))
    }

    fn proxy_type(&self, value: &Spanned<String>) -> Result<String, ConfigError> {
        let v = value.get_ref();
        let ok = !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(v.clone())
        } else {
            Err(self.invalid(
                "proxyshard.proxy_types",
                value.span(),
                "each type is lowercase letters, digits, '_' or '-' (e.g. \"standart\")",
            ))
        }
    }

    fn name(&self, kind: ProviderKind, name: &Spanned<String>) -> Result<String, ConfigError> {
        let value = name.get_ref();
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if ok {
            Ok(value.clone())
        } else {
            Err(self.invalid(
                &format!("{}.name", kind.as_str()),
                name.span(),
                "must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
            ))
        }
    }

    fn url(
        &self,
        key: &str,
        value: Option<&Spanned<String>>,
        default: &str,
        allow_insecure: bool,
    ) -> Result<String, ConfigError> {
        let Some(value) = value else {
            return Ok(default.to_owned());
        };
        let text = value.get_ref().trim_end_matches('/');
        let url = reqwest::Url::parse(text)
            .map_err(|e| self.invalid(key, value.span(), &format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_insecure => {}
            "http" => {
                return Err(self.invalid(
                    key,
                    value.span(),
                    "must start with https:// (set allow_insecure_http = true on this account for tests)",
                ));
            }
            other => {
                return Err(self.invalid(
                    key,
                    value.span(),
                    &format!("unsupported scheme {other}"),
                ));
            }
        }
        if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(self.invalid(key, value.span(), "must not hold a query or credentials"));
        }
        Ok(text.to_owned())
    }

    fn schedule(
        &self,
        key: &str,
        value: Option<&Spanned<String>>,
        kind: ProviderKind,
    ) -> Result<Schedule, ConfigError> {
        match value {
            None => Schedule::parse(kind.default_schedule())
                .map_err(|reason| self.invalid(key, 0..0, &reason)),
            Some(s) => {
                Schedule::parse(s.get_ref()).map_err(|reason| self.invalid(key, s.span(), &reason))
            }
        }
    }

    fn concurrency(&self, key: &str, value: Option<&Spanned<i64>>) -> Result<usize, ConfigError> {
        match value {
            None => Ok(DEFAULT_MAX_CONCURRENCY),
            Some(s) => match usize::try_from(*s.get_ref()) {
                Ok(n @ 1..=256) => Ok(n),
                _ => Err(self.invalid(key, s.span(), "must be between 1 and 256")),
            },
        }
    }

    fn retention(
        &self,
        key: &str,
        value: Option<&Spanned<i64>>,
        kind: ProviderKind,
    ) -> Result<u32, ConfigError> {
        match value {
            None => Ok(kind.default_retention_days()),
            Some(s) => match u32::try_from(*s.get_ref()) {
                Ok(n @ 1..=36600) => Ok(n),
                _ => Err(self.invalid(key, s.span(), "must be between 1 and 36600 days")),
            },
        }
    }

    fn order_id(&self, value: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
        let id = match value.get_ref() {
            toml::Value::Integer(n) => u64::try_from(*n).ok(),
            toml::Value::String(s) => crate::providers::hydraproxy::parse_order_id(s),
            _ => None,
        };
        id.filter(|n| *n > 0).ok_or_else(|| {
            self.invalid(
                "hydraproxy.orders",
                value.span(),
                "each order id must be a positive integer or a string of digits",
            )
        })
    }

    fn check_unique(
        &self,
        accounts: &[AccountConfig],
        new: &AccountConfig,
        span: Range<usize>,
    ) -> Result<(), ConfigError> {
        if accounts
            .iter()
            .any(|a| a.kind == new.kind && a.name == new.name)
        {
            return Err(self.invalid(
                &format!("{}.name", new.kind.as_str()),
                span,
                &format!(
                    "account name {:?} is used twice for {}",
                    new.name,
                    new.kind.as_str()
                ),
            ));
        }
        Ok(())
    }

    fn invalid(&self, key: &str, span: Range<usize>, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            line: line_of(self.text, span.start),
            reason: reason.to_owned(),
        }
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}
