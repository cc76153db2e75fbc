//! Secrets: a redacted type, and where a secret comes from.
//!
//! A secret can be written inline in `daemon.toml`, read from a `*_file`,
//! taken from a `*_env` variable, or found as a systemd credential
//! (`$CREDENTIALS_DIRECTORY/<provider>-<account>`). Whatever the source, the
//! value only ever lives in a [`Secret`], whose `Debug` prints `[redacted]`
//! and which has no `Display`.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// A credential. Never formatted; [`Secret::expose`] is the only way to the text.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value. Surrounding whitespace (a trailing newline in a file) is dropped.
    pub fn new(value: &str) -> Self {
        Self(SecretString::from(value.trim().to_owned()))
    }

    /// The secret text, for building a request header and nothing else.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The places one secret may be given, as written in the config.
#[derive(Debug, Default)]
pub(crate) struct SecretSources<'a> {
    /// The key name, e.g. `token`.
    pub key: &'static str,
    /// `key = "…"`.
    pub inline: Option<&'a str>,
    /// `key_file = "/path"`.
    pub file: Option<&'a Path>,
    /// `key_env = "VAR"`.
    pub env: Option<&'a str>,
}

/// Where a resolved secret came from; used for the permission warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretOrigin {
    Inline,
    File,
    Env,
    Credential,
}

impl SecretSources<'_> {
    /// Resolves the secret, or says what is missing or unreadable.
    ///
    /// The error text names keys, paths and variable names, never values.
    /// With none of the three given, the systemd credential `credential` is read.
    pub(crate) fn resolve(&self, credential: &str) -> Result<(Secret, SecretOrigin), String> {
        let given = [
            self.inline.is_some(),
            self.file.is_some(),
            self.env.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(format!(
                "set only one of `{0}`, `{0}_file` and `{0}_env`",
                self.key
            ));
        }
        if let Some(value) = self.inline {
            return non_empty(Secret::new(value), self.key).map(|s| (s, SecretOrigin::Inline));
        }
        if let Some(path) = self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{}_file` {}: {e}", self.key, path.display()))?;
            return non_empty(Secret::new(&text), self.key).map(|s| (s, SecretOrigin::File));
        }
        if let Some(var) = self.env {
            let text = std::env::var(var).map_err(|_| {
                format!(
                    "environment variable {var} (from `{}_env`) is not set",
                    self.key
                )
            })?;
            return non_empty(Secret::new(&text), self.key).map(|s| (s, SecretOrigin::Env));
        }
        self.resolve_credential(credential)
    }

    /// Whether any of `key`, `key_file` and `key_env` is set.
    pub(crate) fn given(&self) -> bool {
        self.inline.is_some() || self.file.is_some() || self.env.is_some()
    }

    fn resolve_credential(&self, credential: &str) -> Result<(Secret, SecretOrigin), String> {
        let missing = || {
            format!(
                "no `{0}`: set `{0}`, `{0}_file` or `{0}_env`, or pass the systemd credential `{credential}`",
                self.key
            )
        };
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(missing)?;
        let path = PathBuf::from(dir).join(credential);
        if !path.exists() {
            return Err(missing());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read credential {}: {e}", path.display()))?;
        non_empty(Secret::new(&text), self.key).map(|s| (s, SecretOrigin::Credential))
    }
}

/// Whether `$CREDENTIALS_DIRECTORY/<credential>` exists.
pub(crate) fn credential_exists(credential: &str) -> bool {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .is_some_and(|dir| PathBuf::from(dir).join(credential).exists())
}

fn non_empty(secret: Secret, key: &str) -> Result<Secret, String> {
    if secret.expose().is_empty() {
        Err(format!("`{key}` is empty"))
    } else {
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn two_sources_are_refused() {
        let sources = SecretSources {
            key: "token",
            inline: Some("a"),
            env: Some("VAR"),
            ..SecretSources::default()
        };
        let err = sources.resolve("hydraproxy-main").unwrap_err();
        assert!(err.contains("only one of `token`"), "{err}");
    }
}
