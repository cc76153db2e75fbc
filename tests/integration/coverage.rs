//! Coverage and gaps: which days the archive saw, which are recoverable, which are lost.

use chrono::{NaiveDate, TimeDelta, Utc};
use usage_archiver::store::Store;
use usage_archiver::store::coverage::load_gaps;

use crate::common::*;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn gaps_at(db: &std::path::Path, today: &str) -> Vec<usage_archiver::store::coverage::SubjectGaps> {
    let store = Store::open_read_only(db).unwrap();
    store
        .with_conn(|c| load_gaps(c, "hydraproxy", "main", day(today), 7))
        .unwrap()
}

/// An outage longer than the window leaves lost days between two covered stretches; recent misses are recoverable.
#[tokio::test]
async fn outage_longer_than_the_window_is_lost() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert!(
        gaps_at(&dir.db(), "2026-03-01").is_empty(),
        "covered through yesterday; today is never a gap"
    );
    let next_day = gaps_at(&dir.db(), "2026-03-02");
    assert_eq!(
        next_day[0].recoverable,
        ["2026-03-01"],
        "fetched only before it ended: its final figures are still to come"
    );

    let before = gaps_at(&dir.db(), "2026-03-05");
    assert_eq!(
        before[0].recoverable,
        ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    );
    assert!(before[0].lost.is_empty());

    // Back after 20 days: the fetch covers 03-15 .. 03-20, so the final figures of
    // 03-01 .. 03-14 were never seen.
    sync_at(&config, at("2026-03-21T12:00:00Z")).await;
    let after = gaps_at(&dir.db(), "2026-03-21");
    let lost: Vec<String> = (1..=14).map(|d| format!("2026-03-{d:02}")).collect();
    assert_eq!(after[0].lost, lost);
    assert!(after[0].recoverable.is_empty());
}

/// A subject the account stopped fetching has ended: its silence is no gap.
#[tokio::test]
async fn dropped_subjects_have_no_tail_gap() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let one = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&one, at("2026-03-01T12:00:00Z")).await;
    // The order leaves the config and the listings; the next runs no longer fetch it.
    let none = hydra_config(&server, &dir.db(), "retention_days = 1", "");
    sync_at(&none, at("2026-03-10T12:00:00Z")).await;
    assert!(gaps_at(&dir.db(), "2026-03-20").is_empty());
}

/// A subject that keeps failing accumulates gap days, recoverable first, then lost.
#[tokio::test]
async fn failing_subject_accumulates_gaps() {
    let (server, dir) = hydra_server().await;
    let ok = mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    ok.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/");
            then.status(200)
                .body(r#"{"status":"ERROR","message":"temporarily_unavailable"}"#);
        })
        .await;
    sync_at(&config, at("2026-03-12T12:00:00Z")).await;
    let gaps = gaps_at(&dir.db(), "2026-03-12");
    assert_eq!(
        gaps[0].lost,
        [
            "2026-03-01",
            "2026-03-02",
            "2026-03-03",
            "2026-03-04",
            "2026-03-05"
        ]
    );
    assert_eq!(gaps[0].recoverable.len(), 6, "03-06 .. 03-11");
}

/// status shows lost days, lists them in --json, and exits 1.
#[tokio::test]
async fn status_reports_lost_days_and_exits_1() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let today = Utc::now();
    sync_at(&config, today - TimeDelta::days(30)).await;
    sync_at(&config, today).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
        .args(["status", "--json", "--db", dir.db().to_str().unwrap()])
        .current_dir(dir.dir.path())
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = &json["accounts"][0];
    assert_eq!(
        account["lost_days"], 24,
        "30 days apart, each fetch covering the 6 closed days of its window"
    );
    assert_eq!(account["gaps"][0]["subject"], "1");
    assert_eq!(account["gaps"][0]["lost"].as_array().unwrap().len(), 24);
    assert!(account["reason"].as_str().unwrap().contains("24 days lost"));
}

/// A version-1 archive migrates to the current schema with its rows, and its days count as covered.
#[test]
fn version_1_archive_migrates_with_rows_intact() {
    let dir = TestDir::new();
    let v1 = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1.sql"),
    )
    .unwrap();
    let conn = open(&dir.db());
    conn.execute_batch(&v1).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 1;
         INSERT INTO day_usage VALUES ('hydraproxy','main','7','2026-01-01',1,2,3,1,0,'2026-01-02T00:00:00Z','2026-01-02T00:00:00Z'),
                                      ('hydraproxy','main','7','2026-01-03',1,2,3,1,0,'2026-01-04T00:00:00Z','2026-01-04T00:00:00Z');",
    )
    .unwrap();
    drop(conn);
    Store::open(&dir.db()).unwrap();
    assert_eq!(
        count(&dir.db(), "PRAGMA user_version"),
        i64::from(usage_archiver::store::LATEST_VERSION)
    );
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_daily"), 2);
    let gaps = {
        let store = Store::open_read_only(&dir.db()).unwrap();
        store
            .with_conn(|c| load_gaps(c, "hydraproxy", "main", day("2026-01-04"), 7))
            .unwrap()
    };
    assert_eq!(
        gaps[0].recoverable,
        ["2026-01-02"],
        "the day between two archived days was never seen"
    );

    // The migrated schema equals a fresh one.
    let fresh = dir.path("fresh.db");
    Store::open(&fresh).unwrap();
    let schema = |db: &std::path::Path| -> Vec<(String, String)> {
        open(db)
            .prepare("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(schema(&dir.db()), schema(&fresh));
}

/// A sync that finds newly lost days reports them (and logs them as a warning).
#[tokio::test]
async fn newly_lost_days_are_reported() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let first = sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert!(first.newly_lost.is_empty());
    let report = sync_at(&config, at("2026-03-21T12:00:00Z")).await;
    let lost = usage_archiver::sync::LostDays {
        subject: "1".into(),
        first: day("2026-03-01"),
        last: day("2026-03-14"),
        days: 14,
    };
    assert_eq!(report.newly_lost, [lost]);
    let view: (String, String, String, i64) = open(&config.archive.database)
        .query_row(
            "SELECT subject, first_day, last_day, days FROM coverage_gaps",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        view,
        ("1".into(), "2026-03-01".into(), "2026-03-14".into(), 14),
        "the coverage_gaps view shows the same stretch"
    );
    let again = sync_at(&config, at("2026-03-21T13:00:00Z")).await;
    assert!(again.newly_lost.is_empty(), "reported once, when found");
}
