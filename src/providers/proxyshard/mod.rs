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

mod parse;

use async_trait::async_trait;
use serde_json::Value;

use super::endpoint::{Api, shorten};
use super::json::{decode, quote};
use super::{Cadence, Discovery, Listed, ListedState, Provider, ProviderKind};
use crate::config::{AccountConfig, ProxyShardSettings, Secret};
use crate::error::ProviderError;
use crate::http::{AccountClient, Response};
use crate::model::{BalanceSnapshot, RawResponse, SubjectUsage};
use crate::redact::strip;
pub use parse::{
    BYTES_PER_MB, parse_me, parse_order, parse_orders, parse_profile, parse_sub_user,
    parse_sub_users,
};
use parse::{api, balances_of, parse, sub_user_usage};

/// Page size for listings (the API allows 1..100).
const PAGE_LIMIT: usize = 100;
/// A listing longer than this many pages is cut off with an error.
const MAX_PAGES: usize = 10_000;
/// Fields never kept: any whose name contains `password` (`proxy_password` in any
/// spelling; see `crate::redact`).
const SECRET_FIELDS: &[&str] = &["password"];

/// One page of a listing: its rows, the first row's id (a repeated page shows by it), and
/// the `count` it claims.
struct Page<T> {
    rows: Vec<T>,
    first: Option<String>,
    count: Option<u64>,
}

/// ProxyShard's conventions: error bodies are `{"success": false, "message": …}`.
const API: Api = Api {
    secret_fields: SECRET_FIELDS,
    error_message,
};

const PROFILE: &str = "user/api/proxies/profile";
const SUB_USERS: &str = "user/api/proxies/sub-users";
const SUB_USER: &str = "user/api/proxies/sub-user/{user_id}";
const ME: &str = "user/api/me";
const ORDERS: &str = "user/api/orders";
const ORDER: &str = "user/api/orders/{id}";

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
        let url = API.url(&self.base_url, endpoint, path)?;
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
        checked(
            endpoint,
            result.map_err(|e| API.http_error(endpoint, e, ""))?,
        )
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

    /// Every row of a paged listing (`offset`/`limit`), with the page it came on.
    ///
    /// Paging goes on until a page is empty, repeats the one before, or is shorter than an
    /// earlier one (the last). `count` and `next` decide nothing: the document calls the
    /// orders' `count` the "number of orders in the current result set" while the
    /// residential notes call the sub-users' `count` a total, and a server may cap `limit`
    /// below what was asked, so a first page shorter than the limit is followed by one
    /// more request (a "not found" past the first page ends the listing too). A `count`
    /// above the rows found is warned about.
    async fn all_pages<T>(
        &self,
        endpoint: &'static str,
        path: &[&str],
        query: &[(&str, String)],
        parse_page: fn(&Response) -> Result<Page<T>, ProviderError>,
    ) -> Result<Vec<(T, Response)>, ProviderError> {
        let mut all = Vec::new();
        let (mut previous_first, mut largest, mut claimed) = (None, 0, None);
        for _ in 0..MAX_PAGES {
            let mut page_query = query.to_vec();
            page_query.push(("offset", all.len().to_string()));
            page_query.push(("limit", PAGE_LIMIT.to_string()));
            let resp = match self.get(endpoint, path, &page_query).await {
                // Past the last page, a server may answer "not found" instead of nothing.
                Err(ProviderError::NotFound { .. }) if !all.is_empty() => break,
                other => other?,
            };
            let page = parse_page(&resp)?;
            claimed = page.count.or(claimed);
            let rows = page.rows.len();
            if rows == 0 || page.first.is_some() && page.first == previous_first {
                if rows > 0 {
                    tracing::warn!(
                        endpoint,
                        offset = all.len(),
                        "Listing repeated a page; stopping there"
                    );
                }
                break;
            }
            previous_first = page.first;
            all.extend(page.rows.into_iter().map(|row| (row, resp.clone())));
            if rows < largest {
                break;
            }
            largest = largest.max(rows);
        }
        if all.len() >= PAGE_LIMIT * MAX_PAGES {
            return Err(ProviderError::Api {
                endpoint: endpoint.to_owned(),
                message: format!("more than {MAX_PAGES} pages"),
            });
        }
        if let Some(count) = claimed.filter(|c| *c > all.len() as u64) {
            tracing::warn!(
                endpoint,
                count,
                found = all.len(),
                "The listing's count is above the rows it gave over every page"
            );
        }
        Ok(all)
    }

    /// Every sub-user of one proxy type, all pages.
    async fn fetch_sub_users(
        &self,
        proxy_type: &str,
    ) -> Result<Vec<(api::SubUser, Response)>, ProviderError> {
        let path = ["user", "api", "proxies", "sub-users"];
        let query = [("proxy_type", proxy_type.to_owned())];
        self.all_pages(SUB_USERS, &path, &query, |resp| {
            let listing: api::SubUsersResponse = parse(SUB_USERS, resp)?;
            Ok(Page {
                first: listing.data.first().map(|u| u.user_id.clone()),
                count: listing.count.as_ref().and_then(Value::as_u64),
                rows: listing.data,
            })
        })
        .await
    }

    /// Every order of every status, all pages: its id and its listing row (secrets removed).
    async fn fetch_order_ids(&self) -> Result<Vec<(u64, Value)>, ProviderError> {
        let path = ["user", "api", "orders"];
        let query = [("status", "all".to_owned())];
        let orders = self
            .all_pages(ORDERS, &path, &query, |resp| {
                let listing: api::OrdersResponse = parse(ORDERS, resp)?;
                Ok(Page {
                    first: listing.orders.first().map(|o| o.order_id.to_string()),
                    count: listing.count.as_ref().and_then(Value::as_u64),
                    rows: listing.orders,
                })
            })
            .await?;
        Ok(orders
            .into_iter()
            .map(|(o, _)| {
                let mut row = Value::Object(o.row);
                let _ = strip(&mut row, SECRET_FIELDS);
                (o.order_id, row)
            })
            .collect())
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
            // A listing that fails leaves the rest of discovery to go on (the run is partial).
            let sub_users = match self.fetch_sub_users(proxy_type).await {
                Ok(users) => users,
                Err(e) if e.is_rejected() => return Err(e),
                Err(e) => {
                    discovery.errors.push(e);
                    Vec::new()
                }
            };
            for (user, resp) in sub_users {
                let subject = format!("{proxy_type}/{}", user.user_id);
                let label = user.counters.get("first_name").and_then(Value::as_str);
                let listed = Listed {
                    label: label.map(str::to_owned),
                    ..Listed::new(ListedState::Other)
                };
                discovery.listed.insert(subject.clone(), listed);
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
        match self.fetch_order_ids().await {
            Ok(orders) => {
                for (id, row) in orders {
                    let subject = format!("order/{id}");
                    let row = Some(("order".to_owned(), id.to_string(), row));
                    let listed = Listed {
                        row,
                        ..Listed::new(ListedState::Other)
                    };
                    discovery.listed.insert(subject.clone(), listed);
                    discovery.subjects.push(subject);
                }
            }
            Err(e) if e.is_rejected() => return Err(e),
            Err(e) => discovery.errors.push(e),
        }
        Ok(discovery)
    }

    /// Orders are daily snapshots; the counters (owner, sub-users) are needed every tick.
    fn cadence(&self, subject: &str) -> Cadence {
        if subject.starts_with("order/") {
            Cadence::Daily
        } else {
            Cadence::EveryTick
        }
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        match subject.split_once('/') {
            Some(("order", id)) => self.fetch_order(id).await,
            Some((proxy_type, "owner")) => self.fetch_owner(proxy_type).await.map(|(u, _)| u),
            Some((proxy_type, user_id)) => self.fetch_sub_user(proxy_type, user_id).await,
            None => Err(ProviderError::Api {
                endpoint: "subject".to_owned(),
                message: format!("{} is not a ProxyShard subject", quote(subject)),
            }),
        }
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let resp = self.get(ME, &["user", "api", "me"], &[]).await?;
        let balances = parse_me(&resp, &self.currency)?;
        Ok((balances, API.raw(ME, &resp)))
    }
}

/// 404 is not found; other non-2xx and `success: false` are errors carrying `message`.
fn checked(endpoint: &str, resp: Response) -> Result<Response, ProviderError> {
    API.checked(endpoint, resp, |v| {
        v.get("success") == Some(&Value::Bool(false))
    })
}

/// `message` of an error body, shortened.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = decode(body).ok()?;
    Some(shorten(value.get("message")?.as_str()?))
}
