//! The HydraProxy source against httpmock: documented responses, quirks, discovery, finality.

use httpmock::MockServer;
use usage_archiver::error::ProviderError;
use usage_archiver::http::Response;
use usage_archiver::providers::hydraproxy::{self, ORDER_STATUSES};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

fn response(status: u16, body: &str) -> Response {
    Response {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        body: bytes::Bytes::from(body.to_owned()),
    }
}

/// The documented "unused bandwidth" answer (`usage: null`) means no rows, not an error.
#[test]
fn usage_null_is_no_rows() {
    let resp = response(
        200,
        &fixture("hydraproxy", "view_usage_history__unused.json"),
    );
    assert_eq!(
        hydraproxy::parse_usage_history(43440, &resp).unwrap(),
        vec![]
    );
}

/// The documented "used bandwidth" example is invalid JSON; it is a malformed error, not a panic.
#[test]
fn documented_used_example_is_reported_as_invalid_json() {
    let resp = response(200, &fixture("hydraproxy", "view_usage_history__used.json"));
    let err = hydraproxy::parse_usage_history(37798, &resp).unwrap_err();
    assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("view_usage_history/") && text.contains("invalid JSON"),
        "{text}"
    );
    assert_eq!(
        err.raw().unwrap().body,
        resp.body,
        "the raw body travels with the error"
    );
}

/// With the comma the document forgot, every row parses, sorted by day.
#[test]
fn used_example_parses_three_days() {
    let resp = response(
        200,
        &fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    );
    let days = hydraproxy::parse_usage_history(37798, &resp).unwrap();
    let got: Vec<_> = days
        .iter()
        .map(|d| (d.day.to_string(), d.upload_mb, d.download_mb, d.total_mb))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2022-04-22".into(), Some(140.44), Some(1359.63), 1500.07),
            ("2022-04-23".into(), Some(375.58), Some(609.80), 985.38),
            ("2022-04-25".into(), Some(345.83), Some(839.63), 1185.46),
        ]
    );
}

/// Numbers (and the order id) that arrive as strings are accepted.
#[test]
fn numbers_as_strings_are_accepted() {
    let resp = response(
        200,
        &fixture("hydraproxy", "view_usage_history__numbers_as_strings.json"),
    );
    let days = hydraproxy::parse_usage_history(37798, &resp).unwrap();
    assert_eq!(days[2].upload_mb, Some(345.83));
    assert_eq!(days[2].total_mb, 1185.46);
}

/// A negative, non-numeric or impossible value is malformed and names the row and field.
#[test]
fn bad_values_name_the_field() {
    let cases = [
        (
            r#"{"status":"OK","order_id":1,"usage":[{"date":"2022-02-30","bandwidth_upload_mb":1,"bandwidth_download_mb":1,"bandwidth_total_mb":2}]}"#,
            "usage[0].date",
        ),
        (
            r#"{"status":"OK","order_id":1,"usage":[{"date":"2022-02-03","bandwidth_upload_mb":-1,"bandwidth_download_mb":1,"bandwidth_total_mb":2}]}"#,
            "bandwidth_upload_mb",
        ),
        (
            r#"{"status":"OK","order_id":1,"usage":[{"date":"2022-02-03","bandwidth_upload_mb":1,"bandwidth_download_mb":"x","bandwidth_total_mb":2}]}"#,
            "bandwidth_download_mb",
        ),
        (
            r#"{"status":"OK","order_id":2,"usage":null}"#,
            "asked for order 1",
        ),
        ("<html>502 Bad Gateway</html>", "invalid JSON"),
    ];
    for (body, expected) in cases {
        let err = hydraproxy::parse_usage_history(1, &response(200, body)).unwrap_err();
        assert!(err.to_string().contains(expected), "{body}: {err}");
    }
}

/// `"status": "ERROR"` is an error carrying the message, even with HTTP 200.
#[test]
fn error_body_with_http_200_is_an_api_error() {
    let body = r#"{"status":"ERROR","url":"view_usage_history/","message":"order_not_found"}"#;
    let err = hydraproxy::parse_usage_history(5, &response(200, body)).unwrap_err();
    assert!(
        matches!(err, ProviderError::Api { ref message, .. } if message == "order_not_found"),
        "{err:?}"
    );
}

/// An answer whose fields would parse as usage is still an error when its `status` says
/// so, or when its HTTP status is not a success; a `status` of another type is ignored.
#[test]
fn usage_shaped_errors_are_errors() {
    let rows = r#"[{"date":"2026-01-02","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}]"#;
    for usage in ["null", rows] {
        let body = format!(
            r#"{{"status":"ERROR","message":"order_expired","order_id":5,"usage":{usage}}}"#
        );
        let err = hydraproxy::parse_usage_history(5, &response(200, &body)).unwrap_err();
        assert!(
            matches!(err, ProviderError::Api { ref message, .. } if message == "order_expired"),
            "{body}: {err:?}"
        );
    }
    let body = r#"{"status":"OK","order_id":5,"usage":null}"#;
    let err = hydraproxy::parse_usage_history(5, &response(503, body)).unwrap_err();
    assert!(err.to_string().contains("unexpected HTTP 503"), "{err}");
    for status in ["1", "null", r#"{"code":"OK"}"#] {
        let body = format!(r#"{{"status":{status},"order_id":5,"usage":null}}"#);
        assert_eq!(
            hydraproxy::parse_usage_history(5, &response(200, &body)).unwrap(),
            vec![],
            "{body}"
        );
    }
}

/// `unauthorised_request` is rejected credentials with the IP whitelist hint.
#[test]
fn unauthorised_request_is_rejected_credentials_with_hint() {
    let resp = response(
        200,
        &fixture("hydraproxy", "error__unauthorised_request.json"),
    );
    let err = hydraproxy::parse_usage_history(5, &resp).unwrap_err();
    assert!(err.is_rejected());
    assert!(err.to_string().contains("not whitelisted"), "{err}");
}

/// The documented orders list and both account-info examples.
#[test]
fn orders_and_account_info_parse() {
    let orders = response(200, &fixture("hydraproxy", "get_orders_status__ok.json"));
    assert_eq!(
        hydraproxy::parse_orders_status(&orders).unwrap(),
        [hydraproxy::ListedOrder {
            id: 10,
            network_type: Some("MOBILE".to_owned()),
            status: Some("ACTIVE".to_owned()),
            price_usd: Some(2.95),
        }]
    );
    let info = response(
        200,
        &fixture("hydraproxy", "get_account_info__reseller_host.json"),
    );
    let balances = hydraproxy::parse_account_info(&info).unwrap();
    assert_eq!(
        (
            balances[0].metric.as_str(),
            balances[0].value,
            balances[0].unit.as_str()
        ),
        ("balance_usd", 180.0, "USD")
    );
    let trailing_comma = response(
        200,
        &fixture("hydraproxy", "get_account_info__app_host.json"),
    );
    let err = hydraproxy::parse_account_info(&trailing_comma).unwrap_err();
    assert!(
        err.to_string()
            .contains("get_account_info/: malformed response: invalid JSON"),
        "{err}"
    );
}

/// view_usage_history/ is a POST to the trailing-slash URL with both headers and order_id as digits.
#[tokio::test]
async fn usage_request_has_documented_shape() {
    let (server, dir) = hydra_server().await;
    let usage = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/api/view_usage_history/")
                .header("authorization", format!("Token {TOKEN}"))
                .header("accept", "application/json")
                .body_includes(form_field("order_id", "37798"));
            then.status(200).body(fixture(
                "hydraproxy",
                "view_usage_history__used_comma_fixed.json",
            ));
        })
        .await;
    let config = hydra_config(&server, &dir.db(), "orders = [37798]", "");
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    usage.assert_calls_async(1).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(day_rows(&dir.db(), "37798").len(), 3);
    let balance: f64 = open(&dir.db())
        .query_row("SELECT value FROM balance_snapshots WHERE metric = 'balance_usd' AND day = '2022-04-26'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(balance, 180.0);
}

/// Discovery asks get_orders_status/ for every status and adds configured and recently archived orders.
#[tokio::test]
async fn discovery_covers_every_status_config_and_archive() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_account_info(&server).await;
    let mut status_mocks = Vec::new();
    for (i, status) in ORDER_STATUSES.iter().enumerate() {
        let body = format!(
            r#"[{{"id": {}, "network_type": "RESIDENTIAL", "status": "{status}", "price_usd": 3.0}}]"#,
            100 + i
        );
        status_mocks.push(
            server
                .mock_async(|when, then| {
                    when.method("POST")
                        .path("/reseller/get_orders_status/")
                        .body_includes(form_field("status", status));
                    then.status(200).body(body);
                })
                .await,
        );
    }
    let usage = server
        .mock_async(|when, then| {
            when.method("POST").path("/api/view_usage_history/");
            then.status(200)
                .body(r#"{"status":"OK","order_id":0,"usage":null}"#);
        })
        .await;
    // An order archived two days ago that no listing shows any more.
    let config = hydra_config(&server, &dir.db(), "orders = [\"900\"]", "");
    let store = usage_archiver::store::Store::open(&dir.db()).unwrap();
    store
        .with_conn(|c| {
            let tx = usage_archiver::store::usage::begin(c)?;
            for (subject, day) in [("777", "2022-04-24"), ("555", "2022-01-01")] {
                let key = usage_archiver::store::usage::SubjectKey {
                    provider: "hydraproxy",
                    account: "main".into(),
                    subject: subject.into(),
                };
                let row = usage_archiver::model::DayUsage {
                    day: day.parse().unwrap(),
                    upload_mb: Some(1.0),
                    download_mb: Some(1.0),
                    total_mb: 2.0,
                };
                let fetched = usage_archiver::model::FetchTime(at("2022-04-25T00:00:00Z"));
                usage_archiver::store::usage::upsert_days(&tx, &key, &[row], false, fetched)?;
            }
            Ok(tx.commit()?)
        })
        .unwrap();
    let report = sync_with(
        &config,
        &store,
        &config.accounts[0],
        at("2022-04-26T08:00:00Z"),
    )
    .await;
    for m in &status_mocks {
        m.assert_calls_async(1).await;
    }
    // 6 discovered + 1 configured + 1 recent archived; 555 is outside the 7-day window.
    usage.assert_calls_async(8).await;
    assert_eq!(
        report.status,
        RunStatus::Failed,
        "order ids mismatch the mock, so every subject fails"
    );
    let subjects: Vec<String> = open(&dir.db())
        .prepare("SELECT subject FROM sync_error ORDER BY subject")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Each listed order's details are a subject of their own (order_details/ is not
    // mocked here, so they fail too).
    assert_eq!(
        subjects,
        [
            "100",
            "101",
            "102",
            "103",
            "104",
            "105",
            "777",
            "900",
            "order/100",
            "order/101",
            "order/102",
            "order/103",
            "order/104",
            "order/105"
        ]
    );
}

/// A second sync with the same data writes nothing: no row, no timestamp, no file growth.
#[tokio::test]
async fn resync_with_unchanged_data_writes_nothing() {
    let (server, dir) = hydra_server().await;
    mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    let config = hydra_config(&server, &dir.db(), "orders = [37798]", "");
    let first = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    assert_eq!(first.totals.rows_inserted, 3);
    let snapshot = |db: &std::path::Path| {
        let conn = open(db);
        let rows: Vec<(String, String, String)> = conn
            .prepare("SELECT day, first_seen_at, last_seen_at FROM day_usage ORDER BY day")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };
    let before = snapshot(&dir.db());
    let second = sync_at(&config, at("2022-04-26T09:00:00Z")).await;
    assert_eq!(
        (
            second.totals.rows_inserted,
            second.totals.rows_updated,
            second.rows_unchanged
        ),
        (0, 0, 3)
    );
    assert_eq!(snapshot(&dir.db()), before, "no timestamp churn");
    let balances = count(
        &dir.db(),
        "SELECT count(*) FROM balance_snapshot WHERE taken_at LIKE '%T09:%'",
    );
    assert_eq!(balances, 0, "an unchanged balance is not rewritten");
}

/// Today is provisional and overwritten; once fetched after midnight it is final; a later change is a revision.
#[tokio::test]
async fn provisional_day_becomes_final_and_later_changes_are_revisions() {
    let (server, dir) = hydra_server().await;
    let body = |today_total: f64, old_total: f64| {
        format!(
            r#"{{"status":"OK","order_id":1,"usage":[
              {{"date":"2022-04-25","bandwidth_upload_mb":1,"bandwidth_download_mb":1,"bandwidth_total_mb":{today_total}}},
              {{"date":"2022-04-24","bandwidth_upload_mb":1,"bandwidth_download_mb":1,"bandwidth_total_mb":{old_total}}}]}}"#
        )
    };
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let mut mock = mock_usage(&server, body(10.0, 50.0)).await;
    sync_at(&config, at("2022-04-25T12:00:00Z")).await;
    let rows = day_rows(&dir.db(), "1");
    assert_eq!(
        (rows[0].4, rows[1].4),
        (true, false),
        "yesterday final, today provisional"
    );

    mock.delete_async().await;
    mock = mock_usage(&server, body(20.0, 50.0)).await;
    let report = sync_at(&config, at("2022-04-26T00:30:00Z")).await;
    assert_eq!(report.totals.rows_updated, 1);
    let rows = day_rows(&dir.db(), "1");
    assert_eq!(
        (rows[1].3, rows[1].4),
        (20.0, true),
        "provisional value replaced and now final"
    );
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM usage_revisions"),
        0,
        "provisional changes are not revisions"
    );

    mock.delete_async().await;
    mock_usage(&server, body(20.0, 55.5)).await;
    sync_at(&config, at("2022-04-26T10:00:00Z")).await;
    let (period, old, new): (String, f64, f64) = open(&dir.db())
        .query_row(
            "SELECT period, old_total_mb, new_total_mb FROM usage_revisions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((period.as_str(), old, new), ("2022-04-24", 50.0, 55.5));
}

/// Days that vanish from the provider's answer stay in the archive untouched.
#[tokio::test]
async fn days_missing_from_a_later_response_are_kept() {
    let (server, dir) = hydra_server().await;
    let config = hydra_config(&server, &dir.db(), "orders = [37798]", "");
    let mock = mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    let before = day_rows(&dir.db(), "37798");
    mock.delete_async().await;
    mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__unused.json").replace("43440", "37798"),
    )
    .await;
    let report = sync_at(&config, at("2022-04-30T08:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok);
    assert_eq!(day_rows(&dir.db(), "37798"), before);
}

/// A malformed body changes nothing, is kept raw, and the error names the subject and the problem.
#[tokio::test]
async fn malformed_body_changes_nothing_and_is_kept_raw() {
    let (server, dir) = hydra_server().await;
    let config = hydra_config(&server, &dir.db(), "orders = [37798]", "");
    let mock = mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    let before = day_rows(&dir.db(), "37798");
    mock.delete_async().await;
    let broken = fixture("hydraproxy", "view_usage_history__used.json");
    mock_usage(&server, broken.clone()).await;
    let report = sync_at(&config, at("2022-04-26T09:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0]
            .contains("subject 37798: view_usage_history/: malformed response: invalid JSON"),
        "{:?}",
        report.errors
    );
    assert_eq!(day_rows(&dir.db(), "37798"), before);
    let (provider, subject, body): (String, String, Vec<u8>) = open(&dir.db())
        .query_row(
            "SELECT provider, subject, body FROM raw_response",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (provider.as_str(), subject.as_str(), body),
        ("hydraproxy", "37798", broken.into_bytes())
    );
}

/// One failing order does not stop the others; the run is partial and the failure recorded.
#[tokio::test]
async fn failing_order_does_not_stop_the_others() {
    let (server, dir) = hydra_server().await;
    server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/api/view_usage_history/")
                .body_includes(form_field("order_id", "1"));
            then.status(500).body("boom");
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/api/view_usage_history/")
                .body_includes(form_field("order_id", "37798"));
            then.status(200).body(fixture(
                "hydraproxy",
                "view_usage_history__used_comma_fixed.json",
            ));
        })
        .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1, 37798]", "");
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(
        (report.totals.subjects_ok, report.totals.subjects_failed),
        (1, 1)
    );
    assert_eq!(day_rows(&dir.db(), "37798").len(), 3);
    let (status, failed, error): (String, i64, String) = open(&dir.db())
        .query_row(
            "SELECT status, subjects_failed, error FROM sync_runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), failed), ("partial", 1));
    assert!(
        error.contains("subject 1:") && error.contains("HTTP 500"),
        "{error}"
    );
}

/// Order ids are ASCII digits only: a sign, a space or another script's digits are no id,
/// in a subject and in the config alike.
// See: issue 19 ("+5" must not be order 5)
#[test]
fn order_ids_are_plain_digits() {
    use usage_archiver::config::hydraproxy::parse_order_id;
    assert_eq!(parse_order_id("37798"), Some(37798));
    assert_eq!(parse_order_id("007"), Some(7));
    for bad in [
        "+5",
        "-5",
        " 5",
        "5 ",
        "",
        "5.0",
        "\u{0665}",
        "99999999999999999999999",
    ] {
        assert_eq!(parse_order_id(bad), None, "{bad:?}");
    }
    let dir = TestDir::new();
    let text = hydra_toml("https://example.com", &dir.db(), "orders = [\"+5\"]", "");
    let err = usage_archiver::config::parse(&text, std::path::Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("hydraproxy.orders"), "{err}");
}

/// With `keep_raw = "all"`, every usage answer is kept raw beside its rows.
// See: issue 19
#[tokio::test]
async fn keep_raw_all_keeps_every_usage_answer() {
    let (server, dir) = hydra_server().await;
    let body = r#"{"status":"OK","order_id":1,"usage":[{"date":"2026-03-01","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}]}"#;
    mock_usage(&server, body).await;
    let mut config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    config.archive.keep_raw = usage_archiver::config::KeepRaw::All;
    sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    sync_at(&config, at("2026-03-01T13:00:00Z")).await;
    let kept: Vec<(String, String)> = {
        let conn = open(&dir.db());
        let mut stmt = conn
            .prepare(
                "SELECT subject, CAST(body AS TEXT) FROM raw_response \
                 WHERE endpoint = 'view_usage_history/' ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(kept, vec![("1".to_owned(), body.to_owned()); 2]);
}

/// Both documented shapes of `order_details/` give the snapshot the archive keeps, and
/// never the proxy's credentials or whitelisted IP.
// See: issue 18.1
#[test]
fn order_details_documented_shapes() {
    let mobile = response(200, &fixture("hydraproxy", "order_details__mobile.json"));
    let kept = hydraproxy::parse_order_details(10, &mobile).unwrap();
    assert_eq!(
        kept,
        serde_json::json!({
            "status": "ACTIVE", "network_type": "MOBILE", "price_usd": 2.95,
            "date_created": "2020-10-29 11:35:21", "date_end": "2020-10-30 11:35:12",
            "connection_type": "4G_MOBILE", "ports_nr": 1.0, "days_nr": 1.0, "extensions": {},
            "extension_gb": 0.0, "extension_days": 0.0, "extension_usd": 0.0
        })
    );
    let residential = response(
        200,
        &fixture("hydraproxy", "order_details__residential.json"),
    );
    let kept = hydraproxy::parse_order_details(20, &residential).unwrap();
    assert_eq!(
        kept,
        serde_json::json!({
            "status": "ACTIVE", "network_type": "RESIDENTIAL", "price_usd": 3.0,
            "date_created": "2020-10-29 11:55:45", "ports_nr": 1.0, "initial_bandwidth": 1.0,
            "bandwidth_available": 1.0, "extensions": {},
            "extension_gb": 0.0, "extension_days": 0.0, "extension_usd": 0.0
        })
    );
    // Extensions, as `extend_order/` answers are shaped (the document shows the field
    // only empty): summed so a query can add them to what the order bought.
    let extended = fixture("hydraproxy", "order_details__residential.json").replace(
        r#""extensions": {}"#,
        r#""extensions": {"1": {"order_id": 20, "bandwidth_added_gb": 1, "price_usd": 3.0}, "2": {"order_id": 20, "bandwidth_added_gb": "2", "price_usd": "6.0"}}"#,
    );
    let kept = hydraproxy::parse_order_details(20, &response(200, &extended)).unwrap();
    assert_eq!(
        (
            &kept["extension_gb"],
            &kept["extension_usd"],
            &kept["extension_days"]
        ),
        (
            &serde_json::json!(3.0),
            &serde_json::json!(9.0),
            &serde_json::json!(0.0)
        )
    );
    let err = hydraproxy::parse_order_details(21, &residential).unwrap_err();
    assert!(err.to_string().contains("asked for order 21"), "{err}");
    let negative = fixture("hydraproxy", "order_details__residential.json")
        .replace("\"bandwidth_available\": 1", "\"bandwidth_available\": -1");
    let err = hydraproxy::parse_order_details(20, &response(200, &negative)).unwrap_err();
    assert!(
        err.to_string().contains("bandwidth_available is negative"),
        "{err}"
    );
    let error = response(
        200,
        &fixture("hydraproxy", "error__unauthorised_request.json"),
    );
    assert!(
        hydraproxy::parse_order_details(20, &error)
            .unwrap_err()
            .is_rejected()
    );
}

/// A listed order's details are asked from the reseller host as `multipart/form-data`
/// (the document's `curl --form`), kept as the day's snapshot with the listing's network
/// type as the order's label, and the proxy's password appears nowhere in the archive,
/// not even in the raw body `keep_raw = "all"` keeps.
// See: issue 18.1, 18.5
#[tokio::test]
async fn order_details_are_kept_without_the_proxy_password() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_account_info(&server).await;
    for status in ORDER_STATUSES {
        let body = if status == "ACTIVE" {
            r#"[{"id": 20, "network_type": "RESIDENTIAL", "status": "ACTIVE", "price_usd": 3.0}]"#
        } else {
            "[]"
        };
        server
            .mock_async(|when, then| {
                when.method("POST")
                    .path("/reseller/get_orders_status/")
                    .body_includes(form_field("status", status));
                then.status(200).body(body);
            })
            .await;
    }
    mock_usage(&server, r#"{"status":"OK","order_id":20,"usage":null}"#).await;
    let details = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/reseller/order_details/")
                .header_matches("content-type", "^multipart/form-data; boundary=")
                .body_includes(form_field("order_id", "20"));
            then.status(200)
                .body(fixture("hydraproxy", "order_details__residential.json"));
        })
        .await;
    let config = hydra_config(&server, &dir.db(), "", "");
    let mut config = config;
    config.archive.keep_raw = usage_archiver::config::KeepRaw::All;
    let report = sync_at(&config, at("2026-03-01T10:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    details.assert_calls_async(1).await;
    let row: (String, String, f64, f64, f64, String) = open(&dir.db())
        .query_row(
            "SELECT status, network_type, price_usd, initial_bandwidth, bandwidth_available, day \
             FROM hydraproxy_order_history WHERE order_id = '20'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "ACTIVE".into(),
            "RESIDENTIAL".into(),
            3.0,
            1.0,
            1.0,
            "2026-03-01".into()
        )
    );
    let label: String = open(&dir.db())
        .query_row("SELECT label FROM subjects WHERE subject = '20'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(label, "RESIDENTIAL");
    assert!(
        count(
            &dir.db(),
            "SELECT count(*) FROM raw_response WHERE endpoint = 'order_details/'"
        ) == 1,
        "the body is kept"
    );
    for secret in ["PasswordKey", "john_doe_ip"] {
        assert!(
            !archive_contains(&dir.db(), secret),
            "{secret} is in the archive"
        );
    }
}

/// The simulator takes HydraProxy's form fields either way the document's servers would:
/// `multipart/form-data` (what the archiver sends) and `application/x-www-form-urlencoded`.
// See: issue 18.5
#[tokio::test]
async fn the_simulator_takes_both_form_encodings() {
    use usage_archiver::sim::{SimConfig, Simulator, hydraproxy::SIM_TOKEN};
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let url = format!("{}/hydraproxy/reseller/order_details/", sim.base_url());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let asked = |req: reqwest::RequestBuilder| async move {
        let resp = req
            .header("Authorization", format!("Token {SIM_TOKEN}"))
            .send()
            .await
            .unwrap();
        resp.json::<serde_json::Value>().await.unwrap()
    };
    let urlencoded = asked(client.post(&url).form(&[("order_id", "37001")])).await;
    let multipart = asked(
        client
            .post(&url)
            .multipart(reqwest::multipart::Form::new().text("order_id", "37001")),
    )
    .await;
    assert_eq!(urlencoded["order_id"], 37001, "{urlencoded}");
    assert_eq!(urlencoded, multipart);
}

/// `get_orders_status/` as the document shows it (a bare array) and as its general rule
/// describes answers ("The first item of the response is the request status"): an
/// object with `"status": "OK"` and one array of orders. Any other shape is an error that
/// names it.
// See: issue 23.4
#[test]
fn order_listing_takes_both_documented_shapes() {
    let bare = fixture("hydraproxy", "get_orders_status__ok.json");
    let ids = |body: &str| {
        hydraproxy::parse_orders_status(&response(200, body))
            .map(|orders| orders.iter().map(|o| o.id).collect::<Vec<_>>())
    };
    assert_eq!(ids(&bare).unwrap(), [10]);
    let enveloped = format!(r#"{{"status": "OK", "orders": {bare}}}"#);
    assert_eq!(ids(&enveloped).unwrap(), [10]);
    let other_name = format!(r#"{{"data": {bare}, "status": "OK"}}"#);
    assert_eq!(ids(&other_name).unwrap(), [10]);
    for (body, says) in [
        (r#"{"status": "OK"}"#.to_owned(), "no array of orders"),
        (
            format!(r#"{{"orders": {bare}}}"#),
            "got an object with keys orders",
        ),
        (r#""ACTIVE""#.to_owned(), "got a string"),
        (
            format!(r#"{{"status": "OK", "a": {bare}, "b": []}}"#),
            "more than one array",
        ),
    ] {
        let err = ids(&body).unwrap_err().to_string();
        assert!(
            err.starts_with("get_orders_status/") && err.contains(says),
            "{body}: {err}"
        );
    }
}
