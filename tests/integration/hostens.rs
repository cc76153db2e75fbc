//! The Hostens source against httpmock: both auth modes, the rotating token, listings,
//! monthly history, counter-derived days, balances, deleted servers.

use std::path::Path;

use base64::Engine;
use httpmock::{Mock, MockServer};
use serde_json::{Value, json};
use usage_archiver::config::{self, Config};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

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

/// Derived days over several snapshots a day, a counter reset at the month boundary, and a day
/// without snapshots that stays a gap.
#[tokio::test]
async fn counter_reset_across_a_month_boundary_and_derived_days() {
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
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(&server, "/server/113/history", Some(&auth), 200, "[]").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let snapshots = [
        ("2026-10-30T00:30:00Z", 1000.0, 100.0),
        ("2026-10-30T12:00:00Z", 1400.0, 150.0),
        ("2026-10-30T23:30:00Z", 1900.0, 180.0),
        ("2026-10-31T00:30:00Z", 2000.0, 200.0),
        ("2026-10-31T23:00:00Z", 2600.0, 260.0),
        // The billing period starts: both counters are reset.
        ("2026-11-01T00:20:00Z", 30.0, 5.0),
        ("2026-11-01T12:00:00Z", 330.0, 55.0),
        // No snapshot at all on 2026-11-02.
        ("2026-11-03T00:10:00Z", 900.0, 90.0),
    ];
    for (when, bw_in, bw_out) in snapshots {
        let mock = get(
            &server,
            "/server/113",
            Some(&auth),
            200,
            details(bw_in, bw_out),
        )
        .await;
        let report = sync_at(&config, at(when)).await;
        assert_eq!(report.status, RunStatus::Ok, "{when}: {:?}", report.errors);
        mock.delete_async().await;
    }
    assert_eq!(
        day_rows(&dir.db(), "113"),
        [
            ("2026-10-30".into(), Some(100.0), Some(1000.0), 1100.0, true),
            // 600 and 60 before the reset, plus the new values counted from zero.
            ("2026-10-31".into(), Some(65.0), Some(630.0), 695.0, true),
            // Its end is unknown: no snapshot on 11-02, so it stays provisional.
            ("2026-11-01".into(), Some(50.0), Some(300.0), 350.0, false),
            ("2026-11-03".into(), Some(0.0), Some(0.0), 0.0, false),
        ]
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE derived = 0 OR total_mb < 0"
        ),
        0
    );
}

/// The panel reads its counters at its own time (`synch_date`): a reading taken at 23:50
/// and fetched after midnight puts its traffic on the day it was read, and that day stays
/// provisional until a reading of the next day comes. Implausible dates (in the future,
/// days old, before the previous snapshot) fall back to the fetch time.
// See: issue 18.4
#[tokio::test]
async fn a_panel_that_syncs_late_puts_traffic_on_the_right_day() {
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
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(&server, "/server/113/history", Some(&auth), 200, "[]").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let reading = |bw_in: f64, bw_out: f64, synch: &str| {
        let mut v: Value = serde_json::from_str(&details(bw_in, bw_out)).unwrap();
        v["synch_date"] = json!(synch);
        v.to_string()
    };
    // (fetched at, bw_in, bw_out, synch_date)
    let snapshots = [
        ("2026-10-30T00:30:00Z", 1000.0, 100.0, "2026-10-30 00:20:00"),
        // Read at 23:50, fetched at 00:10: still 10-30's traffic.
        ("2026-10-31T00:10:00Z", 1900.0, 190.0, "2026-10-30 23:50:00"),
        (
            "2026-10-31T01:10:00Z",
            1950.0,
            195.0,
            "2026-10-31T00:40:00+00:00",
        ),
        // A panel clock ahead of ours, then a date older than the previous reading, then a
        // stale one: all taken as of the fetch.
        ("2026-10-31T12:00:00Z", 2100.0, 210.0, "2026-10-31 18:00:00"),
        ("2026-10-31T13:00:00Z", 2200.0, 220.0, "2026-10-31 11:00:00"),
        ("2026-11-01T00:30:00Z", 2400.0, 240.0, "2026-10-20 00:00:00"),
    ];
    let mut seen = Vec::new();
    for (when, bw_in, bw_out, synch) in snapshots {
        let mock = get(
            &server,
            "/server/113",
            Some(&auth),
            200,
            reading(bw_in, bw_out, synch),
        )
        .await;
        let report = sync_at(&config, at(when)).await;
        assert_eq!(report.status, RunStatus::Ok, "{when}: {:?}", report.errors);
        mock.delete_async().await;
        seen.push(day_rows(&dir.db(), "113"));
    }
    assert_eq!(
        seen[1],
        [("2026-10-30".into(), Some(90.0), Some(900.0), 990.0, false)],
        "read on 10-30: that day's traffic, provisional (its end is not known yet)"
    );
    assert_eq!(
        seen[2],
        [
            ("2026-10-30".into(), Some(95.0), Some(950.0), 1045.0, true),
            ("2026-10-31".into(), Some(0.0), Some(0.0), 0.0, false),
        ],
        "the first reading of 10-31 settles 10-30"
    );
    let taken: Vec<String> = open(&dir.db())
        .prepare(
            "SELECT taken_at FROM counter_snapshot WHERE subject = '113' AND counter = 'download' \
             ORDER BY day, slot",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        taken,
        [
            "2026-10-30T00:20:00Z", // first of 10-30, the panel's time
            "2026-10-30T23:50:00Z", // latest of 10-30
            "2026-10-31T00:40:00Z", // first of 10-31
            "2026-10-31T13:00:00Z", // latest of 10-31: a date before the previous, fetch time
            "2026-11-01T00:30:00Z", // first of 11-01: a stale date, fetch time
            "2026-11-01T00:30:00Z",
        ]
    );
}

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
