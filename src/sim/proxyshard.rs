//! Simulated ProxyShard: running byte counters, sub-users, pages of orders.
//!
//! Serves the user API under `/proxyshard`. The owner's and sub-users'
//! `data_spent` counters grow with the simulated clock; sub-user 2 is
//! "recreated" every UTC midnight, so its counter drops. Orders come in pages
//! (offset/limit/next) and change status from one simulated day to the next.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::life::{Kind, Lifecycle};
use super::{SimClock, mix};

/// The token the simulated account accepts (as `Authorization: Bearer …`).
pub const SIM_TOKEN: &str = "sim-proxyshard-token";
const MB: f64 = 1_048_576.0;

/// The simulated account.
#[derive(Debug, Clone)]
pub struct SimProxyShard {
    /// Residential sub-users per proxy type.
    pub sub_users: u64,
    /// Orders, listed over several pages.
    pub orders: u64,
    /// Seed of the generated figures.
    pub seed: u64,
    /// The most rows a page holds, whatever `limit` asks (the API's own cap is 100).
    pub page_cap: u64,
    /// Paging as terse as the user API document allows: `count` is the rows of the page
    /// (its definition for orders) also for sub-users (whose notes call it a total), and
    /// the order listing sends no `next`.
    pub terse_paging: bool,
    /// A book that changes: sub-users created, busy or quiet, deleted, back and
    /// recreated (their counters reset) by their life.
    pub life: Option<Lifecycle>,
}

impl SimProxyShard {
    /// The demo's account: 5 sub-users per type, 130 orders (two pages).
    pub fn demo() -> Self {
        Self {
            sub_users: 5,
            orders: 130,
            seed: 5,
            page_cap: 100,
            terse_paging: false,
            life: None,
        }
    }

    /// The config table for an account on this simulator.
    pub fn daemon_toml(&self, base: &str) -> String {
        format!(
            "[[proxyshard]]\nname = \"sim\"\nbase_url = \"{base}/proxyshard\"\nallow_insecure_http = true\n\
             token = \"{SIM_TOKEN}\"\nproxy_types = [\"standart\", \"premium\"]\nschedule = \"0 0 * * * *\"\n"
        )
    }

    /// Bytes a counter shows at `now`: steady use since a fixed start, or since midnight
    /// for the recreated sub-user. `who` is the sub-user's number (`u<who>`; premium ones
    /// from 1000), or 900 for the account's own `standart` counter (1900 for `premium`).
    /// The truth tests check derived days against.
    pub fn data_spent(&self, who: u64, now: DateTime<Utc>) -> f64 {
        let rate_mb_per_hour = 1.0 + (mix(&[self.seed, who]) % 500) as f64 / 10.0;
        let secs = if let (Some(life), true) = (self.life, is_sub_user(who)) {
            busy_seconds(&life, who, now)
        } else if who == 2 {
            f64::from(chrono::Timelike::num_seconds_from_midnight(&now))
        } else {
            (now.timestamp() - 1_700_000_000).max(0) as f64
        };
        (secs / 3600.0 * rate_mb_per_hour * MB).round()
    }

    /// Whether sub-user `who` exists at `now` (a fixed book's always do).
    pub fn sub_user_exists(&self, who: u64, now: DateTime<Utc>) -> bool {
        self.life
            .is_none_or(|l| l.alive(Kind::SubUser, who, now.date_naive()))
    }

    /// An order's status at `now`: it changes every three simulated days.
    pub fn order_status(&self, id: u64, now: DateTime<Utc>) -> &'static str {
        let day = now.timestamp() / 86_400;
        match mix(&[self.seed, id, day as u64 / 3]) % 6 {
            0 => "on-hold",
            1 => "cancelled",
            _ => "active",
        }
    }
}

/// Whether `who` numbers a sub-user (not an account's own counter, 900 and 1900).
fn is_sub_user(who: u64) -> bool {
    who % 1000 < 900
}

/// Seconds a sub-user of a changing book was busy since its counter last started from
/// zero: its creation, its last recreation, or its coming back.
fn busy_seconds(life: &Lifecycle, who: u64, now: DateTime<Utc>) -> f64 {
    let today = now.date_naive();
    let l = life.life(Kind::SubUser, who);
    let mut from = l.born;
    if let Some(reset) = life.last_reset(Kind::SubUser, who, today) {
        from = from.max(reset);
    }
    if let Some(wake) = l.wakes.filter(|w| *w <= today) {
        from = from.max(wake);
    }
    let mut secs = 0.0;
    let mut day = from;
    while day < today {
        if life.busy(Kind::SubUser, who, day) {
            secs += 86_400.0;
        }
        day += chrono::TimeDelta::days(1);
    }
    if life.busy(Kind::SubUser, who, today) {
        secs += f64::from(chrono::Timelike::num_seconds_from_midnight(&now));
    }
    secs
}

#[derive(Debug)]
pub(crate) struct State {
    pub sim: SimProxyShard,
    pub clock: SimClock,
}

/// The routes of the simulated user API.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/proxyshard/user/api/me", get(me))
        .route("/proxyshard/user/api/proxies/profile", get(profile))
        .route("/proxyshard/user/api/proxies/sub-users", get(sub_users))
        .route("/proxyshard/user/api/proxies/sub-user/{id}", get(sub_user))
        .route("/proxyshard/user/api/orders", get(orders))
        .route("/proxyshard/user/api/orders/{id}", get(order))
        .with_state(state)
}

fn denied(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SIM_TOKEN}"));
    (!ok).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"success": false, "message": "Unauthenticated."})),
        )
            .into_response()
    })
}

fn type_offset(q: &HashMap<String, String>) -> u64 {
    if q.get("proxy_type").map(String::as_str) == Some("premium") {
        1000
    } else {
        0
    }
}

fn page(sim: &SimProxyShard, q: &HashMap<String, String>) -> (u64, u64) {
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64)
        .clamp(1, sim.page_cap.clamp(1, 100));
    (offset, limit)
}

fn counters(s: &State, who: u64) -> Value {
    let spent = s.sim.data_spent(who, s.clock.now());
    let data = 50_000.0 * MB;
    json!({"data": data, "data_spent": spent, "data_remain": (data - spent).max(0.0), "proxy_password": "sim-proxy-password"})
}

async fn me(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    let now = s.clock.now();
    let active = (1..=s.sim.orders)
        .filter(|id| s.sim.order_status(*id, now) == "active")
        .count();
    Json(json!({"email": "sim@example.com", "active_orders": active, "wallet_balance": 12_345}))
        .into_response()
}

async fn profile(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    let mut body = counters(&s, 900 + type_offset(&q));
    body["success"] = json!(true);
    Json(body).into_response()
}

async fn sub_users(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    let (offset, limit) = page(&s.sim, &q);
    let base = type_offset(&q);
    let now = s.clock.now();
    let existing: Vec<u64> = (0..s.sim.sub_users)
        .filter(|i| s.sim.sub_user_exists(base + i, now))
        .collect();
    let total = existing.len() as u64;
    let data: Vec<Value> = existing
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|i| {
            let mut user = counters(&s, base + i);
            user["user_id"] = json!(format!("u{}", base + i));
            user["first_name"] = json!(format!("Sub {i}"));
            user
        })
        .collect();
    let count = if s.sim.terse_paging {
        data.len() as u64
    } else {
        total
    };
    Json(json!({"success": true, "count": count, "data": data})).into_response()
}

async fn sub_user(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    match id
        .strip_prefix('u')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| n % 1000 < s.sim.sub_users)
        .filter(|n| s.sim.sub_user_exists(*n, s.clock.now()))
    {
        Some(n) => Json(json!({"success": true, "data": [counters(&s, n)]})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "message": "Sub-user not found"})),
        )
            .into_response(),
    }
}

async fn orders(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    let (offset, limit) = page(&s.sim, &q);
    let end = (offset + limit).min(s.sim.orders);
    let orders: Vec<Value> = (offset + 1..=end)
        .map(|id| json!({"order_id": id, "product_id": 3, "product_name": "Standart Residential Proxy", "cycle_id": 1, "cycle_name": "monthly", "expires_at": null, "auto_renewal": false, "tag": null}))
        .collect();
    let next = (end < s.sim.orders && !s.sim.terse_paging)
        .then(|| format!("/user/api/orders?status=all&offset={end}&limit={limit}"));
    Json(json!({"success": true, "orders": orders, "count": orders.len(), "prev": null, "next": next})).into_response()
}

async fn order(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    if let Some(d) = denied(&headers) {
        return d;
    }
    if id == 0 || id > s.sim.orders {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "message": "Order not found"})),
        )
            .into_response();
    }
    let status = s.sim.order_status(id, s.clock.now());
    let order = json!({
        "order_id": id, "product_name": "Standart Residential Proxy", "cycle_name": "monthly", "quantity": 1 + id % 5,
        "price_paid": 1500 + 100 * (id % 7), "addons_price_paid": 0, "status": status,
        "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "promo_code": null, "auto_renewal": false, "tag": null,
        "proxy_password": "sim-order-secret",
    });
    Json(json!({"success": true, "order": order})).into_response()
}
