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

use super::billing::listing;

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
