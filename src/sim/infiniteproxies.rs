//! Simulated InfiniteProxies: customers with 14 days of totals, in both payload shapes.
//!
//! Serves `/@me`, `/customers` and `/customer/@{username}/transactions`
//! under `/infiniteproxies/v2`, with the `{"status": {...}, "payload": ...}`
//! envelope. Even-numbered customers answer with the day map directly under
//! `payload`, odd ones under `payload.consumption`, as the document shows
//! both. Days without use are `0`. Unknown customers get the documented 404.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{TimeDelta, Timelike};
use serde_json::{Map, Value, json};

use super::life::{Kind, Lifecycle};
use super::{SimClock, mix};

/// The API key the simulated reseller accepts (as `Authorization: Bearer …`).
pub const SIM_API_KEY: &str = "sim-infiniteproxies-key";

/// The simulated reseller account.
#[derive(Debug, Clone)]
pub struct SimInfiniteProxies {
    /// Number of customers (`customer000`, `customer001`, …).
    pub customers: u64,
    /// Days shown per customer, today included.
    pub window_days: u32,
    /// Seed of the generated figures.
    pub seed: u64,
    /// A book that changes: customers created, busy or quiet, deleted and back by their life.
    pub life: Option<Lifecycle>,
}

impl SimInfiniteProxies {
    /// The demo's account: 6 customers, the documented 14 days.
    pub fn demo() -> Self {
        Self {
            customers: 6,
            window_days: 14,
            seed: 11,
            life: None,
        }
    }

    /// The config table for an account on this simulator.
    pub fn daemon_toml(&self, base: &str) -> String {
        format!(
            "[[infiniteproxies]]\nname = \"sim\"\nbase_url = \"{base}/infiniteproxies/v2\"\n\
             allow_insecure_http = true\napi_key = \"{SIM_API_KEY}\"\nschedule = \"0 20 0,6,12,18 * * *\"\n"
        )
    }

    fn username(i: u64) -> String {
        format!("customer{i:03}")
    }

    /// Whether the customer exists on `day` (a fixed book's always do).
    pub fn exists_on(&self, customer: u64, day: chrono::NaiveDate) -> bool {
        self.life
            .is_none_or(|l| l.alive(Kind::Customer, customer, day))
    }

    /// MB a customer used on `day`, `age` days ago; a third of the days are 0, and in a
    /// changing book every day it is not busy.
    pub fn usage_on(
        &self,
        customer: u64,
        day: chrono::NaiveDate,
        fraction_of_today: f64,
        age: i64,
    ) -> f64 {
        if self
            .life
            .is_some_and(|l| !l.busy(Kind::Customer, customer, day))
        {
            return 0.0;
        }
        self.usage(
            customer,
            i64::from(chrono::Datelike::num_days_from_ce(&day)),
            fraction_of_today,
            age,
        )
    }

    /// MB a customer used on a day `age` days ago; a third of the days are 0.
    fn usage(&self, customer: u64, day_number: i64, fraction_of_today: f64, age: i64) -> f64 {
        let n = mix(&[self.seed, customer, day_number as u64]);
        if n.is_multiple_of(3) {
            return 0.0;
        }
        let mb = (n % 400_000) as f64 / 100.0;
        let scaled = if age == 0 { mb * fraction_of_today } else { mb };
        (scaled * 100.0).round() / 100.0
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub sim: SimInfiniteProxies,
    pub clock: SimClock,
}

/// The routes of the simulated API.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/infiniteproxies/v2/@me", get(me))
        .route("/infiniteproxies/v2/customers", get(customers))
        .route(
            "/infiniteproxies/v2/customer/{user}/transactions",
            get(transactions),
        )
        .with_state(state)
}

fn envelope(code: StatusCode, message: &str, payload: Option<Value>) -> Response {
    let mut body = json!({"status": {"code": code.as_u16(), "message": message}});
    if let Some(p) = payload {
        body["payload"] = p;
    }
    (code, Json(body)).into_response()
}

fn authorised(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SIM_API_KEY}"));
    (!ok).then(|| envelope(StatusCode::FORBIDDEN, "API Key is invalid", None))
}

async fn me(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(denied) = authorised(&headers) {
        return denied;
    }
    let payload = json!({"username": "sim", "proxy_password": "sim-proxy-password", "balanceResidential": 5000 + mix(&[s.sim.seed]) % 1000, "balanceMobile": 3000});
    envelope(StatusCode::OK, "Success", Some(payload))
}

async fn customers(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(denied) = authorised(&headers) {
        return denied;
    }
    let today = s.clock.now().date_naive();
    let users: Vec<Value> = (0..s.sim.customers)
        .filter(|i| s.sim.exists_on(*i, today))
        .map(|i| json!({"username": SimInfiniteProxies::username(i), "proxy_password": "sim-proxy-password", "balance": mix(&[s.sim.seed, i]) % 200}))
        .collect();
    envelope(StatusCode::OK, "Success", Some(json!({"users": users})))
}

async fn transactions(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    if let Some(denied) = authorised(&headers) {
        return denied;
    }
    let index = user
        .strip_prefix("@customer")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|i| *i < s.sim.customers)
        .filter(|i| s.sim.exists_on(*i, s.clock.now().date_naive()));
    let Some(index) = index else {
        return envelope(StatusCode::NOT_FOUND, "Customer not found", None);
    };
    let now = s.clock.now();
    let today = now.date_naive();
    let fraction = f64::from(now.num_seconds_from_midnight()) / 86_400.0;
    let mut days = Map::new();
    for age in (0..i64::from(s.sim.window_days)).rev() {
        let day = today - TimeDelta::days(age);
        let mb = s.sim.usage_on(index, day, fraction, age);
        days.insert(day.format("%Y-%m-%d").to_string(), json!(mb));
    }
    let payload = if index % 2 == 0 {
        Value::Object(days)
    } else {
        json!({"consumption": days})
    };
    envelope(StatusCode::OK, "Success", Some(payload))
}
