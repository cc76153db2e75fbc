//! Idle daemon benchmark (SPEC §6, issue 8 point 3): RSS and CPU time of `run` between runs.
//!
//! Starts `usage-archiver run` on the demo's simulated accounts with every schedule
//! hourly at a minute half an hour away, waits for the start-up catch-up runs to finish,
//! then samples the process for `BENCH_IDLE_SECS` (default 60): resident set size each
//! second from `/proc/PID/status`, and CPU time (user + system) from `/proc/PID/stat`.
//! Ends with SIGTERM and checks the daemon exits 0.
//!
//! Run with `cargo bench --bench idle` (or `scripts/bench.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use usage_archiver::sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_usage-archiver");

fn main() {
    common::block_on(bench());
}

async fn bench() {
    let secs: u64 = common::env_or("BENCH_IDLE_SECS", 60);
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idle.db");
    let minute = (Utc::now().minute() + 30) % 60;
    let config: String = sim
        .daemon_toml(&db)
        .lines()
        .map(|l| {
            if l.starts_with("schedule = ") {
                format!("schedule = \"0 {minute} * * * *\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let accounts = config.matches("schedule = ").count();
    let cfg = dir.path().join("daemon.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();

    // The start-up catch-up: every account's first run, then idle until minute `minute`.
    let began = Instant::now();
    while finished_runs(&db) < accounts {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "catch-up runs did not finish"
        );
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catch_up = began.elapsed();
    let peak_after_catch_up = common::proc_status_kib(pid, "VmHWM:").unwrap();

    let cpu_before = cpu_ticks(pid);
    let mut rss_max = 0;
    let mut rss_last = 0;
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_last = common::proc_status_kib(pid, "VmRSS:").unwrap();
        rss_max = rss_max.max(rss_last);
    }
    let cpu_ticks_idle = cpu_ticks(pid) - cpu_before;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();

    println!("accounts: {accounts}, schedules hourly at minute {minute}, idle for {secs} s");
    println!(
        "catch-up runs at start    {:>8.2} s, peak RSS {:.1} MB",
        catch_up.as_secs_f64(),
        peak_after_catch_up as f64 / 1024.0
    );
    println!(
        "idle RSS                  {:>8.1} MB max, {:.1} MB at the end",
        rss_max as f64 / 1024.0,
        rss_last as f64 / 1024.0
    );
    println!(
        "idle CPU time             {:>8.3} s over {secs} s ({} ticks of 10 ms)",
        cpu_ticks_idle as f64 / ticks_per_sec,
        cpu_ticks_idle
    );
    println!("exit after SIGTERM        {exit}");
    assert!(exit.success(), "the daemon must stop cleanly on SIGTERM");
}

/// Runs recorded as finished in the archive (0 while it does not exist yet).
fn finished_runs(db: &std::path::Path) -> usize {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sync_run WHERE finished_at IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map_or(0, |n| n as usize)
}

/// User plus system CPU time of a process so far, in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
