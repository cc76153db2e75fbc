//! Bad input (issue 7.3): every provider parser fed random and mutated documented bodies.
//!
//! Seeds are the documents' own examples (tests/fixtures) and, for ProxyShard,
//! bodies built from its field lists. Mutations flip, insert and delete bytes,
//! truncate, splice hostile tokens (NaN, negative and huge numbers, impossible
//! dates, HTML, nulls, wrong types) into the text, and replace JSON leaves with
//! them. The properties: no parser panics; an error names what was wrong; a
//! success holds only finite, non-negative megabytes. `PROPTEST_CASES` sets the
//! number of cases per parser (default 256).

use bytes::Bytes;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;
use usage_archiver::http::Response;
use usage_archiver::model::{DayUsage, SubjectUsage};
use usage_archiver::providers::{hostens, hydraproxy, infiniteproxies, proxyshard};

use crate::common::{fixture, proptest_config};

/// Text that breaks parsers: wrong types, impossible values, markup.
const HOSTILE: [&str; 16] = [
    "NaN",
    "-1",
    "-0.5",
    "1e999",
    "99999999999999999999999999",
    "null",
    "{}",
    "[]",
    "\"\"",
    "\"2022-02-30\"",
    "\"0000-00-00\"",
    "\"lots\"",
    "true",
    "<html><body>502 Bad Gateway</body></html>",
    "\"\\u0000\"",
    "\"🦀\"",
];

/// One mutation: what, where, and with which byte or token.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Splice(usize, usize),
    ReplaceLeaf(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 0..HOSTILE.len()).prop_map(|(p, t)| Edit::Splice(p, t)),
        (any::<usize>(), 0..HOSTILE.len()).prop_map(|(p, t)| Edit::ReplaceLeaf(p, t)),
    ]
}

/// Replaces the `n`th leaf (modulo the number of leaves) of `value` with `token`'s JSON.
fn replace_leaf(value: &mut Value, n: &mut usize, token: &str) -> bool {
    match value {
        Value::Object(map) => map.values_mut().any(|v| replace_leaf(v, n, token)),
        Value::Array(items) => items.iter_mut().any(|v| replace_leaf(v, n, token)),
        leaf => {
            if *n == 0 {
                *leaf = serde_json::from_str(token).unwrap_or(Value::String(token.to_owned()));
                true
            } else {
                *n -= 1;
                false
            }
        }
    }
}

fn count_leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(count_leaves).sum(),
        Value::Array(items) => items.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

fn apply(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut body = seed.as_bytes().to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match *e {
            Edit::Flip(p, b) if !body.is_empty() => {
                let i = p % body.len();
                body[i] = b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(p, b) => body.insert(at(p, body.len()), b),
            Edit::Delete(p) if !body.is_empty() => {
                body.remove(p % body.len());
            }
            Edit::Delete(_) => {}
            Edit::Truncate(p) => body.truncate(at(p, body.len())),
            Edit::Splice(p, t) => {
                let i = at(p, body.len());
                body.splice(i..i, HOSTILE[t].bytes());
            }
            Edit::ReplaceLeaf(p, t) => {
                if let Ok(mut value) = serde_json::from_slice::<Value>(&body) {
                    let leaves = count_leaves(&value);
                    if leaves > 0 {
                        replace_leaf(&mut value, &mut (p % leaves), HOSTILE[t]);
                        body = serde_json::to_vec(&value).unwrap();
                    }
                }
            }
        }
    }
    body
}

fn response(body: Vec<u8>) -> Response {
    Response {
        status: StatusCode::OK,
        body: Bytes::from(body),
    }
}

fn days_are_sane(days: &[DayUsage]) -> Result<(), TestCaseError> {
    for d in days {
        for mb in [Some(d.total_mb), d.upload_mb, d.download_mb]
            .into_iter()
            .flatten()
        {
            prop_assert!(mb.is_finite() && mb >= 0.0, "{d:?}");
        }
    }
    Ok(())
}

fn usage_is_sane(usage: &SubjectUsage) -> Result<(), TestCaseError> {
    days_are_sane(&usage.days)?;
    for c in &usage.counters {
        prop_assert!(c.value_mb.is_finite() && c.value_mb >= 0.0, "{c:?}");
    }
    for m in &usage.months {
        prop_assert!(m.total_mb.is_finite() && m.total_mb >= 0.0, "{m:?}");
    }
    Ok(())
}

/// An error must say something, starting with the endpoint for provider errors.
fn names_the_problem(message: &str, endpoint: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.starts_with(endpoint) && message.len() > endpoint.len() + 2,
        "{message:?}"
    );
    Ok(())
}

fn seeds(provider: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| fixture(provider, n)).collect()
}

fn proxyshard_seeds() -> Vec<String> {
    [
        r#"{"success":true,"data":5242880000,"data_remain":4194304000,"data_spent":1048576000,"proxy_password":"x"}"#,
        r#"{"success":true,"count":2,"data":[{"user_id":"u1","data":1048576,"data_spent":"524288","data_remain":524288},{"user_id":7,"data_spent":0}]}"#,
        r#"{"success":true,"data":[{"data":1048576,"data_spent":1024,"data_remain":1047552}]}"#,
        r#"{"success":true,"orders":[{"order_id":1,"product_name":"Standart"},{"order_id":"2"}],"count":2,"prev":null,"next":null}"#,
        r#"{"success":true,"order":{"order_id":1,"status":"active","price_paid":1500,"proxy_password":"x"}}"#,
        r#"{"email":"a@b.c","active_orders":2,"wallet_balance":12345}"#,
    ]
    .map(str::to_owned)
    .to_vec()
}

proptest! {
    #![proptest_config(proptest_config(ProptestConfig::default()))]

    #[test]
    fn hydraproxy_parsers_never_panic(seed in 0..8usize, edits in prop::collection::vec(edit(), 0..6)) {
        let all = seeds("hydraproxy", &[
            "view_usage_history__used_comma_fixed.json", "view_usage_history__used.json",
            "view_usage_history__numbers_as_strings.json", "view_usage_history__unused.json",
            "get_orders_status__ok.json", "get_account_info__reseller_host.json",
            "get_account_info__app_host.json", "error__unauthorised_request.json",
        ]);
        let body = apply(&all[seed % all.len()], &edits);
        match hydraproxy::parse_usage_history(37798, &response(body.clone())) {
            Ok(days) => days_are_sane(&days)?,
            Err(e) => names_the_problem(&e.to_string(), "view_usage_history/")?,
        }
        if let Err(e) = hydraproxy::parse_orders_status(&response(body.clone())) {
            names_the_problem(&e.to_string(), "get_orders_status/")?;
        }
        match hydraproxy::parse_account_info(&response(body)) {
            Ok(b) => prop_assert!(b.iter().all(|b| b.value.is_finite())),
            Err(e) => names_the_problem(&e.to_string(), "get_account_info/")?,
        }
    }

    #[test]
    fn infiniteproxies_parsers_never_panic(seed in 0..8usize, edits in prop::collection::vec(edit(), 0..6)) {
        let all = seeds("infiniteproxies", &[
            "transactions__comma_fixed.json", "transactions__consumption_shape.json",
            "transactions__documented.json", "customers__ok.json", "me__ok.json",
            "error__401.json", "error__403.json", "error__404_customer_not_found.json",
        ]);
        let body = apply(&all[seed % all.len()], &edits);
        match infiniteproxies::parse_transactions(&response(body.clone())) {
            Ok(days) => days_are_sane(&days)?,
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        if let Err(e) = infiniteproxies::parse_customers(&response(body.clone())) {
            prop_assert!(!e.to_string().is_empty());
        }
        match infiniteproxies::parse_me(&response(body)) {
            Ok(b) => prop_assert!(b.iter().all(|b| b.value.is_finite())),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn hostens_parsers_never_panic(seed in 0..13usize, edits in prop::collection::vec(edit(), 0..6)) {
        let all = seeds("hostens", &[
            "server__documented_single.json", "server__array.json", "server_details__documented.json",
            "server_details__numbers_as_strings.json", "history__documented.json",
            "history__with_months.json", "balance__documented.json", "balance__braces_fixed.json",
            "token__ok.json", "invoice__list.json", "invoice_details__documented.json",
            "service__list.json", "service_details__documented.json",
        ]);
        let body = apply(&all[seed % all.len()], &edits);
        if let Err(e) = hostens::parse_servers(&body) {
            prop_assert!(!e.is_empty());
        }
        for parse in [hostens::parse_invoices, hostens::parse_services] {
            match parse(&body) {
                Ok(items) => prop_assert!(items.iter().all(|i| !i.id.is_empty())),
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
        for parse in [hostens::parse_invoice, hostens::parse_service] {
            match parse("308976", &body) {
                Ok(kept) => prop_assert!(kept.get("client").is_none() && kept.get("password").is_none()),
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
        match hostens::parse_details(&body, 1024.0) {
            Ok((counters, _)) => prop_assert!(counters.iter().all(|c| c.value_mb.is_finite() && c.value_mb >= 0.0)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match hostens::parse_history(&body, 1.0) {
            Ok(h) => prop_assert!(h.months.iter().all(|m| m.total_mb.is_finite() && m.total_mb >= 0.0)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match hostens::parse_balance(&body) {
            Ok(b) => prop_assert!(b.iter().all(|b| b.value.is_finite() && b.unit.len() == 3)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn proxyshard_parsers_never_panic(seed in 0..6usize, edits in prop::collection::vec(edit(), 0..6)) {
        let all = proxyshard_seeds();
        let body = apply(&all[seed % all.len()], &edits);
        match proxyshard::parse_profile("standart/owner", &response(body.clone())) {
            Ok((usage, _)) => usage_is_sane(&usage)?,
            Err(e) => names_the_problem(&e.to_string(), "user/api/proxies/profile")?,
        }
        match proxyshard::parse_sub_user(&response(body.clone())) {
            Ok(usage) => usage_is_sane(&usage)?,
            Err(e) => names_the_problem(&e.to_string(), "user/api/proxies/sub-user")?,
        }
        match proxyshard::parse_sub_users(&response(body.clone())) {
            Ok(users) => for (_, usage) in &users {
                match usage {
                    Ok(usage) => usage_is_sane(usage)?,
                    Err(e) => names_the_problem(&e.to_string(), "user/api/proxies/sub-users")?,
                }
            },
            Err(e) => names_the_problem(&e.to_string(), "user/api/proxies/sub-users")?,
        }
        if let Err(e) = proxyshard::parse_orders(&response(body.clone())) {
            names_the_problem(&e.to_string(), "user/api/orders")?;
        }
        match proxyshard::parse_order("1", &response(body.clone())) {
            Ok(usage) => {
                // No key naming a password, in any spelling, in the snapshot or the
                // body kept raw.
                let data = usage.records[0].data.to_string().to_lowercase();
                prop_assert!(!data.contains("password\":"), "stored {}", data);
                let raw = &usage.raw[0];
                let kept = usage_archiver::redact::redact_body(&raw.body, raw.secret_keys);
                let raw = String::from_utf8_lossy(&kept).to_lowercase();
                prop_assert!(!raw.contains("password\":"), "kept {}", raw);
            }
            Err(e) => names_the_problem(&e.to_string(), "user/api/orders")?,
        }
        match proxyshard::parse_me(&response(body), "USD") {
            Ok(b) => prop_assert!(b.iter().all(|b| b.value.is_finite())),
            Err(e) => names_the_problem(&e.to_string(), "user/api/me")?,
        }
    }

    /// Arbitrary bytes, not just mutations of valid bodies.
    #[test]
    fn random_bytes_are_refused_cleanly(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = hydraproxy::parse_usage_history(1, &response(body.clone()));
        let _ = infiniteproxies::parse_transactions(&response(body.clone()));
        let _ = hostens::parse_history(&body, 1.0);
        let _ = proxyshard::parse_sub_users(&response(body));
    }
}

/// The seeds themselves: the documented bodies parse (or fail) the way the provider tests say.
#[test]
fn seeds_are_the_documented_bodies() {
    let body = fixture("hydraproxy", "view_usage_history__used_comma_fixed.json");
    assert_eq!(
        hydraproxy::parse_usage_history(37798, &response(body.into_bytes()))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(apply("abc", &[Edit::Truncate(1)]), b"a");
    assert_eq!(apply("[1]", &[Edit::ReplaceLeaf(0, 1)]), b"[-1]");
}
