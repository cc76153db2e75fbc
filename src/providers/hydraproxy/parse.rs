//! HydraProxy's answers parsed into domain rows: pure functions, tested on the document's
//! own examples.

use super::*;

/// What an order status means for the fetch plan.
pub(super) fn listed_state(status: &str) -> ListedState {
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

pub(super) fn day_usage(row: &api::UsageRow) -> Result<DayUsage, String> {
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
pub(super) const DETAILS_PREFIX: &str = "order/";

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
    pub(super) fn row(&self, listed_as: &str) -> serde_json::Value {
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
pub(super) fn order_list(value: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let map = match value {
        Value::Array(_) => return Ok(value),
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "expected an array of orders, got {}",
                crate::providers::json::kind_of(&other)
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

pub(super) fn checked_body(
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
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    decode::<serde_json::Value>(body)
        .ok()
        .as_ref()
        .and_then(error_message_of)
}

pub(super) fn error_message_of(value: &serde_json::Value) -> Option<String> {
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

pub(super) fn rejected(endpoint: &str, message: &str) -> ProviderError {
    ProviderError::Rejected {
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
        hint: REJECTED_HINT,
    }
}
