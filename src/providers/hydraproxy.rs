//! HydraProxy: per-order daily upload/download/total MB, each order's details, and the
//! account balance.
//!
//! Two hosts, as the docs show: `base_url` (`view_usage_history/`,
//! `get_account_info/`) and `reseller_base_url` (`get_orders_status/`,
//! `order_details/`). POST endpoints end in a slash and take form fields, sent as
//! `multipart/form-data` as the document's `curl --form` does; digits go as strings.
//! Each listed order is two subjects: `<id>`, its usage history, and `order/<id>`, its
//! details kept as a daily snapshot (status, network type, price, dates, bandwidth
//! bought and left), compared with the listing's row by the fetch plan.
//! Any body with `"status": "ERROR"` is an error whatever the HTTP status,
//! and `unauthorised_request` means rejected credentials, which HydraProxy
//! also answers to machines whose IP address is not whitelisted.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

use super::endpoint::{Api, shorten};
use super::json::{check_mb, decode, decode_value, parse_day, quote};
use super::{Cadence, Discovery, Listed, ListedState, Provider, ProviderKind};
use crate::config::hydraproxy::parse_order_id;
use crate::config::{AccountConfig, HydraProxySettings, Secret};
use crate::error::ProviderError;
use crate::http::{AccountClient, Response};
use crate::model::{BalanceSnapshot, DayUsage, EntityRecord, RawResponse, SubjectUsage};

/// Every order status `get_orders_status/` accepts; discovery asks for each.
pub const ORDER_STATUSES: [&str; 6] = [
    "ACTIVE",
    "CANCELED",
    "PENDING",
    "PROCESSING",
    "NO_FUNDS",
    "TERMINATED",
];

const USAGE_ENDPOINT: &str = "view_usage_history/";
const ORDERS_ENDPOINT: &str = "get_orders_status/";
const DETAILS_ENDPOINT: &str = "order_details/";
const ACCOUNT_ENDPOINT: &str = "get_account_info/";
const REJECTED_HINT: &str = "; HydraProxy also gives this answer when this machine's IP address is not whitelisted for the API";

/// Wire types, named after the endpoints.
mod api {
    use serde::Deserialize;

    use super::super::json::{flexible_f64, flexible_id, flexible_opt_f64};

    /// `view_usage_history/` when `status` is `OK`.
    #[derive(Debug, Deserialize)]
    pub(super) struct UsageHistoryResponse {
        /// Whether `status` is `"ERROR"` (an error's other fields may parse too).
        #[serde(default, rename = "status", deserialize_with = "says_error")]
        pub says_error: bool,
        #[serde(deserialize_with = "flexible_id")]
        pub order_id: u64,
        pub usage: Option<Vec<UsageRow>>,
    }

    /// One day of `usage`.
    #[derive(Debug, Deserialize)]
    pub(super) struct UsageRow {
        pub date: String,
        #[serde(deserialize_with = "flexible_f64")]
        pub bandwidth_upload_mb: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub bandwidth_download_mb: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub bandwidth_total_mb: f64,
    }

    /// One entry of `get_orders_status/`.
    #[derive(Debug, Deserialize)]
    pub(super) struct OrderStatus {
        #[serde(deserialize_with = "flexible_id")]
        pub id: u64,
        #[serde(default)]
        pub network_type: Option<String>,
        #[serde(default)]
        pub status: Option<String>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub price_usd: Option<f64>,
    }

    /// `order_details/` when `status` is `OK`: the MOBILE and the RESIDENTIAL shapes.
    #[derive(Debug, Deserialize)]
    pub(super) struct OrderDetailsResponse {
        #[serde(deserialize_with = "flexible_id")]
        pub order_id: u64,
        #[serde(default)]
        pub network: Option<String>,
        pub order_info: OrderInfo,
        #[serde(default)]
        pub proxy_info: Option<ProxyInfo>,
        #[serde(default)]
        pub extensions: Option<serde_json::Value>,
    }

    /// `order_info` of `order_details/`.
    #[derive(Debug, Deserialize)]
    pub(super) struct OrderInfo {
        #[serde(default)]
        pub order_status: Option<String>,
        #[serde(default)]
        pub date_created: Option<String>,
        #[serde(default)]
        pub date_end: Option<String>,
        #[serde(default)]
        pub connection_type: Option<String>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub ports_nr: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub days_nr: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub price_usd: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub initial_bandwidth: Option<f64>,
    }

    /// `proxy_info` of `order_details/`: only the bandwidth left is read (its
    /// `password`, `username` and `whitelist_ip` never are).
    #[derive(Debug, Deserialize)]
    pub(super) struct ProxyInfo {
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub bandwidth_available: Option<f64>,
    }

    /// Any `status` but `"ERROR"`, of any type, is not an error.
    fn says_error<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(serde_json::Value::deserialize(d)?.as_str() == Some("ERROR"))
    }

    /// `get_account_info/` when `status` is `OK`.
    #[derive(Debug, Deserialize)]
    pub(super) struct AccountInfoResponse {
        #[serde(deserialize_with = "flexible_f64")]
        pub balance_usd: f64,
    }
}

/// HydraProxy's conventions: error bodies are `{"status": "ERROR", "message": …}`;
/// `order_details/` answers hold the proxy's credentials (`username`, `password`) and the
/// customer's whitelisted IP address, none of which is kept, not even in a raw body.
const API: Api = Api {
    secret_fields: &["password", "username", "whitelist_ip"],
    error_message,
};

/// One HydraProxy account.
pub struct HydraProxy {
    base_url: String,
    reseller_base_url: String,
    token: Secret,
    orders: Vec<u64>,
    client: AccountClient,
}

impl HydraProxy {
    /// Builds the provider from its config.
    pub fn new(
        account: &AccountConfig,
        settings: &HydraProxySettings,
        client: AccountClient,
    ) -> Self {
        Self {
            base_url: account.base_url.clone(),
            reseller_base_url: settings.reseller_base_url.clone(),
            token: settings.token.clone(),
            orders: settings.orders.clone(),
            client,
        }
    }

    /// `endpoint` (which ends in a slash) at `base`, as a form POST or, without a form, a GET.
    async fn request(
        &self,
        base: &str,
        endpoint: &'static str,
        form: Option<(&'static str, String)>,
    ) -> Result<Response, ProviderError> {
        let url = API.url(base, endpoint, &[endpoint.trim_end_matches('/'), ""])?;
        let auth = format!("Token {}", self.token.expose());
        let result = self
            .client
            .send(endpoint, |c| {
                // multipart/form-data, as the document sends it (`curl --form`).
                let req = match &form {
                    Some((key, value)) => c
                        .post(url.clone())
                        .multipart(reqwest::multipart::Form::new().text(*key, value.clone())),
                    None => c.get(url.clone()),
                };
                req.header("Accept", "application/json")
                    .header("Authorization", &auth)
            })
            .await;
        result.map_err(|e| API.http_error(endpoint, e, REJECTED_HINT))
    }

    async fn fetch_orders_with_status(
        &self,
        status: &'static str,
    ) -> Result<Vec<ListedOrder>, ProviderError> {
        let resp = self
            .request(
                &self.reseller_base_url,
                ORDERS_ENDPOINT,
                Some(("status", status.to_owned())),
            )
            .await?;
        parse_orders_status(&resp)
    }

    /// An order's `order_details/` as a daily snapshot.
    async fn fetch_order_details(&self, order_id: u64) -> Result<SubjectUsage, ProviderError> {
        let resp = self
            .request(
                &self.reseller_base_url,
                DETAILS_ENDPOINT,
                Some(("order_id", order_id.to_string())),
            )
            .await?;
        let data = parse_order_details(order_id, &resp)?;
        Ok(SubjectUsage {
            records: vec![EntityRecord {
                kind: "order".to_owned(),
                id: order_id.to_string(),
                data,
            }],
            raw: vec![API.raw(DETAILS_ENDPOINT, &resp)],
            ..SubjectUsage::default()
        })
    }
}

#[async_trait]
impl Provider for HydraProxy {
    fn kind(&self) -> ProviderKind {
        ProviderKind::HydraProxy
    }

    /// Every status's listing plus the configured orders. A listing that fails leaves the
    /// others and the configured orders to sync (the run is partial); rejected credentials
    /// fail discovery whole.
    async fn discover_subjects(&self) -> Result<Discovery, ProviderError> {
        let lists =
            futures_join_all(ORDER_STATUSES.map(|s| self.fetch_orders_with_status(s))).await;
        let mut ids: BTreeSet<u64> = self.orders.iter().copied().collect();
        let mut errors = Vec::new();
        let mut listed = BTreeMap::new();
        let mut details = Vec::new();
        for (status, list) in ORDER_STATUSES.iter().zip(lists) {
            match list {
                Ok(list) => {
                    for order in list {
                        ids.insert(order.id);
                        let state = listed_state(status);
                        let usage = Listed {
                            label: order.network_type.clone(),
                            ..Listed::new(state)
                        };
                        listed.insert(order.id.to_string(), usage);
                        let row = order.row(status);
                        let subject = format!("{DETAILS_PREFIX}{}", order.id);
                        let snapshot = Listed {
                            row: Some(("order".to_owned(), order.id.to_string(), row)),
                            ..Listed::new(state)
                        };
                        listed.insert(subject.clone(), snapshot);
                        details.push(subject);
                    }
                }
                Err(e) if e.is_rejected() => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        let mut subjects: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
        subjects.extend(details);
        Ok(Discovery {
            subjects,
            errors,
            listed,
            ..Discovery::default()
        })
    }

    /// An order's usage is history; its details (`order/<id>`) a daily snapshot.
    fn cadence(&self, subject: &str) -> Cadence {
        if subject.starts_with(DETAILS_PREFIX) {
            Cadence::Daily
        } else {
            Cadence::History
        }
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        if let Some(id) = subject.strip_prefix(DETAILS_PREFIX) {
            let order_id = parse_order_id(id).ok_or_else(|| ProviderError::Api {
                endpoint: DETAILS_ENDPOINT.to_owned(),
                message: format!("{} is not a HydraProxy order id", quote(id)),
            })?;
            return self.fetch_order_details(order_id).await;
        }
        let order_id = parse_order_id(subject).ok_or_else(|| ProviderError::Api {
            endpoint: USAGE_ENDPOINT.to_owned(),
            message: format!("{} is not a HydraProxy order id", quote(subject)),
        })?;
        let resp = self
            .request(
                &self.base_url,
                USAGE_ENDPOINT,
                Some(("order_id", order_id.to_string())),
            )
            .await?;
        let days = parse_usage_history(order_id, &resp)?;
        Ok(SubjectUsage {
            days,
            raw: vec![API.raw(USAGE_ENDPOINT, &resp)],
            ..SubjectUsage::default()
        })
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let resp = self.request(&self.base_url, ACCOUNT_ENDPOINT, None).await?;
        let balances = parse_account_info(&resp)?;
        Ok((balances, API.raw(ACCOUNT_ENDPOINT, &resp)))
    }
}

/// Runs futures concurrently and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: [F; 6]) -> [F::Output; 6] {
    let [a, b, c, d, e, f] = futures;
    let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
    [a, b, c, d, e, f]
}

/// What an order status means for the fetch plan.
fn listed_state(status: &str) -> ListedState {
    match status {
        "ACTIVE" | "PENDING" | "PROCESSING" => ListedState::Active,
        "CANCELED" | "TERMINATED" => ListedState::Ended,
        _ => ListedState::Other,
    }
}

/// Parses `view_usage_history/`. `usage: null` is no rows; the order id must match.
pub fn parse_usage_history(order_id: u64, resp: &Response) -> Result<Vec<DayUsage>, ProviderError> {
    // An answer that is fine decodes straight into its type, once. Any other (an error,
    // a bad field) goes the slower way that finds the error's message or the field's path.
    let parsed = match serde_json::from_slice::<api::UsageHistoryResponse>(&resp.body) {
        Ok(parsed) if resp.status.is_success() && !parsed.says_error => parsed,
        _ => {
            let value = checked_body(USAGE_ENDPOINT, resp)?;
            decode_value(value).map_err(|reason| API.malformed(USAGE_ENDPOINT, reason, resp))?
        }
    };
    if parsed.order_id != order_id {
        let reason = format!(
            "answer is for order {}, asked for order {order_id}",
            parsed.order_id
        );
        return Err(API.malformed(USAGE_ENDPOINT, reason, resp));
    }
    let mut days: BTreeMap<NaiveDate, DayUsage> = BTreeMap::new();
    for (i, row) in parsed.usage.unwrap_or_default().into_iter().enumerate() {
        let day = day_usage(&row)
            .map_err(|r| API.malformed(USAGE_ENDPOINT, format!("usage[{i}].{r}"), resp))?;
        days.insert(day.day, day);
    }
    Ok(days.into_values().collect())
}

fn day_usage(row: &api::UsageRow) -> Result<DayUsage, String> {
    Ok(DayUsage {
        day: parse_day(&row.date).map_err(|e| format!("date: {e}"))?,
        upload_mb: Some(check_mb("bandwidth_upload_mb", row.bandwidth_upload_mb)?),
        download_mb: Some(check_mb(
            "bandwidth_download_mb",
            row.bandwidth_download_mb,
        )?),
        total_mb: check_mb("bandwidth_total_mb", row.bandwidth_total_mb)?,
    })
}

/// The subject of an order's details: `order/<id>`.
const DETAILS_PREFIX: &str = "order/";

/// One order of `get_orders_status/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedOrder {
    /// The order id.
    pub id: u64,
    /// `MOBILE` or `RESIDENTIAL`.
    pub network_type: Option<String>,
    /// The order's status, as the entry says.
    pub status: Option<String>,
    /// Its price.
    pub price_usd: Option<f64>,
}

impl ListedOrder {
    /// The fields the listing shares with the details snapshot, named as the snapshot
    /// names them, for the fetch plan to compare (`status` falls back to the listing's).
    fn row(&self, listed_as: &str) -> serde_json::Value {
        let mut row = serde_json::Map::new();
        let status = self.status.clone().unwrap_or_else(|| listed_as.to_owned());
        row.insert("status".to_owned(), status.into());
        if let Some(network) = &self.network_type {
            row.insert("network_type".to_owned(), network.clone().into());
        }
        if let Some(price) = self.price_usd {
            row.insert("price_usd".to_owned(), price.into());
        }
        serde_json::Value::Object(row)
    }
}

/// Parses `get_orders_status/`: a JSON array of orders.
pub fn parse_orders_status(resp: &Response) -> Result<Vec<ListedOrder>, ProviderError> {
    let value = checked_body(ORDERS_ENDPOINT, resp)?;
    let orders =
        order_list(value).map_err(|reason| API.malformed(ORDERS_ENDPOINT, reason, resp))?;
    let orders: Vec<api::OrderStatus> =
        decode_value(orders).map_err(|reason| API.malformed(ORDERS_ENDPOINT, reason, resp))?;
    Ok(orders
        .into_iter()
        .map(|o| ListedOrder {
            id: o.id,
            network_type: o.network_type,
            status: o.status,
            price_usd: o.price_usd,
        })
        .collect())
}

/// Parses `order_details/` (either shape) into the snapshot kept of the order: its
/// status, network, price, dates, bandwidth bought and left, ports, days and extensions.
/// The proxy's credentials (`password`, `username`) and whitelisted IP are not kept.
pub fn parse_order_details(
    order_id: u64,
    resp: &Response,
) -> Result<serde_json::Value, ProviderError> {
    let value = checked_body(DETAILS_ENDPOINT, resp)?;
    let d: api::OrderDetailsResponse =
        decode_value(value).map_err(|reason| API.malformed(DETAILS_ENDPOINT, reason, resp))?;
    if d.order_id != order_id {
        let reason = format!(
            "answer is for order {}, asked for order {order_id}",
            d.order_id
        );
        return Err(API.malformed(DETAILS_ENDPOINT, reason, resp));
    }
    let info = d.order_info;
    for (field, v) in [
        ("order_info.price_usd", info.price_usd),
        ("order_info.initial_bandwidth", info.initial_bandwidth),
        ("order_info.ports_nr", info.ports_nr),
        ("order_info.days_nr", info.days_nr),
        (
            "proxy_info.bandwidth_available",
            d.proxy_info.as_ref().and_then(|p| p.bandwidth_available),
        ),
    ] {
        if v.is_some_and(|v| v < 0.0) {
            return Err(API.malformed(DETAILS_ENDPOINT, format!("{field} is negative"), resp));
        }
    }
    let mut snapshot = serde_json::Map::new();
    let mut put = |key: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            snapshot.insert(key.to_owned(), v);
        }
    };
    let text = |v: Option<String>| v.map(serde_json::Value::from);
    let number = |v: Option<f64>| v.map(serde_json::Value::from);
    put("status", text(info.order_status));
    put("network_type", text(d.network));
    put("price_usd", number(info.price_usd));
    put("date_created", text(info.date_created));
    put("date_end", text(info.date_end));
    put("connection_type", text(info.connection_type));
    put("ports_nr", number(info.ports_nr));
    put("days_nr", number(info.days_nr));
    put("initial_bandwidth", number(info.initial_bandwidth));
    put(
        "bandwidth_available",
        number(d.proxy_info.and_then(|p| p.bandwidth_available)),
    );
    if let Some(ext) = d.extensions.as_ref().map(extension_sums) {
        put("extension_gb", Some(ext.gb.into()));
        put("extension_days", Some(ext.days.into()));
        put("extension_usd", Some(ext.usd.into()));
    }
    put("extensions", d.extensions);
    Ok(serde_json::Value::Object(snapshot))
}

/// What an order's extensions added, summed so a query can add them to what it bought.
#[derive(Debug, Default, PartialEq)]
struct ExtensionSums {
    gb: f64,
    days: f64,
    usd: f64,
}

/// Sums `extensions` (an object or an array of entries). The document shows the field
/// only empty (`{}`); its entries are read as `extend_order/` answers are shaped
/// (`bandwidth_added_gb` for residential orders, `days_nr` for mobile ones, `price_usd`),
/// numbers or strings of digits. Entries that say none of these add nothing.
fn extension_sums(extensions: &serde_json::Value) -> ExtensionSums {
    use serde_json::Value;
    let entries: Vec<&Value> = match extensions {
        Value::Object(map) => map.values().collect(),
        Value::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    };
    let number = |entry: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| match entry.get(*k)? {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            })
            .filter(|v| v.is_finite() && *v >= 0.0)
            .unwrap_or(0.0)
    };
    entries
        .iter()
        .fold(ExtensionSums::default(), |sums, e| ExtensionSums {
            gb: sums.gb + number(e, &["bandwidth_added_gb", "bandwidth"]),
            days: sums.days + number(e, &["days_nr", "days_added"]),
            usd: sums.usd + number(e, &["price_usd"]),
        })
}

/// Parses `get_account_info/` into a `balance_usd` snapshot.
pub fn parse_account_info(resp: &Response) -> Result<Vec<BalanceSnapshot>, ProviderError> {
    let value = checked_body(ACCOUNT_ENDPOINT, resp)?;
    let info: api::AccountInfoResponse =
        decode_value(value).map_err(|reason| API.malformed(ACCOUNT_ENDPOINT, reason, resp))?;
    Ok(vec![BalanceSnapshot {
        metric: "balance_usd".to_owned(),
        value: info.balance_usd,
        unit: "USD".to_owned(),
    }])
}

/// Parses the body as JSON and turns `"status": "ERROR"` and unexpected statuses into errors.
/// The orders of a `get_orders_status/` answer: the bare array the document shows, or the
/// envelope its general rule describes ("The first item of the response is the request
/// status"): an object with `"status": "OK"` and one array, the orders. Any other shape is
/// an error that names it.
fn order_list(value: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let map = match value {
        Value::Array(_) => return Ok(value),
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "expected an array of orders, got {}",
                super::json::kind_of(&other)
            ));
        }
    };
    let keys = || map.keys().cloned().collect::<Vec<_>>().join(", ");
    if map.get("status").and_then(Value::as_str) != Some("OK") {
        return Err(format!(
            "expected an array of orders, or an object with \"status\": \"OK\" and one array of them; got an object with keys {}",
            keys()
        ));
    }
    let mut arrays = map.iter().filter(|(_, v)| v.is_array());
    match (arrays.next(), arrays.next()) {
        (Some((_, orders)), None) => Ok(orders.clone()),
        (None, _) => Err(format!(
            "an object with \"status\": \"OK\" but no array of orders (keys {})",
            keys()
        )),
        (Some(_), Some(_)) => Err(format!(
            "an object with \"status\": \"OK\" and more than one array (keys {}); which holds the orders is unknown",
            keys()
        )),
    }
}

fn checked_body(
    endpoint: &'static str,
    resp: &Response,
) -> Result<serde_json::Value, ProviderError> {
    let value: Option<serde_json::Value> = decode(&resp.body).ok();
    if let Some(message) = value.as_ref().and_then(error_message_of) {
        return Err(if message == "unauthorised_request" {
            rejected(endpoint, &message)
        } else {
            ProviderError::Api {
                endpoint: endpoint.to_owned(),
                message,
            }
        });
    }
    if !resp.status.is_success() {
        return Err(ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: format!("unexpected HTTP {}", resp.status.as_u16()),
        });
    }
    match value {
        Some(value) => Ok(value),
        None => {
            let reason = decode::<serde_json::Value>(&resp.body)
                .err()
                .unwrap_or_default();
            Err(API.malformed(endpoint, reason, resp))
        }
    }
}

/// The message of an `"status": "ERROR"` body, if `body` is one.
fn error_message(body: &[u8]) -> Option<String> {
    decode::<serde_json::Value>(body)
        .ok()
        .as_ref()
        .and_then(error_message_of)
}

fn error_message_of(value: &serde_json::Value) -> Option<String> {
    let obj = value.as_object()?;
    if obj.get("status")?.as_str()? != "ERROR" {
        return None;
    }
    let message = obj
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("no message");
    Some(shorten(message))
}

fn rejected(endpoint: &str, message: &str) -> ProviderError {
    ProviderError::Rejected {
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
        hint: REJECTED_HINT,
    }
}
