//! Loopback simulators of the providers, for the demo, the tests and the benchmarks.
//!
//! One axum server on `127.0.0.1:0` serves every simulated provider under
//! its own path prefix (`/hydraproxy/api`, `/hydraproxy/reseller`,
//! `/infiniteproxies/v2`, `/hostens/api`, `/proxyshard`). Data is
//! generated on the fly from a seed, so a simulator with 10,000 orders costs
//! no memory, and two runs with the same settings answer the same bytes. The
//! simulated "today" follows a clock the caller controls, and a fault switch
//! ([`faults`]) makes a set fraction of responses fail the ways real APIs do.

pub mod faults;
pub mod hostens;
pub mod hydraproxy;
pub mod infiniteproxies;
pub mod life;
pub mod proxyshard;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a stalled response is held back: past any client timeout a test sets.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// What the simulated providers hold.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The simulated HydraProxy account.
    pub hydraproxy: hydraproxy::SimHydraProxy,
    /// The simulated InfiniteProxies reseller account.
    pub infiniteproxies: infiniteproxies::SimInfiniteProxies,
    /// The simulated Hostens accounts (Basic auth and token flow).
    pub hostens: hostens::SimHostens,
    /// The simulated ProxyShard account.
    pub proxyshard: proxyshard::SimProxyShard,
}

impl SimConfig {
    /// The small data set the demo archives: a dozen orders with weeks of history.
    pub fn demo() -> Self {
        Self {
            hydraproxy: hydraproxy::SimHydraProxy::demo(),
            infiniteproxies: infiniteproxies::SimInfiniteProxies::demo(),
            hostens: hostens::SimHostens::demo(),
            proxyshard: proxyshard::SimProxyShard::demo(),
        }
    }
}

/// The simulated wall clock: the real one unless a test pins it.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<RwLock<Option<DateTime<Utc>>>>);

impl SimClock {
    /// The simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.0.read().ok().and_then(|g| *g).unwrap_or_else(Utc::now)
    }

    /// Pins the clock (tests).
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut g) = self.0.write() {
            *g = Some(at);
        }
    }
}

/// What the simulator was asked, counted by key: `"GET /path"` for every request, and
/// `"hydraproxy order ID"` for each order's usage history (its id is in the form body).
#[derive(Debug, Default)]
pub struct Requests(Mutex<HashMap<String, u64>>);

impl Requests {
    fn record(&self, key: &str) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(key.to_owned()).or_default() += 1;
    }

    /// How many requests had `key`.
    pub fn count(&self, key: &str) -> u64 {
        let counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(key).copied().unwrap_or(0)
    }

    /// Every key and its count, most asked first.
    pub fn counts(&self) -> Vec<(String, u64)> {
        let counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(String, u64)> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all
    }

    /// How many requests had a key starting with `prefix`.
    pub fn count_prefixed(&self, prefix: &str) -> u64 {
        let counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Counts every request by method and path.
async fn count_requests(
    axum::extract::State(requests): axum::extract::State<Arc<Requests>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    requests.record(&format!("{} {}", request.method(), request.uri().path()));
    next.run(request).await
}

/// The fields of a POSTed form, sent either way HydraProxy accepts:
/// `multipart/form-data` (the document's `curl --form`, what the archiver sends) or
/// `application/x-www-form-urlencoded`.
#[derive(Debug, Default)]
pub(crate) struct FormFields(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for FormFields {
    type Rejection = axum::response::Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let axum::Form(fields) =
                axum::Form::<HashMap<String, String>>::from_request(req, state)
                    .await
                    .map_err(IntoResponse::into_response)?;
            return Ok(Self(fields));
        }
        let mut parts = axum::extract::Multipart::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut fields = HashMap::new();
        while let Some(field) = parts
            .next_field()
            .await
            .map_err(IntoResponse::into_response)?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let value = field.text().await.map_err(IntoResponse::into_response)?;
            fields.insert(name, value);
        }
        Ok(Self(fields))
    }
}

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    clock: SimClock,
    config: SimConfig,
    faults: Arc<faults::Faults>,
    hostens: Arc<hostens::State>,
    requests: Arc<Requests>,
    stop: CancellationToken,
}

impl Simulator {
    /// Starts serving on a free loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let clock = SimClock::default();
        let faults = Arc::new(faults::Faults::new(0x5EED, STALL));
        let hostens = Arc::new(hostens::State {
            sim: config.hostens.clone(),
            clock: clock.clone(),
            tokens: std::sync::Mutex::default(),
        });
        let requests = Arc::new(Requests::default());
        let app = hydraproxy::router(Arc::new(hydraproxy::State {
            sim: config.hydraproxy.clone(),
            clock: clock.clone(),
            requests: Arc::clone(&requests),
        }))
        .merge(infiniteproxies::router(Arc::new(infiniteproxies::State {
            sim: config.infiniteproxies.clone(),
            clock: clock.clone(),
        })))
        .merge(hostens::router(Arc::clone(&hostens)))
        .merge(proxyshard::router(Arc::new(proxyshard::State {
            sim: config.proxyshard.clone(),
            clock: clock.clone(),
        })))
        .layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&requests),
            count_requests,
        ));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "Simulator stopped");
            }
        });
        Ok(Self {
            addr,
            clock,
            config,
            faults,
            hostens,
            requests,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault switch: off until a test sets a rate.
    pub fn faults(&self) -> &faults::Faults {
        &self.faults
    }

    /// What the simulated Hostens token endpoint saw so far.
    pub fn hostens_token_stats(&self) -> hostens::TokenStats {
        self.hostens.token_stats()
    }

    /// The requests it answered so far (faults included).
    pub fn requests(&self) -> &Requests {
        &self.requests
    }

    /// What it simulates (the truth tests compare the archive with).
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The simulator's clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// A complete `daemon.toml` that archives every simulated provider into `database`.
    pub fn daemon_toml(&self, database: &std::path::Path) -> String {
        let db = toml::Value::String(database.display().to_string());
        format!(
            "# Written by `usage-archiver demo`: the built-in simulators on loopback.\n\
             [archive]\ndatabase = {db}\nkeep_raw = \"errors\"\n\n\
             [http]\ntimeout_secs = 10\nmax_retries = 2\nbackoff_initial_ms = 50\n\n{}\n{}\n{}\n{}",
            self.config.hydraproxy.daemon_toml(&self.base_url()),
            self.config.infiniteproxies.daemon_toml(&self.base_url()),
            self.config.hostens.daemon_toml(&self.base_url()),
            self.config.proxyshard.daemon_toml(&self.base_url())
        )
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A deterministic pseudo-random number from a few integers (splitmix64).
pub(crate) fn mix(parts: &[u64]) -> u64 {
    mix_seeded(0, parts)
}

/// A deterministic pseudo-random number from a seed and a few integers (splitmix64): the
/// same integers under another seed give another number.
pub fn mix_seeded(seed: u64, parts: &[u64]) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15_u64;
    for p in parts {
        x ^= p
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(x << 6)
            .wrapping_add(x >> 2);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}
