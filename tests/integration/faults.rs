//! Fault injection (issue 7.1): the simulator answers a set fraction of requests with 500,
//! 502 and an HTML page, 429 with `Retry-After`, a stall past the timeout, truncated JSON or
//! a connection reset.
//!
//! Two archives follow the same simulated days, one from a clean simulator and one from a
//! faulty one: the faulty one must end up with every row the clean one has, and every
//! failure must be on record in `sync_runs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use usage_archiver::config::{self, Config};
use usage_archiver::sim::faults::Fault;
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

/// The demo config of `sim`, with an HTTP client tuned so faults cost milliseconds. A
/// stalled response is held back for 30 s, so any timeout well under that sees the stall.
fn fast_config(sim: &Simulator, db: &Path, max_retries: u32, timeout_ms: u64) -> Config {
    let mut config = config::parse(&sim.daemon_toml(db), Path::new("sim.toml"))
        .unwrap()
        .config;
    config.http.timeout = Duration::from_millis(timeout_ms);
    config.http.max_retries = max_retries;
    config.http.backoff_initial = Duration::from_millis(1);
    // Also the cap on Retry-After, so the simulated `Retry-After: 1` waits 20 ms.
    config.http.backoff_max = Duration::from_millis(20);
    config
}

/// Every archived row, as text, for comparing two archives.
fn all_rows(db: &Path, sql: &str) -> BTreeSet<String> {
    let conn = open(db);
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|cols| cols.join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

const USAGE_ROWS: &str = "SELECT provider, account, subject, day, upload_mb, download_mb, total_mb, is_final, derived FROM usage_daily";

/// Each fault kind, on every request and without retries, fails every account's run
/// visibly, with an error that says what happened, and leaves the archive as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_kind_is_recorded_and_changes_nothing() {
    let expected = [
        (Fault::ServerError, "server error (HTTP 500)"),
        (Fault::BadGatewayHtml, "server error (HTTP 502)"),
        (
            Fault::RateLimited,
            "rate limited (HTTP 429) on every attempt (last Retry-After 1s)",
        ),
        (Fault::Stall, "timed out"),
        (Fault::TruncatedJson, "malformed response"),
        (Fault::Reset, "request failed"),
    ];
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    // A patient client for the clean sync, an impatient one once every answer is a fault.
    let patient = fast_config(&sim, &dir.db(), 0, 10_000);
    let config = fast_config(&sim, &dir.db(), 0, 250);
    let store = Store::open(&dir.db()).unwrap();
    let at = at("2026-11-20T12:00:00Z");
    assert_all_ok(&sync_all(&sim, &patient, &store, at).await);
    let before = all_rows(&dir.db(), USAGE_ROWS);
    assert!(
        before.len() > 100,
        "the clean sync archived {} rows",
        before.len()
    );
    for (kind, message) in expected {
        sim.faults().set(1.0, &[kind]);
        let injected = sim.faults().injected_of(kind);
        for report in sync_all(&sim, &config, &store, at).await {
            assert_eq!(
                report.status,
                RunStatus::Failed,
                "{kind:?}: {}",
                report.label
            );
            let error: String = open(&dir.db())
                .query_row(
                    "SELECT error FROM sync_runs WHERE id = ?1",
                    [report.run_id],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(
                error.contains(message),
                "{kind:?}: {} recorded {error:?}",
                report.label
            );
        }
        assert!(
            sim.faults().injected_of(kind) > injected,
            "{kind:?} was injected"
        );
        assert_eq!(
            all_rows(&dir.db(), USAGE_ROWS),
            before,
            "{kind:?} changed the archive"
        );
        sim.faults().off();
    }
    // keep_raw = "errors": the truncated bodies are kept for a post-mortem.
    let kept = count(
        &dir.db(),
        "SELECT count(*) FROM raw_response WHERE error LIKE '%malformed%' OR error LIKE '%EOF%'",
    );
    assert!(kept >= 1, "truncated bodies kept: {kept}");
}

/// Twenty percent of all responses go wrong, every kind, over three simulated days of
/// syncs every three hours. Retries and later syncs recover every day the providers still
/// kept: the faulty archive holds exactly the rows of an archive synced from a clean
/// simulator at the same moments, and every failure is in `sync_runs` and `sync_error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_is_complete_after_many_syncs_through_faults() {
    let clean_sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let faulty_sim = Simulator::start(SimConfig::demo()).await.unwrap();
    faulty_sim.faults().set(0.2, &Fault::ALL);
    let (clean_dir, faulty_dir) = (TestDir::new(), TestDir::new());
    let clean_config = fast_config(&clean_sim, &clean_dir.db(), 2, 10_000);
    let faulty_config = fast_config(&faulty_sim, &faulty_dir.db(), 2, 100);
    let clean = Store::open(&clean_dir.db()).unwrap();
    let faulty = Store::open(&faulty_dir.db()).unwrap();

    let start = at("2026-11-10T00:30:00Z");
    let syncs = 24;
    let mut reports = Vec::new();
    for i in 0..syncs {
        let at = start + TimeDelta::hours(3 * i);
        assert_all_ok(&sync_all(&clean_sim, &clean_config, &clean, at).await);
        reports.extend(sync_all(&faulty_sim, &faulty_config, &faulty, at).await);
    }
    let last_day = (start + TimeDelta::hours(3 * (syncs - 1))).date_naive();

    // The faults really happened, of every kind.
    for kind in Fault::ALL {
        assert!(
            faulty_sim.faults().injected_of(kind) > 0,
            "{kind:?} never injected"
        );
    }
    assert!(
        reports.iter().any(|r| r.status != RunStatus::Ok),
        "no run noticed a fault"
    );

    // Every run is on record with the counts and the error it reported.
    let db = faulty_dir.db();
    assert_eq!(
        count(&db, "SELECT count(*) FROM sync_runs") as usize,
        reports.len()
    );
    for report in &reports {
        let (status, failed, error): (String, i64, Option<String>) = open(&db)
            .query_row(
                "SELECT status, subjects_failed, error FROM sync_runs WHERE id = ?1",
                [report.run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(status, report.status.as_str(), "{}", report.label);
        assert_eq!(
            failed as u64, report.totals.subjects_failed,
            "{}",
            report.label
        );
        let errors = count(
            &db,
            &format!(
                "SELECT count(*) FROM sync_error WHERE run_id = {}",
                report.run_id
            ),
        );
        if report.status == RunStatus::Ok {
            assert!(
                error.is_none() && errors == 0,
                "{}: {error:?}",
                report.label
            );
        } else {
            assert!(
                error.is_some(),
                "{} {status} without an error",
                report.label
            );
            assert!(
                errors as u64 >= failed as u64,
                "{}: {errors} errors for {failed} failed subjects",
                report.label
            );
        }
    }

    // Reported history (HydraProxy, InfiniteProxies): identical, values and finality
    // included, for every day up to the day before the last sync, the days that left the
    // 14-day window during the test among them.
    let settled = format!("{USAGE_ROWS} WHERE derived = 0 AND day < '{last_day}'");
    let (want, got) = (all_rows(&clean_dir.db(), &settled), all_rows(&db, &settled));
    assert!(
        want.len() > 200,
        "clean archive has {} reported rows",
        want.len()
    );
    assert_eq!(
        got.symmetric_difference(&want).collect::<Vec<_>>(),
        Vec::<&String>::new()
    );

    // Derived days (ProxyShard, Hostens) and Hostens months: the same days and months; the
    // values may differ where a fault moved the first snapshot after midnight.
    let derived = format!(
        "SELECT provider, account, subject, day FROM usage_daily WHERE derived = 1 AND day < '{last_day}'"
    );
    let want = all_rows(&clean_dir.db(), &derived);
    assert!(!want.is_empty());
    assert_eq!(all_rows(&db, &derived), want);
    let months = "SELECT provider, account, subject, month FROM usage_monthly";
    assert_eq!(all_rows(&db, months), all_rows(&clean_dir.db(), months));

    let check: String = open(&db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Latency (the benchmarks' network-like case) holds every answer back by at least the
/// set time and changes nothing in it; a sync through it archives what it would without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_answers_and_changes_nothing_else() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    // Today's figures grow with the simulator's clock; stopped, both answers are equal.
    sim.clock().set(at("2026-11-20T12:00:00Z"));
    let url = format!("{}/hydraproxy/api/view_usage_history/", sim.base_url());
    let fetch = || async {
        let began = std::time::Instant::now();
        let body = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(&url)
            .header(
                "authorization",
                format!("Token {}", usage_archiver::sim::hydraproxy::SIM_TOKEN),
            )
            .form(&[(
                "order_id",
                usage_archiver::sim::hydraproxy::FIRST_ORDER_ID.to_string(),
            )])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (began.elapsed(), body)
    };
    usage_archiver::http::install_crypto_provider();
    let (_, plain) = fetch().await;
    sim.faults().set_latency(Duration::from_millis(150));
    let (waited, delayed) = fetch().await;
    assert!(
        waited >= Duration::from_millis(150),
        "answered after {waited:?}"
    );
    assert_eq!(delayed, plain);

    sim.faults().set_latency(Duration::from_millis(5));
    let dir = TestDir::new();
    let config = fast_config(&sim, &dir.db(), 0, 10_000);
    let store = Store::open(&dir.db()).unwrap();
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-11-20T12:00:00Z")).await);
    assert!(count(&dir.db(), "SELECT count(*) FROM usage_daily") > 100);
}
