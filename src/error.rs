//! Typed errors shared by the HTTP client, the providers and the sync layer.
//!
//! Messages are lowercase, carry no trailing period, and never contain a
//! secret, a header or a query string: reqwest errors are stripped of their
//! URL before they are wrapped. Do not match on message text; match on the
//! variants.

use std::time::Duration;

/// The most bytes of an error text a log line or the archive keeps (`sync_run.error`,
/// `sync_error`); a provider's whole answer is kept raw instead, per `keep_raw`.
pub const MAX_ERROR_BYTES: usize = 1024;

/// An error and its sources, joined with ": ".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `text` cut to [`MAX_ERROR_BYTES`] on a character boundary, saying how much was cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text.to_owned();
    }
    let mut cut = MAX_ERROR_BYTES - 40;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &text[..cut], text.len() - cut)
}

/// What went wrong talking HTTP to a provider, after retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// 401 or 403: the provider refused the credentials. Never retried.
    #[error("credentials rejected (HTTP {status})")]
    Rejected {
        /// The status code, 401 or 403.
        status: u16,
        /// The response body, for providers that explain the refusal in it.
        body: Vec<u8>,
    },
    /// 429 on every attempt.
    #[error("rate limited (HTTP 429) on every attempt{}", retry_after_note(*.retry_after))]
    RateLimited {
        /// The last `Retry-After` the provider sent, if any.
        retry_after: Option<Duration>,
    },
    /// A 5xx or 408 status on every attempt.
    #[error("server error (HTTP {status}) on every attempt")]
    Server {
        /// The last status code seen.
        status: u16,
    },
    /// The request or the body did not complete within the configured timeout.
    #[error("timed out")]
    Timeout,
    /// The connection could not be established or broke off.
    #[error("connection failed")]
    Connect(#[source] reqwest::Error),
    /// The body was larger than `max_body_bytes`.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured cap.
        limit: u64,
    },
    /// The body broke off or another transient transport failure.
    #[error("request failed")]
    Transport(#[source] reqwest::Error),
    /// The provider redirected to another origin (another host, port or scheme), which is
    /// never followed: credentials go only where they were configured to. Never retried.
    #[error("redirected to {target}, another origin: not followed, no credential was sent there")]
    Redirected {
        /// The origin the redirect pointed to (`https://host:port`), without path or query.
        target: String,
    },
    /// The same request already failed after all its retries earlier in this run, so it
    /// was not sent again.
    #[error("not sent again: it failed earlier in this run ({error})")]
    GaveUpEarlier {
        /// How it failed then.
        error: String,
    },
    /// The request could not be built or followed (bad URL, redirect loop). Never retried.
    #[error("invalid request")]
    Invalid(#[source] reqwest::Error),
}

fn retry_after_note(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| {
        format!(" (last Retry-After {}s)", d.as_secs())
    })
}

impl HttpError {
    /// Whether another attempt may succeed (429, 5xx, 408, timeouts, connection errors).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout
                | Self::Connect(_)
                | Self::Transport(_)
        )
    }

    /// Classifies a reqwest error, dropping the URL so no query string leaks.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(err)
        } else if err.is_builder() || err.is_redirect() {
            Self::Invalid(err)
        } else {
            Self::Transport(err)
        }
    }
}

/// Why a token vault could not load or keep a token chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// There is nowhere to keep a rotated token (no vault was opened for the account).
    #[error("no place is open to keep the rotated token in")]
    Unavailable,
    /// The place that keeps the tokens failed; the text never holds a token.
    #[error("{0}")]
    Storage(String),
}

/// What went wrong fetching or understanding one provider endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The HTTP exchange failed.
    #[error("{endpoint}: {source}")]
    Http {
        /// The endpoint, without host or query.
        endpoint: String,
        /// The transport failure.
        #[source]
        source: HttpError,
    },
    /// The provider refused the credentials (HTTP 401/403 or an error body that says so).
    #[error("{endpoint}: credentials rejected: {message}{hint}")]
    Rejected {
        /// The endpoint, without host or query.
        endpoint: String,
        /// The provider's own words, or the status code.
        message: String,
        /// A provider-specific hint, starting with "; " or empty.
        hint: &'static str,
    },
    /// The provider answered with an error body (e.g. `"status": "ERROR"`), whatever the HTTP status.
    #[error("{endpoint}: provider error: {message}")]
    Api {
        /// The endpoint, without host or query.
        endpoint: String,
        /// The provider's message.
        message: String,
    },
    /// The subject does not exist (any more) at the provider.
    #[error("{endpoint}: not found: {message}")]
    NotFound {
        /// The endpoint, without host or query.
        endpoint: String,
        /// The provider's message.
        message: String,
    },
    /// A rotated credential could not be stored, so it is not used yet.
    #[error("cannot keep the rotated refresh token: {source}")]
    TokenStore {
        /// Why the vault refused it.
        #[source]
        source: VaultError,
    },
    /// `POST /token` was sent but its answer never arrived: the provider may have spent
    /// the refresh token already, and the new one is lost.
    #[error(
        "token: the answer to the refresh was lost in transit ({source}); the provider may have \
         spent the refresh token already: if the next run reports it refused, put a new \
         `refresh_token` in daemon.toml"
    )]
    TokenLost {
        /// How the exchange broke off.
        #[source]
        source: HttpError,
    },
    /// The body is not what the documentation describes.
    #[error("{endpoint}: malformed response: {reason}")]
    Malformed {
        /// The endpoint, without host or query.
        endpoint: String,
        /// What was wrong, naming the field where possible.
        reason: String,
        /// The offending body with its status, kept raw when `keep_raw` allows.
        raw: Box<crate::model::RawResponse>,
    },
}

impl ProviderError {
    /// Whether the credentials were refused, which makes further requests of the account pointless.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// The raw response that caused the error, where one was received.
    pub fn raw(&self) -> Option<&crate::model::RawResponse> {
        match self {
            Self::Malformed { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See: issue 15.5 (error texts in logs and the archive are capped)
    #[test]
    fn error_texts_are_capped_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let exact = "x".repeat(MAX_ERROR_BYTES);
        assert_eq!(bounded(&exact), exact);
        let long = "é".repeat(3000);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_ERROR_BYTES, "{} bytes", cut.len());
        assert!(cut.ends_with("more bytes)"), "{cut}");
        assert!(cut.starts_with("éé"));
    }
}
