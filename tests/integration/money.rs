//! The README's queries give totals a reseller can bill from (issue 23.5): run on an
//! archive built from the documents' own examples, each returns what is computed by
//! hand here.
//!
//! The archive: HydraProxy's documented listing row (order 10, MOBILE) and order 20
//! (RESIDENTIAL, the residential details example, with an extension shaped as
//! `extend_order/`'s answer: 1 GB for 3.0 USD, then 2 GB for 6.0 USD), each order using
//! the documented usage days; Hostens' documented invoice (Paid, 19.65) beside copies of
//! it Unpaid, Cancelled and Refunded, its documented service, domain and certificate;
//! a ProxyShard sub-user "Ann" whose counter grows 250 MB over a day.

use std::path::Path;

use httpmock::MockServer;
use serde_json::json;
use usage_archiver::config::{self, Config};
use usage_archiver::providers::hydraproxy::ORDER_STATUSES;
use usage_archiver::store::Store;

use crate::common::*;

const MB: f64 = 1_048_576.0;
/// The documented usage days of one order: 1185.46 + 985.38 + 1500.07 MB.
const ORDER_MB: f64 = 3670.91;

async fn hydraproxy(server: &MockServer) {
    mock_account_info(server).await;
    let listing = r#"[{"id": 10, "network_type": "MOBILE", "status": "ACTIVE", "price_usd": 2.95}, {"id": 20, "network_type": "RESIDENTIAL", "status": "ACTIVE", "price_usd": 3.0}]"#;
    for status in ORDER_STATUSES {
        let body = if status == "ACTIVE" { listing } else { "[]" };
        server
            .mock_async(|when, then| {
                when.path("/reseller/get_orders_status/")
                    .body_includes(form_field("status", status));
                then.status(200).body(body);
            })
            .await;
    }
    let usage = fixture("hydraproxy", "view_usage_history__used_comma_fixed.json");
    let residential = fixture("hydraproxy", "order_details__residential.json").replace(
        r#""extensions": {}"#,
        r#""extensions": {"1": {"order_id": 20, "bandwidth_added_gb": 1, "price_usd": 3.0}, "2": {"order_id": 20, "bandwidth_added_gb": 2, "price_usd": 6.0}}"#,
    );
    for (id, details) in [
        (10, fixture("hydraproxy", "order_details__mobile.json")),
        (20, residential),
    ] {
        let days = usage.replace("37798", &id.to_string());
        server
            .mock_async(|when, then| {
                when.path("/api/view_usage_history/")
                    .body_includes(form_field("order_id", &id.to_string()));
                then.status(200).body(days);
            })
            .await;
        server
            .mock_async(|when, then| {
                when.path("/reseller/order_details/")
                    .body_includes(form_field("order_id", &id.to_string()));
                then.status(200).body(details);
            })
            .await;
    }
}

async fn hostens(server: &MockServer) {
    let documented = fixture("hostens", "invoice_details__documented.json");
    let copies = [
        (308_977, "Unpaid"),
        (308_978, "Cancelled"),
        (308_979, "Refunded"),
    ];
    let mut listing: serde_json::Value =
        serde_json::from_str(&fixture("hostens", "invoice__list.json")).unwrap();
    let row = listing["invoices"][0].clone();
    for (id, status) in copies {
        let mut copy = row.clone();
        copy["id"] = json!(id.to_string());
        copy["status"] = json!(status);
        copy["datepaid"] = serde_json::Value::Null;
        listing["invoices"].as_array_mut().unwrap().push(copy);
        let details = documented
            .replace(r#""id": "308976","#, &format!(r#""id": "{id}","#))
            .replace(r#""status": "Paid","#, &format!(r#""status": "{status}","#));
        server
            .mock_async(|when, then| {
                when.path(format!("/invoice/{id}"));
                then.status(200).body(details);
            })
            .await;
    }
    for (path, body) in [
        ("/server".to_owned(), r#"{"servers": []}"#.to_owned()),
        (
            "/balance".to_owned(),
            fixture("hostens", "balance__braces_fixed.json"),
        ),
        ("/invoice".to_owned(), listing.to_string()),
        ("/invoice/308976".to_owned(), documented),
        (
            "/service".to_owned(),
            fixture("hostens", "service__list.json"),
        ),
        (
            "/service/301".to_owned(),
            fixture("hostens", "service_details__documented.json"),
        ),
        (
            "/domain".to_owned(),
            fixture("hostens", "domain__list.json"),
        ),
        (
            "/domain/47".to_owned(),
            fixture("hostens", "domain_details__documented.json"),
        ),
        (
            "/certificate".to_owned(),
            fixture("hostens", "certificate__list.json"),
        ),
        (
            "/certificate/300".to_owned(),
            fixture("hostens", "certificate_details__fixed.json"),
        ),
    ] {
        server
            .mock_async(|when, then| {
                when.path(path);
                then.status(200).body(body);
            })
            .await;
    }
}

async fn proxyshard(server: &MockServer, spent_mb: f64) {
    server.reset_async().await;
    for (path, body) in [
        (
            "/user/api/me",
            json!({"email": "a@b.c", "active_orders": 0, "wallet_balance": 100}),
        ),
        (
            "/user/api/proxies/profile",
            json!({"success": true, "data": 0, "data_remain": 0, "data_spent": 0}),
        ),
        (
            "/user/api/proxies/sub-users",
            json!({"success": true, "count": 1, "data": [
            {"user_id": "7", "first_name": "Ann", "data": 10_000.0 * MB, "data_spent": spent_mb * MB, "data_remain": 0}]}),
        ),
        (
            "/user/api/orders",
            json!({"success": true, "orders": [], "count": 0, "prev": null, "next": null}),
        ),
    ] {
        server
            .mock_async(|when, then| {
                when.path(path);
                then.status(200).json_body(body);
            })
            .await;
    }
}

fn config_for(db: &Path, hydra: &MockServer, hostens: &MockServer, ps: &MockServer) -> Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n\
         [[hydraproxy]]\nname = \"main\"\nbase_url = \"{h}/api\"\nreseller_base_url = \"{h}/reseller\"\n\
         allow_insecure_http = true\ntoken = \"{TOKEN}\"\n\n\
         [[hostens]]\nname = \"main\"\nbase_url = \"{}\"\nallow_insecure_http = true\n\
         username = \"u@example.com\"\npassword = \"{TOKEN}\"\n\n\
         [[proxyshard]]\nname = \"main\"\nbase_url = \"{}\"\nallow_insecure_http = true\n\
         token = \"{TOKEN}\"\nproxy_types = [\"standart\"]\n",
        db.display().to_string(),
        hostens.base_url(),
        ps.base_url(),
        h = hydra.base_url(),
    );
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

/// Every SQL query of the README, run on the archive of the documents' examples, gives
/// the rows computed by hand.
// See: issue 23.5
#[tokio::test]
async fn readme_queries_add_up_on_the_documents_examples() {
    let dir = TestDir::new();
    let (hydra, host, ps) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    hydraproxy(&hydra).await;
    hostens(&host).await;
    let config = config_for(&dir.db(), &hydra, &host, &ps);
    let store = Store::open(&dir.db()).unwrap();
    for (spent, when) in [
        (100.0, "2022-04-25T00:10:00Z"),
        (350.0, "2022-04-26T00:10:00Z"),
    ] {
        proxyshard(&ps, spent).await;
        for account in &config.accounts {
            assert_all_ok(&[sync_with(&config, &store, account, at(when)).await]);
        }
    }
    let used_gb = ORDER_MB / 1024.0;
    let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
    // The hand-computed rows, by the first words of each query's comment.
    let expected: Vec<(&str, String)> = vec![
        ("SELECT month, provider", format!(
            "2022-04|hydraproxy|{}\n2022-04|proxyshard|{}",
            round(2.0 * ORDER_MB / 1024.0, 2),
            round(250.0 / 1024.0, 2)
        )),
        ("SELECT day, upload_mb", String::new()),
        ("-- HydraProxy residential orders", format!("main|20|ACTIVE|4.0|{}|1.0", round(used_gb, 3))),
        ("-- What each HydraProxy residential", format!("main|20|12.0|{}|{}", round(used_gb, 3), round(12.0 / used_gb, 2))),
        ("-- HydraProxy mobile orders", "main|10|2.95|1.0|1.0|2.95".to_owned()),
        ("-- Hostens spend per month", "2016-12|main|USD|39.3|19.65|0.0".to_owned()),
        ("-- Hostens renewals", "certificate|main|Comodo InstantSSL (examplename.com)|2017-12-30|27.85|Pending\ndomain|main|testname.com|2017-12-30|15.0|Active".to_owned()),
        ("-- ProxyShard usage per named sub-user", "Ann|main|standart/7|250.0".to_owned()),
    ];
    // The README's queries and those it sends readers to.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = ["README.md", "docs/queries.md"]
        .map(|page| std::fs::read_to_string(root.join(page)).unwrap())
        .concat();
    let conn = open(&dir.db());
    let mut checked = 0;
    for block in readme
        .split("```sql\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
    {
        let (_, want) = expected
            .iter()
            .find(|(start, _)| block.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no hand-computed rows for a README query:\n{block}"));
        let mut stmt = conn.prepare(block.trim().trim_end_matches(';')).unwrap();
        let columns = stmt.column_count();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok((0..columns)
                    .map(|i| match r.get::<_, rusqlite::types::Value>(i).unwrap() {
                        rusqlite::types::Value::Integer(n) => format!("{n}.0"),
                        rusqlite::types::Value::Real(x) => format!("{x:?}"),
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Null => "NULL".to_owned(),
                        rusqlite::types::Value::Blob(_) => "BLOB".to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.join("\n"), *want, "{block}");
        checked += 1;
    }
    assert_eq!(
        checked,
        expected.len(),
        "every README query checked, and no expectation left over"
    );
    for personal in ["BEGIN CERTIFICATE REQUEST", "Pretty View Lane", "pdtzc"] {
        assert!(
            !archive_contains(&dir.db(), personal),
            "{personal} is in the archive"
        );
    }
}
