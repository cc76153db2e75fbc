//! The HTTP client every provider shares: timeouts, a body cap, retries and politeness.
//!
//! One `reqwest::Client` (rustls with ring, no proxy) serves all accounts.
//! [`AccountClient`] adds the per-account concurrency limit (SPEC §5.6).
//! Retries follow lychee's classification plus connection errors: 429, 5xx,
//! 408, timeouts and connection failures are retried with exponential
//! backoff and jitter, `Retry-After` is honoured up to `backoff_max`; 401/403
//! are returned at once as [`HttpError::Rejected`]. Redirects are followed only
//! within the request's origin (SPEC §5.10), and no `Referer` is sent. Every
//! other status comes back as a [`Response`] for the provider to interpret.
//! Nothing here logs a URL query, a header or a body.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use tokio::sync::Semaphore;

use crate::config::HttpConfig;
use crate::error::HttpError;

/// A response with its whole body, already checked against the size cap.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

/// The shared client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: Arc<HttpConfig>,
}

impl HttpClient {
    /// Builds the client. Fails when no TLS root certificates can be loaded.
    ///
    /// TLS roots come from the system store (`ca-certificates`, `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`); where it has none, the bundled Mozilla roots are used.
    pub fn new(config: &HttpConfig) -> Result<Self, HttpError> {
        install_crypto_provider();
        let inner = match builder(config).build() {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(error = %err, "No usable system CA store; using the bundled Mozilla root certificates");
                let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .filter_map(|der| reqwest::Certificate::from_der(der).ok());
                builder(config)
                    .tls_certs_only(roots)
                    .build()
                    .map_err(HttpError::Transport)?
            }
        };
        Ok(Self {
            inner,
            config: Arc::new(config.clone()),
        })
    }
}

fn builder(config: &HttpConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("usage-archiver/", env!("CARGO_PKG_VERSION")))
        .timeout(config.timeout)
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.timeout)
        .redirect(redirect_policy())
        .referer(false)
        .no_proxy()
}

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 3;

/// Follows a redirect only within the origin (scheme, host and port) the request was
/// sent to, so no credential (an `Authorization` or custom header, a token in a body)
/// ever goes to another host or from https to http. Any other redirect is not followed:
/// its 3xx answer comes back and [`classify`] turns it into [`HttpError::Redirected`].
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Installs ring as rustls's process-wide crypto provider; later calls are no-ops.
pub fn install_crypto_provider() {
    // An Err only says a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The requests a run gave up on after all their retries, with why: within that run the
/// same request (method, URL and body) is not sent again, so a failing server is not
/// asked twice for what it already failed to give.
#[derive(Debug, Clone, Default)]
pub struct RunMemo(Arc<std::sync::Mutex<std::collections::HashMap<u64, String>>>);

tokio::task_local! {
    static RUN_MEMO: RunMemo;
}

impl RunMemo {
    /// Runs `work` with this memo as the current run's (spawned tasks must be scoped too).
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        RUN_MEMO.scope(self, work).await
    }

    /// The current run's memo, when called inside [`RunMemo::scope`].
    pub fn current() -> Option<Self> {
        RUN_MEMO.try_with(Clone::clone).ok()
    }

    fn gave_up(&self, key: u64) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    fn give_up(&self, key: u64, error: &HttpError) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, error.to_string());
    }
}

/// What identifies a request within a run: its method, URL and body.
fn request_key(request: RequestBuilder) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let request = request.build().ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.method().as_str().hash(&mut hasher);
    request.url().as_str().hash(&mut hasher);
    request.body().and_then(|b| b.as_bytes()).hash(&mut hasher);
    Some(hasher.finish())
}

/// The shared client plus one account's concurrency limit.
#[derive(Debug, Clone)]
pub struct AccountClient {
    http: HttpClient,
    permits: Arc<Semaphore>,
}

impl AccountClient {
    /// At most `max_concurrency` requests of this account are in flight at once.
    pub fn new(http: HttpClient, max_concurrency: usize) -> Self {
        Self {
            http,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
        }
    }

    /// Sends the request `build` makes, retrying transient failures.
    ///
    /// `build` is called once per attempt. `endpoint` names the request in logs.
    pub async fn send<F>(&self, endpoint: &str, build: F) -> Result<Response, HttpError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        self.send_retrying(endpoint, build, HttpError::is_retryable)
            .await
    }

    /// Sends a request the provider acts on even when its answer is lost (one that spends
    /// a token): retried only when it surely was not acted on (no connection, 429), never
    /// after a timeout or a broken-off answer.
    pub async fn send_unrepeatable<F>(
        &self,
        endpoint: &str,
        build: F,
    ) -> Result<Response, HttpError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let unsent =
            |e: &HttpError| matches!(e, HttpError::Connect(_) | HttpError::RateLimited { .. });
        self.send_retrying(endpoint, build, unsent).await
    }

    async fn send_retrying<F>(
        &self,
        endpoint: &str,
        build: F,
        retry: fn(&HttpError) -> bool,
    ) -> Result<Response, HttpError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let memo = RunMemo::current();
        let key = memo
            .as_ref()
            .and_then(|_| request_key(build(&self.http.inner)));
        if let (Some(memo), Some(key)) = (&memo, key)
            && let Some(error) = memo.gave_up(key)
        {
            return Err(HttpError::GaveUpEarlier { error });
        }
        let result = self.attempt_with_retries(endpoint, &build, retry).await;
        if let (Some(memo), Some(key), Err(e)) = (&memo, key, &result)
            && e.is_retryable()
        {
            memo.give_up(key, e);
        }
        result
    }

    async fn attempt_with_retries<F>(
        &self,
        endpoint: &str,
        build: &F,
        retry: fn(&HttpError) -> bool,
    ) -> Result<Response, HttpError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let config = &self.http.config;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.backoff_initial)
            .with_max_delay(config.backoff_max)
            .with_max_times(config.max_retries as usize)
            .with_jitter();
        let cap = config.backoff_max;
        (|| self.attempt(build))
            .retry(backoff)
            // A zero delay (the simulation's) retries at once: a timer would round it up
            // to the next millisecond.
            .sleep(|delay: Duration| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            })
            .when(retry)
            .adjust(move |err, delay| match err {
                HttpError::RateLimited { retry_after: Some(ra) } => {
                    delay.map(|d| d.max((*ra).min(cap)))
                }
                _ => delay,
            })
            .notify(|err, delay| {
                tracing::warn!(endpoint, error = %err, retry_in_ms = delay.as_millis() as u64, "Retrying request");
            })
            .await
    }

    async fn attempt<F>(&self, build: &F) -> Result<Response, HttpError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HttpError::Timeout)?;
        let mut response = build(&self.http.inner)
            .send()
            .await
            .map_err(HttpError::from_reqwest)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(HttpError::Redirected {
                target: redirect_target(response.url(), response.headers()),
            });
        }
        let retry_after = parse_retry_after(response.headers());
        let limit = self.http.config.max_body_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(HttpError::BodyTooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(HttpError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        classify(status, retry_after, Bytes::from(body))
    }
}

/// Maps a complete response to success or a typed failure.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
) -> Result<Response, HttpError> {
    match status.as_u16() {
        401 | 403 => Err(HttpError::Rejected {
            status: status.as_u16(),
            body: body.to_vec(),
        }),
        429 => Err(HttpError::RateLimited { retry_after }),
        408 | 500..=599 => Err(HttpError::Server {
            status: status.as_u16(),
        }),
        _ => Ok(Response { status, body }),
    }
}

/// Whether `next` has the origin of `first`: the same scheme, host and port (so https
/// to http, or another port of the same host, is another origin).
fn same_origin(first: &reqwest::Url, next: &reqwest::Url) -> bool {
    first.origin() == next.origin()
}

/// Where a redirect not followed pointed: its origin only (`https://host:port`), never
/// its path or query, which may carry anything.
fn redirect_target(from: &reqwest::Url, headers: &HeaderMap) -> String {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| from.join(l).ok());
    match location {
        Some(url) => url.origin().ascii_serialization(),
        None => "nowhere (no Location header)".to_owned(),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date; `None` when absent or unreadable.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_are_read() {
        assert_eq!(
            parse_retry_after(&headers("7")),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_date_in_the_past_means_now() {
        let d = parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(d, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        assert_eq!(parse_retry_after(&headers("soon")), None);
    }

    /// See: issue 15.3
    #[test]
    fn redirects_stay_within_the_origin() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let first = url("https://api.example.com/v2/customers");
        assert!(same_origin(
            &first,
            &url("https://api.example.com/v3/x?y=1")
        ));
        for other in [
            "http://api.example.com/v2/customers",
            "https://api.example.com:8443/v2/customers",
            "https://evil.example.com/v2/customers",
            "https://example.com/v2/customers",
        ] {
            assert!(!same_origin(&first, &url(other)), "{other}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        let c = |s: u16| classify(StatusCode::from_u16(s).unwrap(), None, Bytes::new());
        assert!(matches!(
            c(401),
            Err(HttpError::Rejected { status: 401, .. })
        ));
        assert!(matches!(
            c(403),
            Err(HttpError::Rejected { status: 403, .. })
        ));
        assert!(matches!(c(429), Err(HttpError::RateLimited { .. })));
        assert!(matches!(c(503), Err(HttpError::Server { status: 503 })));
        assert!(matches!(c(408), Err(HttpError::Server { status: 408 })));
        assert!(c(404).is_ok());
        assert!(c(200).is_ok());
    }
}
