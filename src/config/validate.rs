//! The checks every account table shares: names, URLs, schedules, limits, secrets.
//!
//! A [`Validator`] knows the file's text and path, so every error it makes
//! names the key and the line of the offending value. Provider tables
//! (`config/<provider>.rs`) call these checks for their own keys; nothing
//! here knows a provider beyond its [`ProviderKind`].

use std::cell::RefCell;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::Common;
use super::secret::{SecretOrigin, SecretSources};
use super::{
    AccountConfig, ConfigError, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_SUBJECTS, HttpConfig,
    ProviderSettings, Schedule, Secret, profile,
};
use crate::model::ProviderKind;

/// Turns raw values into checked ones, naming key and line on failure, and gathers
/// what is worth telling the operator without stopping.
pub(crate) struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    warnings: RefCell<Vec<String>>,
}

impl<'a> Validator<'a> {
    /// A validator of `text`, the content of `path`.
    pub(super) fn new(text: &'a str, path: &'a Path) -> Self {
        Self {
            text,
            path,
            warnings: RefCell::default(),
        }
    }

    /// The warnings gathered.
    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner()
    }
}

impl Validator<'_> {
    fn warn(&self, warning: String) {
        self.warnings.borrow_mut().push(warning);
    }

    /// `path` as written, or, when relative, taken from the config file's directory
    /// (the working directory of a service is `/`, not where its config lives).
    pub(crate) fn relative(&self, path: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if path.is_relative() && !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// Checks the keys every account has and assembles the account.
    pub(super) fn account(
        &self,
        kind: ProviderKind,
        common: &Common<'_>,
        settings: ProviderSettings,
    ) -> Result<AccountConfig, ConfigError> {
        let key = |k: &str| format!("{}.{k}", kind.as_str());
        let defaults = profile(kind);
        Ok(AccountConfig {
            kind,
            name: self.name(kind, common.name)?,
            base_url: self.url(
                &key("base_url"),
                common.base_url,
                defaults.base_url,
                common.allow_insecure_http,
            )?,
            schedule: self.schedule(&key("schedule"), common.schedule, defaults.schedule)?,
            max_concurrency: self.concurrency(&key("max_concurrency"), common.max_concurrency)?,
            retention_days: self.retention(
                &key("retention_days"),
                common.retention_days,
                defaults.retention_days,
            )?,
            max_day_mb: self.max_day_mb(
                &key("max_day_mb"),
                common.max_day_mb,
                defaults.max_day_mb,
            )?,
            max_subjects: self.max_subjects(&key("max_subjects"), common.max_subjects)?,
            settings,
        })
    }

    /// Resolves one secret (inline, `*_file`, `*_env` or systemd credential); says whether it was inline.
    pub(crate) fn secret(
        &self,
        kind: ProviderKind,
        account: &str,
        sources: SecretSources<'_>,
        span: Range<usize>,
    ) -> Result<(Secret, bool), ConfigError> {
        let key = format!("{}.{}", kind.as_str(), sources.key);
        let file = sources.file.map(|f| self.relative(f));
        let sources = SecretSources {
            file: file.as_deref(),
            ..sources
        };
        let (secret, origin) = sources
            .resolve(&credential_name(kind, account))
            .map_err(|reason| self.invalid(&key, span, &reason))?;
        if let (SecretOrigin::File, Some(file)) = (origin, &file) {
            super::permission_warnings(file, true)
                .into_iter()
                .chain(crate::files::loose_dir_warning(file, "the secret file"))
                .for_each(|w| self.warn(format!("`{key}_file`: {w}")));
        }
        Ok((secret, origin == SecretOrigin::Inline))
    }

    /// The account label, checked but not yet known to be unique.
    pub(crate) fn name(
        &self,
        kind: ProviderKind,
        name: &Spanned<String>,
    ) -> Result<String, ConfigError> {
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

    /// An `https://` URL without query or credentials (`http://` only with `allow_insecure`).
    pub(crate) fn url(
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
            "http" if allow_insecure => {
                if !is_loopback(&url) {
                    self.warn(format!(
                        "`{key}` sends credentials over plain http to {} (allow_insecure_http is meant for tests on this machine)",
                        url.host_str().unwrap_or_default()
                    ));
                }
            }
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
        default: &str,
    ) -> Result<Schedule, ConfigError> {
        match value {
            None => Schedule::parse(default).map_err(|reason| self.invalid(key, 0..0, &reason)),
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
        default: u32,
    ) -> Result<u32, ConfigError> {
        match value {
            None => Ok(default),
            Some(s) => match u32::try_from(*s.get_ref()) {
                Ok(n @ 1..=36600) => Ok(n),
                _ => Err(self.invalid(key, s.span(), "must be between 1 and 36600 days")),
            },
        }
    }

    fn max_day_mb(
        &self,
        key: &str,
        value: Option<&Spanned<f64>>,
        default: f64,
    ) -> Result<f64, ConfigError> {
        match value {
            None => Ok(default),
            Some(s) if s.get_ref().is_finite() && *s.get_ref() > 0.0 => Ok(*s.get_ref()),
            Some(s) => Err(self.invalid(key, s.span(), "must be a number of MB above 0")),
        }
    }

    fn max_subjects(&self, key: &str, value: Option<&Spanned<i64>>) -> Result<usize, ConfigError> {
        match value {
            None => Ok(DEFAULT_MAX_SUBJECTS),
            Some(s) => match usize::try_from(*s.get_ref()) {
                Ok(n @ 1..=10_000_000) => Ok(n),
                _ => Err(self.invalid(key, s.span(), "must be between 1 and 10000000")),
            },
        }
    }

    /// `[http]`, with the defaults for keys not given.
    pub(super) fn http(&self, raw: &super::raw::RawHttp) -> Result<HttpConfig, ConfigError> {
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

    /// Refuses a second account of the same provider with the same name.
    pub(super) fn check_unique(
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

    /// An error for `key`, naming the line of `span`.
    pub(crate) fn invalid(&self, key: &str, span: Range<usize>, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            line: line_of(self.text, span.start),
            reason: reason.to_owned(),
        }
    }
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The systemd credential that holds an account's secret: `<provider>-<account>`.
pub(crate) fn credential_name(kind: ProviderKind, account: &str) -> String {
    format!("{}-{account}", kind.as_str())
}

/// A TOML error as the operator sees it: key, line and column, and toml's message with
/// every value it quotes replaced by `…`. toml's own `Display` prints the offending source
/// line and serde's messages quote the value, either of which may be a secret.
pub(super) fn syntax_error(text: &str, path: &Path, err: &toml::de::Error) -> ConfigError {
    let offset = err.span().map_or(0, |s| s.start).min(text.len());
    let line = line_of(text, offset);
    let line_start = text
        .get(..offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let column = text
        .get(line_start..offset)
        .map_or(0, |t| t.chars().count())
        + 1;
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: key_at(text, offset),
        message: hide_values(err.message().trim_end()),
    }
}

/// The `table.key` whose value holds `offset`: the key before the `=` of the nearest line
/// at or above it that assigns one, under the nearest table header above that.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let current = text
        .get(offset..)
        .and_then(|t| t.split('\n').next())
        .unwrap_or("");
    let mut lines = before.split('\n').rev();
    let first = lines.next().unwrap_or("").to_owned() + current;
    let assignment = std::iter::once(first.as_str())
        .chain(lines.clone())
        .find_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| is_bare_key(k))?;
    let table = lines
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("[[")
                .and_then(|t| t.strip_suffix("]]"))
                .or_else(|| l.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        })
        .map(str::trim)
        .filter(|t| is_bare_key(t));
    Some(match table {
        Some(table) => format!("{table}.{assignment}"),
        None => assignment.to_owned(),
    })
}

/// Letters, digits, `_`, `-` and dots: a key as daemon.toml writes them.
fn is_bare_key(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// `message` with every `"…"` and, in messages about a value, every `` `…` `` replaced by
/// `…`: field names stay (`unknown field `tokn``), values go (`integer `12345678``).
fn hide_values(message: &str) -> String {
    let about_value = ["invalid type", "invalid value", "invalid length"]
        .iter()
        .any(|p| message.starts_with(p));
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let inside = &rest[start + 1..];
        let end = closing(inside, quote);
        let quoted = &inside[..end.unwrap_or(inside.len())];
        if quote == '"' || about_value {
            out.push('…');
        } else {
            out.push_str(quoted);
        }
        match end {
            Some(end) => {
                out.push(quote);
                rest = &inside[end + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Where `quote` closes `text` (a `\` escapes the next character inside `"…"`).
fn closing(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// 1-based line number of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}
