//! Query benchmark (SPEC §6, issue 8 point 4): the read side over 10,000,000 day rows.
//!
//! Builds an archive of 10,000 subjects (6,000 HydraProxy orders, 2,000 InfiniteProxies
//! customers, 1,000 Hostens servers, 1,000 ProxyShard sub-users) with 1,000 days each,
//! the last being today, written through the archive's own upsert in grouped commits.
//! Then times, as a user runs them: `usage-archiver report --by month` and `status`
//! (whole processes), and every query of `examples/queries.sql` (docs/archive.md's), each
//! stepped to its last row. Each figure is the median of `BENCH_RUNS` runs (default 3).
//!
//! Run with `cargo bench --bench query` (or `scripts/bench.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::Store;
use usage_archiver::store::usage::{self, SubjectKey};

const BIN: &str = env!("CARGO_BIN_EXE_usage-archiver");
const QUERIES: &str = include_str!("../examples/queries.sql");
/// Subjects per provider/account.
const ACCOUNTS: [(&str, usize); 4] = [
    ("hydraproxy", 6_000),
    ("infiniteproxies", 2_000),
    ("hostens", 1_000),
    ("proxyshard", 1_000),
];
const DAYS: usize = 1_000;
/// Subjects per transaction while building, as `sync` groups them.
const BATCH: usize = 256;

fn main() {
    let runs: usize = common::env_or("BENCH_RUNS", 3);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("archive.db");
    build(&db);

    println!("\n{:<64} {:>10}", "query (median)", "seconds");
    for args in [
        &["report", "--by", "month"][..],
        &[
            "report",
            "--by",
            "month",
            "--per-subject",
            "--format",
            "csv",
        ],
        &["status"],
    ] {
        let time = median(runs, || {
            let out = Command::new(BIN)
                .args(args)
                .arg("--db")
                .arg(&db)
                .output()
                .unwrap();
            // `status` exits 1 when days are lost; this archive has no coverage at all.
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        println!(
            "{:<64} {:>10.3}",
            format!("usage-archiver {}", args.join(" ")),
            time.as_secs_f64()
        );
    }

    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut label = String::new();
    // The file's statements each end a line with ';' (none has one inside).
    for sql in QUERIES.split(";\n").filter(|s| {
        s.lines()
            .any(|l| !l.starts_with("--") && !l.trim().is_empty())
    }) {
        let mut stmt = conn.prepare(sql).unwrap();
        label = sql
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("-- "))
            .map_or(label, str::to_owned);
        let mut count = 0;
        let time = median(runs, || {
            count = 0;
            let mut rows = stmt.raw_query();
            while rows.next().unwrap().is_some() {
                count += 1;
            }
        });
        let first_line = sql.lines().find(|l| !l.starts_with("--")).unwrap_or("");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        println!(
            "{:<64} {:>10.3}   ({count} rows)",
            format!("{}: {}", shorten(&label, 30), shorten(first_line, 30)),
            time.as_secs_f64()
        );
        println!("      plan: {}", plan.join("; "));
    }
}

/// Writes the archive: every subject's 1,000 days, 256 subjects to a transaction.
fn build(db: &Path) {
    let store = Store::open(db).unwrap();
    let now = FetchTime(Utc::now());
    let today = now.day();
    let days: Vec<DayUsage> = (0..DAYS)
        .map(|i| {
            let mb = (i % 97) as f64 * 10.25;
            DayUsage {
                day: today - TimeDelta::days(i as i64),
                upload_mb: Some(mb / 4.0),
                download_mb: Some(mb - mb / 4.0),
                total_mb: mb,
            }
        })
        .collect();
    let keys: Vec<SubjectKey> = ACCOUNTS
        .iter()
        .flat_map(|&(provider, n)| {
            (0..n).map(move |i| SubjectKey {
                provider,
                account: "main".into(),
                subject: (10_000 + i).to_string(),
            })
        })
        .collect();
    let began = Instant::now();
    store
        .with_conn(|c| {
            for chunk in keys.chunks(BATCH) {
                let tx = usage::begin(c)?;
                for key in chunk {
                    usage::upsert_days(&tx, key, &days, false, now)?;
                }
                tx.commit()?;
            }
            // What every sync run ends with: fresh planner statistics.
            usage_archiver::store::optimize(c)?;
            Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?)
        })
        .unwrap();
    let secs = began.elapsed().as_secs_f64();
    let rows = (keys.len() * DAYS) as f64;
    let bytes = std::fs::metadata(db).unwrap().len();
    println!(
        "built {rows} day rows in {secs:.1} s ({:.0} rows/s); archive {:.0} MB, {:.0} bytes/row",
        rows / secs,
        bytes as f64 / 1e6,
        bytes as f64 / rows
    );
}

/// The median wall time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let began = Instant::now();
            f();
            began.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
