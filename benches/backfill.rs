//! End-to-end backfill benchmark (SPEC §6, issue 8 point 2).
//!
//! Starts the built-in simulator on loopback with 10,000 HydraProxy orders × 30 days (and,
//! in the second scenario, 2,000 InfiniteProxies customers and 200 Hostens servers too),
//! runs the real binary's `backfill` at `max_concurrency = 16` against it, and reports wall
//! time, requests/s and peak RSS (the child's `VmHWM`, sampled every 5 ms). The HydraProxy
//! scenario runs twice: with answers as fast as loopback gives them (the simulator then
//! competes with the archiver for the 2 cores, so this is the CPU-bound worst case) and with
//! 3 ms per answer, where the floor is the ~3 s SPEC §6 assumes. Then a bare
//! reqwest client fetches the same per-subject URLs at the same concurrency from the same
//! simulator, so the archiver's overhead over pure fetching is a ratio. Also measures the
//! archive's size with `keep_raw = "errors"` and `"all"`.
//!
//! Run with `cargo bench --bench backfill` (or `scripts/bench.sh`). `BENCH_RUNS` sets the
//! number of runs per measurement (default 3; the median is reported); `BENCH_WRAP` runs the
//! archiver under a profiler (`BENCH_WRAP="perf record -g -o perf.data"`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use usage_archiver::sim::hostens::SimHostens;
use usage_archiver::sim::hydraproxy::{FIRST_ORDER_ID, SimHydraProxy};
use usage_archiver::sim::infiniteproxies::SimInfiniteProxies;
use usage_archiver::sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_usage-archiver");
const CONCURRENCY: usize = 16;
const ORDERS: u64 = 10_000;
const CUSTOMERS: u64 = 2_000;
const SERVERS: u64 = 200;
/// A network-like answer time for the second scenario: with 10,000 requests, 16 at a time,
/// 3 ms each (about 4 ms once timers and the client add theirs) put the bare client's floor
/// at the ~3 s SPEC §6 assumes for this machine.
/// (Real providers answer in tens to hundreds of ms; this is the hard end of realistic.)
const LATENCY: Duration = Duration::from_millis(3);

struct Scenario {
    name: &'static str,
    sim: SimConfig,
    /// Which account tables of the simulator's config to keep.
    tables: &'static [&'static str],
    /// How long the simulator holds back each answer.
    latency: Duration,
}

struct Measured {
    wall: Duration,
    requests: u64,
    peak_rss_kib: u64,
    db_bytes: u64,
    rows: i64,
}

fn main() {
    common::block_on(bench());
}

async fn bench() {
    let runs: usize = common::env_or("BENCH_RUNS", 3);
    let hydra = SimHydraProxy {
        orders: ORDERS,
        history_days: 30,
        retention_days: 30,
        seed: 3,
        ended: 0,
        life: None,
        window_shrinks: None,
    };
    let scenarios = [
        Scenario {
            name: "HydraProxy 10,000 orders x 30 days",
            sim: SimConfig {
                hydraproxy: hydra.clone(),
                ..SimConfig::demo()
            },
            tables: &["hydraproxy"],
            latency: Duration::ZERO,
        },
        Scenario {
            name: "HydraProxy 10,000 orders x 30 days, 3 ms per answer",
            sim: SimConfig {
                hydraproxy: hydra.clone(),
                ..SimConfig::demo()
            },
            tables: &["hydraproxy"],
            latency: LATENCY,
        },
        Scenario {
            name: "+ 2,000 InfiniteProxies customers, 200 Hostens servers",
            sim: SimConfig {
                hydraproxy: hydra,
                infiniteproxies: SimInfiniteProxies {
                    customers: CUSTOMERS,
                    ..SimInfiniteProxies::demo()
                },
                hostens: SimHostens {
                    servers: SERVERS,
                    ..SimHostens::demo()
                },
                ..SimConfig::demo()
            },
            tables: &["hydraproxy", "infiniteproxies", "hostens"],
            latency: Duration::ZERO,
        },
    ];
    println!("runs per figure: {runs} (median); max_concurrency = {CONCURRENCY}\n");
    for scenario in scenarios {
        let sim = Simulator::start(scenario.sim.clone()).await.unwrap();
        sim.faults().set_latency(scenario.latency);
        let mut archiver = Vec::new();
        for _ in 0..runs {
            archiver.push(backfill(&sim, &scenario, "errors"));
        }
        let mut bare = Vec::new();
        for _ in 0..runs {
            bare.push(bare_fetch(&sim, &scenario).await);
        }
        let keep_all = backfill(&sim, &scenario, "all");
        archiver.sort_by_key(|m| m.wall);
        bare.sort();
        let m = &archiver[runs / 2];
        let floor = bare[runs / 2];
        println!("== {}", scenario.name);
        println!(
            "archiver backfill   {:>7.2} s  {:>7.0} req/s  peak RSS {:>5.1} MB  ({} requests, {} day rows)",
            m.wall.as_secs_f64(),
            m.requests as f64 / m.wall.as_secs_f64(),
            m.peak_rss_kib as f64 / 1024.0,
            m.requests,
            m.rows
        );
        println!(
            "bare HTTP client    {:>7.2} s  (same per-subject URLs, same concurrency)",
            floor.as_secs_f64()
        );
        println!(
            "ratio               {:>7.2}x",
            m.wall.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "archive size        {:>7.1} MB with keep_raw = \"errors\", {:.1} MB with \"all\" ({:.0} and {:.0} bytes per day row)",
            m.db_bytes as f64 / 1e6,
            keep_all.db_bytes as f64 / 1e6,
            m.db_bytes as f64 / m.rows as f64,
            keep_all.db_bytes as f64 / keep_all.rows as f64
        );
        println!(
            "all runs (s)        archiver {:?}  bare {:?}\n",
            archiver
                .iter()
                .map(|m| format!("{:.2}", m.wall.as_secs_f64()))
                .collect::<Vec<_>>(),
            bare.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
        );
    }
}

/// A config for the scenario's accounts on `sim`, at `max_concurrency = 16`.
fn config(sim: &Simulator, scenario: &Scenario, db: &Path, keep_raw: &str) -> String {
    let base = sim.base_url();
    let mut out = format!(
        "[archive]\ndatabase = {:?}\nkeep_raw = \"{keep_raw}\"\n\n[http]\ntimeout_secs = 30\n\n",
        db.display().to_string()
    );
    for table in scenario.tables {
        let section = match *table {
            "hydraproxy" => scenario.sim.hydraproxy.daemon_toml(&base),
            "infiniteproxies" => scenario.sim.infiniteproxies.daemon_toml(&base),
            _ => scenario.sim.hostens.daemon_toml(&base),
        };
        out.push_str(&section.replace("max_concurrency = 8\n", "").replace(
            "allow_insecure_http = true\n",
            &format!("allow_insecure_http = true\nmax_concurrency = {CONCURRENCY}\n"),
        ));
        out.push('\n');
    }
    out
}

/// One `backfill` of the scenario into a new archive.
fn backfill(sim: &Simulator, scenario: &Scenario, keep_raw: &str) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let cfg = dir.path().join("daemon.toml");
    std::fs::write(&cfg, config(sim, scenario, &db, keep_raw)).unwrap();
    let requests_before = sim.faults().requests();
    let began = Instant::now();
    // BENCH_WRAP="perf record -g -o perf.data" profiles the archiver (RSS is then perf's).
    let wrap = std::env::var("BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace().chain([BIN]);
    let mut child = Command::new(words.next().unwrap_or(BIN))
        .args(words)
        .args(["backfill", "--quiet", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(common::proc_status_kib(child.id(), "VmHWM:").unwrap_or(0));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = began.elapsed();
    assert!(status.success(), "backfill failed: {status}");
    let requests = sim.faults().requests() - requests_before;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM usage_daily", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    Measured {
        wall,
        requests,
        peak_rss_kib: peak,
        db_bytes,
        rows,
    }
}

/// The per-subject requests of every account, fetched with a bare client at the same
/// concurrency per account (accounts in parallel, as `backfill` runs them); bodies read whole,
/// nothing parsed or stored.
async fn bare_fetch(sim: &Simulator, scenario: &Scenario) -> Duration {
    let config = &scenario.sim;
    let has = |table: &str| scenario.tables.contains(&table);
    usage_archiver::http::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = sim.base_url();
    let began = Instant::now();
    let hydra = {
        let (client, base) = (client.clone(), base.clone());
        let orders = config.hydraproxy.orders;
        run_all((0..orders).map(move |i| {
            client
                .post(format!("{base}/hydraproxy/api/view_usage_history/"))
                .header(
                    "authorization",
                    format!("Token {}", usage_archiver::sim::hydraproxy::SIM_TOKEN),
                )
                .form(&[("order_id", (FIRST_ORDER_ID + i).to_string())])
        }))
    };
    let infinite = {
        let (client, base) = (client.clone(), base.clone());
        let customers = if has("infiniteproxies") {
            config.infiniteproxies.customers
        } else {
            0
        };
        run_all((0..customers).map(move |i| {
            client
                .get(format!(
                    "{base}/infiniteproxies/v2/customer/@customer{i:03}/transactions"
                ))
                .bearer_auth(usage_archiver::sim::infiniteproxies::SIM_API_KEY)
        }))
    };
    let hostens = {
        let (client, base) = (client.clone(), base.clone());
        let servers = if has("hostens") {
            config.hostens.servers
        } else {
            0
        };
        let ids: Vec<u64> = config.hostens.server_ids().take(servers as usize).collect();
        run_all(ids.into_iter().flat_map(move |id| {
            let (c1, c2) = (client.clone(), client.clone());
            [
                c1.get(format!("{base}/hostens/api/server/{id}")),
                c2.get(format!("{base}/hostens/api/server/{id}/history")),
            ]
            .map(|r| {
                r.basic_auth(
                    usage_archiver::sim::hostens::SIM_USERNAME,
                    Some(usage_archiver::sim::hostens::SIM_PASSWORD),
                )
            })
        }))
    };
    tokio::join!(hydra, infinite, hostens);
    began.elapsed()
}

async fn run_all(requests: impl Iterator<Item = reqwest::RequestBuilder>) {
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    futures_util::stream::iter(requests)
        .map(|r| {
            let failures = failures.clone();
            async move {
                let ok = match r.send().await {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    assert_eq!(
        failures.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "bare client saw failures"
    );
}
