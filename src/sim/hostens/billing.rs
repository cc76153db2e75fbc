//! The simulated Hostens spend record: an invoice a month (paid on its third day, with
//! the account holder's address in its `client` block), a service per server (with its
//! login in the details; `service_ends` terminates one), and for the Basic account two
//! domains and an SSL certificate (with a CSR and contacts), shaped as documented.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::sim::life::Kind;

use super::{
    Caller, SIM_CLIENT_ADDRESS, SIM_SERVICE_PASSWORD, SIM_USERNAME, SimHostens, State, caller,
    error, month_start, unauthorized,
};

impl SimHostens {
    /// The invoices of `caller` at `now`: one a month, the current month's unpaid until
    /// its third day.
    fn invoices(&self, caller: Caller, now: DateTime<Utc>) -> Vec<Invoice> {
        let base = match caller {
            Caller::Basic => 308_000,
            Caller::Token => 309_000,
        };
        let servers = self.servers_of(caller).count() as f64;
        let this_month = month_start(now.date_naive());
        (0..=self.history_months)
            .rev()
            .map(|back| {
                let date = this_month - Months::new(back);
                let paid_at = date + TimeDelta::days(2) + TimeDelta::hours(12);
                let subtotal = (servers * 15.0 * 100.0).round() / 100.0;
                let tax = (subtotal * 0.21 * 100.0).round() / 100.0;
                // Stable per month: months since 2000.
                let months = (date.year() - 2000).max(0) as u64 * 12 + u64::from(date.month0());
                Invoice {
                    id: base + months,
                    date: date.date_naive(),
                    paid: (now >= paid_at).then_some(paid_at),
                    subtotal,
                    tax,
                }
            })
            .collect()
    }

    /// A service's status at `now`: `Terminated` from its entry in `service_ends` on,
    /// or, in a changing book, while its server is gone.
    pub fn service_status(&self, server: u64, now: DateTime<Utc>) -> &'static str {
        let ended = self
            .service_ends
            .iter()
            .any(|(s, at)| *s == server && now >= *at);
        let gone = self.life.is_some_and(|l| {
            server != super::TOKEN_SERVER && !l.alive(Kind::Server, server, now.date_naive())
        });
        if ended || gone {
            "Terminated"
        } else {
            "Active"
        }
    }

    /// The services `caller` has at `now`: one per server created by then.
    fn services_of(&self, caller: Caller, now: DateTime<Utc>) -> Vec<u64> {
        self.servers_of(caller)
            .filter(|server| {
                *server == super::TOKEN_SERVER
                    || self
                        .life
                        .is_none_or(|l| l.life(Kind::Server, *server).born <= now.date_naive())
            })
            .collect()
    }
}

/// One simulated invoice.
#[derive(Debug, Clone, Copy)]
struct Invoice {
    id: u64,
    date: NaiveDate,
    paid: Option<DateTime<Utc>>,
    subtotal: f64,
    tax: f64,
}

impl Invoice {
    fn status(&self) -> &'static str {
        if self.paid.is_some() {
            "Paid"
        } else {
            "Unpaid"
        }
    }

    fn datepaid(&self) -> Value {
        self.paid.map_or(Value::Null, |t| {
            t.format("%Y-%m-%d %H:%M:%S").to_string().into()
        })
    }

    fn total(&self) -> f64 {
        ((self.subtotal + self.tax) * 100.0).round() / 100.0
    }

    fn number(&self) -> String {
        format!(
            "{}/{}/{}",
            self.date.year(),
            self.date.month(),
            self.id % 1000
        )
    }
}

/// `GET /invoice`, as documented: amounts as strings, `datepaid` as a date and time.
pub(super) async fn invoices(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let list: Vec<Value> = s
        .sim
        .invoices(who, s.clock.now())
        .iter()
        .map(|i| {
            let due = (i.date + TimeDelta::days(7)).to_string();
            json!({"id": i.id.to_string(), "date": i.date.to_string(), "dateorig": i.date.to_string(),
                   "duedate": due, "paybefore": due, "total": format!("{:.2}", i.total()),
                   "datepaid": i.datepaid(), "status": i.status(), "merge_id": null,
                   "number": i.number(), "currency": "EUR"})
        })
        .collect();
    Json(json!({"invoices": list})).into_response()
}

/// `GET /invoice/@id`, as documented: amounts as numbers, the lines' as strings, and the
/// account holder's address.
pub(super) async fn invoice(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let Some(i) = s
        .sim
        .invoices(who, s.clock.now())
        .into_iter()
        .find(|i| i.id == id)
    else {
        return error(StatusCode::NOT_FOUND, "Invoice not found");
    };
    let items: Vec<Value> = s
        .sim
        .servers_of(who)
        .enumerate()
        .map(|(n, server)| {
            json!({"id": (id * 100 + n as u64).to_string(), "invoice_id": id.to_string(), "type": "Hosting",
                   "item_id": (300 + server).to_string(), "description": format!("VPS KVM 4GB, server {server}"),
                   "amount": "15.00", "taxed": "1", "qty": "1.00", "linetotal": "15.00"})
        })
        .collect();
    let due = (i.date + TimeDelta::days(7)).to_string();
    Json(json!({"invoice": {
        "id": id.to_string(), "status": i.status(), "date": i.date.to_string(), "duedate": due,
        "paybefore": due, "datepaid": i.datepaid(), "subtotal": i.subtotal, "credit": 0, "tax": i.tax,
        "taxrate": 21, "tax2": 0, "taxrate2": 0, "taxexempt": "0", "total": i.total(), "rate": 1,
        "rate2": 0, "rate3": 1, "notes": "", "items": items,
        "client": {"id": "26", "email": SIM_USERNAME, "firstname": "Sim", "lastname": "Ulator",
                   "companyname": "", "address1": SIM_CLIENT_ADDRESS, "address2": "", "city": "Vilnius",
                   "state": "", "postcode": "01100", "country": "LT", "phonenumber": "+370.60000000"},
        "number": i.number(), "currency": "EUR"
    }}))
    .into_response()
}

/// `GET /service`: one VPS service per server, its total as a string.
pub(super) async fn services(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let next_due = (month_start(s.clock.now().date_naive()) + Months::new(1)).date_naive();
    let list: Vec<Value> = s
        .sim
        .services_of(who, s.clock.now())
        .into_iter()
        .map(|server| {
            json!({"id": (300 + server).to_string(), "domain": format!("vps{server}.example.net"),
                   "total": "15.00", "status": s.sim.service_status(server, s.clock.now()), "billingcycle": "Monthly",
                   "next_due": next_due.to_string(), "category": "VPS", "category_url": "vps",
                   "name": "VPS KVM 4GB"})
        })
        .collect();
    Json(json!({"services": list})).into_response()
}

/// `GET /service/@id`: the details, with the service's login, as documented.
pub(super) async fn service(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let Some(server) = id
        .checked_sub(300)
        .filter(|server| s.sim.services_of(who, s.clock.now()).contains(server))
    else {
        return error(StatusCode::NOT_FOUND, "Service not found");
    };
    let month = month_start(s.clock.now().date_naive());
    Json(json!({"service": {
        "id": id.to_string(), "date_created": "2025-01-31", "domain": format!("vps{server}.example.net"),
        "firstpayment": "15.00", "total": "15.00", "billingcycle": "Monthly",
        "next_due": (month + Months::new(1)).date_naive().to_string(),
        "next_invoice": (month + Months::new(1) - TimeDelta::days(7)).date_naive().to_string(),
        "status": s.sim.service_status(server, s.clock.now()), "label": "", "username": "root", "password": SIM_SERVICE_PASSWORD,
        "name": "VPS KVM 4GB"
    }}))
    .into_response()
}

/// The Basic account's domains: `(id, name, renewed on the day of the month)`.
const DOMAINS: [(u64, &str, u32); 2] = [
    (47, "sim-reseller.example", 12),
    (48, "sim-proxies.example", 27),
];
/// The Basic account's SSL certificate id.
const CERTIFICATE: u64 = 600;

/// A domain's next renewal at `now`: its day in the month after `now`'s.
fn expires(day_of_month: u32, now: DateTime<Utc>) -> NaiveDate {
    let next = month_start(now.date_naive()) + Months::new(1);
    next.date_naive()
        .with_day(day_of_month)
        .unwrap_or(next.date_naive())
}

/// `GET /domain`, as documented: amounts and flags as strings.
pub(super) async fn domains(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let now = s.clock.now();
    let list: Vec<Value> = DOMAINS
        .iter()
        .filter(|_| who == Caller::Basic)
        .map(|(id, name, day)| {
            json!({"id": id.to_string(), "name": name, "expires": expires(*day, now).to_string(),
                   "recurring_amount": "15.00", "date_created": "2025-01-31", "status": "Active",
                   "period": "1", "autorenew": "1", "daytoexpire": "30"})
        })
        .collect();
    Json(json!({"domains": list})).into_response()
}

/// `GET /domain/@id`: the details under `details`, as documented.
pub(super) async fn domain(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let Some((_, name, day)) = DOMAINS.iter().find(|d| d.0 == id && who == Caller::Basic) else {
        return error(StatusCode::NOT_FOUND, "Domain not found");
    };
    let expiry = expires(*day, s.clock.now());
    Json(json!({"details": {
        "id": id.to_string(), "name": name, "date_created": "2025-01-31", "firstpayment": "10.00",
        "recurring_amount": "15.00", "period": "1", "expires": expiry.to_string(), "status": "Active",
        "next_due": expiry.to_string(), "next_invoice": (expiry - TimeDelta::days(30)).to_string(),
        "idprotection": "0", "nameservers": ["ns1.example.com", "ns2.example.com"], "autorenew": "1"
    }}))
    .into_response()
}

/// `GET /certificate`, as documented (under `sslservices`).
pub(super) async fn certificates(AxState(s): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    let list: Vec<Value> = (who == Caller::Basic)
        .then(|| {
            json!({"id": CERTIFICATE.to_string(), "domain": "sim-reseller.example", "total": "27.85",
                   "status": "Active", "billingcycle": "Annually", "next_due": "2027-01-31",
                   "category": "GoGetSSL", "category_url": "gogetssl", "name": "Comodo InstantSSL",
                   "cert_email": "admin@sim-reseller.example", "cert_status": "Issued",
                   "cert_expires": "2027-01-31 13:43:12"})
        })
        .into_iter()
        .collect();
    Json(json!({"sslservices": list})).into_response()
}

/// `GET /certificate/@id`: the details under `service`, with a CSR and the contacts.
pub(super) async fn certificate(
    AxState(s): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let Some(who) = caller(&s, &headers) else {
        return unauthorized();
    };
    if id != CERTIFICATE || who != Caller::Basic {
        return error(StatusCode::NOT_FOUND, "Certificate not found");
    }
    Json(json!({"service": {
        "id": id.to_string(), "date_created": "2025-01-31", "domain": "sim-reseller.example",
        "firstpayment": "27.85", "total": "27.85", "billingcycle": "Annually", "next_due": "2027-01-31",
        "next_invoice": "2026-12-31", "status": "Active", "label": "", "name": "Comodo InstantSSL",
        "cert_status": "Issued", "cert_expires": "2027-01-31 13:43:12",
        "csr": "-----BEGIN CERTIFICATE REQUEST----- sim",
        "contacts": {"admin": {"FName": "Mary", "LName": "Sue", "Address1": SIM_CLIENT_ADDRESS}},
        "organization": {"name": "Sim Org", "address1": SIM_CLIENT_ADDRESS},
        "cert_email": "admin@sim-reseller.example", "software": "1"
    }}))
    .into_response()
}
