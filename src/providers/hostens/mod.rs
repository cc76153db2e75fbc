//! Hostens (a HostBill client area): monthly history, running bandwidth counters, balance.
//!
//! Servers come from `GET /server`, which the document shows as a single
//! object; an array, and a `{"servers": [...]}` wrapper, are accepted too.
//! For each server `GET /server/@id` gives the running counters `bw_in`
//! (download) and `bw_out` (upload), from which the store derives days
//! (SPEC §5.7), and the whole details object is kept as a daily snapshot
//! (disk and RAM usage). `GET /server/@id/history` gives months: bandwidth
//! to `month_usage`, quota and inode figures to `month_resources`. The
//! document's own placeholder row (`year: 0, month: 0`) is skipped quietly;
//! any other impossible period (a month 13) is skipped and recorded with the
//! run, where operators look. `GET /balance` gives `acc_balance` and `acc_credit`.
//!
//! The spend record (`billing.rs`): invoices, services, domains and certificates
//! (`GET /<kind>`, then `GET /<kind>/@id`, subjects `<kind>/<id>`) are daily snapshots
//! the fetch plan takes again when the listing's row changes, and never again for a
//! settled one (paid, cancelled, terminated, expired) the listing still shows the same.
//! An invoice's `client` block (the account holder's name and address), a service's
//! login and a certificate's CSR and contacts are never kept, not even raw.
//!
//! Authentication is HTTP Basic, or the token flow: `POST /token` trades the
//! refresh token for an access token *and a new refresh token*. The new pair
//! is handed to the [`TokenVault`] and used only once it is stored durably;
//! the next start loads it, so the refresh token in `daemon.toml` is only the
//! seed. An access token refused with 401 is refreshed once and the request
//! retried once. Token bodies are never kept, logged or put in an error.

mod billing;
mod parse;
mod token;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::endpoint::{Api, shorten};
use super::json::{decode, quote};
use super::{Cadence, Discovery, Listed, ListedState, Provider, ProviderKind, TokenVault};
use crate::config::{AccountConfig, HostensAuth, HostensSettings, Secret};
use crate::error::{HttpError, ProviderError};
use crate::http::{AccountClient, Response};
use crate::model::{BalanceSnapshot, EntityRecord, RawResponse, SubjectUsage};
pub use billing::{
    Listed as ListedItem, parse_certificate, parse_certificates, parse_domain, parse_domains,
    parse_invoice, parse_invoices, parse_service, parse_services,
};
pub use parse::{
    History, ListedServer, parse_balance, parse_details, parse_history, parse_servers,
};
use token::TokenFlow;

/// Fields never kept, not even in a raw body: any whose name contains one of these
/// (`root_password`, `vnc_password`, `RootPass`, a service's `username` and `password`,
/// an invoice's `client` block, the account holder's name and address, and a
/// certificate's CSR, contacts, organization and e-mail).
const SECRET_FIELDS: &[&str] = &[
    "password",
    "rootpass",
    "username",
    "client",
    "csr",
    "contacts",
    "organization",
    "cert_email",
];

/// Hostens' conventions: HostBill's error bodies are `{"error": ["…"]}` (or a `message`).
const API: Api = Api {
    secret_fields: SECRET_FIELDS,
    error_message,
};

const SERVERS: &str = "server";
const SERVER: &str = "server/@id";
const INVOICES: &str = "invoice";
const INVOICE: &str = "invoice/@id";
const SERVICES: &str = "service";
const SERVICE: &str = "service/@id";
const DOMAINS: &str = "domain";
const DOMAIN: &str = "domain/@id";
const CERTIFICATES: &str = "certificate";
const CERTIFICATE: &str = "certificate/@id";
const HISTORY: &str = "server/@id/history";
const BALANCE: &str = "balance";

/// How many times a request refused with an access token adopted from another process is
/// tried again with a newer one.
const ADOPTED_RETRIES: u32 = 3;

const BASIC_HINT: &str = "; check `username` (the client-area email) and `password`";

/// How requests are authenticated.
enum Auth {
    Basic { username: String, password: Secret },
    Token(TokenFlow),
}

/// One Hostens account.
pub struct Hostens {
    base_url: String,
    auth: Auth,
    mb_per_unit: f64,
    client: AccountClient,
}

impl Hostens {
    /// Builds the provider from its config; `vault` keeps the rotated refresh token.
    pub fn new(
        account: &AccountConfig,
        settings: &HostensSettings,
        client: AccountClient,
        vault: Arc<dyn TokenVault>,
    ) -> Self {
        let auth = match &settings.auth {
            HostensAuth::Basic { username, password } => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            HostensAuth::Token { seed } => Auth::Token(TokenFlow::new(
                &account.base_url,
                client.clone(),
                seed.clone(),
                vault,
            )),
        };
        Self {
            base_url: account.base_url.clone(),
            auth,
            mb_per_unit: settings.mb_per_unit,
            client,
        }
    }

    /// Sends with the flow's access token. A 401 gets a fresh token and the request again:
    /// while the token came from another process sharing the chain (which may rotate
    /// again meanwhile), up to [`ADOPTED_RETRIES`] times; once after a token this process
    /// just obtained itself.
    async fn send_with_token(
        &self,
        flow: &TokenFlow,
        endpoint: &'static str,
        request: &(dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Sync),
    ) -> Result<Result<Response, HttpError>, ProviderError> {
        let (mut access, mut generation) = flow.access_token().await?;
        let mut adopted_left = ADOPTED_RETRIES;
        loop {
            let sent = self
                .client
                .send(endpoint, |c| request(c).bearer_auth(access.expose()))
                .await;
            if !matches!(sent, Err(HttpError::Rejected { status: 401, .. })) {
                return Ok(sent);
            }
            tracing::info!(endpoint, "Access token refused; getting a fresh one");
            let fresh = flow.refresh_after(generation).await?;
            let (own, next_generation) = (fresh.own, fresh.generation);
            access = fresh.access;
            generation = next_generation;
            let retried = self
                .client
                .send(endpoint, |c| request(c).bearer_auth(access.expose()))
                .await;
            let refused = matches!(retried, Err(HttpError::Rejected { status: 401, .. }));
            if !refused || own || adopted_left == 0 {
                return Ok(retried);
            }
            adopted_left -= 1;
        }
    }

    /// An invoice's or a service's details, as the day's snapshot of it.
    async fn fetch_item(
        &self,
        endpoint: &'static str,
        kind: &str,
        id: &str,
        parse: fn(&str, &[u8]) -> Result<Value, String>,
    ) -> Result<SubjectUsage, ProviderError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::Api {
                endpoint: endpoint.to_owned(),
                message: format!("{} is not a Hostens {kind} id", quote(id)),
            });
        }
        let resp = self.get(endpoint, &[kind, id]).await?;
        let data = parse(id, &resp.body).map_err(|r| API.malformed(endpoint, r, &resp))?;
        Ok(SubjectUsage {
            records: vec![EntityRecord {
                kind: kind.to_owned(),
                id: id.to_owned(),
                data,
            }],
            raw: vec![API.raw(endpoint, &resp)],
            ..SubjectUsage::default()
        })
    }

    /// `GET` with the account's credentials; 404 is not found, error bodies are errors.
    async fn get(&self, endpoint: &'static str, path: &[&str]) -> Result<Response, ProviderError> {
        let url = API.url(&self.base_url, endpoint, path)?;
        let request = |c: &reqwest::Client| c.get(url.clone()).header("Accept", "application/json");
        let result = match &self.auth {
            Auth::Basic { username, password } => {
                self.client
                    .send(endpoint, |c| {
                        request(c).basic_auth(username, Some(password.expose()))
                    })
                    .await
            }
            Auth::Token(flow) => self.send_with_token(flow, endpoint, &request).await?,
        };
        let hint = match self.auth {
            Auth::Basic { .. } => BASIC_HINT,
            Auth::Token(_) => "",
        };
        checked(
            endpoint,
            result.map_err(|e| API.http_error(endpoint, e, hint))?,
        )
    }
}

#[async_trait]
impl Provider for Hostens {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Hostens
    }

    /// Servers, invoices and services. A listing that fails leaves the others to sync
    /// (the run is partial, the failure named); one that is not found (404) has none.
    /// Only rejected credentials fail discovery whole.
    async fn discover_subjects(&self) -> Result<Discovery, ProviderError> {
        let mut discovery = Discovery::default();
        let servers = match self.get(SERVERS, &["server"]).await {
            Ok(resp) => parse_servers(&resp.body).map_err(|r| API.malformed(SERVERS, r, &resp)),
            Err(e) => Err(e),
        };
        let servers = match servers {
            Ok(servers) => servers,
            Err(ProviderError::NotFound { .. }) => Vec::new(),
            Err(e) if e.is_rejected() => return Err(e),
            Err(e) => {
                discovery.errors.push(e);
                Vec::new()
            }
        };
        for server in servers {
            let listed = Listed {
                label: server.label,
                ..Listed::new(ListedState::Other)
            };
            discovery.listed.insert(server.id.clone(), listed);
            discovery.subjects.push(server.id);
        }
        for (endpoint, kind, parse) in [
            (
                INVOICES,
                "invoice",
                parse_invoices as fn(&[u8]) -> Result<Vec<ListedItem>, String>,
            ),
            (SERVICES, "service", parse_services),
            (DOMAINS, "domain", parse_domains),
            (CERTIFICATES, "certificate", parse_certificates),
        ] {
            let listed = match self.get(endpoint, &[endpoint]).await {
                Ok(resp) => parse(&resp.body).map_err(|r| API.malformed(endpoint, r, &resp)),
                Err(e) => Err(e),
            };
            match listed {
                Ok(items) => {
                    for item in items {
                        let subject = format!("{kind}/{}", item.id);
                        let state = if item.settled {
                            ListedState::Ended
                        } else {
                            ListedState::Other
                        };
                        let listed = Listed {
                            row: Some((kind.to_owned(), item.id, item.row)),
                            label: item.label,
                            ..Listed::new(state)
                        };
                        discovery.listed.insert(subject.clone(), listed);
                        discovery.subjects.push(subject);
                    }
                }
                // A client area without the billing module has no such listing.
                Err(ProviderError::NotFound { .. }) => {
                    tracing::debug!(endpoint, "No listing here; nothing of it to keep");
                }
                Err(e) if e.is_rejected() => return Err(e),
                Err(e) => discovery.errors.push(e),
            }
        }
        Ok(discovery)
    }

    /// A server's counters are needed every tick (derived days); invoices and services
    /// are daily snapshots.
    fn cadence(&self, subject: &str) -> Cadence {
        if subject.contains('/') {
            Cadence::Daily
        } else {
            Cadence::EveryTick
        }
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        match subject.split_once('/') {
            Some(("invoice", id)) => {
                return self.fetch_item(INVOICE, "invoice", id, parse_invoice).await;
            }
            Some(("service", id)) => {
                return self.fetch_item(SERVICE, "service", id, parse_service).await;
            }
            Some(("domain", id)) => {
                return self.fetch_item(DOMAIN, "domain", id, parse_domain).await;
            }
            Some(("certificate", id)) => {
                return self
                    .fetch_item(CERTIFICATE, "certificate", id, parse_certificate)
                    .await;
            }
            _ => {}
        }
        if subject.is_empty() || !subject.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::Api {
                endpoint: SERVER.to_owned(),
                message: format!("{} is not a Hostens server id", quote(subject)),
            });
        }
        let details = self.get(SERVER, &["server", subject]).await?;
        let (counters, record) = parse_details(&details.body, self.mb_per_unit)
            .map_err(|r| API.malformed(SERVER, r, &details))?;
        let mut usage = SubjectUsage {
            counters,
            records: vec![EntityRecord {
                kind: "server".to_owned(),
                id: subject.to_owned(),
                data: record,
            }],
            raw: vec![API.raw(SERVER, &details)],
            ..SubjectUsage::default()
        };
        match self.get(HISTORY, &["server", subject, "history"]).await {
            Ok(resp) => {
                let history = parse_history(&resp.body, self.mb_per_unit)
                    .map_err(|r| API.malformed(HISTORY, r, &resp))?;
                if history.placeholders > 0 {
                    tracing::debug!(
                        server = subject,
                        rows = history.placeholders,
                        "Skipped the documented year-0 placeholder row"
                    );
                }
                usage.notes = history
                    .skipped
                    .into_iter()
                    .map(|row| format!("{HISTORY}: {row}"))
                    .collect();
                usage.months = history.months;
                usage.month_resources = history.resources;
                usage.raw.push(API.raw(HISTORY, &resp));
            }
            // A server type without history still has counters.
            Err(ProviderError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(usage)
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let resp = self.get(BALANCE, &["balance"]).await?;
        let balances = parse_balance(&resp.body).map_err(|r| API.malformed(BALANCE, r, &resp))?;
        Ok((balances, API.raw(BALANCE, &resp)))
    }
}

/// 404 is not found; other non-2xx, `success: false` and bodies whose `error` says
/// something are provider errors. HostBill sends `"error": []` on success in places (the
/// document shows it): an empty list, string or `null` is no error.
pub(super) fn checked(endpoint: &str, resp: Response) -> Result<Response, ProviderError> {
    API.checked(endpoint, resp, |v| {
        let says_error = |e: &Value| match e {
            Value::Null | Value::Bool(false) => false,
            Value::Array(items) => !items.is_empty(),
            Value::String(text) => !text.trim().is_empty(),
            Value::Object(map) => !map.is_empty(),
            _ => true,
        };
        v.get("success") == Some(&Value::Bool(false)) || v.get("error").is_some_and(says_error)
    })
}

/// HostBill's `{"error": ["…"]}` (or a string), or a `message`, shortened.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = decode(body).ok()?;
    let text = match value.get("error").or_else(|| value.get("message"))? {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        _ => return None,
    };
    Some(shorten(&text))
}
