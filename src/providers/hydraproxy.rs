//! HydraProxy: per-order daily upload/download/total MB, and the account balance.
//!
//! Two hosts, as the docs show: `base_url` (`view_usage_history/`,
//! `get_account_info/`) and `reseller_base_url` (`get_orders_status/`).
//! POST endpoints end in a slash and take form fields; digits go as strings.
//! Any body with `"status": "ERROR"` is an error whatever the HTTP status,
//! and `unauthorised_request` means rejected credentials, which HydraProxy
//! also answers to machines whose IP address is not whitelisted.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

use super::endpoint::{Api, shorten};
use super::json::{check_mb, decode, decode_value, parse_day, quote};
use super::{Discovery, Listed, ListedState, Provider, ProviderKind};
use crate::config::hydraproxy::parse_order_id;
use crate::config::{AccountConfig, HydraProxySettings, Secret};
use crate::error::ProviderError;
use crate::http::{AccountClient, Response};
use crate::model::{BalanceSnapshot, DayUsage, RawResponse, SubjectUsage};

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
const ACCOUNT_ENDPOINT: &str = "get_account_info/";
const REJECTED_HINT: &str = "; HydraProxy also gives this answer when this machine's IP address is not whitelisted for the API";

/// Wire types, named after the endpoints.
mod api {
    use serde::Deserialize;

    use super::super::json::{flexible_f64, flexible_id};

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

/// HydraProxy's conventions: error bodies are `{"status": "ERROR", "message": …}`.
const API: Api = Api {
    secret_fields: &[],
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
                let req = match &form {
                    Some((key, value)) => c.post(url.clone()).form(&[(key, value)]),
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
    ) -> Result<Vec<u64>, ProviderError> {
        let resp = self
            .request(
                &self.reseller_base_url,
                ORDERS_ENDPOINT,
                Some(("status", status.to_owned())),
            )
            .await?;
        parse_orders_status(&resp)
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
        for (status, list) in ORDER_STATUSES.iter().zip(lists) {
            match list {
                Ok(list) => {
                    for id in list {
                        ids.insert(id);
                        let state = listed_state(status);
                        listed.insert(id.to_string(), Listed { state, row: None });
                    }
                }
                Err(e) if e.is_rejected() => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        Ok(Discovery {
            subjects: ids.into_iter().map(|id| id.to_string()).collect(),
            errors,
            listed,
            ..Discovery::default()
        })
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
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

/// Parses `get_orders_status/`: a JSON array of orders.
pub fn parse_orders_status(resp: &Response) -> Result<Vec<u64>, ProviderError> {
    let value = checked_body(ORDERS_ENDPOINT, resp)?;
    let orders: Vec<api::OrderStatus> =
        decode_value(value).map_err(|reason| API.malformed(ORDERS_ENDPOINT, reason, resp))?;
    Ok(orders.into_iter().map(|o| o.id).collect())
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
