//! Growth benchmark (SPEC §6, issue 8 point 5): the archive after a year of daily syncs.
//!
//! 10,000 simulated HydraProxy orders with a long history, of which the provider shows
//! the last 7 days. The archive is synced once a day at 10:00 UTC for `BENCH_DAYS`
//! simulated days (default 30; the simulator's clock and the archive's move together),
//! once with `keep_raw = "errors"` and once with `"all"`. Reports bytes per day row, the
//! growth per daily sync, and the size after 365 daily syncs extrapolated from them
//! (growth is linear: every sync adds one day per order, and with "all" one body per order).
//!
//! Run with `cargo bench --bench growth` (or `scripts/bench.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use usage_archiver::http::HttpClient;
use usage_archiver::sim::hydraproxy::SimHydraProxy;
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;
use usage_archiver::sync::{self, Clock, SyncOptions};

const ORDERS: u64 = 10_000;

fn main() {
    common::block_on(bench());
}

async fn bench() {
    let days: i64 = common::env_or("BENCH_DAYS", 30);
    let hydra = SimHydraProxy {
        orders: ORDERS,
        history_days: 1_000,
        retention_days: 7,
        seed: 5,
        ended: 0,
        life: None,
        window_shrinks: None,
    };
    let sim = Simulator::start(SimConfig {
        hydraproxy: hydra.clone(),
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    println!("{ORDERS} HydraProxy orders, 7 days shown by the provider, {days} daily syncs\n");
    for keep_raw in ["errors", "all"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("growth.db");
        let toml = format!(
            "[archive]\ndatabase = {:?}\nkeep_raw = \"{keep_raw}\"\n\n{}",
            db.display().to_string(),
            hydra
                .daemon_toml(&sim.base_url())
                .replace("max_concurrency = 8", "max_concurrency = 16")
        );
        let config = usage_archiver::config::parse(&toml, &dir.path().join("daemon.toml"))
            .unwrap()
            .config;
        let store = Store::open(&db).unwrap();
        let http = HttpClient::new(&config.http).unwrap();
        let start: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let mut sizes = Vec::new();
        for day in 0..days {
            let at = start + TimeDelta::days(day);
            sim.clock().set(at);
            for account in &config.accounts {
                let vault = sync::vault(Some(store.path()), account);
                let provider = usage_archiver::providers::build(account, &http, vault);
                let mut options = SyncOptions::new(config.archive.keep_raw);
                options.clock = Clock::fixed(at);
                let report = sync::run_account(
                    account,
                    Arc::clone(&provider),
                    &store,
                    &options,
                    &CancellationToken::new(),
                )
                .await
                .unwrap();
                assert!(report.errors.is_empty(), "{:?}", report.errors);
            }
            sizes.push((size(&store, &db), rows(&store)));
        }
        let (first_bytes, first_rows) = sizes[0];
        let (last_bytes, last_rows) = sizes[sizes.len() - 1];
        let per_sync = (last_bytes - first_bytes) as f64 / (days - 1).max(1) as f64;
        let year = first_bytes as f64 + per_sync * 364.0;
        let rows_per_sync = (last_rows - first_rows) as f64 / (days - 1).max(1) as f64;
        println!("== keep_raw = \"{keep_raw}\"");
        println!(
            "after the first sync    {:>8.1} MB  {first_rows:>9} day rows",
            first_bytes as f64 / 1e6
        );
        println!(
            "after {days} daily syncs   {:>8.1} MB  {last_rows:>9} day rows  ({:.0} bytes per day row)",
            last_bytes as f64 / 1e6,
            last_bytes as f64 / last_rows as f64
        );
        println!(
            "growth per daily sync   {:>8.2} MB  {rows_per_sync:>9.0} day rows",
            per_sync / 1e6
        );
        println!(
            "after 1 year (365 syncs){:>8.0} MB  {:>9.0} day rows (extrapolated)\n",
            year / 1e6,
            first_rows as f64 + rows_per_sync * 364.0
        );
    }
}

/// The archive's size once its WAL is checkpointed into it.
fn size(store: &Store, db: &Path) -> u64 {
    store
        .with_conn(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?))
        .unwrap();
    std::fs::metadata(db).unwrap().len()
}

fn rows(store: &Store) -> i64 {
    store
        .with_conn(|c| Ok(c.query_row("SELECT count(*) FROM day_usage", [], |r| r.get(0))?))
        .unwrap()
}
