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

mod parse;
use parse::{DETAILS_PREFIX, error_message, listed_state};
pub use parse::{
    ListedOrder, parse_account_info, parse_order_details, parse_orders_status, parse_usage_history,
};

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
