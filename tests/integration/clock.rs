//! Clock edges (issue 7.6): midnight during a run, future dates, leap days, a non-UTC local zone.

use std::process::Command;

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;
use usage_archiver::http::HttpClient;
use usage_archiver::store::Store;
use usage_archiver::store::runs::RunStatus;
use usage_archiver::sync::{self, Clock, SyncOptions};

use crate::common::*;

fn usage_body(days: &[(&str, f64)]) -> String {
    let rows: Vec<String> = days
        .iter()
        .map(|(d, mb)| {
            format!(
                r#"{{"date":"{d}","bandwidth_upload_mb":0,"bandwidth_download_mb":{mb},"bandwidth_total_mb":{mb}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"status":"OK","order_id":1,"usage":[{}]}}"#,
        rows.join(",")
    )
}

/// A run that starts before midnight and fetches after it: each subject is judged by its own
/// fetch time, so the day that just ended is final, and the balance read before midnight
/// belongs to the old day.
#[tokio::test]
async fn a_run_across_midnight_judges_each_fetch_by_its_own_time() {
    let (server, dir) = hydra_server().await;
    mock_usage(
        &server,
        usage_body(&[("2026-02-28", 10.0), ("2026-03-01", 2.0)]),
    )
    .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let store = Store::open(&dir.db()).unwrap();
    let http = HttpClient::new(&config.http).unwrap();
    let account = &config.accounts[0];
    let provider =
        usage_archiver::providers::build(account, &http, sync::vault(Some(store.path()), account));
    // Every reading of the clock is one second later, starting two seconds before midnight.
    let options = SyncOptions {
        clock: Clock::stepping(at("2026-02-28T23:59:58Z"), TimeDelta::seconds(1)),
        ..SyncOptions::new(config.archive.keep_raw)
    };
    let report = sync::run_account(
        account,
        provider,
        &store,
        &options,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let conn = open(&dir.db());
    let (started, finished): (String, String) = conn
        .query_row("SELECT started_at, finished_at FROM sync_runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(started.starts_with("2026-02-28T23:59"), "{started}");
    assert!(finished.starts_with("2026-03-01T00:00"), "{finished}");
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM balance_snapshots WHERE day = '2026-02-28'"
        ),
        1,
        "the balance was read before midnight"
    );
    assert_eq!(
        day_rows(&dir.db(), "1"),
        [
            ("2026-02-28".into(), Some(0.0), Some(10.0), 10.0, true),
            ("2026-03-01".into(), Some(0.0), Some(2.0), 2.0, false),
        ],
        "fetched after midnight: the 28th is final, the 1st provisional"
    );
}

/// Tomorrow (a provider a little ahead of UTC) cannot have been measured yet: it is
/// refused with a warning and the rest is kept. A day after tomorrow is no reading at all:
/// the answer is malformed, nothing of it is stored, and the error says which day.
// See: issue 15.9
#[tokio::test]
async fn future_days_are_refused() {
    let (server, dir) = hydra_server().await;
    let tomorrow = mock_usage(
        &server,
        usage_body(&[("2026-03-01", 1.0), ("2026-03-02", 2.0)]),
    )
    .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let report = sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok);
    let days: Vec<String> = day_rows(&dir.db(), "1").into_iter().map(|r| r.0).collect();
    assert_eq!(days, ["2026-03-01"]);

    tomorrow.delete_async().await;
    mock_usage(
        &server,
        usage_body(&[("2026-03-01", 5.0), ("2027-01-01", 3.0)]),
    )
    .await;
    let report = sync_at(&config, at("2026-03-01T13:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0].contains("day 2027-01-01 is after tomorrow (2026-03-02)"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        day_rows(&dir.db(), "1")[0].3,
        1.0,
        "nothing of the malformed answer was stored"
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM raw_response WHERE subject = '1'"
        ),
        1,
        "the answer is kept raw"
    );
}

/// 29 February exists in leap years only; the month rollup counts it.
#[tokio::test]
async fn leap_days() {
    let (server, dir) = hydra_server().await;
    let ok = mock_usage(
        &server,
        usage_body(&[
            ("2024-02-28", 1.0),
            ("2024-02-29", 2.0),
            ("2024-03-01", 4.0),
        ]),
    )
    .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let report = sync_at(&config, at("2024-03-02T12:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        count(
            &dir.db(),
            "SELECT CAST(total_mb AS INTEGER) FROM usage_monthly WHERE month = '2024-02' AND source = 'rollup'"
        ),
        3
    );
    ok.delete_async().await;
    mock_usage(&server, usage_body(&[("2023-02-29", 5.0)])).await;
    let report = sync_at(&config, at("2024-03-02T13:00:00Z")).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0].contains("\"2023-02-29\" is not a YYYY-MM-DD date"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM usage_daily"),
        3,
        "nothing archived changed"
    );
}

/// The machine's local zone changes nothing: days and finality are UTC.
#[tokio::test]
async fn local_timezone_changes_nothing() {
    let (server, _dir) = hydra_server().await;
    // 11:00 UTC on 1 March is already 01:00 on 2 March in Kiritimati (UTC+14).
    mock_usage(
        &server,
        usage_body(&[
            ("2026-02-28", 1.0),
            ("2026-03-01", 2.0),
            ("2026-03-02", 3.0),
        ]),
    )
    .await;
    let mut dumps = Vec::new();
    for tz in ["UTC", "Pacific/Kiritimati", "America/Adak"] {
        let dir = TestDir::new();
        let toml = hydra_toml(&server.base_url(), &dir.db(), "orders = [1]", "");
        let cfg = dir.write("daemon.toml", &toml, 0o600);
        let out = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args([
                    "backfill",
                    "--quiet",
                    "--now",
                    "2026-03-01T11:00:00Z",
                    "--config",
                ])
                .arg(&cfg)
                .env("TZ", tz)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Vec<DayRow> = day_rows(&dir.db(), "1");
        dumps.push(rows);
    }
    assert_eq!(
        dumps[0],
        [
            ("2026-02-28".into(), Some(0.0), Some(1.0), 1.0, true),
            ("2026-03-01".into(), Some(0.0), Some(2.0), 2.0, false),
        ],
        "2 March is still in the future in UTC"
    );
    assert_eq!(dumps[1], dumps[0]);
    assert_eq!(dumps[2], dumps[0]);
}
