//! ProxyShard's answers as domain rows: pure functions over checked responses.
//!
//! Counters are bytes, stored as MB of 2^20 bytes. Listings carry each
//! sub-user's counters, read row by row so that one malformed row fails only
//! its sub-user. Fields naming a password are stripped from every snapshot.

use serde_json::Value;

use super::{API, ME, ORDER, ORDERS, PROFILE, SECRET_FIELDS, SUB_USER, SUB_USERS};
use crate::error::ProviderError;
use crate::http::Response;
use crate::model::{BalanceSnapshot, CounterKind, CounterReading, EntityRecord, SubjectUsage};
use crate::providers::SubjectResult;
use crate::providers::json::{check_mb, decode, decode_value, quote};
use crate::redact::strip;

/// Bytes in the MB the archive stores (MiB: 2^20).
pub const BYTES_PER_MB: f64 = 1_048_576.0;

/// Wire types, named after the endpoints. Counters are bytes.
pub(super) mod api {
    use serde::Deserialize;

    use crate::providers::json::{flexible_f64, flexible_id, flexible_opt_f64};

    /// `GET /user/api/proxies/profile` (and one entry of a sub-user's `data`).
    #[derive(Debug, Deserialize)]
    pub(crate) struct Counters {
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub data: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub data_remain: Option<f64>,
        #[serde(deserialize_with = "flexible_f64")]
        pub data_spent: f64,
    }

    /// One sub-user of `GET /user/api/proxies/sub-users`; the counters are read per row,
    /// so one malformed row fails only its sub-user.
    #[derive(Debug, Deserialize)]
    pub(crate) struct SubUser {
        #[serde(deserialize_with = "super::user_id")]
        pub user_id: String,
        #[serde(flatten)]
        pub counters: serde_json::Map<String, serde_json::Value>,
    }

    /// `GET /user/api/proxies/sub-users`.
    #[derive(Debug, Deserialize)]
    pub(crate) struct SubUsersResponse {
        /// Read only to warn: a total or a page size, the documents disagree.
        #[serde(default)]
        pub count: Option<serde_json::Value>,
        pub data: Vec<SubUser>,
    }

    /// `GET /user/api/proxies/sub-user/{user_id}`.
    #[derive(Debug, Deserialize)]
    pub(crate) struct SubUserResponse {
        pub data: Vec<Counters>,
    }

    /// `GET /user/api/me`; `wallet_balance` in cents.
    #[derive(Debug, Deserialize)]
    pub(crate) struct MeResponse {
        #[serde(deserialize_with = "flexible_f64")]
        pub active_orders: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub wallet_balance: f64,
    }

    /// One order of `GET /user/api/orders`: its id, and the whole row (compared with the
    /// day's snapshot by the fetch plan).
    #[derive(Debug, Deserialize)]
    pub(crate) struct OrderRef {
        #[serde(deserialize_with = "flexible_id")]
        pub order_id: u64,
        #[serde(flatten)]
        pub row: serde_json::Map<String, serde_json::Value>,
    }

    /// `GET /user/api/orders`.
    #[derive(Debug, Deserialize)]
    pub(crate) struct OrdersResponse {
        pub orders: Vec<OrderRef>,
        /// Read only to warn (see `SubUsersResponse::count`).
        #[serde(default)]
        pub count: Option<serde_json::Value>,
    }
}

/// A sub-user id: a string, or a number the API may send instead.
fn user_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    let id = match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a user id, got {}",
                super::super::json::kind_of(&other)
            )));
        }
    };
    // The id becomes a path segment and half of a subject (`<type>/<id>`): `.` and `..`
    // would be dropped from the path, and `owner` is the account owner's subject.
    let ok = !id.is_empty()
        && id.len() <= 128
        && !matches!(id.as_str(), "." | ".." | "owner")
        && !id.contains(['/', '\\', '?', '#', '%'])
        && !id.chars().any(char::is_control);
    if ok {
        Ok(id)
    } else {
        Err(serde::de::Error::custom(format!(
            "{} is not a usable user id",
            quote(&id)
        )))
    }
}

/// `GET /user/api/proxies/profile`: the owner's counter as `subject`'s usage, and its balances.
pub fn parse_profile(
    subject: &str,
    resp: &Response,
) -> Result<(SubjectUsage, Vec<BalanceSnapshot>), ProviderError> {
    let counters: api::Counters = parse(PROFILE, resp)?;
    let usage = counter_usage(PROFILE, resp, &counters)?;
    Ok((usage, balances_of(subject, &counters)))
}

/// `GET /user/api/proxies/sub-user/{user_id}`: the sub-user's counter.
pub fn parse_sub_user(resp: &Response) -> Result<SubjectUsage, ProviderError> {
    let parsed: api::SubUserResponse = parse(SUB_USER, resp)?;
    let counters = parsed.data.first().ok_or_else(|| ProviderError::NotFound {
        endpoint: SUB_USER.to_owned(),
        message: "no such sub-user".to_owned(),
    })?;
    counter_usage(SUB_USER, resp, counters)
}

/// One page of `GET /user/api/proxies/sub-users`: each sub-user's id and counter, or what
/// was wrong with that sub-user's row. Fails whole only when the page itself is malformed.
pub fn parse_sub_users(resp: &Response) -> Result<Vec<(String, SubjectResult)>, ProviderError> {
    let listing: api::SubUsersResponse = parse(SUB_USERS, resp)?;
    Ok(listing
        .data
        .into_iter()
        .map(|u| {
            let usage = sub_user_usage(resp, u.counters).map(|(usage, _)| usage);
            (u.user_id, usage)
        })
        .collect())
}

/// One row of the sub-user listing: its counter as usage, and the counters themselves.
pub(super) fn sub_user_usage(
    resp: &Response,
    row: serde_json::Map<String, Value>,
) -> Result<(SubjectUsage, api::Counters), ProviderError> {
    let counters: api::Counters =
        decode_value(Value::Object(row)).map_err(|r| API.malformed(SUB_USERS, r, resp))?;
    Ok((counter_usage(SUB_USERS, resp, &counters)?, counters))
}

/// One page of `GET /user/api/orders`: the order ids.
pub fn parse_orders(resp: &Response) -> Result<Vec<u64>, ProviderError> {
    let listing: api::OrdersResponse = parse(ORDERS, resp)?;
    Ok(listing.orders.iter().map(|o| o.order_id).collect())
}

/// `GET /user/api/orders/{id}`: the order, without credentials, as the day's snapshot.
pub fn parse_order(id: &str, resp: &Response) -> Result<SubjectUsage, ProviderError> {
    let mut value: Value = decode(&resp.body).map_err(|r| API.malformed(ORDER, r, resp))?;
    let mut order = value
        .get_mut("order")
        .map(Value::take)
        .filter(Value::is_object)
        .ok_or_else(|| API.malformed(ORDER, "no `order` object".to_owned(), resp))?;
    let _ = strip(&mut order, SECRET_FIELDS);
    Ok(SubjectUsage {
        records: vec![EntityRecord {
            kind: "order".to_owned(),
            id: id.to_owned(),
            data: order,
        }],
        raw: vec![API.raw(ORDER, resp)],
        ..SubjectUsage::default()
    })
}

/// `GET /user/api/me`: `wallet_balance` (cents, in `currency`) and `active_orders`.
pub fn parse_me(resp: &Response, currency: &str) -> Result<Vec<BalanceSnapshot>, ProviderError> {
    let me: api::MeResponse = parse(ME, resp)?;
    let balances = vec![
        BalanceSnapshot {
            metric: "wallet_balance".to_owned(),
            value: me.wallet_balance / 100.0,
            unit: currency.to_owned(),
        },
        BalanceSnapshot {
            metric: "active_orders".to_owned(),
            value: me.active_orders,
            unit: "orders".to_owned(),
        },
    ];
    Ok(balances)
}

/// A counter snapshot as a subject's usage: `data_spent` in MB.
fn counter_usage(
    endpoint: &str,
    resp: &Response,
    counters: &api::Counters,
) -> Result<SubjectUsage, ProviderError> {
    let mb = check_mb("data_spent", counters.data_spent / BYTES_PER_MB)
        .map_err(|r| API.malformed(endpoint, r, resp))?;
    Ok(SubjectUsage {
        counters: vec![CounterReading {
            kind: CounterKind::Total,
            value_mb: mb,
            read_at: None,
            // The allocation: a day above it is implausible. A nonsense one is no limit.
            limit_mb: counters
                .data
                .map(|bytes| bytes / BYTES_PER_MB)
                .filter(|mb| mb.is_finite() && *mb > 0.0),
        }],
        raw: vec![API.raw(endpoint, resp)],
        ..SubjectUsage::default()
    })
}

/// `data` and `data_remain` of a subject, in MB.
pub(super) fn balances_of(subject: &str, c: &api::Counters) -> Vec<BalanceSnapshot> {
    [("data_mb", c.data), ("data_remain_mb", c.data_remain)]
        .into_iter()
        .filter_map(|(name, bytes)| {
            Some(BalanceSnapshot {
                metric: format!("{subject}:{name}"),
                value: bytes? / BYTES_PER_MB,
                unit: "MB".to_owned(),
            })
        })
        .collect()
}

/// Decodes a checked body into `T`, naming the bad field.
pub(super) fn parse<T: serde::de::DeserializeOwned>(
    endpoint: &str,
    resp: &Response,
) -> Result<T, ProviderError> {
    let value: Value = decode(&resp.body).map_err(|r| API.malformed(endpoint, r, resp))?;
    decode_value(value).map_err(|r| API.malformed(endpoint, r, resp))
}
