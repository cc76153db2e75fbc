//! Steady-state benchmark (SPEC §6 "Steady state", issue 16 point 5): what the fetch plan
//! costs against fetching everything.
//!
//! A simulated HydraProxy book of 1,000 orders in use and 9,000 ended four weeks ago
//! (TERMINATED, no usage since), a provider window of 7 days and an hourly schedule. A
//! first `run --once` archives the book (a new archive fetches everything); then
//! `usage-archiver run --once` runs on every tick for `BENCH_DAYS` simulated days
//! (default 3), a new process each time as a systemd timer would start it, with the
//! simulator's clock moved to the tick. Reported: `view_usage_history/` requests per
//! day against the 240,000 of fetching every order on every tick, the days of any order
//! never covered (lost: target 0), and the age of in-use orders' provisional figures
//! when the next tick comes (target: at most one tick). Then the same with 90,000 ended
//! orders: the requests a day may grow by at most 10%.
//!
//! Run with `cargo bench --bench plan` (or `scripts/bench.sh plan`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use usage_archiver::sim::hydraproxy::{FIRST_ORDER_ID, SimHydraProxy};
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::{Store, coverage};

const BIN: &str = env!("CARGO_BIN_EXE_usage-archiver");
const IN_USE: u64 = 1_000;

fn main() {
    common::block_on(bench());
}

async fn bench() {
    let days: i64 = common::env_or("BENCH_PLAN_DAYS", 3);
    println!(
        "HydraProxy, {IN_USE} orders in use, hourly schedule, 7-day window, {days} simulated days of `run --once`\n"
    );
    let small = book(9_000, days).await;
    let large = book(90_000, days).await;
    println!();
    println!(
        "| ended orders | requests/day | vs everything | lost days | oldest provisional | wall per run |"
    );
    println!("|---|---|---|---|---|---|");
    for (ended, r) in [(9_000, &small), (90_000, &large)] {
        println!(
            "| {ended} | {:.0} | {:.1}% | {} | {} min | {:.2} s |",
            r.requests_per_day,
            100.0 * r.requests_per_day / r.everything_per_day,
            r.lost_days,
            r.oldest_provisional.num_minutes(),
            r.wall_per_run
        );
    }
    println!(
        "\n90,000 ended against 9,000: {:+.1}% requests a day (target at most +10%)",
        100.0 * (large.requests_per_day / small.requests_per_day - 1.0)
    );
}

/// What one book measured.
struct Figures {
    requests_per_day: f64,
    everything_per_day: f64,
    lost_days: usize,
    oldest_provisional: TimeDelta,
    wall_per_run: f64,
}

async fn book(ended: u64, days: i64) -> Figures {
    let hydra = SimHydraProxy {
        orders: IN_USE + ended,
        history_days: 60,
        retention_days: 7,
        seed: 16,
        ended,
        life: None,
        window_shrinks: None,
    };
    let sim = Simulator::start(SimConfig {
        hydraproxy: hydra.clone(),
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("plan.db");
    let cfg = dir.path().join("daemon.toml");
    let toml = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 2\nbackoff_initial_ms = 50\n\n{}",
        db.display().to_string(),
        hydra
            .daemon_toml(&sim.base_url())
            .replace("max_concurrency = 8", "max_concurrency = 16")
    );
    std::fs::write(&cfg, toml).unwrap();

    let start: DateTime<Utc> = "2026-03-01T00:10:00Z".parse().unwrap();
    let started = Instant::now();
    run_once(&sim, &cfg, start).await;
    println!(
        "{ended} ended: first run (everything) {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let fetched = || sim.requests().count_prefixed("hydraproxy order ");
    let before = fetched();
    let mut oldest = TimeDelta::zero();
    let mut wall = 0.0;
    let ticks = days * 24;
    for hour in 1..=ticks {
        let tick = start + TimeDelta::hours(hour);
        oldest = oldest.max(provisional_age(&db, &hydra, tick));
        let t = Instant::now();
        run_once(&sim, &cfg, tick).await;
        wall += t.elapsed().as_secs_f64();
    }
    let requests_per_day = (fetched() - before) as f64 / days as f64;
    let end = start + TimeDelta::hours(ticks);
    let lost_days = uncovered_days(
        &db,
        &hydra,
        start.date_naive() - TimeDelta::days(6),
        // Closed days: the last tick's own day is not final yet.
        end.date_naive() - TimeDelta::days(1),
    );
    Figures {
        requests_per_day,
        everything_per_day: (IN_USE + ended) as f64 * 24.0,
        lost_days,
        oldest_provisional: oldest,
        wall_per_run: wall / ticks as f64,
    }
}

/// One `usage-archiver run --once` at `now`, as a timer would start it.
async fn run_once(sim: &Simulator, cfg: &Path, now: DateTime<Utc>) {
    sim.clock().set(now);
    let cfg = cfg.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .args(["--now", &now.to_rfc3339()])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{now}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How old the in-use orders' figures of today are when the tick at `now` comes: the
/// longest time since a fetch last changed one of them.
fn provisional_age(db: &Path, hydra: &SimHydraProxy, now: DateTime<Utc>) -> TimeDelta {
    let conn = rusqlite::Connection::open(db).unwrap();
    let today = now.date_naive().format("%Y-%m-%d").to_string();
    let mut stmt = conn
        .prepare(
            "SELECT subject, last_seen_at FROM usage_daily \
             WHERE provider = 'hydraproxy' AND day = ?1",
        )
        .unwrap();
    let rows = stmt
        .query_map([&today], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap();
    let mut oldest = TimeDelta::zero();
    for row in rows {
        let (subject, seen) = row.unwrap();
        let id: u64 = subject.parse().unwrap();
        if hydra.has_ended(id) {
            continue;
        }
        let seen: DateTime<Utc> = DateTime::parse_from_rfc3339(&seen).unwrap().into();
        oldest = oldest.max(now - seen);
    }
    oldest
}

/// Days from `from` to `to` of any order that no coverage interval holds.
fn uncovered_days(db: &Path, hydra: &SimHydraProxy, from: NaiveDate, to: NaiveDate) -> usize {
    let store = Store::open_read_only(db).unwrap();
    let orders = (FIRST_ORDER_ID..FIRST_ORDER_ID + hydra.orders).map(|id| id.to_string());
    store
        .with_conn(|c| coverage::uncovered_days(c, "hydraproxy", "sim", orders, (from, to)))
        .unwrap()
        .values()
        .map(Vec::len)
        .sum()
}
