//! The HydraProxy source against httpmock: documented responses, quirks, discovery, finality.

use httpmock::MockServer;
use usage_archiver::error::ProviderError;
use usage_archiver::http::Response;
use usage_archiver::providers::hydraproxy::{self, ORDER_STATUSES};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

mod orders;

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
