//! Serde mirror of `daemon.toml`, exactly as written.
//!
//! Every table denies unknown keys, and values that are validated later are
//! [`Spanned`] so that errors can name their line. Nothing here is checked
//! beyond its TOML type; `config::load` turns this into a [`super::Config`].
//! Each provider's own table lives in its `config/<provider>.rs`, and the
//! file as a whole (`RawConfig`) in `config/mod.rs`; this file holds the
//! tables every config has and the keys every account shares.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

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

/// The keys every account table has, borrowed from whichever table holds them.
///
/// serde cannot `flatten` a shared struct into a table that denies unknown
/// keys, so each table lists these fields itself and lends them out here
/// (both written once, by `account_table!`).
pub(crate) struct Common<'a> {
    pub name: &'a Spanned<String>,
    pub base_url: Option<&'a Spanned<String>>,
    pub allow_insecure_http: bool,
    pub schedule: Option<&'a Spanned<String>>,
    pub max_concurrency: Option<&'a Spanned<i64>>,
    pub retention_days: Option<&'a Spanned<i64>>,
    pub max_day_mb: Option<&'a Spanned<f64>>,
    pub max_subjects: Option<&'a Spanned<i64>>,
}

/// A table that lends out the keys every account has.
pub(crate) trait CommonKeys {
    /// The common keys.
    fn common(&self) -> Common<'_>;
}

/// Declares a provider's raw account table: the keys every account has (see
/// [`Common`]), then the provider's own, denying unknown keys; and lends the
/// common ones out through [`CommonKeys`]. The common keys are written here only.
macro_rules! account_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            pub name: toml::Spanned<String>,
            pub base_url: Option<toml::Spanned<String>>,
            #[serde(default)]
            pub allow_insecure_http: bool,
            pub schedule: Option<toml::Spanned<String>>,
            pub max_concurrency: Option<toml::Spanned<i64>>,
            pub retention_days: Option<toml::Spanned<i64>>,
            pub max_day_mb: Option<toml::Spanned<f64>>,
            pub max_subjects: Option<toml::Spanned<i64>>,
            $($(#[$fmeta])* $fvis $field: $ty,)*
        }

        impl $crate::config::raw::CommonKeys for $name {
            fn common(&self) -> $crate::config::raw::Common<'_> {
                $crate::config::raw::Common {
                    name: &self.name,
                    base_url: self.base_url.as_ref(),
                    allow_insecure_http: self.allow_insecure_http,
                    schedule: self.schedule.as_ref(),
                    max_concurrency: self.max_concurrency.as_ref(),
                    retention_days: self.retention_days.as_ref(),
                    max_day_mb: self.max_day_mb.as_ref(),
                    max_subjects: self.max_subjects.as_ref(),
                }
            }
        }
    };
}
pub(crate) use account_table;

/// The three ways a secret key may be written in a raw table (`key`, `key_file`,
/// `key_env`), as [`SecretSources`](super::secret::SecretSources).
macro_rules! secret_sources {
    ($raw:expr, $key:ident, $file:ident, $env:ident) => {
        $crate::config::secret::SecretSources {
            key: stringify!($key),
            inline: $raw.$key.as_deref(),
            file: $raw.$file.as_deref(),
            env: $raw.$env.as_deref(),
        }
    };
}
pub(crate) use secret_sources;
