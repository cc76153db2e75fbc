//! Hostens' spend record as snapshots: invoices, services, domains and certificates.
//!
//! Each has a listing (`GET /invoice`, `/service`, `/domain`, `/certificate`) whose
//! rows say which ones exist, whether each can still change, and the fields the fetch
//! plan compares with the row its latest snapshot was taken against; and details
//! (`GET /<kind>/@id`) kept as the day's snapshot, amounts as numbers, nothing secret
//! kept: an invoice's `client` block (the account holder's address), a service's login,
//! a certificate's CSR, contacts, organization and e-mail.

use serde_json::Value;

use super::SECRET_FIELDS;
use crate::providers::json::{decode, decode_value, quote};
use crate::redact::strip;

/// The items of a HostBill listing: an array, `{"<key>": [...]}` (as documented), or a
/// single object; `{}` is none.
pub(super) fn listing(body: &[u8], key: &str, what: &str) -> Result<Vec<Value>, String> {
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

/// One entry of a billing listing: its id, whether it can still change, the fields the
/// fetch plan compares with the row the latest snapshot was taken against, and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The invoice or service id.
    pub id: String,
    /// Settled for good (an invoice paid, cancelled or refunded; a service, domain or
    /// certificate ended): its snapshot is not taken again unless the listing shows a change.
    pub settled: bool,
    /// The listing's fields that the details carry too, as the snapshot keeps them.
    pub row: Value,
    /// What to call it (a service's name and domain).
    pub label: Option<String>,
}

/// Invoices from `GET /invoice`: id, and status, date paid and total to compare.
pub fn parse_invoices(body: &[u8]) -> Result<Vec<Listed>, String> {
    let fields = ["status", "datepaid"];
    items(
        body,
        "invoices",
        "invoice",
        &fields,
        &["total"],
        SETTLED_INVOICE,
        |_| None,
    )
}

/// Services from `GET /service`: id, status, and the fields the details repeat. The
/// snapshot keeps the row it was taken against, so a status the listing changes is taken
/// again once, even where the listing and the details disagree on it (the document's
/// own examples say `Pending` and `Active` for service 301).
pub fn parse_services(body: &[u8]) -> Result<Vec<Listed>, String> {
    let fields = ["status", "name", "domain", "billingcycle", "next_due"];
    items(
        body,
        "services",
        "service",
        &fields,
        &["total"],
        ENDED,
        |item| match (text(item, "name"), text(item, "domain")) {
            (Some(name), Some(domain)) => Some(format!("{name} ({domain})")),
            (name, domain) => name.or(domain),
        },
    )
}

/// Domains from `GET /domain`: id, status, renewal terms and expiry, named by the domain.
pub fn parse_domains(body: &[u8]) -> Result<Vec<Listed>, String> {
    let fields = ["status", "name", "expires", "period", "autorenew"];
    items(
        body,
        "domains",
        "domain",
        &fields,
        &["recurring_amount"],
        ENDED,
        |item| text(item, "name"),
    )
}

/// SSL certificates from `GET /certificate`: id, status, billing and expiry, named by
/// product and domain.
pub fn parse_certificates(body: &[u8]) -> Result<Vec<Listed>, String> {
    let fields = [
        "status",
        "name",
        "domain",
        "billingcycle",
        "next_due",
        "cert_status",
        "cert_expires",
    ];
    items(
        body,
        "sslservices",
        "certificate",
        &fields,
        &["total"],
        ENDED,
        |item| match (text(item, "name"), text(item, "domain")) {
            (Some(name), Some(domain)) => Some(format!("{name} ({domain})")),
            (name, domain) => name.or(domain),
        },
    )
}

/// Statuses after which an invoice no longer changes.
const SETTLED_INVOICE: &[&str] = &["Paid", "Cancelled", "Refunded"];

/// Statuses after which a service, domain or certificate no longer changes.
const ENDED: &[&str] = &[
    "Terminated",
    "Cancelled",
    "Fraud",
    "Expired",
    "Transferred Away",
    "Closed",
];

/// A billing listing's entries under `key`: each one's id, its `fields` and `amounts`
/// (as numbers) for the row, settled when its status is one of `settled`, named by `label`.
fn items(
    body: &[u8],
    key: &str,
    what: &str,
    fields: &[&str],
    amounts: &[&str],
    settled: &[&str],
    label: fn(&Value) -> Option<String>,
) -> Result<Vec<Listed>, String> {
    listing(body, key, what)?
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |r: String| format!("{key}[{i}].{r}");
            let id = id_of(&item).map_err(at)?;
            let settled = text(&item, "status").is_some_and(|s| settled.contains(&s.as_str()));
            let mut row = serde_json::Map::new();
            for field in fields {
                let value = match *field {
                    "status" => text(&item, "status").map_or(Value::Null, Value::from),
                    _ => item.get(*field).cloned().unwrap_or(Value::Null),
                };
                row.insert((*field).to_owned(), value);
            }
            for field in amounts {
                row.insert((*field).to_owned(), amount(&item, field).map_err(at)?);
            }
            Ok(Listed {
                id,
                settled,
                row: Value::Object(row),
                label: label(&item),
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

/// `GET /domain/@id` (its object under `details`) as the snapshot kept, amounts as numbers.
pub fn parse_domain(id: &str, body: &[u8]) -> Result<Value, String> {
    details(id, body, "details", &["firstpayment", "recurring_amount"])
}

/// `GET /certificate/@id` (its object under `service`) as the snapshot kept, amounts as
/// numbers, without the CSR and the people and organization on it (`SECRET_FIELDS`).
pub fn parse_certificate(id: &str, body: &[u8]) -> Result<Value, String> {
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
