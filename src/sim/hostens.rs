//! Simulated Hostens: Basic auth and the rotating token flow, counters that reset monthly.
//!
//! Serves the client-area API under `/hostens/api`. Two accounts: one with
//! HTTP Basic credentials and a few servers (listed as an array), one on the
//! token flow with a single server (listed as a single object, as the
//! document shows). Every `POST /token` rotates the refresh token and issues
//! an access token that expires after one simulated hour (earlier access tokens stay valid
//! until then; `strict_tokens` refuses a spent refresh token and counts it). `bw_in`/`bw_out`
//! grow through the month and reset to zero when a month starts; the history
//! holds the past months, the current one, and the document's junk row
//! (`year: 0, month: 0`). Balances arrive as strings, as documented. The spend record
//! (invoices, services, domains, certificates) is in `hostens/billing.rs`.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use serde_json::{Value, json};

use super::life::{Kind, Lifecycle};
use super::{SimClock, mix};

mod billing;

/// The Basic-auth account's client-area email.
pub const SIM_USERNAME: &str = "sim@example.com";
/// The Basic-auth account's password.
pub const SIM_PASSWORD: &str = "sim-hostens-password";
/// The password every simulated service's details carry: never to be archived.
pub const SIM_SERVICE_PASSWORD: &str = "sim-hostens-service-secret";
/// The street every simulated invoice's `client` block carries: never to be archived.
pub const SIM_CLIENT_ADDRESS: &str = "1 Simulated Street";
/// The refresh token the token-flow account is seeded with.
pub const SIM_REFRESH_SEED: &str = "sim-hostens-refresh-0";
/// Every refresh token the simulator issues starts with this.
const REFRESH_PREFIX: &str = "sim-hostens-refresh-";
/// The first server id of the Basic account (101–200, then 1100 onwards, so a large account
/// never takes the token account's server 201).
pub const FIRST_SERVER: u64 = 101;
pub(crate) const TOKEN_SERVER: u64 = 201;

/// The simulated accounts.
#[derive(Debug, Clone)]
pub struct SimHostens {
    /// Servers of the Basic-auth account.
    pub servers: u64,
    /// Past months of history before the current one.
    pub history_months: u32,
    /// Seed of the generated figures.
    pub seed: u64,
    /// Only the newest refresh token is accepted: presenting a spent one is refused and
    /// counted ([`TokenStats::spent_presented`]), as a server that revokes on reuse would.
    pub strict_tokens: bool,
    /// Requests an access token is good for (0: until it expires after a simulated hour).
    pub access_token_uses: u32,
    /// Services that end: `(server, instant)`; the server's service is `Terminated` from
    /// that instant, in the listing and the details.
    pub service_ends: Vec<(u64, DateTime<Utc>)>,
    /// A book that changes: the Basic account's servers created and ended by their life.
    pub life: Option<Lifecycle>,
}

impl SimHostens {
    /// The demo's accounts: three servers with Basic auth, one on the token flow.
    pub fn demo() -> Self {
        Self {
            servers: 3,
            history_months: 3,
            seed: 11,
            strict_tokens: false,
            access_token_uses: 0,
            service_ends: Vec::new(),
            life: None,
        }
    }

    /// The config tables for both accounts on this simulator.
    pub fn daemon_toml(&self, base: &str) -> String {
        format!(
            "[[hostens]]\nname = \"sim\"\nbase_url = \"{base}/hostens/api\"\nallow_insecure_http = true\n\
             username = \"{SIM_USERNAME}\"\npassword = \"{SIM_PASSWORD}\"\nbandwidth_unit = \"MB\"\n\
             schedule = \"0 0 * * * *\"\n\n\
             [[hostens]]\nname = \"sim-token\"\nbase_url = \"{base}/hostens/api\"\nallow_insecure_http = true\n\
             refresh_token = \"{SIM_REFRESH_SEED}\"\nschedule = \"0 0 * * * *\"\n"
        )
    }

    /// A counter's value in MB at `now`: steady use since the start of the month.
    /// `direction` 0 is `bw_in` (download), 1 `bw_out` (upload). The truth tests check
    /// derived days against.
    pub fn counter(&self, server: u64, direction: u64, now: DateTime<Utc>) -> f64 {
        let since = (now - self.counting_from(server, month_start(now.date_naive())))
            .num_seconds()
            .max(0);
        self.usage(server, direction, since as f64 / 3600.0)
    }

    /// When a server's use in a period starting at `start` began: the start, or the
    /// midnight it was created, whichever is later.
    fn counting_from(&self, server: u64, start: DateTime<Utc>) -> DateTime<Utc> {
        let born = self
            .life
            .map(|l| l.life(Kind::Server, server).born)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        born.map_or(start, |b| b.max(start))
    }

    /// MB of one direction of a server's history row for the month starting `month`, as
    /// answered at `now` (the current month so far).
    pub fn month_figure(
        &self,
        server: u64,
        direction: u64,
        month: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> f64 {
        let next = month + Months::new(1);
        let end = if now < next { now } else { next };
        let hours = (end - self.counting_from(server, month))
            .num_seconds()
            .max(0) as f64
            / 3600.0;
        self.usage(server, direction, hours)
    }

    /// Whether the Basic account's server exists on `day` (a fixed book's always do).
    fn exists_on(&self, server: u64, day: NaiveDate) -> bool {
        self.life.is_none_or(|l| l.alive(Kind::Server, server, day))
    }

    /// MB used in `hours` at the server's steady rate.
    fn usage(&self, server: u64, direction: u64, hours: f64) -> f64 {
        let rate_mb_per_hour = 20.0 + (mix(&[self.seed, server, direction]) % 400) as f64;
        (hours * rate_mb_per_hour).round()
    }

    /// The ids of the Basic account's servers.
    pub fn server_ids(&self) -> impl Iterator<Item = u64> {
        (0..self.servers).map(|i| if i < 100 { FIRST_SERVER + i } else { 1_000 + i })
    }

    /// The servers `caller` has on `day`.
    pub(super) fn servers_on(&self, caller: Caller, day: NaiveDate) -> Vec<u64> {
        self.servers_of(caller)
            .filter(|id| caller == Caller::Token || self.exists_on(*id, day))
            .collect()
    }

    pub(super) fn servers_of(&self, caller: Caller) -> Box<dyn Iterator<Item = u64> + '_> {
        match caller {
            Caller::Basic => Box::new(self.server_ids()),
            Caller::Token => Box::new(std::iter::once(TOKEN_SERVER)),
        }
    }
}

pub(super) fn month_start(day: NaiveDate) -> DateTime<Utc> {
    day.with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::UNIX_EPOCH, |t| t.and_utc())
}

/// Tokens issued by the simulator.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The refresh token that is valid now; `None` until the first refresh.
    refresh: Option<String>,
    /// The refresh token before it, still accepted until the newest one is used: a
    /// client whose `POST /token` answer was lost in transit is not locked out.
    previous: Option<String>,
    /// Every access token issued, with when it expires and how often it was used: a
    /// rotation does not revoke earlier access tokens, they expire on their own.
    access: std::collections::HashMap<String, (DateTime<Utc>, u32)>,
    /// Every refresh token presented and spent.
    spent: std::collections::HashSet<String>,
    stats: TokenStats,
    issued: u64,
}

/// What the simulated token endpoint saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Refresh tokens rotated.
    pub rotations: u64,
    /// Times a refresh token already spent was presented again.
    pub spent_presented: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub sim: SimHostens,
    pub clock: SimClock,
    pub tokens: Mutex<Tokens>,
}

impl State {
    /// What the token endpoint saw so far.
    pub(crate) fn token_stats(&self) -> TokenStats {
        self.tokens.lock().map(|t| t.stats).unwrap_or_default()
    }
}

/// Which account a request authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    Basic,
    Token,
}

/// The routes of the simulated client area.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/hostens/api/token", post(token))
        .route("/hostens/api/balance", get(balance))
        .route("/hostens/api/server", get(servers))
        .route("/hostens/api/server/{id}", get(server))
        .route("/hostens/api/server/{id}/history", get(history))
        .route("/hostens/api/invoice", get(billing::invoices))
        .route("/hostens/api/invoice/{id}", get(billing::invoice))
        .route("/hostens/api/service", get(billing::services))
        .route("/hostens/api/service/{id}", get(billing::service))
        .route("/hostens/api/domain", get(billing::domains))
        .route("/hostens/api/domain/{id}", get(billing::domain))
        .route("/hostens/api/certificate", get(billing::certificates))
        .route("/hostens/api/certificate/{id}", get(billing::certificate))
        .with_state(state)
}

pub(super) fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "invalid_token")
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": [message]}))).into_response()
}

/// The account the request's credentials belong to; `None` when they are refused.
pub(super) fn caller(s: &State, headers: &HeaderMap) -> Option<Caller> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{SIM_USERNAME}:{SIM_PASSWORD}"));
    if header == format!("Basic {basic}") {
        return Some(Caller::Basic);
    }
    let now = s.clock.now();
    let given = header.strip_prefix("Bearer ")?;
    let mut tokens = s.tokens.lock().ok()?;
    let limit = s.sim.access_token_uses;
    let (until, used) = tokens.access.get_mut(given)?;
    if now < *until && (limit == 0 || *used < limit) {
        *used += 1;
        Some(Caller::Token)
    } else {
        None
    }
}

/// `POST /token`: rotates the refresh token. Before its first rotation a fresh simulator
/// accepts any refresh token it could have issued, so a demo archive can be reused; after
/// it, the newest refresh token and, until that one is used, the one before it.
async fn token(AxState(s): AxState<Arc<State>>, Json(body): Json<Value>) -> Response {
    let given = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Ok(mut tokens) = s.tokens.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lock poisoned");
    };
    let valid = match &tokens.refresh {
        Some(current) if s.sim.strict_tokens => current == given,
        Some(current) => current == given || tokens.previous.as_deref() == Some(given),
        None => given.starts_with(REFRESH_PREFIX) && !tokens.spent.contains(given),
    };
    if !valid {
        if tokens.spent.contains(given) {
            tokens.stats.spent_presented += 1;
        }
        return error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    }
    tokens.spent.insert(given.to_owned());
    tokens.stats.rotations += 1;
    if tokens.previous.as_deref() != Some(given) {
        tokens.previous = Some(given.to_owned());
    }
    tokens.issued += 1;
    let n = tokens.issued;
    let refresh = format!("{REFRESH_PREFIX}{}-{n}", s.clock.now().timestamp());
    let access = format!("sim-hostens-access-{n}");
    tokens.refresh = Some(refresh.clone());
    let until = s.clock.now() + TimeDelta::hours(1);
    tokens.access.insert(access.clone(), (until, 0));
    Json(json!({"token": access, "refresh": refresh})).into_response()
}

async fn balance(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let owed = if who == Caller::Basic {
        "42.50"
    } else {
        "0.00"
    };
    Json(json!({"success": true, "details": {"currency": "EUR", "acc_balance": owed, "acc_credit": "7.25"}}))
        .into_response()
}

async fn servers(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let brief = |id: u64| {
        json!({"server_id": id, "domain": format!("vps{id}.example.net"), "ip": "192.0.2.10",
               "date_created": "2025-01-31", "synch_date": "2025-01-31 15:35:00",
               "label": format!("Server {id}"), "type": "KVM"})
    };
    match caller(&s, &headers) {
        Some(Caller::Basic) => {
            let today = s.clock.now().date_naive();
            let list: Vec<Value> = s
                .sim
                .servers_on(Caller::Basic, today)
                .into_iter()
                .map(brief)
                .collect();
            Json(Value::Array(list)).into_response()
        }
        // The document's shape: one server as a bare object.
        Some(Caller::Token) => Json(brief(TOKEN_SERVER)).into_response(),
        None => unauthorized(),
    }
}

async fn server(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let now = s.clock.now();
    if !s.sim.servers_on(who, now.date_naive()).contains(&id) {
        return error(StatusCode::NOT_FOUND, "Server not found");
    }
    let hour = chrono::Timelike::hour(&now);
    Json(json!({
        "synch_date": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "package_id": 13, "domain": format!("vps{id}.example.net"), "label": format!("Server {id}"),
        "status": "Active", "cpu_frequency": 2400, "cpu_cores": 2,
        "ram_limit": 4096, "ram_used": 900 + (mix(&[s.sim.seed, id, u64::from(hour)]) % 2000),
        "disk_limit": 81920, "disk_usage": 10_000 + 37 * u64::from(now.ordinal()) + id,
        "bw_limit": 2_048_000,
        "bw_in": s.sim.counter(id, 0, now), "bw_out": s.sim.counter(id, 1, now),
        "os": "ubuntu-24.04-x86_64", "ip": "192.0.2.10", "additional_ip": [],
        "dns_servers": null, "components": [], "active_task": null, "last_tasks": null
    }))
    .into_response()
}

async fn history(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let now = s.clock.now();
    if !s.sim.servers_on(who, now.date_naive()).contains(&id) {
        return error(StatusCode::NOT_FOUND, "Server not found");
    }
    let this_month = month_start(now.date_naive());
    // The document's own example row: an impossible period a client must skip.
    let mut rows = vec![json!({
        "year": 0, "month": 0, "bw_in": 19691, "bw_out": 54435,
        "quota_usage": 5960, "quota_limit": 46566, "inode_usage": 74921, "inode_limit": 51351
    })];
    for back in (0..=s.sim.history_months).rev() {
        let start = this_month - Months::new(back);
        rows.push(json!({
            "year": start.year(), "month": start.month(),
            "bw_in": s.sim.month_figure(id, 0, start, now), "bw_out": s.sim.month_figure(id, 1, start, now),
            "quota_usage": 10_000 + 500 * u64::from(start.month()), "quota_limit": 81920,
            "inode_usage": 120_000 + 1000 * u64::from(start.month()), "inode_limit": 5_000_000
        }));
    }
    Json(Value::Array(rows)).into_response()
}
