//! InfiniteProxies: per-customer daily totals (MB) for the last 14 days, and balances.
//!
//! `GET /customers` lists the customers (with each one's balance, in GB);
//! `GET /customer/@{username}/transactions` gives a map of day to MB, either
//! directly under `payload` or under `payload.consumption` (the document
//! shows both). Days with 0 MB are real data. Usernames are lower-cased as
//! the API does and escaped in the URL. The document does not say how the
//! key is sent, so the header and its prefix are configurable. Error bodies
//! are `{"status": {"code": …, "message": …}}`; a 404 for a customer means
//! it was deleted. Fields naming a password (customers' `proxy_password`, in
//! any spelling) are removed from every body before it can be kept raw.

use async_trait::async_trait;
use std::collections::BTreeSet;

use super::endpoint::{Api, shorten};
use super::json::{check_mb, decode, decode_value, kind_of, parse_day, quote};
use super::{Discovery, Provider, ProviderKind};
use crate::config::{AccountConfig, InfiniteProxiesSettings};
use crate::error::ProviderError;
use crate::http::{AccountClient, Response};
use crate::model::{BalanceSnapshot, DayUsage, RawResponse, SubjectUsage};

const CUSTOMERS_ENDPOINT: &str = "customers";
const TRANSACTIONS_ENDPOINT: &str = "customer/@{username}/transactions";
const ME_ENDPOINT: &str = "@me";
const REJECTED_HINT: &str = "; check api_key, and auth_header/auth_prefix (the document does not say which form the API wants)";

/// InfiniteProxies' conventions: fields naming a password (customers' `proxy_password`,
/// in any spelling) are never kept; error bodies are `{"status": {"message": …}}`.
const API: Api = Api {
    secret_fields: &["password"],
    error_message: status_message,
};

/// Wire types, named after the endpoints.
mod api {
    use serde::Deserialize;

    use super::super::json::{flexible_f64, flexible_opt_f64};

    /// `GET /customers`.
    #[derive(Debug, Deserialize)]
    pub(super) struct CustomersResponse {
        pub payload: CustomersPayload,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct CustomersPayload {
        pub users: Vec<Customer>,
    }

    /// One customer; `balance` is in GB.
    #[derive(Debug, Deserialize)]
    pub(super) struct Customer {
        pub username: String,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub balance: Option<f64>,
    }

    /// `GET /@me`; balances in MB.
    #[derive(Debug, Deserialize)]
    pub(super) struct MeResponse {
        pub payload: Me,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Me {
        #[serde(deserialize_with = "flexible_f64")]
        pub balance_residential: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub balance_mobile: f64,
    }
}

/// One InfiniteProxies reseller account.
pub struct InfiniteProxies {
    base_url: String,
    auth_header: reqwest::header::HeaderName,
    auth_value: reqwest::header::HeaderValue,
    customers: Vec<String>,
    client: AccountClient,
}

impl InfiniteProxies {
    /// Builds the provider from its config.
    pub fn new(
        account: &AccountConfig,
        settings: &InfiniteProxiesSettings,
        client: AccountClient,
    ) -> Self {
        Self {
            base_url: account.base_url.clone(),
            auth_header: settings.auth_header.clone(),
            auth_value: settings.auth_value.clone(),
            customers: settings.customers.clone(),
            client,
        }
    }

    async fn get(
        &self,
        endpoint: &'static str,
        url: reqwest::Url,
    ) -> Result<Response, ProviderError> {
        let result = self
            .client
            .send(endpoint, |c| {
                c.get(url.clone())
                    .header("Accept", "application/json")
                    .header(&self.auth_header, self.auth_value.clone())
            })
            .await;
        result.map_err(|e| API.http_error(endpoint, e, REJECTED_HINT))
    }
}

#[async_trait]
impl Provider for InfiniteProxies {
    fn kind(&self) -> ProviderKind {
        ProviderKind::InfiniteProxies
    }

    /// The listed customers plus the configured ones. When the listing fails, the
    /// configured customers still sync (the run is partial); rejected credentials fail
    /// discovery whole.
    async fn discover_subjects(&self) -> Result<Discovery, ProviderError> {
        let url = API.url(&self.base_url, CUSTOMERS_ENDPOINT, &["customers"])?;
        let listed = match self.get(CUSTOMERS_ENDPOINT, url).await {
            Ok(resp) => parse_customers(&resp),
            Err(e) => Err(e),
        };
        let mut discovery = match listed {
            Ok(discovery) => discovery,
            Err(e) if e.is_rejected() => return Err(e),
            Err(e) => Discovery {
                errors: vec![e],
                ..Discovery::default()
            },
        };
        let mut subjects: BTreeSet<String> = discovery.subjects.drain(..).collect();
        subjects.extend(self.customers.iter().map(|c| c.to_lowercase()));
        discovery.subjects = subjects.into_iter().collect();
        Ok(discovery)
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        let username = subject.to_lowercase();
        let segments = ["customer", &format!("@{username}"), "transactions"];
        let url = API.url(&self.base_url, TRANSACTIONS_ENDPOINT, &segments)?;
        let resp = self.get(TRANSACTIONS_ENDPOINT, url).await?;
        let days = parse_transactions(&resp)?;
        Ok(SubjectUsage {
            days,
            raw: vec![API.raw(TRANSACTIONS_ENDPOINT, &resp)],
            ..SubjectUsage::default()
        })
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let url = API.url(&self.base_url, ME_ENDPOINT, &["@me"])?;
        let resp = self.get(ME_ENDPOINT, url).await?;
        Ok((parse_me(&resp)?, API.raw(ME_ENDPOINT, &resp)))
    }
}

/// Parses `/customers`: lower-cased usernames, and each customer's balance (GB).
pub fn parse_customers(resp: &Response) -> Result<Discovery, ProviderError> {
    let value = checked_body(CUSTOMERS_ENDPOINT, resp)?;
    let parsed: api::CustomersResponse =
        decode_value(value).map_err(|reason| API.malformed(CUSTOMERS_ENDPOINT, reason, resp))?;
    let mut discovery = Discovery::default();
    for (i, user) in parsed.payload.users.into_iter().enumerate() {
        let username = user.username.trim().to_lowercase();
        if username.is_empty() {
            return Err(API.malformed(
                CUSTOMERS_ENDPOINT,
                format!("payload.users[{i}].username is empty"),
                resp,
            ));
        }
        // The document calls it "the GB balance", but add_balance/remove_balance take
        // "the amount of MB" and its examples move it 100 → 150 → 100: MB (README).
        if let Some(balance) = user.balance {
            discovery.balances.push(BalanceSnapshot {
                metric: format!("customer_balance:{username}"),
                value: balance,
                unit: "MB".to_owned(),
            });
        }
        discovery.subjects.push(username);
    }
    Ok(discovery)
}

/// Parses `/customer/@{username}/transactions`, accepting both documented payload shapes.
pub fn parse_transactions(resp: &Response) -> Result<Vec<DayUsage>, ProviderError> {
    let value = checked_body(TRANSACTIONS_ENDPOINT, resp)?;
    let bad = |reason: String| API.malformed(TRANSACTIONS_ENDPOINT, reason, resp);
    let payload = value
        .get("payload")
        .ok_or_else(|| bad("no `payload`".to_owned()))?;
    let (map, path) = match payload.get("consumption") {
        Some(inner) => (inner, "payload.consumption"),
        None => (payload, "payload"),
    };
    let map = map
        .as_object()
        .ok_or_else(|| bad(format!("{path} is not an object of day: MB")))?;
    let mut days = Vec::with_capacity(map.len());
    for (key, mb) in map {
        let day = parse_day(key).map_err(|e| bad(format!("{path}: {e}")))?;
        let total = mb_value(mb)
            .and_then(|v| check_mb(key, v))
            .map_err(|e| bad(format!("{path}.{key}: {e}")))?;
        days.push(DayUsage {
            day,
            upload_mb: None,
            download_mb: None,
            total_mb: total,
        });
    }
    days.sort_by_key(|d| d.day);
    Ok(days)
}

/// Parses `/@me` into the reseller's residential and mobile balances (MB).
pub fn parse_me(resp: &Response) -> Result<Vec<BalanceSnapshot>, ProviderError> {
    let value = checked_body(ME_ENDPOINT, resp)?;
    let me: api::MeResponse =
        decode_value(value).map_err(|reason| API.malformed(ME_ENDPOINT, reason, resp))?;
    let mb = |metric: &str, value| BalanceSnapshot {
        metric: metric.to_owned(),
        value,
        unit: "MB".to_owned(),
    };
    Ok(vec![
        mb("balance_residential_mb", me.payload.balance_residential),
        mb("balance_mobile_mb", me.payload.balance_mobile),
    ])
}

fn mb_value(value: &serde_json::Value) -> Result<f64, String> {
    match value {
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a number, got {}", quote(s))),
        other => Err(format!("expected a number, got {}", kind_of(other))),
    }
}

/// Turns 404 into NotFound, other error statuses and `status.code` ≥ 400 into Api errors,
/// and a `status.code` of 401 or 403 into rejected credentials even under HTTP 200.
fn checked_body(
    endpoint: &'static str,
    resp: &Response,
) -> Result<serde_json::Value, ProviderError> {
    let message = || API.message(resp);
    if resp.status.as_u16() == 404 {
        return Err(ProviderError::NotFound {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    if !resp.status.is_success() {
        return Err(ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    let value: serde_json::Value =
        decode(&resp.body).map_err(|reason| API.malformed(endpoint, reason, resp))?;
    let code = value
        .pointer("/status/code")
        .and_then(serde_json::Value::as_u64);
    match code {
        // The document's envelope carries the real outcome, whatever the HTTP status said.
        Some(401 | 403) => Err(ProviderError::Rejected {
            endpoint: endpoint.to_owned(),
            message: message(),
            hint: REJECTED_HINT,
        }),
        Some(404) => Err(ProviderError::NotFound {
            endpoint: endpoint.to_owned(),
            message: message(),
        }),
        Some(c) if c >= 400 => Err(ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: message(),
        }),
        _ => Ok(value),
    }
}

/// `status.message` of an error body, when the body is JSON.
fn status_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = decode(body).ok()?;
    Some(shorten(value.pointer("/status/message")?.as_str()?))
}
