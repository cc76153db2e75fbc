//! ProxyShard: no history at all, so every sync snapshots the present.
//!
//! Traffic: the account owner's `data_spent` per configured proxy type
//! (`GET /user/api/proxies/profile`) and every residential sub-user's
//! (`GET /user/api/proxies/sub-users`, all pages) are running byte counters;
//! the store derives days from them (subjects `<type>/owner` and
//! `<type>/<user_id>`). `data` and `data_remain` go to balances. Account:
//! `wallet_balance` (cents) and `active_orders` from `GET /user/api/me`.
//! Orders: every order of every status (`GET /user/api/orders`, all pages),
//! each snapshotted daily from `GET /user/api/orders/{id}` (subjects
//! `order/<id>`). Fields naming a password (`proxy_password`, in any spelling)
//! are removed from everything before it can be stored or logged. Errors are `{success: false, message}`.

use async_trait::async_trait;
use serde_json::Value;

use super::json::{check_mb, decode, decode_value, redact_keys, strip};
use super::{Provider, ProviderKind};
use crate::config::{AccountConfig, ProxyShardSettings, Secret};
use crate::error::{HttpError, ProviderError};
use crate::http::{AccountClient, Response};
use crate::model::{
    BalanceSnapshot, CounterKind, CounterReading, Discovery, EntityRecord, RawResponse,
    SubjectResult, SubjectUsage,
};

/// The documented API base URL.
pub const DEFAULT_BASE_URL: &str = "https://user-api.proxyshard.com";
/// ProxyShard keeps no history: only the present can be fetched.
pub const DEFAULT_RETENTION_DAYS: u32 = 1;
/// Proxy types snapshotted unless configured (the API's spelling).
pub const DEFAULT_PROXY_TYPES: [&str; 2] = ["standart", "premium"];
/// Bytes in the MB the archive stores (MiB: 2^20).
pub const BYTES_PER_MB: f64 = 1_048_576.0;
/// Page size for listings (the API allows 1..100).
const PAGE_LIMIT: usize = 100;
/// A listing longer than this many pages is cut off with an error.
const MAX_PAGES: usize = 10_000;
/// Fields never kept: any whose name contains `password` (customers' `proxy_password`
/// in any spelling; see `json::redact_keys`).
const SECRET_FIELDS: [&str; 1] = ["password"];

const PROFILE: &str = "user/api/proxies/profile";
const SUB_USERS: &str = "user/api/proxies/sub-users";
const SUB_USER: &str = "user/api/proxies/sub-user/{user_id}";
const ME: &str = "user/api/me";
const ORDERS: &str = "user/api/orders";
const ORDER: &str = "user/api/orders/{id}";

/// Wire types, named after the endpoints. Counters are bytes.
mod api {
    use serde::Deserialize;

    use super::super::json::{flexible_f64, flexible_id, flexible_opt_f64};

    /// `GET /user/api/proxies/profile` (and one entry of a sub-user's `data`).
    #[derive(Debug, Deserialize)]
    pub(super) struct Counters {
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
    pub(super) struct SubUser {
        #[serde(deserialize_with = "super::user_id")]
        pub user_id: String,
        #[serde(flatten)]
        pub counters: serde_json::Map<String, serde_json::Value>,
    }

    /// `GET /user/api/proxies/sub-users`.
    #[derive(Debug, Deserialize)]
    pub(super) struct SubUsersResponse {
        #[serde(default)]
        pub count: Option<u64>,
        pub data: Vec<SubUser>,
    }

    /// `GET /user/api/proxies/sub-user/{user_id}`.
    #[derive(Debug, Deserialize)]
    pub(super) struct SubUserResponse {
        pub data: Vec<Counters>,
    }

    /// `GET /user/api/me`; `wallet_balance` in cents.
    #[derive(Debug, Deserialize)]
    pub(super) struct MeResponse {
        #[serde(deserialize_with = "flexible_f64")]
        pub active_orders: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub wallet_balance: f64,
    }

    /// One order of `GET /user/api/orders`.
    #[derive(Debug, Deserialize)]
    pub(super) struct OrderRef {
        #[serde(deserialize_with = "flexible_id")]
        pub order_id: u64,
    }

    /// `GET /user/api/orders`.
    #[derive(Debug, Deserialize)]
    pub(super) struct OrdersResponse {
        pub orders: Vec<OrderRef>,
        #[serde(default)]
        pub next: Option<String>,
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
                "expected a user id, got {other}"
            )));
        }
    };
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.contains(['/', '?', '#'])
        && !id.chars().any(char::is_control);
    if ok {
        Ok(id)
    } else {
        Err(serde::de::Error::custom(format!(
            "{id:?} is not a usable user id"
        )))
    }
}

/// One ProxyShard account.
pub struct ProxyShard {
    base_url: String,
    token: Secret,
    proxy_types: Vec<String>,
    currency: String,
    client: AccountClient,
}

impl ProxyShard {
    /// Builds the provider from its config.
    pub fn new(
        account: &AccountConfig,
        settings: &ProxyShardSettings,
        client: AccountClient,
    ) -> Self {
        Self {
            base_url: account.base_url.clone(),
            token: settings.token.clone(),
            proxy_types: settings.proxy_types.clone(),
            currency: settings.currency.clone(),
            client,
        }
    }

    async fn get(
        &self,
        endpoint: &'static str,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<Response, ProviderError> {
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|e| ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        })?;
        url.path_segments_mut()
            .map_err(|()| ProviderError::Api {
                endpoint: endpoint.to_owned(),
                message: "base_url cannot take a path".to_owned(),
            })?
            .pop_if_empty()
            .extend(path);
        let auth = format!("Bearer {}", self.token.expose());
        let result = self
            .client
            .send(endpoint, |c| {
                c.get(url.clone())
                    .query(query)
                    .header("Accept", "application/json")
                    .header("Authorization", &auth)
            })
            .await;
        let resp = result.map_err(|source| match source {
            HttpError::Rejected { status, body } => ProviderError::Rejected {
                endpoint: endpoint.to_owned(),
                message: error_message(&body).unwrap_or_else(|| format!("HTTP {status}")),
                hint: "",
            },
            source => ProviderError::Http {
                endpoint: endpoint.to_owned(),
                source,
            },
        })?;
        checked(endpoint, resp)
    }

    /// The owner's counters for one proxy type, as a prefetched subject plus balances.
    async fn fetch_owner(
        &self,
        proxy_type: &str,
    ) -> Result<(SubjectUsage, Vec<BalanceSnapshot>), ProviderError> {
        let resp = self
            .get(
                PROFILE,
                &["user", "api", "proxies", "profile"],
                &[("proxy_type", proxy_type.to_owned())],
            )
            .await?;
        parse_profile(&format!("{proxy_type}/owner"), &resp)
    }

    /// Every sub-user of one proxy type, all pages; stops safely on a repeated page.
    async fn fetch_sub_users(
        &self,
        proxy_type: &str,
    ) -> Result<Vec<(api::SubUser, Response)>, ProviderError> {
        let mut all = Vec::new();
        let mut previous_first: Option<String> = None;
        for page in 0..MAX_PAGES {
            let query = [
                ("proxy_type", proxy_type.to_owned()),
                ("offset", all.len().to_string()),
                ("limit", PAGE_LIMIT.to_string()),
            ];
            let resp = self
                .get(SUB_USERS, &["user", "api", "proxies", "sub-users"], &query)
                .await?;
            let listing: api::SubUsersResponse = parse(SUB_USERS, &resp)?;
            let first = listing.data.first().map(|u| u.user_id.clone());
            if first.is_none() || first == previous_first {
                if first.is_some() {
                    tracing::warn!(
                        proxy_type,
                        page,
                        "Sub-user listing repeated a page; stopping there"
                    );
                }
                return Ok(all);
            }
            previous_first = first;
            let done = listing.data.len() < PAGE_LIMIT
                || listing
                    .count
                    .is_some_and(|c| (all.len() + listing.data.len()) as u64 >= c);
            all.extend(listing.data.into_iter().map(|u| (u, resp.clone())));
            if done {
                return Ok(all);
            }
        }
        Err(ProviderError::Api {
            endpoint: SUB_USERS.to_owned(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Every order id, all pages of `status=all`; stops safely on a repeated page.
    async fn fetch_order_ids(&self) -> Result<Vec<u64>, ProviderError> {
        let mut ids: Vec<u64> = Vec::new();
        let mut previous_first = None;
        for page in 0..MAX_PAGES {
            let query = [
                ("status", "all".to_owned()),
                ("offset", ids.len().to_string()),
                ("limit", PAGE_LIMIT.to_string()),
            ];
            let resp = self.get(ORDERS, &["user", "api", "orders"], &query).await?;
            let listing: api::OrdersResponse = parse(ORDERS, &resp)?;
            let first = listing.orders.first().map(|o| o.order_id);
            if first.is_none() || first == previous_first {
                if first.is_some() {
                    tracing::warn!(page, "Order listing repeated a page; stopping there");
                }
                return Ok(ids);
            }
            previous_first = first;
            let short = listing.orders.len() < PAGE_LIMIT;
            ids.extend(listing.orders.iter().map(|o| o.order_id));
            if short || listing.next.as_deref().is_none_or(str::is_empty) {
                return Ok(ids);
            }
        }
        Err(ProviderError::Api {
            endpoint: ORDERS.to_owned(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    async fn fetch_order(&self, id: &str) -> Result<SubjectUsage, ProviderError> {
        let resp = self.get(ORDER, &["user", "api", "orders", id], &[]).await?;
        parse_order(id, &resp)
    }

    async fn fetch_sub_user(
        &self,
        proxy_type: &str,
        user_id: &str,
    ) -> Result<SubjectUsage, ProviderError> {
        let query = [("proxy_type", proxy_type.to_owned())];
        let resp = self
            .get(
                SUB_USER,
                &["user", "api", "proxies", "sub-user", user_id],
                &query,
            )
            .await?;
        parse_sub_user(&resp)
    }
}

#[async_trait]
impl Provider for ProxyShard {
    fn kind(&self) -> ProviderKind {
        ProviderKind::ProxyShard
    }

    async fn discover_subjects(&self) -> Result<Discovery, ProviderError> {
        let mut discovery = Discovery::default();
        for proxy_type in &self.proxy_types {
            // The owner's profile fails only the owner's subject, unless the account is refused.
            let owner = match self.fetch_owner(proxy_type).await {
                Ok((owner, balances)) => {
                    discovery.balances.extend(balances);
                    Ok(owner)
                }
                Err(e) if e.is_rejected() => return Err(e),
                Err(e) => Err(e),
            };
            discovery
                .prefetched
                .insert(format!("{proxy_type}/owner"), owner);
            let mut previous_page: Option<bytes::Bytes> = None;
            for (user, resp) in self.fetch_sub_users(proxy_type).await? {
                let subject = format!("{proxy_type}/{}", user.user_id);
                let usage = sub_user_usage(&resp, user.counters).map(|(mut usage, counters)| {
                    discovery.balances.extend(balances_of(&subject, &counters));
                    // A page's body is kept (with keep_raw = "all") once, with its first sub-user.
                    if previous_page.as_ref() == Some(&resp.body) {
                        usage.raw.clear();
                    }
                    usage
                });
                previous_page = Some(resp.body.clone());
                discovery.prefetched.insert(subject, usage);
            }
        }
        let orders = self.fetch_order_ids().await?;
        discovery
            .subjects
            .extend(orders.into_iter().map(|id| format!("order/{id}")));
        Ok(discovery)
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        match subject.split_once('/') {
            Some(("order", id)) => self.fetch_order(id).await,
            Some((proxy_type, "owner")) => self.fetch_owner(proxy_type).await.map(|(u, _)| u),
            Some((proxy_type, user_id)) => self.fetch_sub_user(proxy_type, user_id).await,
            None => Err(ProviderError::Api {
                endpoint: "subject".to_owned(),
                message: format!("{subject:?} is not a ProxyShard subject"),
            }),
        }
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let resp = self.get(ME, &["user", "api", "me"], &[]).await?;
        let balances = parse_me(&resp, &self.currency)?;
        Ok((balances, raw(ME, &resp)))
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
fn sub_user_usage(
    resp: &Response,
    row: serde_json::Map<String, Value>,
) -> Result<(SubjectUsage, api::Counters), ProviderError> {
    let counters: api::Counters =
        decode_value(Value::Object(row)).map_err(|r| malformed(SUB_USERS, r, resp))?;
    Ok((counter_usage(SUB_USERS, resp, &counters)?, counters))
}

/// One page of `GET /user/api/orders`: the order ids.
pub fn parse_orders(resp: &Response) -> Result<Vec<u64>, ProviderError> {
    let listing: api::OrdersResponse = parse(ORDERS, resp)?;
    Ok(listing.orders.iter().map(|o| o.order_id).collect())
}

/// `GET /user/api/orders/{id}`: the order, without credentials, as the day's snapshot.
pub fn parse_order(id: &str, resp: &Response) -> Result<SubjectUsage, ProviderError> {
    let mut value: Value = decode(&resp.body).map_err(|r| malformed(ORDER, r, resp))?;
    let mut order = value
        .get_mut("order")
        .map(Value::take)
        .filter(Value::is_object)
        .ok_or_else(|| malformed(ORDER, "no `order` object".to_owned(), resp))?;
    strip(&mut order, &SECRET_FIELDS);
    Ok(SubjectUsage {
        records: vec![EntityRecord {
            kind: "order".to_owned(),
            id: id.to_owned(),
            data: order,
        }],
        raw: vec![raw(ORDER, resp)],
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
        .map_err(|r| malformed(endpoint, r, resp))?;
    Ok(SubjectUsage {
        counters: vec![CounterReading {
            kind: CounterKind::Total,
            value_mb: mb,
        }],
        raw: vec![raw(endpoint, resp)],
        ..SubjectUsage::default()
    })
}

/// `data` and `data_remain` of a subject, in MB.
fn balances_of(subject: &str, c: &api::Counters) -> Vec<BalanceSnapshot> {
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
fn parse<T: serde::de::DeserializeOwned>(
    endpoint: &str,
    resp: &Response,
) -> Result<T, ProviderError> {
    let value: Value = decode(&resp.body).map_err(|r| malformed(endpoint, r, resp))?;
    decode_value(value).map_err(|r| malformed(endpoint, r, resp))
}

/// 404 is not found; other non-2xx and `success: false` are errors carrying `message`.
fn checked(endpoint: &str, resp: Response) -> Result<Response, ProviderError> {
    let message =
        || error_message(&resp.body).unwrap_or_else(|| format!("HTTP {}", resp.status.as_u16()));
    if resp.status.as_u16() == 404 {
        return Err(ProviderError::NotFound {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    let failed = decode::<Value>(&resp.body)
        .ok()
        .is_some_and(|v| v.get("success") == Some(&Value::Bool(false)));
    if !resp.status.is_success() || failed {
        return Err(ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    Ok(resp)
}

fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = decode(body).ok()?;
    Some(value.get("message")?.as_str()?.chars().take(200).collect())
}

fn malformed(endpoint: &str, reason: String, resp: &Response) -> ProviderError {
    ProviderError::Malformed {
        endpoint: endpoint.to_owned(),
        reason,
        raw: Box::new(raw(endpoint, resp)),
    }
}

/// The body as it may be kept: proxy passwords removed.
fn raw(endpoint: &str, resp: &Response) -> RawResponse {
    RawResponse {
        endpoint: endpoint.to_owned(),
        status: resp.status.as_u16(),
        body: redact_keys(&resp.body, &SECRET_FIELDS),
    }
}
