//! The validated configuration, and how `daemon.toml` is found and checked.
//!
//! `raw` mirrors the file; [`Config`] is what the rest of the program uses and
//! cannot hold an invalid value: URLs are checked for `https://`, schedules
//! are parsed, secrets are resolved. Errors name the key and its line.
//!
//! This is the bottom layer beside [`crate::model`]: it imports no provider.
//! Each provider's table, settings, checks and defaults live in
//! `config/<provider>.rs` (`AccountTable`); `validate.rs` holds the checks
//! they share.

pub mod hostens;
pub mod hydraproxy;
pub mod infiniteproxies;
pub mod proxyshard;
mod raw;
mod schedule;
mod secret;
mod validate;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use hostens::{HostensAuth, HostensSettings};
pub use hydraproxy::HydraProxySettings;
pub use infiniteproxies::InfiniteProxiesSettings;
pub use proxyshard::ProxyShardSettings;
pub use schedule::{FUTURE_SKEW, Schedule, is_in_future};
pub use secret::Secret;
use validate::Validator;

use crate::model::ProviderKind;

/// Where the config is looked for when neither `--config` nor `$USAGE_ARCHIVER_CONFIG` is given.
pub const DEFAULT_PATHS: [&str; 2] = ["daemon.toml", "/etc/usage-archiver/daemon.toml"];
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
/// Default per-account ceiling on the subjects a listing may name, 50,000: a book far
/// larger than any seen, and a run that still fits in memory.
pub const DEFAULT_MAX_SUBJECTS: usize = 50_000;
/// The day ceiling of proxy providers, 1 TB (1,000,000 MB) per subject: residential
/// traffic sold by the GB never comes near it.
pub const PROXY_MAX_DAY_MB: f64 = 1_000_000.0;

/// The whole file as written (each provider's table is in its own file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub archive: raw::RawArchive,
    #[serde(default)]
    pub http: raw::RawHttp,
    #[serde(default)]
    pub hydraproxy: Vec<Spanned<hydraproxy::RawHydraProxy>>,
    #[serde(default)]
    pub infiniteproxies: Vec<Spanned<infiniteproxies::RawInfiniteProxies>>,
    #[serde(default)]
    pub hostens: Vec<Spanned<hostens::RawHostens>>,
    #[serde(default)]
    pub proxyshard: Vec<Spanned<proxyshard::RawProxyShard>>,
}

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
    /// A final day above this many MB for one subject is implausible: kept as given,
    /// flagged, and reported by `status`.
    pub max_day_mb: f64,
    /// The most subjects a listing may name; more fail the listing.
    pub max_subjects: usize,
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

impl AccountConfig {
    /// Whether the account's credentials rotate, so that its runs need a place to keep them.
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

/// What an account of a provider gets when its table does not say, and what the provider keeps.
#[derive(Debug, Clone, Copy)]
pub struct ProviderProfile {
    /// The documented API base URL.
    pub base_url: &'static str,
    /// The schedule used when an account sets none.
    pub schedule: &'static str,
    /// How many past days the provider is assumed to keep, unless an account overrides it.
    pub retention_days: u32,
    /// Whether the provider answers with daily history (else days are derived from
    /// counter snapshots, and only the present can be fetched).
    pub daily_history: bool,
    /// The day ceiling per subject when an account sets no `max_day_mb`.
    pub max_day_mb: f64,
}

/// The defaults and facts of `kind` (one line per provider).
pub fn profile(kind: ProviderKind) -> &'static ProviderProfile {
    match kind {
        ProviderKind::HydraProxy => &hydraproxy::PROFILE,
        ProviderKind::InfiniteProxies => &infiniteproxies::PROFILE,
        ProviderKind::Hostens => &hostens::PROFILE,
        ProviderKind::ProxyShard => &proxyshard::PROFILE,
    }
}

/// The account tables a config may hold, for messages: `[[hydraproxy]], … or [[proxyshard]]`.
pub fn account_tables() -> String {
    let tables: Vec<String> = ProviderKind::ALL
        .iter()
        .map(|k| format!("[[{}]]", k.as_str()))
        .collect();
    match tables.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The secret keys of every account table, as `(provider, key)`; each also has
/// `key_file` and `key_env` forms.
pub fn secret_keys() -> Vec<(ProviderKind, &'static str)> {
    let of = |kind, keys: &'static [&'static str]| keys.iter().map(move |k| (kind, *k));
    of(
        ProviderKind::HydraProxy,
        hydraproxy::RawHydraProxy::SECRET_KEYS,
    )
    .chain(of(
        ProviderKind::InfiniteProxies,
        infiniteproxies::RawInfiniteProxies::SECRET_KEYS,
    ))
    .chain(of(ProviderKind::Hostens, hostens::RawHostens::SECRET_KEYS))
    .chain(of(
        ProviderKind::ProxyShard,
        proxyshard::RawProxyShard::SECRET_KEYS,
    ))
    .collect()
}

/// One provider's account table: its raw form and what it checks beyond the common keys.
pub(crate) trait AccountTable: raw::CommonKeys {
    /// The provider.
    const KIND: ProviderKind;
    /// The table's secret keys (each also has `_file` and `_env` forms).
    const SECRET_KEYS: &'static [&'static str];
    /// Checks the provider's own keys (`span` is the table's); returns its settings and
    /// whether a secret is written inline.
    fn settings(
        &self,
        v: &Validator<'_>,
        span: Range<usize>,
    ) -> Result<(ProviderSettings, bool), ConfigError>;
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
    /// TOML syntax, an unknown key, or a value of the wrong type. The message names the
    /// key, line and column, never the value (it may be a secret).
    #[error("{}:{line}:{column}: {}{message}", .path.display(), .key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The key whose value is wrong, as `table.key`, when the error is in a value.
        key: Option<String>,
        /// What is wrong, with any value the parser quoted replaced by `…`.
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
    config
        .warnings
        .extend(permission_warnings(path, has_inline_secret));
    let dirs = [
        crate::files::loose_dir_warning(path, "the config"),
        crate::files::loose_dir_warning(&config.archive.database, "the archive"),
    ];
    config.warnings.extend(dirs.into_iter().flatten());
    Ok(config)
}

/// Validates config text. `path` names the file in messages, and relative paths in it
/// (`database`, `metrics_textfile`, `*_file`) are taken from its directory.
pub fn parse(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| validate::syntax_error(text, path, &e))?;
    let validator = Validator::new(text, path);
    let mut parsed = validator.config(raw)?;
    parsed.config.warnings = validator.into_warnings();
    Ok(parsed)
}

/// A validated config plus facts about how it was written.
#[derive(Debug)]
pub struct Parsed {
    /// The config.
    pub config: Config,
    /// Whether a secret is written inline in the file.
    pub has_inline_secret: bool,
}

/// What is unsafe about the permissions of `path`, a file of the config: readable by
/// every user while it holds a secret, or writable by its group or others (whoever can
/// write it can send the credentials elsewhere).
pub(crate) fn permission_warnings(path: &Path, holds_secret: bool) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(mode) = std::fs::metadata(path).map(|m| m.permissions().mode()) else {
        return Vec::new();
    };
    let shown = path.display();
    let mut warnings = Vec::new();
    if holds_secret && mode & 0o004 != 0 {
        warnings.push(format!(
            "{shown} holds a secret and is readable by every user on this machine; run: chmod o-r {shown}"
        ));
    }
    if mode & 0o022 != 0 {
        warnings.push(format!(
            "{shown} is writable by its group or others, who could send the credentials elsewhere; run: chmod go-w {shown}"
        ));
    }
    warnings
}

impl Validator<'_> {
    fn config(&self, raw: RawConfig) -> Result<Parsed, ConfigError> {
        let archive = ArchiveConfig {
            database: raw
                .archive
                .database
                .map_or_else(|| PathBuf::from(DEFAULT_DATABASE), |p| self.relative(&p)),
            keep_raw: raw.archive.keep_raw.unwrap_or_default(),
            metrics_textfile: raw.archive.metrics_textfile.map(|p| self.relative(&p)),
        };
        let http = self.http(&raw.http)?;
        let mut accounts = Vec::new();
        let mut has_inline_secret = false;
        // One line per provider: its tables, in file order within the provider.
        let tables = self
            .tables(&raw.hydraproxy)
            .chain(self.tables(&raw.infiniteproxies))
            .chain(self.tables(&raw.hostens))
            .chain(self.tables(&raw.proxyshard));
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

    /// Each table of one provider, checked: its span, and the account with whether a secret is inline.
    fn tables<'t, T: AccountTable>(
        &'t self,
        tables: &'t [Spanned<T>],
    ) -> impl Iterator<Item = (Range<usize>, Result<(AccountConfig, bool), ConfigError>)> + 't {
        tables.iter().map(|table| {
            let (raw, span) = (table.get_ref(), table.span());
            let common = raw.common();
            // The name first: the secret's systemd credential is named after it.
            let checked = self.name(T::KIND, common.name).and_then(|_| {
                let (settings, inline) = raw.settings(self, span.clone())?;
                Ok((self.account(T::KIND, &common, settings)?, inline))
            });
            (span, checked)
        })
    }
}
