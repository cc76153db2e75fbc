//! The InfiniteProxies source against httpmock: both payload shapes, auth forms, 404 as gone.

use std::path::Path;

use httpmock::MockServer;
use usage_archiver::config::{self, Config};
use usage_archiver::error::ProviderError;
use usage_archiver::http::Response;
use usage_archiver::providers::infiniteproxies;
use usage_archiver::store::Store;
use usage_archiver::store::coverage::load_gaps;
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

fn response(status: u16, body: &str) -> Response {
    Response {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        body: bytes::Bytes::from(body.to_owned()),
    }
}

fn fx(name: &str) -> String {
    fixture("infiniteproxies", name)
}

fn inf_config(server: &MockServer, db: &Path, extra: &str) -> Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 2\nbackoff_initial_ms = 1\n\n\
         [[infiniteproxies]]\nname = \"main\"\nbase_url = \"{}/v2\"\nallow_insecure_http = true\n\
         api_key = \"{TOKEN}\"\n{extra}\n",
        db.display().to_string(),
        server.base_url()
    );
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

async fn mock_me(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.method("GET").path("/v2/@me");
            then.status(200).body(fx("me__ok.json"));
        })
        .await;
}

async fn mock_customers<'a>(server: &'a MockServer, users: &[&str]) -> httpmock::Mock<'a> {
    let users: Vec<String> = users
        .iter()
        .map(|u| format!(r#"{{"username": "{u}", "proxy_password": "pw-{u}", "balance": 7}}"#))
        .collect();
    let body = format!(
        r#"{{"status": {{"code": 200, "message": "Success"}}, "payload": {{"users": [{}]}}}}"#,
        users.join(",")
    );
    server
        .mock_async(|when, then| {
            when.method("GET").path("/v2/customers");
            then.status(200).body(body);
        })
        .await
}

/// Both documented payload shapes give the same 14 days, zero days included.
#[test]
fn both_payload_shapes_parse_with_zero_days() {
    let direct =
        infiniteproxies::parse_transactions(&response(200, &fx("transactions__comma_fixed.json")))
            .unwrap();
    let nested = infiniteproxies::parse_transactions(&response(
        200,
        &fx("transactions__consumption_shape.json"),
    ))
    .unwrap();
    assert_eq!(direct, nested);
    assert_eq!(direct.len(), 14);
    assert_eq!(direct.iter().filter(|d| d.total_mb == 0.0).count(), 13);
    let may6 = direct
        .iter()
        .find(|d| d.day.to_string() == "2022-05-06")
        .unwrap();
    assert_eq!(
        (may6.total_mb, may6.upload_mb, may6.download_mb),
        (65.75, None, None)
    );
}

/// The documented example (trailing comma) and bad keys or values are malformed errors naming what is wrong.
#[test]
fn malformed_transactions_name_the_problem() {
    let cases = [
        (fx("transactions__documented.json"), "invalid JSON"),
        (r#"{"status":{"code":200,"message":"Success"},"payload":{"yesterday": 1}}"#.to_owned(), "\"yesterday\" is not a YYYY-MM-DD date"),
        (r#"{"status":{"code":200,"message":"Success"},"payload":{"2022-05-04": -3}}"#.to_owned(), "payload.2022-05-04"),
        (r#"{"status":{"code":200,"message":"Success"},"payload":{"consumption":{"2022-05-04": "lots"}}}"#.to_owned(), "payload.consumption.2022-05-04"),
        (r#"{"status":{"code":200,"message":"Success"}}"#.to_owned(), "no `payload`"),
    ];
    for (body, expected) in cases {
        let err = infiniteproxies::parse_transactions(&response(200, &body)).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
}

/// Customers are lower-cased and their balances come with them, in MB like the reseller's
/// own (the document says GB once, but its add/remove examples only add up in MB).
// See: issue 18.5
#[test]
fn customers_and_me_parse() {
    let found =
        infiniteproxies::parse_customers(&response(200, &fx("customers__ok.json"))).unwrap();
    assert_eq!(
        found.subjects,
        ["supercoolusername881", "anothercoolusername8842"]
    );
    assert_eq!(
        found.balances[0].metric,
        "customer_balance:supercoolusername881"
    );
    assert_eq!(
        (found.balances[0].value, found.balances[0].unit.as_str()),
        (100.0, "MB")
    );
    let me = infiniteproxies::parse_me(&response(200, &fx("me__ok.json"))).unwrap();
    let got: Vec<_> = me
        .iter()
        .map(|b| (b.metric.as_str(), b.value, b.unit.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("balance_residential_mb", 5000.0, "MB"),
            ("balance_mobile_mb", 3000.0, "MB")
        ]
    );
}

/// A 404 body (even the documented one, which is not valid JSON) is "not found".
#[test]
fn not_found_is_its_own_error() {
    let err = infiniteproxies::parse_transactions(&response(
        404,
        &fx("error__404_customer_not_found.json"),
    ))
    .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound { .. }), "{err:?}");
}

/// A full sync: discovery, escaped usernames, default Bearer header, rows with NULL upload/download, balances.
#[tokio::test]
async fn sync_archives_customers_with_bearer_auth() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_me(&server).await;
    mock_customers(&server, &["Alice"]).await;
    let alice = server
        .mock_async(|when, then| {
            when.method("GET")
                .path("/v2/customer/@alice/transactions")
                .header("authorization", format!("Bearer {TOKEN}"));
            then.status(200).body(fx("transactions__comma_fixed.json"));
        })
        .await;
    let odd = server
        .mock_async(|when, then| {
            when.method("GET")
                .path("/v2/customer/@odd%20one%2Fx/transactions");
            then.status(200)
                .body(fx("transactions__consumption_shape.json"));
        })
        .await;
    let config = inf_config(&server, &dir.db(), "customers = [\"Odd One/x\"]");
    let report = sync_at(&config, at("2022-05-17T12:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    alice.assert_calls_async(1).await;
    odd.assert_calls_async(1).await;
    let rows = day_rows(&dir.db(), "alice");
    assert_eq!(rows.len(), 14);
    assert!(
        rows.iter().all(|r| r.1.is_none() && r.2.is_none()),
        "only totals"
    );
    assert_eq!(day_rows(&dir.db(), "odd one/x").len(), 14);
    let metrics = count(
        &dir.db(),
        "SELECT count(*) FROM balance_snapshots WHERE provider = 'infiniteproxies'",
    );
    assert_eq!(metrics, 3, "residential, mobile, and alice's balance");
}

/// The auth header and prefix are configurable (X-API-KEY without a prefix).
#[tokio::test]
async fn auth_header_and_prefix_are_configurable() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let me = server
        .mock_async(|when, then| {
            when.path("/v2/@me")
                .header("x-api-key", TOKEN)
                .header_missing("authorization");
            then.status(200).body(fx("me__ok.json"));
        })
        .await;
    let config = inf_config(
        &server,
        &dir.db(),
        "auth_header = \"X-API-KEY\"\nauth_prefix = \"\"",
    );
    let http = usage_archiver::http::HttpClient::new(&config.http).unwrap();
    let provider = usage_archiver::providers::build(
        &config.accounts[0],
        &http,
        std::sync::Arc::new(usage_archiver::providers::NoVault),
    );
    provider.check_credentials().await.unwrap();
    me.assert_calls_async(1).await;
}

/// 401 and 403 are rejected credentials, not retried, with the provider's message where it sent valid JSON.
#[tokio::test]
async fn rejected_keys_are_not_retried() {
    for (status, body, message) in [
        (
            401,
            r#"{"status":{"code":401,"message":"Unauthorized"}}"#.to_owned(),
            "Unauthorized",
        ),
        (403, fx("error__403.json"), "HTTP 403"),
    ] {
        let server = MockServer::start_async().await;
        let dir = TestDir::new();
        let me = server
            .mock_async(|when, then| {
                when.path("/v2/@me");
                then.status(status).body(body.clone());
            })
            .await;
        let config = inf_config(&server, &dir.db(), "");
        let report = sync_at(&config, at("2022-05-17T12:00:00Z")).await;
        me.assert_calls_async(1).await;
        assert_eq!(report.status, RunStatus::Failed);
        assert!(
            report.errors[0].contains(&format!("credentials rejected: {message}")),
            "{:?}",
            report.errors
        );
    }
}

/// A customer deleted at the provider (404) keeps its archived days, does not fail the run, and leaves no gap.
#[tokio::test]
async fn deleted_customer_keeps_its_days() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_me(&server).await;
    let listing = mock_customers(&server, &["bob"]).await;
    let bob = server
        .mock_async(|when, then| {
            when.path("/v2/customer/@bob/transactions");
            then.status(200).body(fx("transactions__comma_fixed.json"));
        })
        .await;
    let config = inf_config(&server, &dir.db(), "");
    sync_at(&config, at("2022-05-17T12:00:00Z")).await;
    let before = day_rows(&dir.db(), "bob");

    listing.delete_async().await;
    bob.delete_async().await;
    mock_customers(&server, &["carol"]).await;
    server
        .mock_async(|when, then| {
            when.path("/v2/customer/@bob/transactions");
            then.status(404)
                .body(fx("error__404_customer_not_found.json"));
        })
        .await;
    let carol = server
        .mock_async(|when, then| {
            when.path("/v2/customer/@carol/transactions");
            then.status(200)
                .body(fx("transactions__consumption_shape.json"));
        })
        .await;
    let report = sync_at(&config, at("2022-05-18T12:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    carol.assert_calls_async(1).await;
    assert_eq!(
        day_rows(&dir.db(), "bob"),
        before,
        "archived days untouched"
    );
    assert_eq!(
        day_rows(&dir.db(), "carol").len(),
        14,
        "new customer discovered"
    );
    let note: String = open(&dir.db())
        .query_row(
            "SELECT error FROM sync_error WHERE subject = 'bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        note.starts_with("gone, not found at the provider"),
        "{note}"
    );
    let store = Store::open_read_only(&dir.db()).unwrap();
    let gaps = store
        .with_conn(|c| {
            load_gaps(
                c,
                "infiniteproxies",
                "main",
                chrono::NaiveDate::from_ymd_opt(2022, 5, 25).unwrap(),
                14,
            )
        })
        .unwrap();
    assert!(gaps.iter().all(|g| g.subject != "bob"), "{gaps:?}");
}

/// Customers' proxy passwords never reach the archive, even with keep_raw = "all".
#[tokio::test]
async fn proxy_passwords_are_never_stored() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_me(&server).await;
    mock_customers(&server, &["dave"]).await;
    server
        .mock_async(|when, then| {
            when.path("/v2/customer/@dave/transactions");
            then.status(200).body(fx("transactions__comma_fixed.json"));
        })
        .await;
    let mut config = inf_config(&server, &dir.db(), "");
    config.archive.keep_raw = usage_archiver::config::KeepRaw::All;
    sync_at(&config, at("2022-05-17T12:00:00Z")).await;
    assert!(
        count(&dir.db(), "SELECT count(*) FROM raw_response") >= 2,
        "bodies were kept"
    );
    let dump: Vec<u8> = std::fs::read(dir.db()).unwrap();
    let wal: Vec<u8> = std::fs::read(dir.path("archive.db-wal")).unwrap_or_default();
    for bytes in [dump, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("bu25b2zuk5u2kv5uz2") && !text.contains("pw-dave"),
            "a proxy password reached the archive"
        );
    }
}

/// An outage longer than the 14-day window: the days between are lost, and status says so.
#[tokio::test]
async fn outage_over_14_days_loses_the_days_between() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_me(&server).await;
    mock_customers(&server, &["erin"]).await;
    server
        .mock_async(|when, then| {
            when.path("/v2/customer/@erin/transactions");
            then.status(200)
                .body(r#"{"status":{"code":200,"message":"Success"},"payload":{}}"#);
        })
        .await;
    let config = inf_config(&server, &dir.db(), "");
    sync_at(&config, at("2026-06-01T12:00:00Z")).await;
    sync_at(&config, at("2026-06-21T12:00:00Z")).await;
    let store = Store::open_read_only(&dir.db()).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 21).unwrap();
    let gaps = store
        .with_conn(|c| load_gaps(c, "infiniteproxies", "main", today, 14))
        .unwrap();
    assert_eq!(
        gaps[0].lost,
        [
            "2026-06-01",
            "2026-06-02",
            "2026-06-03",
            "2026-06-04",
            "2026-06-05",
            "2026-06-06",
            "2026-06-07"
        ]
    );
    assert!(gaps[0].recoverable.is_empty());
}
