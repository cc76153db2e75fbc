//! Hostens listings: invoices and services, deleted servers, a malformed balance.

use super::*;

/// The documented invoice and service answers: the listing's row matches the details'
/// snapshot (so an unchanged invoice is not fetched again), the account holder's address
/// and the service's login are not kept, amounts are numbers.
// See: issue 18.2
#[test]
fn documented_invoices_and_services() {
    let invoices = usage_archiver::providers::hostens::parse_invoices(
        fixture("hostens", "invoice__list.json").as_bytes(),
    )
    .unwrap();
    assert_eq!(invoices.len(), 1);
    let listed = &invoices[0];
    assert_eq!(
        (listed.id.as_str(), listed.settled),
        ("308976", true),
        "paid: settled"
    );
    let kept = usage_archiver::providers::hostens::parse_invoice(
        "308976",
        fixture("hostens", "invoice_details__documented.json").as_bytes(),
    )
    .unwrap();
    assert!(kept.get("client").is_none(), "{kept}");
    assert_eq!(kept["total"], json!(19.65));
    assert_eq!(kept["items"].as_array().map(Vec::len), Some(2));
    for (field, value) in listed.row.as_object().unwrap() {
        assert_eq!(
            &kept[field], value,
            "{field}: the listing agrees with the details"
        );
    }
    let err = usage_archiver::providers::hostens::parse_invoice(
        "1",
        fixture("hostens", "invoice_details__documented.json").as_bytes(),
    )
    .unwrap_err();
    assert!(err.contains("asked for invoice 1"), "{err}");

    let services = usage_archiver::providers::hostens::parse_services(
        fixture("hostens", "service__list.json").as_bytes(),
    )
    .unwrap();
    let listed = &services[0];
    assert_eq!(listed.id, "301");
    assert!(!listed.settled);
    assert_eq!(
        listed.label.as_deref(),
        Some("Starter Hosting (examplename.com)")
    );
    let kept = usage_archiver::providers::hostens::parse_service(
        "301",
        fixture("hostens", "service_details__documented.json").as_bytes(),
    )
    .unwrap();
    assert!(
        kept.get("password").is_none() && kept.get("username").is_none(),
        "{kept}"
    );
    for (field, value) in listed.row.as_object().unwrap() {
        if field == "status" {
            // The document's listing says Pending, its details Active: the snapshot keeps
            // the row it was taken against, so this disagreement takes it only once.
            assert_eq!(
                (value.as_str(), kept[field].as_str()),
                (Some("Pending"), Some("Active"))
            );
            continue;
        }
        assert_eq!(
            &kept[field], value,
            "{field}: the listing agrees with the details"
        );
    }
}

/// On the simulator, across a month's start: invoices land in `hostens_invoices` and a
/// paid one changes its row; a paid invoice is not asked again; services are a daily
/// snapshot; servers and services are named in `subjects`; the address in the invoices'
/// `client` block and the services' password appear nowhere in the archive.
// See: issue 18.2, 18.3
#[tokio::test]
async fn invoices_and_services_on_the_simulator() {
    use usage_archiver::sim::{SimConfig, Simulator};
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let mut config =
        usage_archiver::config::parse(&sim.daemon_toml(&dir.db()), Path::new("t.toml"))
            .unwrap()
            .config;
    config.archive.keep_raw = usage_archiver::config::KeepRaw::All;
    let store = usage_archiver::store::Store::open(&dir.db()).unwrap();
    let account = config
        .accounts
        .iter()
        .find(|a| a.label() == "hostens/sim")
        .unwrap()
        .clone();
    let run = |when: &'static str| {
        let (config, store, account) = (&config, &store, &account);
        let sim = &sim;
        async move {
            sim.clock().set(at(when));
            let report = sync_planned(config, store, account, at(when)).await;
            assert_eq!(report.status, RunStatus::Ok, "{when}: {:?}", report.errors);
        }
    };
    run("2026-03-31T22:00:00Z").await;
    run("2026-03-31T23:00:00Z").await;
    let invoice = |id: &str| -> (String, Option<String>, f64, String) {
        open(&dir.db())
            .query_row(
                "SELECT status, datepaid, total, currency FROM hostens_invoices WHERE invoice_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    // Months 2025-12 .. 2026-03 (308311 .. 308314: months since 2000), all paid by 03-31.
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM hostens_invoices WHERE account = 'sim'"
        ),
        4
    );
    assert_eq!(invoice("308314").0, "Paid");
    let asked = |path: &str| sim.requests().count(&format!("GET /hostens/api/{path}"));
    assert_eq!(asked("invoice/308311"), 1, "a paid invoice is taken once");
    // April begins: a new invoice, unpaid, then paid on its third day.
    run("2026-04-01T00:00:00Z").await;
    assert_eq!(
        invoice("308315"),
        ("Unpaid".into(), None, 54.45, "EUR".into())
    );
    run("2026-04-03T13:00:00Z").await;
    assert_eq!(
        invoice("308315"),
        (
            "Paid".into(),
            Some("2026-04-03 12:00:00".into()),
            54.45,
            "EUR".into()
        ),
        "its status and datepaid changed"
    );
    assert_eq!(asked("invoice/308311"), 1, "still taken once");
    assert_eq!(
        asked("invoice/308315"),
        2,
        "unpaid, then the listing showed it paid"
    );
    // A service snapshot per UTC day seen: 03-31, 04-01, 04-03.
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM hostens_service_history WHERE service_id = '401'"
        ),
        3
    );
    assert_eq!(asked("service/401"), 3, "once per UTC day");
    let label = |subject: &str| -> String {
        open(&dir.db())
            .query_row(
                "SELECT label FROM subjects WHERE provider = 'hostens' AND subject = ?1",
                [subject],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(label("101"), "Server 101");
    assert_eq!(label("service/401"), "VPS KVM 4GB (vps101.example.net)");
    for secret in [
        usage_archiver::sim::hostens::SIM_CLIENT_ADDRESS,
        usage_archiver::sim::hostens::SIM_SERVICE_PASSWORD,
    ] {
        assert!(
            !archive_contains(&dir.db(), secret),
            "{secret} is in the archive"
        );
    }
}

/// A server that disappears: 404 is recorded as gone, its archived rows stay, the run is ok.
#[tokio::test]
async fn deleted_server_keeps_its_archived_rows() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let mut mocks = mock_basic_account(&server, "history__with_months.json").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    let before = (
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_monthly WHERE source = 'reported'",
        ),
        count(&dir.db(), "SELECT count(*) FROM usage_daily"),
    );
    assert_eq!(before, (2, 1));
    for mock in mocks.iter_mut().skip(1) {
        mock.delete_async().await;
    }
    let auth = basic_header();
    get(&server, "/server", Some(&auth), 200, "[]").await;
    get(
        &server,
        "/server/113",
        Some(&auth),
        404,
        r#"{"error":["Server not found"]}"#,
    )
    .await;
    let report = sync_at(&config, at("2026-11-05T11:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        (
            count(
                &dir.db(),
                "SELECT count(*) FROM usage_monthly WHERE source = 'reported'"
            ),
            count(&dir.db(), "SELECT count(*) FROM usage_daily"),
        ),
        before
    );
    assert_eq!(
        text(
            &dir.db(),
            "SELECT error FROM sync_error ORDER BY rowid DESC LIMIT 1"
        ),
        "gone, not found at the provider: Server not found"
    );
}

/// The document's balance example is not JSON: a clear error, the body kept, the servers still synced.
#[tokio::test]
async fn documented_balance_is_malformed_and_kept_raw() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let auth = basic_header();
    get(
        &server,
        "/balance",
        Some(&auth),
        200,
        fixture("hostens", "balance__documented.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(&auth),
        200,
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(
        &server,
        "/server/113",
        Some(&auth),
        200,
        fixture("hostens", "server_details__documented.json"),
    )
    .await;
    get(&server, "/server/113/history", Some(&auth), 200, "[]").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Partial);
    assert!(
        report.errors[0].starts_with("balance: malformed response: invalid JSON"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM balance_snapshots"),
        0
    );
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_daily"), 1);
    assert_eq!(
        text(
            &dir.db(),
            "SELECT CAST(body AS TEXT) FROM raw_response WHERE endpoint = 'balance'"
        ),
        fixture("hostens", "balance__documented.json")
    );
}
