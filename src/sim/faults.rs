//! Fault injection: a set fraction of simulator responses go wrong the ways real APIs do.
//!
//! A middleware in front of every simulated provider. For each request it
//! draws a number from the request's sequence number and the seed; when the
//! draw falls under the rate, the response becomes one of the [`Fault`]s,
//! chosen the same way. The rate and the kinds can change while the
//! simulator runs, and the counters say what was injected, so a test can
//! compare what the provider did with what the archive recorded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::response::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

use super::mix;

/// One way a response goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 500 with an empty body.
    ServerError,
    /// HTTP 502 with a reverse proxy's HTML page.
    BadGatewayHtml,
    /// HTTP 429 with `Retry-After: 1`.
    RateLimited,
    /// No answer until long after the client's timeout.
    Stall,
    /// HTTP 200 with the first half of the real JSON body.
    TruncatedJson,
    /// The connection breaks off in the middle of the body.
    Reset,
}

impl Fault {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 6] = [
        Self::ServerError,
        Self::BadGatewayHtml,
        Self::RateLimited,
        Self::Stall,
        Self::TruncatedJson,
        Self::Reset,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Rewrites the real body of the responses to one path.
type Edit = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// The fault switch and its counters; shared by the middleware and the test.
pub struct Faults {
    seed: u64,
    tamper: Mutex<Option<(String, Edit)>>,
    rate_ppm: AtomicU32,
    kinds: Mutex<Vec<Fault>>,
    stall_us: AtomicU64,
    down: Mutex<Vec<String>>,
    latency_us: AtomicU64,
    requests: AtomicU64,
    injected: [AtomicU64; 6],
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(0, Duration::from_secs(30))
    }
}

impl Faults {
    /// No faults yet; `stall` is how long a [`Fault::Stall`] holds the response back.
    pub fn new(seed: u64, stall: Duration) -> Self {
        Self {
            seed,
            tamper: Mutex::new(None),
            rate_ppm: AtomicU32::new(0),
            kinds: Mutex::new(Fault::ALL.to_vec()),
            stall_us: AtomicU64::new(u64::try_from(stall.as_micros()).unwrap_or(u64::MAX)),
            down: Mutex::new(Vec::new()),
            latency_us: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            injected: Default::default(),
        }
    }

    /// From now on, `rate` (0.0–1.0) of the responses get one of `kinds`.
    pub fn set(&self, rate: f64, kinds: &[Fault]) {
        if let Ok(mut k) = self.kinds.lock() {
            *k = kinds.to_vec();
        }
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        self.rate_ppm.store(ppm, Ordering::SeqCst);
    }

    /// From now on, a [`Fault::Stall`] holds its response back this long.
    pub fn set_stall(&self, stall: Duration) {
        let micros = u64::try_from(stall.as_micros()).unwrap_or(u64::MAX);
        self.stall_us.store(micros, Ordering::SeqCst);
    }

    /// From now on, every request whose path starts with `prefix` (a provider's, such as
    /// `/hydraproxy/`) is answered 503 Service Unavailable: an outage of that provider.
    pub fn set_down(&self, prefix: &str, down: bool) {
        if let Ok(mut d) = self.down.lock() {
            d.retain(|p| p != prefix);
            if down {
                d.push(prefix.to_owned());
            }
        }
    }

    /// Every response from now on is the real one.
    pub fn off(&self) {
        self.rate_ppm.store(0, Ordering::SeqCst);
    }

    /// From now on, the body of every response to `path` is `edit` of the real one, with
    /// the real status: the way to feed the archiver a body the documents never showed.
    pub fn tamper(&self, path: &str, edit: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) {
        if let Ok(mut t) = self.tamper.lock() {
            *t = Some((path.to_owned(), Box::new(edit)));
        }
    }

    /// Responses are no longer rewritten.
    pub fn untamper(&self) {
        if let Ok(mut t) = self.tamper.lock() {
            *t = None;
        }
    }

    /// From now on, every response waits `latency` before it is answered, the way a
    /// provider across a network does (the benchmarks' realistic case; zero by default).
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(micros, Ordering::SeqCst);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Faults injected so far, all kinds.
    pub fn injected(&self) -> u64 {
        self.injected.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    /// Faults of one kind injected so far.
    pub fn injected_of(&self, kind: Fault) -> u64 {
        self.injected[kind.index()].load(Ordering::SeqCst)
    }

    /// The fault for the next request, if it gets one.
    fn draw(&self) -> Option<Fault> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let ppm = u64::from(self.rate_ppm.load(Ordering::SeqCst));
        if ppm == 0 || mix(&[self.seed, n]) % 1_000_000 >= ppm {
            return None;
        }
        let kinds = self.kinds.lock().ok()?;
        let len = kinds.len() as u64;
        let kind = *kinds.get((mix(&[self.seed, n, 1]) % len.max(1)) as usize)?;
        self.injected[kind.index()].fetch_add(1, Ordering::SeqCst);
        Some(kind)
    }
}

/// The middleware: passes the request on, or answers with a fault.
pub async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let latency = faults.latency_us.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    let path = request.uri().path();
    if faults
        .down
        .lock()
        .is_ok_and(|d| d.iter().any(|p| path.starts_with(p.as_str())))
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let tampered = faults.tamper.lock().is_ok_and(|t| {
        t.as_ref()
            .is_some_and(|(path, _)| path == request.uri().path())
    });
    if tampered {
        let (parts, real) = whole(next.run(request).await).await;
        let edited = match faults.tamper.lock() {
            Ok(t) => t
                .as_ref()
                .map_or_else(|| real.to_vec(), |(_, edit)| edit(&real)),
            Err(_) => real.to_vec(),
        };
        return Response::from_parts(parts, Body::from(edited));
    }
    let Some(fault) = faults.draw() else {
        return next.run(request).await;
    };
    match fault {
        Fault::ServerError => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Fault::BadGatewayHtml => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
             </body>\r\n</html>\r\n",
        )
            .into_response(),
        Fault::RateLimited => {
            let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Fault::Stall => {
            let stall = faults.stall_us.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_micros(stall)).await;
            next.run(request).await
        }
        Fault::TruncatedJson => {
            let (parts, half) = first_half(next.run(request).await).await;
            Response::from_parts(parts, Body::from(half))
        }
        Fault::Reset => {
            // Chunked, then an error mid-body: hyper aborts the connection.
            let (parts, half) = first_half(next.run(request).await).await;
            let chunks: [Result<Bytes, std::io::Error>; 2] = [
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                )),
            ];
            Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)))
        }
    }
}

/// The real response's head, without its length, and the first half of its body.
async fn first_half(response: Response) -> (Parts, Bytes) {
    let (parts, bytes) = whole(response).await;
    let half = bytes.slice(..bytes.len() / 2);
    (parts, half)
}

/// The real response's head, without its length (the body is about to change), and its body.
async fn whole(response: Response) -> (Parts, Bytes) {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, bytes)
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("rate_ppm", &self.rate_ppm)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}
