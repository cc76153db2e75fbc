//! Politeness and resilience of the shared HTTP client, through the HydraProxy source.

use std::time::{Duration, Instant};

use httpmock::MockServer;
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

/// 503 twice then 200: retried with backoff, and the data is archived.
#[tokio::test]
async fn retries_503_then_succeeds() {
    let (server, dir) = hydra_server().await;
    let failing = server
        .mock_async(|when, then| {
            when.method("POST").path("/api/view_usage_history/");
            then.status(503).body("busy").up_to_n_times(2);
        })
        .await;
    let ok = mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    let config = hydra_config(&server, &dir.db(), "orders = [37798]", "");
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    failing.assert_calls_async(2).await;
    ok.assert_calls_async(1).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(day_rows(&dir.db(), "37798").len(), 3);
}

/// A 429's Retry-After is waited out even when the backoff would retry sooner.
#[tokio::test]
async fn retry_after_is_honoured() {
    let (server, dir) = hydra_server().await;
    let limited = server
        .mock_async(|when, then| {
            when.method("POST").path("/api/view_usage_history/");
            then.status(429).header("retry-after", "1").up_to_n_times(1);
        })
        .await;
    mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__unused.json").replace("43440", "1"),
    )
    .await;
    // Backoff starts at 1 ms, so only Retry-After can make the client wait a second.
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let started = Instant::now();
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    limited.assert_calls_async(1).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
}

/// 401 and 403 are not retried, are reported as rejected credentials, and stop the account's run.
#[tokio::test]
async fn rejected_credentials_are_not_retried() {
    for status in [401, 403] {
        let server = MockServer::start_async().await;
        let dir = TestDir::new();
        mock_no_orders(&server).await;
        let info = server
            .mock_async(|when, then| {
                when.path("/api/get_account_info/");
                then.status(status)
                    .body(fixture("hydraproxy", "error__unauthorised_request.json"));
            })
            .await;
        let usage = server
            .mock_async(|when, then| {
                when.path("/api/view_usage_history/");
                then.status(status);
            })
            .await;
        let config = hydra_config(&server, &dir.db(), "orders = [1, 2, 3]", "");
        let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
        info.assert_calls_async(1).await;
        usage.assert_calls_async(0).await;
        assert_eq!(report.status, RunStatus::Failed);
        let error = &report.errors[0];
        assert!(
            error.contains("credentials rejected: unauthorised_request")
                && error.contains("whitelisted"),
            "{error}"
        );
        assert!(!error.contains(TOKEN));
    }
}

/// A body over max_body_bytes is refused without being read whole.
#[tokio::test]
async fn body_over_the_cap_is_refused() {
    let (server, dir) = hydra_server().await;
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/");
            then.status(200).body("x".repeat(4096));
        })
        .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "max_body_bytes = 1024");
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    assert!(
        report.errors[0].contains("response body larger than 1024 bytes"),
        "{:?}",
        report.errors
    );
}

/// A response slower than timeout_secs is a timeout, retried, then reported.
#[tokio::test]
async fn slow_response_times_out() {
    let (server, dir) = hydra_server().await;
    let slow = server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/");
            then.status(200)
                .delay(Duration::from_millis(2500))
                .body("{}");
        })
        .await;
    let text = hydra_toml(&server.base_url(), &dir.db(), "orders = [1]", "")
        .replace("timeout_secs = 5", "timeout_secs = 1")
        .replace("max_retries = 3", "max_retries = 1");
    let config = usage_archiver::config::parse(&text, std::path::Path::new("t.toml"))
        .unwrap()
        .config;
    let report = sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    slow.assert_calls_async(2).await;
    assert!(
        report.errors[0].contains("timed out"),
        "{:?}",
        report.errors
    );
}

/// No more than max_concurrency requests of one account are in flight at once.
#[tokio::test]
async fn concurrency_is_limited_per_account() {
    let (server, dir) = hydra_server().await;
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/");
            then.status(200)
                .delay(Duration::from_millis(100))
                .body(r#"{"status":"ERROR","message":"x"}"#);
        })
        .await;
    let orders: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    let account = format!("orders = [{}]\nmax_concurrency = 2", orders.join(","));
    let config = hydra_config(&server, &dir.db(), &account, "");
    // 12 requests of 100 ms, 2 at a time, need at least 6 rounds; the sync layer alone
    // would run 4 at a time (3 rounds), so only the per-account limit makes it this slow.
    let started = Instant::now();
    sync_at(&config, at("2022-04-26T08:00:00Z")).await;
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "took {:?}",
        started.elapsed()
    );
}
