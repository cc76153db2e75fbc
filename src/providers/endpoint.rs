//! What every provider does around its requests: URLs built from path segments,
//! transport failures turned into provider errors, and bodies kept raw without
//! their secrets.
//!
//! Each provider declares one `const API: Api` with its conventions (which
//! body keys name a secret, where an error body keeps its message), usable by
//! its requests and its pure `parse_*` functions alike. Parsing stays in the
//! provider; nothing here knows a wire format.

use crate::error::{HttpError, ProviderError};
use crate::http::Response;
use crate::model::RawResponse;

/// How long a provider's own error message may be when quoted.
pub(crate) const MAX_MESSAGE_CHARS: usize = 200;

/// One provider API's conventions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Api {
    /// Body keys never kept, beside every key naming a secret (see [`crate::redact`]).
    pub secret_fields: &'static [&'static str],
    /// The provider's own error message in a body, if it holds one.
    pub error_message: fn(&[u8]) -> Option<String>,
}

impl Api {
    /// `base` with `segments` appended, each escaped: a subject id can never
    /// change the path, add a query or reach another host. `.` and `..`, which a
    /// URL drops or climbs with, are refused.
    pub(crate) fn url(
        &self,
        base: &str,
        endpoint: &str,
        segments: &[&str],
    ) -> Result<reqwest::Url, ProviderError> {
        let invalid = |message: String| ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message,
        };
        if let Some(dots) = segments.iter().find(|s| matches!(**s, "." | "..")) {
            return Err(invalid(format!("{dots:?} cannot be a path segment")));
        }
        let mut url = reqwest::Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| invalid("base_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A failure after retries: 401/403 as rejected credentials (with the provider's
    /// message and `hint`), anything else as an HTTP error of `endpoint`.
    pub(crate) fn http_error(
        &self,
        endpoint: &str,
        err: HttpError,
        hint: &'static str,
    ) -> ProviderError {
        match err {
            HttpError::Rejected { status, body } => ProviderError::Rejected {
                endpoint: endpoint.to_owned(),
                message: (self.error_message)(&body).unwrap_or_else(|| format!("HTTP {status}")),
                hint,
            },
            source => ProviderError::Http {
                endpoint: endpoint.to_owned(),
                source,
            },
        }
    }

    /// The provider's message in `resp`, else its HTTP status.
    pub(crate) fn message(&self, resp: &Response) -> String {
        (self.error_message)(&resp.body).unwrap_or_else(|| format!("HTTP {}", resp.status.as_u16()))
    }

    /// `resp` if it is an answer: 404 is [`ProviderError::NotFound`]; another non-2xx
    /// status, or a JSON body that `failed` says reports a failure, is
    /// [`ProviderError::Api`] with the provider's message.
    pub(crate) fn checked(
        &self,
        endpoint: &str,
        resp: Response,
        failed: fn(&serde_json::Value) -> bool,
    ) -> Result<Response, ProviderError> {
        let endpoint = endpoint.to_owned();
        if resp.status.as_u16() == 404 {
            let message = self.message(&resp);
            return Err(ProviderError::NotFound { endpoint, message });
        }
        let says_failed = super::json::decode::<serde_json::Value>(&resp.body)
            .ok()
            .is_some_and(|v| failed(&v));
        if !resp.status.is_success() || says_failed {
            let message = self.message(&resp);
            return Err(ProviderError::Api { endpoint, message });
        }
        Ok(resp)
    }

    /// The response, to be kept with its secrets removed (`redact::redact_body` with
    /// this API's secret fields) by whatever keeps it.
    pub(crate) fn raw(&self, endpoint: &str, resp: &Response) -> RawResponse {
        RawResponse {
            endpoint: endpoint.to_owned(),
            status: resp.status.as_u16(),
            body: resp.body.clone(),
            secret_keys: self.secret_fields,
        }
    }

    /// A body that is not what the document describes; it is kept raw (secrets removed).
    pub(crate) fn malformed(
        &self,
        endpoint: &str,
        reason: String,
        resp: &Response,
    ) -> ProviderError {
        ProviderError::Malformed {
            endpoint: endpoint.to_owned(),
            reason,
            raw: Box::new(self.raw(endpoint, resp)),
        }
    }
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn shorten(text: &str) -> String {
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}
