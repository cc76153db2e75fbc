//! The Hostens source against httpmock: both auth modes, the rotating token, listings,
//! monthly history, counter-derived days, balances, deleted servers.

use std::path::Path;

use base64::Engine;
use httpmock::{Mock, MockServer};
use serde_json::{Value, json};
use usage_archiver::config::{self, Config};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

mod derived;
mod listings;
mod tokens;

const USER: &str = "ops@example.com";
const PASSWORD: &str = "hostens-pw-9d2f-SECRET";
const SEED: &str = "seed-refresh-77a1-SECRET";

fn basic_header() -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {credentials}")
}

fn basic_auth() -> String {
    format!("username = \"{USER}\"\npassword = \"{PASSWORD}\"")
}

fn token_auth(seed: &str) -> String {
    format!("refresh_token = \"{seed}\"")
}

fn hostens_toml(base: &str, db: &Path, account: &str, keep_raw: &str) -> String {
    format!(
        "[archive]\ndatabase = {:?}\nkeep_raw = \"{keep_raw}\"\n\n[http]\nmax_retries = 1\nbackoff_initial_ms = 1\n\n\
         [[hostens]]\nname = \"main\"\nbase_url = \"{base}\"\nallow_insecure_http = true\n{account}\n",
        db.display().to_string()
    )
}

fn hostens_config(server: &MockServer, db: &Path, account: &str) -> Config {
    let text = hostens_toml(&server.base_url(), db, account, "errors");
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

/// Mocks `GET path` answering `body`, for requests carrying `auth` (any when `None`).
async fn get<'a>(
    server: &'a MockServer,
    path: &str,
    auth: Option<&str>,
    status: u16,
    body: impl Into<String>,
) -> Mock<'a> {
    let body = body.into();
    server
        .mock_async(|when, then| {
            let when = when.method("GET").path(path);
            if let Some(auth) = auth {
                when.header("authorization", auth);
            }
            then.status(status).body(body);
        })
        .await
}

/// The documented server details with other counter values, in the bandwidth unit.
fn details(bw_in: f64, bw_out: f64) -> String {
    let mut v: Value =
        serde_json::from_str(&fixture("hostens", "server_details__documented.json")).unwrap();
    v["bw_in"] = json!(bw_in);
    v["bw_out"] = json!(bw_out);
    v.to_string()
}

/// A Basic-auth account with the documented server 113: listing, details, history and balance.
async fn mock_basic_account<'a>(server: &'a MockServer, history: &str) -> Vec<Mock<'a>> {
    let auth = basic_header();
    vec![
        get(
            server,
            "/balance",
            Some(&auth),
            200,
            fixture("hostens", "balance__braces_fixed.json"),
        )
        .await,
        get(
            server,
            "/server",
            Some(&auth),
            200,
            fixture("hostens", "server__documented_single.json"),
        )
        .await,
        get(
            server,
            "/server/113",
            Some(&auth),
            200,
            fixture("hostens", "server_details__documented.json"),
        )
        .await,
        get(
            server,
            "/server/113/history",
            Some(&auth),
            200,
            fixture("hostens", history),
        )
        .await,
    ]
}

/// `(month, upload, download, total, is_final, source)` of a subject's reported months.
fn months(db: &Path, subject: &str) -> Vec<(String, f64, f64, f64, bool, String)> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT month, upload_mb, download_mb, total_mb, is_final, source FROM usage_monthly \
             WHERE provider = 'hostens' AND subject = ?1 AND source = 'reported' ORDER BY month",
        )
        .unwrap();
    stmt.query_map([subject], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A field of the stored chain of `hostens/main` in the credential file beside `db`.
fn stored_token(db: &Path, field: &str) -> Option<String> {
    let file = db.with_file_name(format!(
        "{}.credentials",
        db.file_name().unwrap().to_string_lossy()
    ));
    let text = std::fs::read_to_string(file).ok()?;
    let content: Value = serde_json::from_str(&text).unwrap();
    content["chains"]["hostens/main"][field]
        .as_str()
        .map(str::to_owned)
}

fn text(db: &Path, sql: &str) -> String {
    open(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Basic auth on every request; the documented listing (one object), details and history; months
/// and quota go to the archive, the impossible rows do not: the documented year-0 placeholder
/// quietly, the month-13 row recorded with the run (which is partial), where operators look;
/// balances arrive as strings.
#[tokio::test]
async fn basic_auth_archives_months_balances_and_a_counter_snapshot() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let mocks = mock_basic_account(&server, "history__with_months.json").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    // See: issue 15.8 (a skipped impossible row must show where operators look)
    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.errors);
    assert_eq!(report.totals.subjects_failed, 0, "the server itself synced");
    let refused = "server/@id/history: row [3] has an impossible period (year 2026, month 13)";
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains(refused), "{:?}", report.errors);
    assert!(text(&dir.db(), "SELECT error FROM sync_runs").contains(refused));
    assert!(
        text(
            &dir.db(),
            "SELECT error FROM sync_error WHERE subject = '113'"
        )
        .contains(refused)
    );
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
        .args(["status", "--json", "--db", dir.db().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("month 13"));
    for mock in &mocks {
        mock.assert_calls_async(1).await;
    }
    assert_eq!(
        months(&dir.db(), "113"),
        [
            (
                "2026-09".into(),
                250.5,
                1000.0,
                1250.5,
                true,
                "reported".into()
            ),
            (
                "2026-10".into(),
                500.0,
                2000.0,
                2500.0,
                true,
                "reported".into()
            ),
        ],
        "bw_in is download, bw_out upload; year 0 / month 0 and month 13 are skipped"
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM month_usage WHERE month NOT LIKE '2026-%'"
        ),
        0
    );
    assert_eq!(
        text(
            &dir.db(),
            "SELECT quota_usage || '/' || quota_limit || ' ' || inode_usage || '/' || inode_limit \
             FROM hostens_monthly WHERE server_id = '113' AND month = '2026-10'"
        ),
        "6100.0/46566.0 75000.0/51351.0"
    );
    assert_eq!(
        text(
            &dir.db(),
            "SELECT group_concat(metric || '=' || value || ' ' || unit, ', ') FROM \
             (SELECT * FROM balance_snapshots WHERE provider = 'hostens' ORDER BY metric)"
        ),
        "acc_balance=123456.55 USD, acc_credit=0.0 USD"
    );
    assert_eq!(
        text(
            &dir.db(),
            "SELECT disk_usage || ' ' || ram_used || ' ' || bw_in FROM hostens_server_history \
             WHERE server_id = '113' AND day = '2026-11-05'"
        ),
        "176 36 84"
    );
    assert_eq!(
        day_rows(&dir.db(), "113"),
        [("2026-11-05".into(), Some(0.0), Some(0.0), 0.0, false)],
        "one snapshot so far: today is open"
    );
    assert!(!archive_contains(&dir.db(), PASSWORD));
}

/// The document's history holds only its junk row: nothing is stored, the run is fine.
#[tokio::test]
async fn documented_history_junk_row_is_skipped() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_basic_account(&server, "history__documented.json").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    // See: issue 15.8 (the document's own placeholder is expected: no error, no note)
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM sync_error"), 0);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM month_usage"), 0);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM month_resources"), 0);
}

/// An array listing (ids as numbers or strings), details with numbers as strings, and GB figures.
#[tokio::test]
async fn array_listing_string_numbers_and_gigabytes() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let auth = basic_header();
    get(
        &server,
        "/balance",
        Some(&auth),
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(&auth),
        200,
        fixture("hostens", "server__array.json"),
    )
    .await;
    for id in ["113", "114"] {
        get(
            &server,
            &format!("/server/{id}"),
            Some(&auth),
            200,
            fixture("hostens", "server_details__numbers_as_strings.json"),
        )
        .await;
        get(
            &server,
            &format!("/server/{id}/history"),
            Some(&auth),
            200,
            fixture("hostens", "history__with_months.json"),
        )
        .await;
    }
    let account = format!("{}\nbandwidth_unit = \"GB\"", basic_auth());
    let config = hostens_config(&server, &dir.db(), &account);
    let report = sync_at(&config, at("2026-11-05T10:00:00Z")).await;
    assert_eq!(
        report.status,
        RunStatus::Partial,
        "the month-13 rows: {:?}",
        report.errors
    );
    assert_eq!(report.totals.subjects_ok, 2);
    let m = months(&dir.db(), "114");
    assert_eq!(m[0].2, 1000.0 * 1024.0, "GB converted to MB");
    assert_eq!(
        open(&dir.db())
            .query_row(
                "SELECT value_mb FROM counter_snapshot WHERE subject = '113' AND counter = 'download' AND slot = 'first'",
                [],
                |r| r.get::<_, f64>(0)
            )
            .unwrap(),
        84.0 * 1024.0,
        "the string \"84\" read as 84 GB"
    );
}

/// Config mistakes name the key: both auth modes, neither, a bad unit.
#[test]
fn config_errors_name_the_key() {
    let err = |account: &str| {
        let text = hostens_toml(
            "https://billing.example",
            Path::new("a.db"),
            account,
            "errors",
        );
        config::parse(&text, Path::new("t.toml"))
            .unwrap_err()
            .to_string()
    };
    let both = err(&format!("{}\n{}", basic_auth(), token_auth(SEED)));
    assert!(
        both.contains("`hostens.refresh_token`") && both.contains("not both"),
        "{both}"
    );
    let neither = err("");
    assert!(neither.contains("no credentials"), "{neither}");
    let unit = err(&format!("{}\nbandwidth_unit = \"TB\"", basic_auth()));
    assert!(
        unit.contains("`hostens.bandwidth_unit`") && unit.contains("\"MB\" or \"GB\""),
        "{unit}"
    );
    let no_user = err(&format!("password = \"{PASSWORD}\""));
    assert!(no_user.contains("needs a `username`"), "{no_user}");
    for e in [both, neither, unit, no_user] {
        assert!(!e.contains(PASSWORD) && !e.contains(SEED), "{e}");
    }
}
