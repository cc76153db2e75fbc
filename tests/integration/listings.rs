//! What a listing may name (issue 29.6, 29.7): ids with control characters are refused
//! at discovery and reported, tables escape whatever control characters an archive
//! holds, and a listing above `max_subjects` fails naming the count and the setting.

use std::path::Path;
use std::process::Command;

use httpmock::MockServer;
use usage_archiver::config::{self, Config};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

fn config_for(server: &MockServer, db: &Path, extra: &str) -> Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n\
         [[infiniteproxies]]\nname = \"main\"\nbase_url = \"{}/v2\"\nallow_insecure_http = true\n\
         api_key = \"{TOKEN}\"\n{extra}\n",
        db.display().to_string(),
        server.base_url()
    );
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

/// An InfiniteProxies account listing `users` (JSON string literals), each with a day.
async fn server_listing(users: &[String]) -> MockServer {
    let server = MockServer::start_async().await;
    let rows: Vec<String> = users
        .iter()
        .map(|u| format!(r#"{{"username": {u}, "proxy_password": "pw", "balance": 7}}"#))
        .collect();
    let body = format!(
        r#"{{"status": {{"code": 200, "message": "Success"}}, "payload": {{"users": [{}]}}}}"#,
        rows.join(",")
    );
    server
        .mock_async(|when, then| {
            when.path("/v2/customers");
            then.status(200).body(body);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/v2/@me");
            then.status(200)
                .body(fixture("infiniteproxies", "me__ok.json"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path_matches(r"^/v2/customer/.*/transactions$");
            then.status(200).body(
                r#"{"status": {"code": 200, "message": "Success"}, "payload": {"2026-04-01": 10}}"#,
            );
        })
        .await;
    server
}

/// A username holding terminal escapes is refused at discovery: its subject fails with
/// an error that shows the escapes written out, the run is partial, the other customers
/// are archived, and no control character reaches the archive.
// See: issue 29.6
#[tokio::test]
async fn ids_with_control_characters_are_refused() {
    let dir = TestDir::new();
    let evil = r#""u1\u001b]0;pwned\u0007""#.to_owned();
    let clear = r#""u2\u001b[2J""#.to_owned();
    let server = server_listing(&[evil, clear, r#""alice""#.to_owned()]).await;
    let report = sync_at(
        &config_for(&server, &dir.db(), ""),
        at("2026-04-01T12:00:00Z"),
    )
    .await;
    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.errors);
    assert_eq!(report.totals.subjects_failed, 2);
    let errors = report.errors.join("\n");
    assert!(
        errors.contains(r"u1\u{1b}]0;pwned\u{7}") && errors.contains("control characters"),
        "{errors}"
    );
    assert!(
        !errors.chars().any(|c| c.is_control() && c != '\n'),
        "{errors:?}"
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE subject = 'alice'"
        ),
        1
    );
    let stored = count(
        &dir.db(),
        "SELECT count(*) FROM (SELECT subject FROM subject UNION ALL SELECT subject FROM subject_info \
         UNION ALL SELECT coalesce(subject, '') || error FROM sync_error) WHERE subject GLOB '*[\x01-\x1f]*'",
    );
    assert_eq!(stored, 0, "no control character in the archive");
}

/// A table escapes control characters whatever the archive holds (an archive written
/// before the check).
// See: issue 29.6
#[test]
fn tables_escape_control_characters() {
    let dir = TestDir::new();
    drop(usage_archiver::store::Store::open(&dir.db()).unwrap());
    open(&dir.db())
        .execute_batch(
            "INSERT INTO subject (id, provider, account, subject) VALUES (1, 'infiniteproxies', 'main', 'u1' || char(27) || ']0;pwned' || char(7)); \
             INSERT INTO day_usage VALUES (1, '2026-04-01', NULL, NULL, 10, 1, 0, '2026-04-02T00:00:00Z', '2026-04-02T00:00:00Z'); \
             INSERT INTO month_rollup VALUES (1, '2026-04', 1, '2026-04-01', NULL, NULL, 10, 1);",
        )
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "report",
            "--db",
            dir.db().to_str().unwrap(),
            "--per-subject",
        ])
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .current_dir(dir.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(r"u1\u{1b}]0;pwned\u{7}"), "{text}");
    assert!(
        !out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
        "{text:?}"
    );
}

/// A listing above `max_subjects` fails with an error naming the count and the setting,
/// and none of its subjects is fetched or recorded.
// See: issue 29.7
#[tokio::test]
async fn a_listing_above_max_subjects_fails_naming_the_count() {
    let dir = TestDir::new();
    let users: Vec<String> = (0..60).map(|i| format!(r#""user{i}""#)).collect();
    let server = server_listing(&users).await;
    let report = sync_at(
        &config_for(&server, &dir.db(), "max_subjects = 50"),
        at("2026-04-01T12:00:00Z"),
    )
    .await;
    let errors = report.errors.join("\n");
    assert!(
        errors.contains("60 subjects") && errors.contains("max_subjects = 50"),
        "{errors}"
    );
    assert_ne!(report.status, RunStatus::Ok);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM subject_info"), 0);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_daily"), 0);
    // Under the ceiling, the same listing archives every customer.
    let report = sync_at(
        &config_for(&server, &dir.db(), "max_subjects = 60"),
        at("2026-04-01T13:00:00Z"),
    )
    .await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        count(&dir.db(), "SELECT count(DISTINCT subject) FROM usage_daily"),
        60
    );
}

/// A Hostens account whose `GET /server` fails (or that has no server) still archives its
/// invoices, services and balance; a failure makes the run partial and names the listing.
// See: issue 23.3
#[tokio::test]
async fn a_failing_server_listing_keeps_invoices_services_and_balance() {
    for (status, body, expected) in [
        (500, "<html>oops</html>", RunStatus::Partial),
        (404, r#"{"error": ["Not found"]}"#, RunStatus::Ok),
        (200, "{}", RunStatus::Ok),
    ] {
        let server = MockServer::start_async().await;
        let dir = TestDir::new();
        server
            .mock_async(|when, then| {
                when.path("/server");
                then.status(status).body(body);
            })
            .await;
        for (path, name) in [
            ("/balance", "balance__braces_fixed.json"),
            ("/invoice", "invoice__list.json"),
            ("/invoice/308976", "invoice_details__documented.json"),
            ("/service", "service__list.json"),
            ("/service/301", "service_details__documented.json"),
        ] {
            server
                .mock_async(|when, then| {
                    when.path(path);
                    then.status(200).body(fixture("hostens", name));
                })
                .await;
        }
        let text = format!(
            "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[hostens]]\nname = \"main\"\n\
             base_url = \"{}\"\nallow_insecure_http = true\nusername = \"u@example.com\"\npassword = \"{TOKEN}\"\n",
            dir.db().display().to_string(),
            server.base_url()
        );
        let config = config::parse(&text, Path::new("t.toml")).unwrap().config;
        let report = sync_at(&config, at("2026-04-01T12:00:00Z")).await;
        assert_eq!(
            report.status, expected,
            "GET /server {status}: {:?}",
            report.errors
        );
        if expected == RunStatus::Partial {
            assert!(
                report.errors.iter().any(|e| e.starts_with("server:")),
                "{:?}",
                report.errors
            );
        }
        assert_eq!(
            count(&dir.db(), "SELECT count(*) FROM hostens_invoices"),
            1,
            "GET /server {status}"
        );
        assert_eq!(
            count(&dir.db(), "SELECT count(*) FROM hostens_service_history"),
            1
        );
        assert!(
            count(
                &dir.db(),
                "SELECT count(*) FROM balance_snapshots WHERE provider = 'hostens'"
            ) > 0
        );
    }
}
