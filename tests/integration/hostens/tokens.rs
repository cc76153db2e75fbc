//! The Hostens token chain: rotation persisted across runs, a new seed, refusals, one use per token, concurrent 401s.

use super::*;

/// Token flow: the seed is traded once, the rotated pair is stored, the next run (a new
/// provider) reuses the stored access token, and a 401 then refreshes with the stored refresh
/// token, once, and retries.
#[tokio::test]
async fn token_rotation_persists_across_runs_and_401_refreshes_once() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let first: Value = serde_json::from_str(&fixture("hostens", "token__ok.json")).unwrap();
    let (a1, r1) = (
        first["token"].as_str().unwrap(),
        first["refresh"].as_str().unwrap(),
    );
    let seed_exchange = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/token")
                .json_body(json!({"refresh_token": SEED}));
            then.status(200).body(fixture("hostens", "token__ok.json"));
        })
        .await;
    let bearer1 = format!("Bearer {a1}");
    let mut served = vec![
        get(
            &server,
            "/balance",
            Some(&bearer1),
            200,
            fixture("hostens", "balance__braces_fixed.json"),
        )
        .await,
        get(
            &server,
            "/server",
            Some(&bearer1),
            200,
            fixture("hostens", "server__documented_single.json"),
        )
        .await,
        get(
            &server,
            "/server/113",
            Some(&bearer1),
            200,
            details(100.0, 10.0),
        )
        .await,
        get(&server, "/server/113/history", Some(&bearer1), 200, "[]").await,
    ];
    let config = hostens_config(&server, &dir.db(), &token_auth(SEED));

    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    seed_exchange.assert_calls_async(1).await;
    let stored = |field: &str| stored_token(&dir.db(), field).unwrap_or_default();
    assert_eq!(stored("refresh_token"), r1);
    assert_eq!(stored("access_token"), a1);
    assert_eq!(stored("seed"), SEED);

    // A second run loads the pair: the stored access token still works, no refresh.
    let report = sync_at(&config, at("2026-11-05T11:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    seed_exchange.assert_calls_async(1).await;

    // The access token expires: every request with it gets 401.
    for mock in &mut served {
        mock.delete_async().await;
    }
    for path in ["/balance", "/server", "/server/113", "/server/113/history"] {
        get(
            &server,
            path,
            Some(&bearer1),
            401,
            r#"{"error":["invalid_token"]}"#,
        )
        .await;
    }
    let second_exchange = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/token")
                .json_body(json!({"refresh_token": r1}));
            then.status(200)
                .json_body(json!({"token": "access-2-SECRET", "refresh": "refresh-2-SECRET"}));
        })
        .await;
    let bearer2 = "Bearer access-2-SECRET";
    let retried = get(
        &server,
        "/balance",
        Some(bearer2),
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(bearer2),
        200,
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(
        &server,
        "/server/113",
        Some(bearer2),
        200,
        details(150.0, 15.0),
    )
    .await;
    get(&server, "/server/113/history", Some(bearer2), 200, "[]").await;

    let report = sync_at(&config, at("2026-11-05T12:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    second_exchange.assert_calls_async(1).await;
    seed_exchange.assert_calls_async(1).await;
    retried.assert_calls_async(1).await;
    assert_eq!(stored("refresh_token"), "refresh-2-SECRET");
    assert_eq!(stored("access_token"), "access-2-SECRET");
    assert_eq!(
        day_rows(&dir.db(), "113"),
        [("2026-11-05".into(), Some(5.0), Some(50.0), 55.0, false)]
    );
    // Tokens live in the credential file only: never in the archive (raw bodies, errors,
    // runs, or any byte of its files).
    for secret in [SEED, r1, "refresh-2-SECRET", "access-2-SECRET"] {
        assert!(
            !archive_contains(&dir.db(), secret),
            "{secret} is in the archive"
        );
        assert_eq!(
            count(
                &dir.db(),
                &format!(
                    "SELECT count(*) FROM raw_response WHERE instr(CAST(body AS TEXT), '{secret}') > 0"
                )
            ),
            0
        );
        assert_eq!(
            count(
                &dir.db(),
                &format!("SELECT count(*) FROM sync_error WHERE instr(error, '{secret}') > 0")
            ),
            0
        );
    }
}

/// A new refresh_token in the config starts a new chain instead of using the stored one.
#[tokio::test]
async fn a_new_seed_in_the_config_wins() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let exchange = |seed: &'static str, n: u32| {
        let server = &server;
        async move {
            server
                .mock_async(|when, then| {
                    when.method("POST")
                        .path("/token")
                        .json_body(json!({"refresh_token": seed}));
                    then.status(200).json_body(
                        json!({"token": format!("access-{n}"), "refresh": format!("refresh-{n}")}),
                    );
                })
                .await
        }
    };
    let old = exchange("old-seed", 1).await;
    let new = exchange("new-seed", 2).await;
    for n in 1..=2 {
        let bearer = format!("Bearer access-{n}");
        get(
            &server,
            "/balance",
            Some(&bearer),
            200,
            fixture("hostens", "balance__braces_fixed.json"),
        )
        .await;
        get(&server, "/server", Some(&bearer), 200, "[]").await;
    }
    let report = sync_at(
        &hostens_config(&server, &dir.db(), &token_auth("old-seed")),
        at("2026-11-05T10:00:00Z"),
    )
    .await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let report = sync_at(
        &hostens_config(&server, &dir.db(), &token_auth("new-seed")),
        at("2026-11-05T11:00:00Z"),
    )
    .await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    old.assert_calls_async(1).await;
    new.assert_calls_async(1).await;
    assert_eq!(
        stored_token(&dir.db(), "refresh_token").as_deref(),
        Some("refresh-2")
    );
}

/// A refused refresh token stops the account's run with a message that says what to do.
#[tokio::test]
async fn refused_refresh_token_is_reported_as_rejected() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    server
        .mock_async(|when, then| {
            when.method("POST").path("/token");
            then.status(401)
                .body(r#"{"error":["invalid_refresh_token"]}"#);
        })
        .await;
    let config = hostens_config(&server, &dir.db(), &token_auth(SEED));
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = &report.errors[0];
    assert!(
        error.contains("credentials rejected: invalid_refresh_token"),
        "{error}"
    );
    assert!(
        error.contains("put a new `refresh_token` in daemon.toml"),
        "{error}"
    );
    assert!(!error.contains(SEED), "{error}");
    assert_eq!(stored_token(&dir.db(), "refresh_token"), None);
}

/// A rotated token that cannot be stored is never used: the request fails instead.
#[tokio::test]
async fn a_rotated_token_is_used_only_once_stored() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let exchange = server
        .mock_async(|when, then| {
            when.method("POST").path("/token");
            then.status(200).body(fixture("hostens", "token__ok.json"));
        })
        .await;
    let balance = get(
        &server,
        "/balance",
        None,
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    let config = hostens_config(&server, &dir.db(), &token_auth(SEED));
    let http = usage_archiver::http::HttpClient::new(&config.http).unwrap();
    // NoVault refuses every save, as an archive that cannot be written would.
    let provider = usage_archiver::providers::build(
        &config.accounts[0],
        &http,
        std::sync::Arc::new(usage_archiver::providers::NoVault),
    );
    let err = provider.fetch_balance().await.unwrap_err().to_string();
    assert!(
        err.contains("cannot keep the rotated refresh token: no place is open"),
        "{err}"
    );
    exchange.assert_calls_async(1).await;
    balance.assert_calls_async(0).await;
}

/// Several requests refused at once share one refresh: the refresh token is spent only once.
#[tokio::test]
async fn concurrent_401s_refresh_once() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let first: Value = serde_json::from_str(&fixture("hostens", "token__ok.json")).unwrap();
    let (a1, r1) = (
        first["token"].as_str().unwrap(),
        first["refresh"].as_str().unwrap(),
    );
    server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/token")
                .json_body(json!({"refresh_token": SEED}));
            then.status(200).body(fixture("hostens", "token__ok.json"));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/token")
                .json_body(json!({"refresh_token": r1}));
            then.status(200)
                .json_body(json!({"token": "access-2", "refresh": "refresh-2"}));
        })
        .await;
    let (bearer1, bearer2) = (format!("Bearer {a1}"), "Bearer access-2");
    get(
        &server,
        "/balance",
        Some(&bearer1),
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(&bearer1),
        200,
        fixture("hostens", "server__array.json"),
    )
    .await;
    for id in ["113", "114"] {
        // The access token expires just as the servers are fetched, all at once.
        get(
            &server,
            &format!("/server/{id}"),
            Some(&bearer1),
            401,
            r#"{"error":["invalid_token"]}"#,
        )
        .await;
        get(
            &server,
            &format!("/server/{id}"),
            Some(bearer2),
            200,
            details(10.0, 1.0),
        )
        .await;
        get(
            &server,
            &format!("/server/{id}/history"),
            Some(bearer2),
            200,
            "[]",
        )
        .await;
    }
    let config = hostens_config(&server, &dir.db(), &token_auth(SEED));
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(report.totals.subjects_ok, 2);
    second.assert_calls_async(1).await;
    assert_eq!(
        stored_token(&dir.db(), "refresh_token").as_deref(),
        Some("refresh-2")
    );
}
