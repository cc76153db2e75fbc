//! Simulated HydraProxy: orders of every status, a retention window, a provisional today.
//!
//! Serves `get_orders_status/` and `order_details/` under `/hydraproxy/reseller` and
//! `view_usage_history/` and `get_account_info/` under `/hydraproxy/api`, with the
//! documented headers, form fields (multipart or urlencoded) and `"status": "ERROR"`
//! bodies. Order details come in the document's two shapes, MOBILE (with its port as a
//! string) and RESIDENTIAL (with the proxy's password, which must never be kept).

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};

use super::life::{Kind, Lifecycle};
use super::{FormFields, Requests, SimClock, mix};
use crate::providers::hydraproxy::ORDER_STATUSES;

/// The token the simulated account accepts.
pub const SIM_TOKEN: &str = "sim-hydraproxy-token";
/// The proxy password every residential order's details carry: never to be archived.
pub const SIM_PROXY_PASSWORD: &str = "sim-hydra-proxy-secret";
/// The first simulated order id.
pub const FIRST_ORDER_ID: u64 = 37_000;

/// The simulated account.
#[derive(Debug, Clone)]
pub struct SimHydraProxy {
    /// Number of orders, with ids from [`FIRST_ORDER_ID`].
    pub orders: u64,
    /// Days of usage each order has had (before the retention cut).
    pub history_days: u32,
    /// Days the API still shows, today included.
    pub retention_days: u32,
    /// Seed of the generated figures.
    pub seed: u64,
    /// How many orders, the last ids, ended long ago: listed as TERMINATED, with no
    /// usage in the last [`ENDED_DAYS_AGO`] days.
    pub ended: u64,
    /// A book that changes: orders created, busy or quiet, ended and woken by their
    /// life (and `ended` ignored); residential ones extended once.
    pub life: Option<Lifecycle>,
    /// From this instant on, the API shows only this many days (it shrinks its window).
    pub window_shrinks: Option<(DateTime<Utc>, u32)>,
}

/// How many days ago the simulator's ended orders were last used.
pub const ENDED_DAYS_AGO: i64 = 28;

impl SimHydraProxy {
    /// The demo's account: 12 orders, 4 weeks of use, 14 days visible.
    pub fn demo() -> Self {
        Self {
            orders: 12,
            history_days: 28,
            retention_days: 14,
            seed: 7,
            ended: 2,
            life: None,
            window_shrinks: None,
        }
    }

    /// The days the API shows at `now`, today included.
    pub fn window_at(&self, now: DateTime<Utc>) -> u32 {
        match self.window_shrinks {
            Some((at, days)) if now >= at => days,
            _ => self.retention_days,
        }
    }

    /// Whether the order exists on `day` (a fixed book's always do).
    pub fn listed_on(&self, id: u64, day: NaiveDate) -> bool {
        self.life
            .is_none_or(|l| day >= l.life(Kind::Order, id).born)
    }

    /// The order's status on `day`: by its life in a changing book (ACTIVE while it
    /// lives, TERMINATED once ended), else [`Self::status_of`].
    pub fn status_on(&self, id: u64, day: NaiveDate) -> &'static str {
        match self.life {
            Some(l) if l.alive(Kind::Order, id, day) => "ACTIVE",
            Some(_) => "TERMINATED",
            None => self.status_of(id),
        }
    }

    /// The GB a residential order of a changing book was extended by, and on which day:
    /// each once, some days after it was created.
    pub fn extension_of(&self, id: u64) -> Option<(NaiveDate, u64)> {
        let life = self.life?;
        let born = life.life(Kind::Order, id).born;
        let day = born + TimeDelta::days(3 + (mix(&[self.seed, id, 8]) % 20) as i64);
        Some((day, 1 + mix(&[self.seed, id, 9]) % 5))
    }

    /// The config tables for an account on this simulator.
    pub fn daemon_toml(&self, base: &str) -> String {
        format!(
            "[[hydraproxy]]\nname = \"sim\"\nbase_url = \"{base}/hydraproxy/api\"\n\
             reseller_base_url = \"{base}/hydraproxy/reseller\"\nallow_insecure_http = true\n\
             token = \"{SIM_TOKEN}\"\nschedule = \"0 10 * * * *\"\nretention_days = {}\nmax_concurrency = 8\n",
            self.retention_days
        )
    }

    /// The status of an order: TERMINATED when it ended, else most are active and the rest
    /// spread over the other statuses.
    pub fn status_of(&self, id: u64) -> &'static str {
        if self.has_ended(id) {
            return "TERMINATED";
        }
        let r = mix(&[self.seed, id, 1]) % 10;
        ORDER_STATUSES
            .get(r.saturating_sub(4) as usize)
            .copied()
            .unwrap_or("ACTIVE")
    }

    /// `MOBILE` for about a third of the orders, else `RESIDENTIAL`.
    pub fn network_of(&self, id: u64) -> &'static str {
        if mix(&[self.seed, id, 4]).is_multiple_of(3) {
            "MOBILE"
        } else {
            "RESIDENTIAL"
        }
    }

    /// What an order cost: mobile ports by the day, residential bandwidth by the GB.
    pub fn price_of(&self, id: u64) -> f64 {
        let units = 1 + mix(&[self.seed, id, 5]) % 20;
        let unit = if self.network_of(id) == "MOBILE" {
            2.95
        } else {
            3.0
        };
        (units as f64 * unit * 100.0).round() / 100.0
    }

    /// The GB a residential order bought: its price's worth at 3 USD a GB.
    pub fn initial_bandwidth_of(&self, id: u64) -> u64 {
        1 + mix(&[self.seed, id, 5]) % 20
    }

    /// The GB a residential order has left at the end of `today` as of `fraction` of it:
    /// what it bought and was extended by, less what it used (never below zero), to two
    /// decimals.
    pub fn bandwidth_available_of(&self, id: u64, today: NaiveDate, fraction: f64) -> f64 {
        let extended = self
            .extension_of(id)
            .filter(|(day, _)| *day <= today)
            .map_or(0, |(_, gb)| gb);
        let days = match self.life {
            Some(l) => (today - l.life(Kind::Order, id).born).num_days() + 1,
            None => i64::from(self.history_days),
        };
        let used_mb: f64 = (0..days)
            .filter_map(|age| {
                let (up, down) = self.usage(id, today - TimeDelta::days(age), today, fraction)?;
                Some(up + down)
            })
            .sum();
        let left = (self.initial_bandwidth_of(id) + extended) as f64 - used_mb / 1024.0;
        (left.max(0.0) * 100.0).round() / 100.0
    }

    /// Whether `id` is one of the orders that ended long ago.
    pub fn has_ended(&self, id: u64) -> bool {
        let end = FIRST_ORDER_ID.saturating_add(self.orders);
        (end.saturating_sub(self.ended)..end).contains(&id)
    }

    /// Upload and download MB of an order on a day, with today scaled by the hour.
    pub fn usage(
        &self,
        id: u64,
        day: NaiveDate,
        today: NaiveDate,
        fraction_of_today: f64,
    ) -> Option<(f64, f64)> {
        let age = (today - day).num_days();
        if let Some(life) = self.life {
            if age < 0 || !life.busy(Kind::Order, id, day) {
                return None;
            }
        } else {
            let unused = mix(&[self.seed, id, 2]).is_multiple_of(12);
            let ended = self.has_ended(id) && age < ENDED_DAYS_AGO;
            if unused || ended || age < 0 || age >= i64::from(self.history_days) {
                return None;
            }
        }
        let n = mix(&[
            self.seed,
            id,
            chrono::Datelike::num_days_from_ce(&day) as u64,
        ]);
        let up = (n % 50_000) as f64 / 100.0;
        let down = ((n >> 20) % 150_000) as f64 / 100.0;
        let scale = if age == 0 { fraction_of_today } else { 1.0 };
        Some((
            (up * scale * 100.0).round() / 100.0,
            (down * scale * 100.0).round() / 100.0,
        ))
    }
}

/// Shared state of the simulated account.
#[derive(Debug)]
pub(crate) struct State {
    pub sim: SimHydraProxy,
    pub clock: SimClock,
    pub requests: Arc<Requests>,
}

/// The routes of both HydraProxy hosts.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/hydraproxy/reseller/get_orders_status/",
            post(orders_status),
        )
        .route("/hydraproxy/reseller/order_details/", post(order_details))
        .route("/hydraproxy/api/view_usage_history/", post(usage_history))
        .route("/hydraproxy/api/get_account_info/", get(account_info))
        .with_state(state)
}

fn error(status: StatusCode, url: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "ERROR", "url": url, "message": message})),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Token {SIM_TOKEN}"))
}

async fn orders_status(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    FormFields(f): FormFields,
) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "get_orders_status/",
            "unauthorised_request",
        );
    }
    let status = f.get("status").cloned().unwrap_or_default();
    let today = s.clock.now().date_naive();
    let orders: Vec<Value> = (FIRST_ORDER_ID..FIRST_ORDER_ID + s.sim.orders)
        .filter(|id| s.sim.listed_on(*id, today) && s.sim.status_on(*id, today) == status)
        .map(|id| json!({"id": id, "network_type": s.sim.network_of(id), "status": status, "price_usd": s.sim.price_of(id)}))
        .collect();
    Json(orders).into_response()
}

/// The order a form names, if it is one of the account's.
fn order_of(s: &State, f: &std::collections::HashMap<String, String>) -> Option<u64> {
    let today = s.clock.now().date_naive();
    f.get("order_id")?
        .parse::<u64>()
        .ok()
        .filter(|id| (FIRST_ORDER_ID..FIRST_ORDER_ID + s.sim.orders).contains(id))
        .filter(|id| s.sim.listed_on(*id, today))
}

async fn order_details(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    FormFields(f): FormFields,
) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "order_details/",
            "unauthorised_request",
        );
    }
    let Some(id) = order_of(&s, &f) else {
        return error(StatusCode::OK, "order_details/", "order_not_found");
    };
    let now = s.clock.now();
    let created = (now - TimeDelta::days(i64::from(s.sim.history_days)))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let (sim, status) = (&s.sim, s.sim.status_on(id, now.date_naive()));
    let body = if sim.network_of(id) == "MOBILE" {
        let days = 1 + mix(&[sim.seed, id, 5]) % 20;
        let end = (now + TimeDelta::days(days as i64))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        json!({
            "status": "OK", "network": "MOBILE", "order_id": id,
            "order_info": {"order_status": status, "date_created": created, "date_end": end,
                           "connection_type": "4G_MOBILE", "ports_nr": 1, "days_nr": days,
                           "price_usd": sim.price_of(id)},
            "proxy_info": {"protocol": "HTTPS", "ip_rotation": "TRUE", "whitelist_ip": "123.45.67.89",
                           "geo_code": "RANDOM", "carrier": "RANDOM"},
            "proxy": {"host": "4g.hydraproxy.com", "port": "1111"},
            "extensions": {}
        })
    } else {
        let fraction = f64::from(now.num_seconds_from_midnight()) / 86_400.0;
        json!({
            "status": "OK", "network": "RESIDENTIAL", "order_id": id,
            "order_info": {"order_status": status, "date_created": created, "ports_nr": 1,
                           "price_usd": sim.price_of(id), "initial_bandwidth": sim.initial_bandwidth_of(id)},
            "proxy_info": {"protocol": "HTTPS", "username": format!("sim_{id}_ip"), "password": SIM_PROXY_PASSWORD,
                           "bandwidth_available": sim.bandwidth_available_of(id, now.date_naive(), fraction)},
            "proxy": {"host": "isp2.hydraproxy.com", "port": 2222},
            "extensions": extensions(sim, id, now.date_naive())
        })
    };
    Json(body).into_response()
}

async fn usage_history(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    FormFields(f): FormFields,
) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "view_usage_history/",
            "unauthorised_request",
        );
    }
    let Some(id) = order_of(&s, &f) else {
        return error(StatusCode::OK, "view_usage_history/", "order_not_found");
    };
    s.requests.record(&format!("hydraproxy order {id}"));
    let now = s.clock.now();
    let today = now.date_naive();
    let fraction = f64::from(now.num_seconds_from_midnight()) / 86_400.0;
    let rows: Vec<Value> = (0..s.sim.window_at(now))
        .filter_map(|age| {
            let day = today - TimeDelta::days(i64::from(age));
            let (up, down) = s.sim.usage(id, day, today, fraction)?;
            Some(json!({
                "date": day.format("%Y-%m-%d").to_string(),
                "bandwidth_upload_mb": up,
                "bandwidth_download_mb": down,
                "bandwidth_total_mb": ((up + down) * 100.0).round() / 100.0,
            }))
        })
        .collect();
    let usage = if rows.is_empty() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    Json(json!({"status": "OK", "order_id": id, "usage": usage})).into_response()
}

/// An order's extensions as `extend_order/` answers are shaped, once made.
fn extensions(sim: &SimHydraProxy, id: u64, today: NaiveDate) -> Value {
    match sim.extension_of(id).filter(|(day, _)| *day <= today) {
        Some((_, gb)) => {
            json!({"1": {"order_id": id, "bandwidth_added_gb": gb, "price_usd": 3.0 * gb as f64}})
        }
        None => json!({}),
    }
}

async fn account_info(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "get_account_info/",
            "unauthorised_request",
        );
    }
    let balance = 180.0 + (mix(&[s.sim.seed, 3]) % 1000) as f64 / 10.0;
    Json(json!({"status": "OK", "username": "sim", "email": "sim@example.com", "balance_usd": balance})).into_response()
}
