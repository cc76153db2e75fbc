//! HydraProxy orders: ids, discovery over every status, details in both documented shapes, the listing's two shapes, form encodings.

use super::*;

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
