//! Objects that end are recorded as ended (issue 23.1): a Hostens service the listing
//! reports Terminated, a HydraProxy order that turns TERMINATED and a ProxyShard order
//! put on hold or cancelled each take one snapshot showing the change, on the day it
//! happened, and none after while nothing changes.

use std::path::Path;

use httpmock::MockServer;
use serde_json::json;
use usage_archiver::config::{self, Config};
use usage_archiver::providers::hydraproxy::ORDER_STATUSES;
use usage_archiver::store::Store;

use crate::common::*;

fn hostens_config(server: &MockServer, db: &Path) -> Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[hostens]]\nname = \"main\"\n\
         base_url = \"{}\"\nallow_insecure_http = true\nusername = \"u@example.com\"\npassword = \"{TOKEN}\"\n",
        db.display().to_string(),
        server.base_url()
    );
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

/// A Hostens account with no server and one service, listed and detailed as `status`.
async fn mock_hostens<'a>(server: &'a MockServer, status: &str) -> httpmock::Mock<'a> {
    let listing = json!({"services": [{"id": "301", "domain": "examplename.com",
        "total": "9.99", "status": status, "billingcycle": "Monthly", "next_due": "2026-07-30",
        "category": "Hosting", "category_url": "hosting", "name": "Starter Hosting"}]});
    let details = json!({"service": {"id": "301", "date_created": "2016-12-30",
        "domain": "examplename.com", "firstpayment": "9.99", "total": "9.99",
        "billingcycle": "Monthly", "next_due": "2026-07-30", "next_invoice": "2026-06-27",
        "status": status, "label": "", "username": "examplen", "password": "pdtzc",
        "name": "Starter Hosting"}});
    mock_hostens_with(server, listing.to_string(), details.to_string()).await
}

/// A Hostens account with no server and one service, listed and detailed by these bodies.
async fn mock_hostens_with(
    server: &MockServer,
    listing: String,
    details: String,
) -> httpmock::Mock<'_> {
    server.reset_async().await;
    server
        .mock_async(|when, then| {
            when.path("/server");
            then.status(200).json_body(json!({"servers": []}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/balance");
            then.status(200)
                .body(fixture("hostens", "balance__braces_fixed.json"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/invoice");
            then.status(200).json_body(json!({"invoices": []}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/service");
            then.status(200).body(listing);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/service/301");
            then.status(200).body(details);
        })
        .await
}

/// Runs the daemon's plan at every hour of `day` from `from` to `to` o'clock.
async fn hourly(config: &Config, store: &Store, day: &str, hours: std::ops::RangeInclusive<u32>) {
    for hour in hours {
        let report = sync_planned(
            config,
            store,
            &config.accounts[0],
            at(&format!("{day}T{hour:02}:10:00Z")),
        )
        .await;
        assert_all_ok(&[report]);
    }
}

fn history(db: &Path, sql: &str) -> Vec<(String, String)> {
    open(db)
        .prepare(sql)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Active for three days, then Terminated: the view shows the change on the day it
/// came, in one snapshot, and no row after it; the details are not asked again.
// See: issue 23.1
#[tokio::test]
async fn a_hostens_service_that_ends_is_recorded_ended() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let config = hostens_config(&server, &dir.db());
    let store = Store::open(&dir.db()).unwrap();
    mock_hostens(&server, "Active").await;
    for day in ["2026-06-01", "2026-06-02", "2026-06-03"] {
        hourly(&config, &store, day, 8..=11).await;
    }
    let details = mock_hostens(&server, "Terminated").await;
    hourly(&config, &store, "2026-06-04", 8..=23).await;
    details.assert_calls_async(1).await;
    let details = mock_hostens(&server, "Terminated").await;
    hourly(&config, &store, "2026-06-05", 0..=23).await;
    hourly(&config, &store, "2026-06-06", 0..=3).await;
    details.assert_calls_async(0).await;
    assert_eq!(
        history(
            &dir.db(),
            "SELECT day, status FROM hostens_service_history WHERE service_id = '301' ORDER BY day"
        ),
        [
            ("2026-06-01".into(), "Active".into()),
            ("2026-06-02".into(), "Active".into()),
            ("2026-06-03".into(), "Active".into()),
            ("2026-06-04".into(), "Terminated".into()),
        ]
    );
    assert!(
        !archive_contains(&dir.db(), "pdtzc"),
        "the service's password is never kept"
    );
}

/// The listing and the details disagree on a status (the document's own examples:
/// Pending and Active): the snapshot is taken once, not on every tick.
// See: issue 23.1
#[tokio::test]
async fn a_status_the_listing_and_details_disagree_on_is_taken_once() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let config = hostens_config(&server, &dir.db());
    let store = Store::open(&dir.db()).unwrap();
    // The document's own examples: the listing says Pending, the details Active.
    let details = mock_hostens_with(
        &server,
        fixture("hostens", "service__list.json"),
        fixture("hostens", "service_details__documented.json"),
    )
    .await;
    hourly(&config, &store, "2026-06-01", 8..=20).await;
    details.assert_calls_async(1).await;
}

/// A HydraProxy order that turns TERMINATED: its details are taken again once, the day's
/// row shows it, and no day after has one.
// See: issue 23.1
#[tokio::test]
async fn a_hydraproxy_order_that_ends_takes_one_snapshot() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let config = hydra_config(&server, &dir.db(), "", "");
    let store = Store::open(&dir.db()).unwrap();
    let phase = |status: &'static str| {
        let server = &server;
        async move {
            server.reset_async().await;
            mock_account_info(server).await;
            for listed in ORDER_STATUSES {
                let body = if listed == status {
                    format!(
                        r#"[{{"id": 20, "network_type": "RESIDENTIAL", "status": "{status}", "price_usd": 3.0}}]"#
                    )
                } else {
                    "[]".to_owned()
                };
                server
                    .mock_async(|when, then| {
                        when.path("/reseller/get_orders_status/")
                            .body_includes(form_field("status", listed));
                        then.status(200).body(body);
                    })
                    .await;
            }
            mock_usage(server, r#"{"status":"OK","order_id":20,"usage":null}"#).await;
            let details = fixture("hydraproxy", "order_details__residential.json").replace(
                r#""order_status": "ACTIVE""#,
                &format!(r#""order_status": "{status}""#),
            );
            server
                .mock_async(|when, then| {
                    when.path("/reseller/order_details/");
                    then.status(200).body(details);
                })
                .await
        }
    };
    phase("ACTIVE").await;
    hourly(&config, &store, "2026-06-01", 8..=12).await;
    hourly(&config, &store, "2026-06-02", 8..=11).await;
    let details = phase("TERMINATED").await;
    hourly(&config, &store, "2026-06-02", 12..=23).await;
    details.assert_calls_async(1).await;
    let details = phase("TERMINATED").await;
    hourly(&config, &store, "2026-06-03", 0..=23).await;
    details.assert_calls_async(0).await;
    assert_eq!(
        history(
            &dir.db(),
            "SELECT day, status FROM hydraproxy_order_history WHERE order_id = '20' ORDER BY day"
        ),
        [
            ("2026-06-01".into(), "ACTIVE".into()),
            ("2026-06-02".into(), "TERMINATED".into())
        ]
    );
}
