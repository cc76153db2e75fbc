//! Hostens (a HostBill client area): monthly history, running bandwidth counters, balance.
//!
//! Servers come from `GET /server`, which the document shows as a single
//! object; an array, and a `{"servers": [...]}` wrapper, are accepted too.
//! For each server `GET /server/@id` gives the running counters `bw_in`
//! (download) and `bw_out` (upload), from which the store derives days
//! (SPEC §5.7), and the whole details object is kept as a daily snapshot
//! (disk and RAM usage). `GET /server/@id/history` gives months: bandwidth
//! to `month_usage`, quota and inode figures to `month_resources`; rows with
//! an impossible period (the document's own `year: 0, month: 0`) are skipped
//! with a warning. `GET /balance` gives `acc_balance` and `acc_credit`.
//!
//! Authentication is HTTP Basic, or the token flow: `POST /token` trades the
//! refresh token for an access token *and a new refresh token*. The new pair
//! is handed to the [`TokenVault`] and used only once it is stored durably;
//! the next start loads it, so the refresh token in `daemon.toml` is only the
//! seed. An access token refused with 401 is refreshed once and the request
//! retried once. Token bodies are never kept, logged or put in an error.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::Value;

use super::json::{check_mb, decode, decode_value, redact_keys, strip};
use super::{Provider, ProviderKind, StoredToken, TokenVault};
use crate::config::{AccountConfig, HostensAuth, HostensSettings, Secret};
use crate::error::{HttpError, ProviderError};
use crate::http::{AccountClient, Response};
use crate::model::{
    BalanceSnapshot, CounterKind, CounterReading, Discovery, EntityRecord, MonthResources,
    MonthUsage, RawResponse, SubjectUsage,
};

/// The documented API base URL.
pub const DEFAULT_BASE_URL: &str = "https://billing.hostens.com/api";
/// Daily figures are derived from counters, so a missed day cannot be fetched later.
pub const DEFAULT_RETENTION_DAYS: u32 = 1;
/// Fields never kept from a server's details, should Hostens ever send them: any whose
/// name contains one of these (`root_password`, `vnc_password`, `RootPass`, …).
const SECRET_FIELDS: [&str; 2] = ["password", "rootpass"];

const SERVERS: &str = "server";
const SERVER: &str = "server/@id";
const HISTORY: &str = "server/@id/history";
const BALANCE: &str = "balance";
const TOKEN: &str = "token";

const BASIC_HINT: &str = "; check `username` (the client-area email) and `password`";
const TOKEN_HINT: &str = "; the refresh token was refused: put a new `refresh_token` in daemon.toml \
     (the archive keeps every rotated one, so this means it was revoked or expired)";

/// Wire types, named after the endpoints.
mod api {
    use serde::Deserialize;
    use serde_json::Value;

    use super::super::json::{flexible_f64, flexible_id, flexible_opt_f64};

    /// One server of `GET /server`.
    #[derive(Debug, Deserialize)]
    pub(super) struct ServerRef {
        #[serde(deserialize_with = "flexible_id")]
        pub server_id: u64,
    }

    /// The counters of `GET /server/@id`, in `bandwidth_unit`.
    #[derive(Debug, Deserialize)]
    pub(super) struct Details {
        #[serde(deserialize_with = "flexible_f64")]
        pub bw_in: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub bw_out: f64,
    }

    /// One row of `GET /server/@id/history`.
    #[derive(Debug, Deserialize)]
    pub(super) struct HistoryRow {
        pub year: Value,
        pub month: Value,
        #[serde(deserialize_with = "flexible_f64")]
        pub bw_in: f64,
        #[serde(deserialize_with = "flexible_f64")]
        pub bw_out: f64,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub quota_usage: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub quota_limit: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub inode_usage: Option<f64>,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub inode_limit: Option<f64>,
    }

    /// `details` of `GET /balance`.
    #[derive(Debug, Deserialize)]
    pub(super) struct Balance {
        pub currency: String,
        #[serde(deserialize_with = "flexible_f64")]
        pub acc_balance: f64,
        #[serde(default, deserialize_with = "flexible_opt_f64")]
        pub acc_credit: Option<f64>,
    }

    /// `POST /token`.
    #[derive(Deserialize)]
    pub(super) struct TokenPair {
        pub token: String,
        pub refresh: String,
    }
}

/// How requests are authenticated.
enum Auth {
    Basic { username: String, password: Secret },
    Token(TokenFlow),
}

/// The token flow's state, shared by the account's concurrent requests.
struct TokenFlow {
    seed: Secret,
    vault: Arc<dyn TokenVault>,
    state: tokio::sync::Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    /// Whether the vault was read.
    loaded: bool,
    /// The refresh token to use next; `None` means the seed.
    refresh: Option<Secret>,
    /// The access token in use.
    access: Option<Secret>,
    /// A pair was received but is not stored yet: it must not be used.
    unsaved: bool,
    /// Bumped on every refresh, so that concurrent 401s refresh only once.
    generation: u64,
}

/// One Hostens account.
pub struct Hostens {
    base_url: String,
    auth: Auth,
    mb_per_unit: f64,
    client: AccountClient,
    /// Servers whose junk history rows were already reported: warned once per process, not hourly.
    warned: std::sync::Mutex<std::collections::HashSet<String>>,
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
            HostensAuth::Token { seed } => Auth::Token(TokenFlow {
                seed: seed.clone(),
                vault,
                state: tokio::sync::Mutex::new(TokenState::default()),
            }),
        };
        Self {
            base_url: account.base_url.clone(),
            auth,
            mb_per_unit: settings.mb_per_unit,
            client,
            warned: std::sync::Mutex::default(),
        }
    }

    fn url(&self, endpoint: &str, path: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let api = |message: String| ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message,
        };
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|e| api(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| api("base_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    /// `GET` with the account's credentials; 404 is not found, error bodies are errors.
    async fn get(&self, endpoint: &'static str, path: &[&str]) -> Result<Response, ProviderError> {
        let url = self.url(endpoint, path)?;
        let request = |c: &reqwest::Client| c.get(url.clone()).header("Accept", "application/json");
        let result = match &self.auth {
            Auth::Basic { username, password } => {
                self.client
                    .send(endpoint, |c| {
                        request(c).basic_auth(username, Some(password.expose()))
                    })
                    .await
            }
            Auth::Token(flow) => {
                let (access, generation) = self.access_token(flow).await?;
                let first = self
                    .client
                    .send(endpoint, |c| request(c).bearer_auth(access.expose()))
                    .await;
                match first {
                    Err(HttpError::Rejected { status: 401, .. }) => {
                        tracing::info!(endpoint, "Access token refused; refreshing it once");
                        let access = self.refresh_after(flow, generation).await?;
                        self.client
                            .send(endpoint, |c| request(c).bearer_auth(access.expose()))
                            .await
                    }
                    other => other,
                }
            }
        };
        let hint = match self.auth {
            Auth::Basic { .. } => BASIC_HINT,
            Auth::Token(_) => "",
        };
        checked(endpoint, result.map_err(|e| http_error(endpoint, e, hint))?)
    }

    /// The access token to use and its generation, refreshing first if there is none.
    async fn access_token(&self, flow: &TokenFlow) -> Result<(Secret, u64), ProviderError> {
        let mut state = flow.state.lock().await;
        if !state.loaded {
            let stored = flow
                .vault
                .load()
                .await
                .map_err(|message| ProviderError::TokenStore { message })?;
            match stored {
                Some(t) if t.seed.expose() == flow.seed.expose() => {
                    state.refresh = Some(t.refresh);
                    state.access = t.access;
                }
                Some(_) => tracing::info!(
                    "The configured refresh_token differs from the one the archive's chain started from; starting anew from it"
                ),
                None => {}
            }
            state.loaded = true;
        }
        if state.unsaved {
            save(flow, &mut state).await?;
        }
        match state.access.clone() {
            Some(access) => Ok((access, state.generation)),
            None => {
                let access = self.refresh(flow, &mut state).await?;
                Ok((access, state.generation))
            }
        }
    }

    /// A fresh access token after `generation` was refused; refreshes unless another request just did.
    async fn refresh_after(
        &self,
        flow: &TokenFlow,
        generation: u64,
    ) -> Result<Secret, ProviderError> {
        let mut state = flow.state.lock().await;
        match state.access.clone() {
            Some(access) if state.generation != generation && !state.unsaved => Ok(access),
            _ => self.refresh(flow, &mut state).await,
        }
    }

    /// `POST /token`; the new pair is stored durably before the access token is returned.
    async fn refresh(
        &self,
        flow: &TokenFlow,
        state: &mut TokenState,
    ) -> Result<Secret, ProviderError> {
        let url = self.url(TOKEN, &[TOKEN])?;
        let refresh = state.refresh.clone().unwrap_or_else(|| flow.seed.clone());
        let body = serde_json::json!({ "refresh_token": refresh.expose() });
        let resp = self
            .client
            .send(TOKEN, |c| {
                c.post(url.clone())
                    .header("Accept", "application/json")
                    .json(&body)
            })
            .await
            .map_err(|e| http_error(TOKEN, e, TOKEN_HINT))?;
        let status = resp.status.as_u16();
        if status == 400 || status == 404 {
            return Err(ProviderError::Rejected {
                endpoint: TOKEN.to_owned(),
                message: error_message(&resp.body).unwrap_or_else(|| format!("HTTP {status}")),
                hint: TOKEN_HINT,
            });
        }
        let resp = checked(TOKEN, resp)?;
        let withheld = || RawResponse {
            endpoint: TOKEN.to_owned(),
            status,
            body: bytes::Bytes::from_static(b"[token response withheld]"),
        };
        // serde quotes a value only when its type is wrong, never a token that is a string.
        let pair: api::TokenPair =
            decode(&resp.body).map_err(|reason| ProviderError::Malformed {
                endpoint: TOKEN.to_owned(),
                reason,
                raw: Box::new(withheld()),
            })?;
        if pair.token.trim().is_empty() || pair.refresh.trim().is_empty() {
            return Err(ProviderError::Malformed {
                endpoint: TOKEN.to_owned(),
                reason: "empty `token` or `refresh`".to_owned(),
                raw: Box::new(withheld()),
            });
        }
        state.refresh = Some(Secret::new(&pair.refresh));
        state.access = Some(Secret::new(&pair.token));
        state.unsaved = true;
        state.generation += 1;
        save(flow, state).await?;
        tracing::info!("Refresh token rotated and stored in the archive");
        state
            .access
            .clone()
            .ok_or_else(|| ProviderError::TokenStore {
                message: "no access token after a refresh".to_owned(),
            })
    }
}

/// Stores the state's pair in the vault; until that succeeds it stays unusable.
async fn save(flow: &TokenFlow, state: &mut TokenState) -> Result<(), ProviderError> {
    let (Some(refresh), access) = (state.refresh.clone(), state.access.clone()) else {
        return Ok(());
    };
    let token = StoredToken {
        seed: flow.seed.clone(),
        refresh,
        access,
    };
    match flow.vault.save(token).await {
        Ok(()) => {
            state.unsaved = false;
            Ok(())
        }
        Err(message) => {
            tracing::error!(error = %message, "Cannot store the rotated refresh token; it is kept in memory and not used until stored");
            Err(ProviderError::TokenStore { message })
        }
    }
}

#[async_trait]
impl Provider for Hostens {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Hostens
    }

    async fn discover_subjects(&self) -> Result<Discovery, ProviderError> {
        let resp = self.get(SERVERS, &["server"]).await?;
        let subjects = parse_servers(&resp.body).map_err(|r| malformed(SERVERS, r, &resp))?;
        Ok(Discovery {
            subjects,
            ..Discovery::default()
        })
    }

    async fn fetch_usage(&self, subject: &str) -> Result<SubjectUsage, ProviderError> {
        if subject.is_empty() || !subject.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::Api {
                endpoint: SERVER.to_owned(),
                message: format!("{subject:?} is not a Hostens server id"),
            });
        }
        let details = self.get(SERVER, &["server", subject]).await?;
        let (counters, record) = parse_details(&details.body, self.mb_per_unit)
            .map_err(|r| malformed(SERVER, r, &details))?;
        let mut usage = SubjectUsage {
            counters,
            records: vec![EntityRecord {
                kind: "server".to_owned(),
                id: subject.to_owned(),
                data: record,
            }],
            raw: vec![raw(SERVER, &details)],
            ..SubjectUsage::default()
        };
        match self.get(HISTORY, &["server", subject, "history"]).await {
            Ok(resp) => {
                let history = parse_history(&resp.body, self.mb_per_unit)
                    .map_err(|r| malformed(HISTORY, r, &resp))?;
                let first_time = !history.skipped.is_empty()
                    && self
                        .warned
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(subject.to_owned());
                for skipped in &history.skipped {
                    if first_time {
                        tracing::warn!(server = subject, row = %skipped, "Skipped a history row with an impossible period (reported once per server)");
                    } else {
                        tracing::debug!(server = subject, row = %skipped, "Skipped a history row with an impossible period");
                    }
                }
                usage.months = history.months;
                usage.month_resources = history.resources;
                usage.raw.push(raw(HISTORY, &resp));
            }
            // A server type without history still has counters.
            Err(ProviderError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(usage)
    }

    async fn fetch_balance(&self) -> Result<(Vec<BalanceSnapshot>, RawResponse), ProviderError> {
        let resp = self.get(BALANCE, &["balance"]).await?;
        let balances = parse_balance(&resp.body).map_err(|r| malformed(BALANCE, r, &resp))?;
        Ok((balances, raw(BALANCE, &resp)))
    }
}

/// Server ids from `GET /server`: an array, a single object (as documented), or `{"servers": [...]}`.
pub fn parse_servers(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = decode(body)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("servers") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err("`servers` is not an array".to_owned()),
            None if map.is_empty() => Vec::new(),
            None => vec![Value::Object(map)],
        },
        _ => return Err("expected a server object or an array of them".to_owned()),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            decode_value::<api::ServerRef>(item)
                .map(|s| s.server_id.to_string())
                .map_err(|r| format!("server [{i}]: {r}"))
        })
        .collect()
}

/// The counters of `GET /server/@id` in MB, and the details object to keep (secrets removed).
pub fn parse_details(
    body: &[u8],
    mb_per_unit: f64,
) -> Result<(Vec<CounterReading>, Value), String> {
    let mut value: Value = decode(body)?;
    if value.get("bw_in").is_none()
        && let Some(inner) = value.get_mut("server").filter(|v| v.is_object())
    {
        value = inner.take();
    }
    if !value.is_object() {
        return Err("expected the server details object".to_owned());
    }
    let details: api::Details = decode_value(value.clone())?;
    strip(&mut value, &SECRET_FIELDS);
    let readings = vec![
        CounterReading {
            kind: CounterKind::Download,
            value_mb: check_mb("bw_in", details.bw_in * mb_per_unit)?,
        },
        CounterReading {
            kind: CounterKind::Upload,
            value_mb: check_mb("bw_out", details.bw_out * mb_per_unit)?,
        },
    ];
    Ok((readings, value))
}

/// What `GET /server/@id/history` held.
#[derive(Debug, Default, PartialEq)]
pub struct History {
    /// Bandwidth per month (download = `bw_in`, upload = `bw_out`), in MB.
    pub months: Vec<MonthUsage>,
    /// Quota and inode figures per month.
    pub resources: Vec<MonthResources>,
    /// Rows skipped for an impossible period, described for the warning.
    pub skipped: Vec<String>,
}

/// Parses the monthly history; rows with an impossible period are skipped, anything else wrong is an error.
pub fn parse_history(body: &[u8], mb_per_unit: f64) -> Result<History, String> {
    let value: Value = decode(body)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("history") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err("`history` is not an array".to_owned()),
            None => vec![Value::Object(map)],
        },
        _ => return Err("expected an array of history rows".to_owned()),
    };
    let mut history = History::default();
    for (i, item) in items.into_iter().enumerate() {
        let row: api::HistoryRow = decode_value(item).map_err(|r| format!("[{i}].{r}"))?;
        let Some(month) = period(&row.year, &row.month) else {
            history
                .skipped
                .push(format!("[{i}] year {} month {}", row.year, row.month));
            continue;
        };
        let at = |field: &str| format!("[{i}].{field}");
        let download = check_mb(&at("bw_in"), row.bw_in * mb_per_unit)?;
        let upload = check_mb(&at("bw_out"), row.bw_out * mb_per_unit)?;
        for (field, v) in [
            ("quota_usage", row.quota_usage),
            ("quota_limit", row.quota_limit),
            ("inode_usage", row.inode_usage),
            ("inode_limit", row.inode_limit),
        ] {
            if v.is_some_and(|v| v < 0.0) {
                return Err(format!("{} is negative", at(field)));
            }
        }
        history.months.push(MonthUsage {
            month,
            upload_mb: Some(upload),
            download_mb: Some(download),
            total_mb: upload + download,
        });
        history.resources.push(MonthResources {
            month,
            quota_usage: row.quota_usage,
            quota_limit: row.quota_limit,
            inode_usage: row.inode_usage,
            inode_limit: row.inode_limit,
        });
    }
    Ok(history)
}

/// The first day of a history row's month, if `year`/`month` (numbers or strings) name a real one.
fn period(year: &Value, month: &Value) -> Option<NaiveDate> {
    let int = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let (year, month) = (int(year)?, int(month)?);
    if !(2000..=9999).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, 1)
}

/// `acc_balance` and `acc_credit` of `GET /balance`, in the account's currency.
pub fn parse_balance(body: &[u8]) -> Result<Vec<BalanceSnapshot>, String> {
    let mut value: Value = decode(body)?;
    if let Some(details) = value.get_mut("details").filter(|d| d.is_object()) {
        value = details.take();
    }
    let b: api::Balance = decode_value(value)?;
    let currency = b.currency.trim().to_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "currency {:?} is not a three-letter code",
            b.currency
        ));
    }
    let mut balances = vec![BalanceSnapshot {
        metric: "acc_balance".to_owned(),
        value: b.acc_balance,
        unit: currency.clone(),
    }];
    if let Some(credit) = b.acc_credit {
        balances.push(BalanceSnapshot {
            metric: "acc_credit".to_owned(),
            value: credit,
            unit: currency,
        });
    }
    Ok(balances)
}

/// Maps a transport failure; 401/403 become rejected credentials with `hint`.
fn http_error(endpoint: &str, err: HttpError, hint: &'static str) -> ProviderError {
    match err {
        HttpError::Rejected { status, body } => ProviderError::Rejected {
            endpoint: endpoint.to_owned(),
            message: error_message(&body).unwrap_or_else(|| format!("HTTP {status}")),
            hint,
        },
        source => ProviderError::Http {
            endpoint: endpoint.to_owned(),
            source,
        },
    }
}

/// 404 is not found; other non-2xx, `success: false` and `error` bodies are provider errors.
fn checked(endpoint: &str, resp: Response) -> Result<Response, ProviderError> {
    let message =
        || error_message(&resp.body).unwrap_or_else(|| format!("HTTP {}", resp.status.as_u16()));
    if resp.status.as_u16() == 404 {
        return Err(ProviderError::NotFound {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    let failed = decode::<Value>(&resp.body).ok().is_some_and(|v| {
        v.get("success") == Some(&Value::Bool(false))
            || v.get("error").is_some_and(|e| !e.is_null())
    });
    if !resp.status.is_success() || failed {
        return Err(ProviderError::Api {
            endpoint: endpoint.to_owned(),
            message: message(),
        });
    }
    Ok(resp)
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
    Some(text.chars().take(200).collect())
}

fn malformed(endpoint: &str, reason: String, resp: &Response) -> ProviderError {
    ProviderError::Malformed {
        endpoint: endpoint.to_owned(),
        reason,
        raw: Box::new(raw(endpoint, resp)),
    }
}

/// The body as it may be kept: credential fields removed.
fn raw(endpoint: &str, resp: &Response) -> RawResponse {
    RawResponse {
        endpoint: endpoint.to_owned(),
        status: resp.status.as_u16(),
        body: redact_keys(&resp.body, &SECRET_FIELDS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_periods_are_not_months() {
        let v = |n: i64| Value::from(n);
        assert_eq!(period(&v(0), &v(0)), None);
        assert_eq!(period(&v(2026), &v(13)), None);
        assert_eq!(period(&v(2026), &v(0)), None);
        assert_eq!(period(&v(-1), &v(3)), None);
        assert_eq!(period(&Value::Null, &v(3)), None);
        assert_eq!(
            period(&Value::from("2026"), &Value::from("02")),
            NaiveDate::from_ymd_opt(2026, 2, 1)
        );
    }
}
