//! Runs under trouble: redirects, the clock moving back, requests given up on, a failing profile, partial discovery.

use super::*;

/// Redirects never carry a credential to another origin: a redirect to another host (or
/// from https to http) is not followed and is an error naming the target, whether the
/// credential is a custom header (InfiniteProxies' `X-API-KEY`), `Authorization` or a
/// refresh token in a POST body (Hostens). A redirect within the origin is followed, with
/// no `Referer`.
// See: issue 15.3
#[tokio::test]
async fn redirects_never_carry_credentials_to_another_origin() {
    let elsewhere = MockServer::start_async().await;
    let caught = elsewhere
        .mock_async(|_, then| {
            then.status(200).body("{}");
        })
        .await;
    let server = MockServer::start_async().await;
    let target = elsewhere.base_url();
    for path in ["/ip/@me", "/hostens/token", "/hydra/api/get_account_info/"] {
        let location = format!("{target}/steal{path}");
        server
            .mock_async(|when, then| {
                when.path(path);
                then.status(307).header("Location", location);
            })
            .await;
    }
    let dir = TestDir::new();
    let text = format!(
        "[http]\nmax_retries = 0\n\n\
         [[infiniteproxies]]\nname = \"ip\"\nbase_url = \"{0}/ip\"\nallow_insecure_http = true\n\
         api_key = \"{TOKEN}\"\nauth_header = \"X-API-KEY\"\nauth_prefix = \"\"\n\n\
         [[hostens]]\nname = \"token\"\nbase_url = \"{0}/hostens\"\nallow_insecure_http = true\nrefresh_token = \"{TOKEN}\"\n\n\
         [[hydraproxy]]\nname = \"h\"\nbase_url = \"{0}/hydra/api\"\nallow_insecure_http = true\ntoken = \"{TOKEN}\"\n",
        server.base_url()
    );
    let config = usage_archiver::config::parse(&text, &dir.path("t.toml"))
        .unwrap()
        .config;
    let http = usage_archiver::http::HttpClient::new(&config.http).unwrap();
    let host = target.trim_start_matches("http://");
    for account in &config.accounts {
        let vault = std::sync::Arc::new(usage_archiver::providers::NoVault);
        let provider = usage_archiver::providers::build(account, &http, vault);
        let err = provider.check_credentials().await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("redirected to http://{host}, another origin")),
            "{}: {err}",
            account.label()
        );
        assert!(!err.contains(TOKEN) && !err.contains("steal"), "{err}");
    }
    caught.assert_calls_async(0).await;

    // Within the origin a redirect is followed, and the next request carries no Referer.
    let moved = server
        .mock_async(|when, then| {
            when.path("/same/get_account_info/");
            then.status(301)
                .header("Location", "/same/v2/get_account_info/");
        })
        .await;
    let landed = server
        .mock_async(|when, then| {
            when.path("/same/v2/get_account_info/")
                .header_missing("referer");
            then.status(200).body(fixture(
                "hydraproxy",
                "get_account_info__reseller_host.json",
            ));
        })
        .await;
    let same = format!(
        "[[hydraproxy]]\nname = \"h\"\nbase_url = \"{}/same\"\nallow_insecure_http = true\ntoken = \"{TOKEN}\"\n",
        server.base_url()
    );
    let config = usage_archiver::config::parse(&same, &dir.path("t.toml"))
        .unwrap()
        .config;
    let vault = std::sync::Arc::new(usage_archiver::providers::NoVault);
    let provider = usage_archiver::providers::build(&config.accounts[0], &http, vault);
    provider.check_credentials().await.unwrap();
    moved.assert_calls_async(1).await;
    landed.assert_calls_async(1).await;
}

/// After the clock moves back: a last success in the future makes `status` degraded and
/// the account due (catch-up runs it at once); coverage is never recorded past the real
/// now, and a stretch recorded ahead of a later fetch is trimmed back, so its days are
/// gaps again rather than covered.
// See: issue 15.6
#[tokio::test]
async fn clock_moved_back() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&config, at("2026-03-10T12:00:00Z")).await;
    let status = |now: &str| {
        Command::new(BIN)
            .args(["status", "--db", dir.db().to_str().unwrap(), "--now", now])
            .output()
            .unwrap()
    };
    let earlier = status("2026-03-10T11:00:00Z");
    assert_eq!(earlier.status.code(), Some(1));
    let text = String::from_utf8_lossy(&earlier.stdout);
    assert!(
        text.contains("is in the future: the clock moved back"),
        "{text}"
    );
    let skewed = status("2026-03-10T11:56:00Z");
    let text = String::from_utf8_lossy(&skewed.stdout);
    assert!(
        !text.contains("in the future"),
        "a few minutes of skew are fine: {text}"
    );
    let schedule = usage_archiver::config::Schedule::parse("0 10 * * * *").unwrap();
    assert!(schedule.is_due(Some(at("2026-03-10T12:00:00Z")), at("2026-03-10T11:00:00Z")));
    assert!(!schedule.is_due(Some(at("2026-03-10T12:00:00Z")), at("2026-03-10T12:30:00Z")));

    // A sync whose clock is a year ahead covers nothing past the real today.
    let ahead = chrono::Utc::now() + chrono::TimeDelta::days(365);
    sync_at(&config, ahead).await;
    let last: String = open(&dir.db())
        .query_row("SELECT max(last_day) FROM subject_coverage", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        last <= chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "coverage recorded up to {last}"
    );

    // A stretch recorded ahead of a later fetch is trimmed back to that fetch's day.
    let store = usage_archiver::store::Store::open(&dir.db()).unwrap();
    let key = usage_archiver::store::usage::SubjectKey {
        provider: "hydraproxy",
        account: "main".into(),
        subject: "9".into(),
    };
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    store
        .with_conn(|c| {
            let tx = usage_archiver::store::usage::begin(c)?;
            use usage_archiver::store::coverage::extend_coverage;
            extend_coverage(&tx, &key, day("2026-04-01"), day("2026-04-30"))?;
            extend_coverage(&tx, &key, day("2026-05-10"), day("2026-05-20"))?;
            // The clock moved back to 04-10: both stretches past it go or shrink.
            extend_coverage(&tx, &key, day("2026-04-08"), day("2026-04-10"))?;
            Ok(tx.commit()?)
        })
        .unwrap();
    let stretches: Vec<(String, String)> = {
        let conn = open(&dir.db());
        let mut stmt = conn
            .prepare("SELECT first_day, last_day FROM subject_coverage WHERE subject = '9'")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        stretches,
        [("2026-04-01".to_owned(), "2026-04-10".to_owned())]
    );
}

/// Within a run, a request that failed after all its retries is not sent again (the same
/// method, URL and body); the next run asks again.
// See: issue 15.8
#[tokio::test]
async fn a_request_given_up_on_is_not_sent_again_in_the_run() {
    let server = MockServer::start_async().await;
    let failing = server
        .mock_async(|when, then| {
            when.path("/down");
            then.status(503);
        })
        .await;
    let config = usage_archiver::config::HttpConfig {
        max_retries: 2,
        backoff_initial: Duration::from_millis(1),
        ..Default::default()
    };
    let http = usage_archiver::http::HttpClient::new(&config).unwrap();
    let client = usage_archiver::http::AccountClient::new(http, 2);
    let url = server.url("/down");
    let send = || client.send("down", |c| c.get(&url));
    let run = usage_archiver::http::RunMemo::default();
    let (first, again) = run
        .scope(async { (send().await.unwrap_err(), send().await.unwrap_err()) })
        .await;
    assert!(first.to_string().contains("HTTP 503"), "{first}");
    assert!(again.to_string().contains("not sent again"), "{again}");
    failing.assert_calls_async(3).await;
    // A new run asks again.
    let next = usage_archiver::http::RunMemo::default();
    next.scope(send()).await.unwrap_err();
    failing.assert_calls_async(6).await;
}

/// A ProxyShard whose profile and sub-user listing fail: the profile is asked once (with
/// its retries) in the run, not again for the archived owner subject, and the other
/// listings still sync (the run is partial).
// See: issue 15.8
#[tokio::test]
async fn a_failing_profile_is_asked_once_per_run() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let ok = |path: &'static str, body: &'static str| {
        let server = &server;
        async move {
            server
                .mock_async(|when, then| {
                    when.path(path);
                    then.status(200).body(body);
                })
                .await
        }
    };
    let mut first = vec![
        ok("/user/api/proxies/profile", r#"{"data_spent": 1048576}"#).await,
        ok(
            "/user/api/proxies/sub-users",
            r#"{"success":true,"count":0,"data":[]}"#,
        )
        .await,
    ];
    ok(
        "/user/api/orders",
        r#"{"success":true,"orders":[],"next":null}"#,
    )
    .await;
    ok(
        "/user/api/me",
        r#"{"active_orders":0,"wallet_balance":100}"#,
    )
    .await;
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 2\nbackoff_initial_ms = 1\n\n\
         [[proxyshard]]\nname = \"main\"\nbase_url = \"{}\"\nallow_insecure_http = true\n\
         token = \"{TOKEN}\"\nproxy_types = [\"standart\"]\n",
        dir.db().display().to_string(),
        server.base_url()
    );
    let config = usage_archiver::config::parse(&text, &dir.path("t.toml"))
        .unwrap()
        .config;
    let report = sync_at(&config, at("2026-03-01T10:00:00Z")).await;
    assert_all_ok(std::slice::from_ref(&report));
    for mock in first.drain(..) {
        mock.delete_async().await;
    }
    let profile = server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/profile");
            then.status(500);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/sub-users");
            then.status(500);
        })
        .await;
    let report = sync_at(&config, at("2026-03-01T11:00:00Z")).await;
    profile.assert_calls_async(3).await;
    assert_eq!(
        report.status,
        usage_archiver::store::runs::RunStatus::Failed
    );
    assert!(
        report.errors.iter().any(|e| e.contains("sub-users")),
        "the failed listing is recorded: {:?}",
        report.errors
    );
}

/// Discovery that fails in part keeps the rest: a failing HydraProxy status listing leaves
/// the other listings and the configured orders to sync, and a failing InfiniteProxies
/// `/customers` leaves the configured customers; each run is partial and names the listing.
// See: issue 15.8
#[tokio::test]
async fn partial_discovery_keeps_the_rest() {
    let (server, dir) = {
        let server = MockServer::start_async().await;
        mock_account_info(&server).await;
        (server, TestDir::new())
    };
    server
        .mock_async(|when, then| {
            when.path("/reseller/get_orders_status/")
                .body_includes(form_field("status", "PENDING"));
            then.status(500);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/reseller/get_orders_status/")
                .body_includes(form_field("status", "ACTIVE"));
            then.status(200).body(r#"[{"id": 7}]"#);
        })
        .await;
    mock_no_orders(&server).await;
    for order in [7, 99] {
        server
            .mock_async(|when, then| {
                when.path("/api/view_usage_history/")
                    .body_includes(form_field("order_id", &order.to_string()));
                then.status(200).body(format!(
                    r#"{{"status":"OK","order_id":{order},"usage":[{{"date":"2026-03-01","bandwidth_upload_mb":1,"bandwidth_download_mb":1,"bandwidth_total_mb":2}}]}}"#
                ));
            })
            .await;
    }
    let mut config = hydra_config(&server, &dir.db(), "orders = [99]", "");
    config.http.max_retries = 0;
    let report = sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert_eq!(
        report.status,
        usage_archiver::store::runs::RunStatus::Partial
    );
    assert_eq!(report.totals.subjects_ok, 2, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("get_orders_status/"),
        "{:?}",
        report.errors
    );
    assert_eq!(day_rows(&dir.db(), "7").len(), 1);
    assert_eq!(day_rows(&dir.db(), "99").len(), 1);

    let ip = MockServer::start_async().await;
    ip.mock_async(|when, then| {
        when.path("/customers");
        then.status(502).body("<html>bad gateway</html>");
    })
    .await;
    ip.mock_async(|when, then| {
        when.path("/@me");
        then.status(200)
            .body(fixture("infiniteproxies", "me__ok.json"));
    })
    .await;
    ip.mock_async(|when, then| {
        when.path("/customer/@alice/transactions");
        then.status(200)
            .body(r#"{"status":{"code":200,"message":"ok"},"payload":{"2026-03-01":5}}"#);
    })
    .await;
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[infiniteproxies]]\nname = \"main\"\n\
         base_url = \"{}\"\nallow_insecure_http = true\napi_key = \"{TOKEN}\"\ncustomers = [\"Alice\"]\n",
        dir.path("ip.db").display().to_string(),
        ip.base_url()
    );
    let config = usage_archiver::config::parse(&text, &dir.path("t.toml"))
        .unwrap()
        .config;
    let report = sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert_eq!(
        report.status,
        usage_archiver::store::runs::RunStatus::Partial
    );
    assert_eq!(report.totals.subjects_ok, 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("customers"),
        "{:?}",
        report.errors
    );
    assert_eq!(day_rows(&dir.path("ip.db"), "alice").len(), 1);
}
