//! Hostens' answers as domain rows: pure functions, tested on the document's own examples.
//!
//! Server lists come as an array, a single object (as documented) or
//! `{"servers": [...]}`; details carry the running counters `bw_in`
//! (download) and `bw_out` (upload); history rows with an impossible period
//! (the document's own `year: 0, month: 0`) are skipped and reported.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::SECRET_FIELDS;
use crate::model::{BalanceSnapshot, CounterKind, CounterReading, MonthResources, MonthUsage};
use crate::providers::json::{check_mb, decode, decode_value, quote};
use crate::redact::strip;

/// Wire types, named after the endpoints.
mod api {
    use serde::Deserialize;
    use serde_json::Value;

    use crate::providers::json::{flexible_f64, flexible_id, flexible_opt_f64};

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
}

/// One server of `GET /server`: its id, and what to call it (its label, else its domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedServer {
    /// The server id.
    pub id: String,
    /// Its label, or its domain when the label is empty.
    pub label: Option<String>,
}

/// Servers from `GET /server`: an array, a single object (as documented), or `{"servers": [...]}`.
pub fn parse_servers(body: &[u8]) -> Result<Vec<ListedServer>, String> {
    listing(body, "servers", "server")?
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let label = ["label", "domain"]
                .iter()
                .find_map(|k| {
                    item.get(*k)?
                        .as_str()
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                })
                .map(str::to_owned);
            decode_value::<api::ServerRef>(item)
                .map(|s| ListedServer {
                    id: s.server_id.to_string(),
                    label,
                })
                .map_err(|r| format!("server [{i}]: {r}"))
        })
        .collect()
}

/// The items of a HostBill listing: an array, `{"<key>": [...]}` (as documented), or a
/// single object; `{}` is none.
fn listing(body: &[u8], key: &str, what: &str) -> Result<Vec<Value>, String> {
    let value: Value = decode(body)?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove(key) {
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) => Ok(Vec::new()),
            Some(_) => Err(format!("`{key}` is not an array")),
            None if map.is_empty() => Ok(Vec::new()),
            None => Ok(vec![Value::Object(map)]),
        },
        _ => Err(format!("expected a {what} object or an array of them")),
    }
}

/// One entry of `GET /invoice` or `GET /service`: its id, whether it can still change,
/// the fields the fetch plan compares with the latest snapshot, and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The invoice or service id.
    pub id: String,
    /// Settled for good (an invoice paid, cancelled or refunded; a service terminated or
    /// cancelled): its snapshot is not taken again unless the listing shows a change.
    pub settled: bool,
    /// The listing's fields that the details carry too, as the snapshot keeps them.
    pub row: Value,
    /// What to call it (a service's name and domain).
    pub label: Option<String>,
}

/// Invoices from `GET /invoice`: id, and status, date paid and total to compare.
pub fn parse_invoices(body: &[u8]) -> Result<Vec<Listed>, String> {
    listing(body, "invoices", "invoice")?
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |r: String| format!("invoices[{i}].{r}");
            let id = id_of(&item).map_err(at)?;
            let status = text(&item, "status");
            let settled = matches!(status.as_deref(), Some("Paid" | "Cancelled" | "Refunded"));
            let mut row = serde_json::Map::new();
            row.insert("status".to_owned(), status.map_or(Value::Null, Value::from));
            row.insert(
                "datepaid".to_owned(),
                item.get("datepaid").cloned().unwrap_or(Value::Null),
            );
            row.insert("total".to_owned(), amount(&item, "total").map_err(at)?);
            Ok(Listed {
                id,
                settled,
                row: Value::Object(row),
                label: None,
            })
        })
        .collect()
}

/// Services from `GET /service`: id, status, and the fields the details repeat. The
/// snapshot keeps the row it was taken against, so a status the listing changes is taken
/// again once, even where the listing and the details disagree on it (the document's
/// own examples say `Pending` and `Active` for service 301).
pub fn parse_services(body: &[u8]) -> Result<Vec<Listed>, String> {
    listing(body, "services", "service")?
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |r: String| format!("services[{i}].{r}");
            let id = id_of(&item).map_err(at)?;
            let status = text(&item, "status");
            let settled = matches!(
                status.as_deref(),
                Some("Terminated" | "Cancelled" | "Fraud")
            );
            let mut row = serde_json::Map::new();
            row.insert(
                "status".to_owned(),
                status.clone().map_or(Value::Null, Value::from),
            );
            for key in ["name", "domain", "billingcycle", "next_due"] {
                row.insert(
                    key.to_owned(),
                    item.get(key).cloned().unwrap_or(Value::Null),
                );
            }
            row.insert("total".to_owned(), amount(&item, "total").map_err(at)?);
            let label = match (text(&item, "name"), text(&item, "domain")) {
                (Some(name), Some(domain)) => Some(format!("{name} ({domain})")),
                (name, domain) => name.or(domain),
            };
            Ok(Listed {
                id,
                settled,
                row: Value::Object(row),
                label,
            })
        })
        .collect()
}

/// `GET /invoice/@id` as the snapshot kept: the invoice without the account holder's
/// details (`client`, an address), its amounts as numbers, its lines as sent.
pub fn parse_invoice(id: &str, body: &[u8]) -> Result<Value, String> {
    details(id, body, "invoice", &["subtotal", "credit", "tax", "total"])
}

/// `GET /service/@id` as the snapshot kept: the service without its login (`username`,
/// `password`), its amounts as numbers.
pub fn parse_service(id: &str, body: &[u8]) -> Result<Value, String> {
    details(id, body, "service", &["firstpayment", "total"])
}

/// The `<key>` object of a details body, for the id asked, secrets stripped and `amounts`
/// turned into numbers.
fn details(id: &str, body: &[u8], key: &str, amounts: &[&str]) -> Result<Value, String> {
    let mut value: Value = decode(body)?;
    if let Some(inner) = value.get_mut(key).filter(|v| v.is_object()) {
        value = inner.take();
    }
    if !value.is_object() {
        return Err(format!("expected the {key} object"));
    }
    let got = id_of(&value)?;
    if got != id {
        return Err(format!(
            "answer is for {key} {}, asked for {key} {id}",
            quote(&got)
        ));
    }
    let _ = strip(&mut value, SECRET_FIELDS);
    for field in amounts {
        if value.get(*field).is_some() {
            let number = amount(&value, field)?;
            value[*field] = number;
        }
    }
    Ok(value)
}

/// `id` of a listing entry or details object, a number or a string of digits.
fn id_of(item: &Value) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(deserialize_with = "crate::providers::json::flexible_id")]
        id: u64,
    }
    decode_value::<Id>(item.clone()).map(|i| i.id.to_string())
}

/// A text field, trimmed, if present and not empty.
fn text(item: &Value, key: &str) -> Option<String> {
    item.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// An amount (a number, or a string holding one: HostBill sends both) as a JSON number;
/// absent or `null` stays `null`.
fn amount(item: &Value, key: &str) -> Result<Value, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            Ok(n.as_f64().map_or(Value::Null, Value::from))
        }
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Value::from)
            .ok_or_else(|| format!("{key}: expected an amount, got {}", quote(s))),
        Some(other) => Err(format!(
            "{key}: expected an amount, got {}",
            crate::providers::json::kind_of(other)
        )),
    }
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
    let _ = strip(&mut value, SECRET_FIELDS);
    let read_at = value
        .get("synch_date")
        .and_then(Value::as_str)
        .and_then(synch_date);
    let readings = vec![
        CounterReading {
            kind: CounterKind::Download,
            value_mb: check_mb("bw_in", details.bw_in * mb_per_unit)?,
            read_at,
            limit_mb: None,
        },
        CounterReading {
            kind: CounterKind::Upload,
            value_mb: check_mb("bw_out", details.bw_out * mb_per_unit)?,
            read_at,
            limit_mb: None,
        },
    ];
    Ok((readings, value))
}

/// `synch_date`, when the panel last read the counters, in either of the document's
/// forms: RFC 3339 (`2018-07-18T14:04:34+00:00`), or `2017-01-31 15:35:00`, taken as UTC
/// like every HostBill date the API returns. Anything else is no reading time.
fn synch_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map(|t| t.and_utc()))
        .ok()
}

/// What `GET /server/@id/history` held.
#[derive(Debug, Default, PartialEq)]
pub struct History {
    /// Bandwidth per month (download = `bw_in`, upload = `bw_out`), in MB.
    pub months: Vec<MonthUsage>,
    /// Quota and inode figures per month.
    pub resources: Vec<MonthResources>,
    /// Rows skipped for an impossible period, described for the operator.
    pub skipped: Vec<String>,
    /// Rows skipped as the document's own placeholder (`year: 0, month: 0`): expected.
    pub placeholders: usize,
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
            if is_zero(&row.year) && is_zero(&row.month) {
                history.placeholders += 1;
            } else {
                history.skipped.push(format!(
                    "row [{i}] has an impossible period (year {}, month {}); it was not stored",
                    shown(&row.year),
                    shown(&row.month)
                ));
            }
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

/// Whether a period field is the number 0 (or the string "0").
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.trim() == "0",
        _ => false,
    }
}

/// A period field as an error shows it: a number as written, anything else quoted short.
fn shown(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        other => crate::providers::json::kind_of(other).to_owned(),
    }
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
            "currency {} is not a three-letter code",
            quote(&b.currency)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synch_dates_in_both_documented_forms() {
        let utc = |t: &str| t.parse::<DateTime<Utc>>().ok();
        assert_eq!(
            synch_date("2017-01-31 15:35:00"),
            utc("2017-01-31T15:35:00Z")
        );
        assert_eq!(
            synch_date("2018-07-18T14:04:34+00:00"),
            utc("2018-07-18T14:04:34Z")
        );
        assert_eq!(
            synch_date("2018-07-18T16:04:34+02:00"),
            utc("2018-07-18T14:04:34Z")
        );
        assert_eq!(synch_date("0000-00-00 00:00:00"), None);
        assert_eq!(synch_date(""), None);
    }

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
