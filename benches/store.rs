//! Store benchmark (SPEC §6, issue 8 point 1): upsert throughput against a bare insert.
//!
//! Writes 1,000,000 day rows as subjects of 30 days, one transaction per
//! subject, the way a sync writes them; then re-syncs the same rows
//! unchanged and checks that SQLite counted zero changes; then inserts the
//! same rows in large batches (1,000 subjects per transaction); then inserts
//! the same rows into a bare table with no upsert logic, as the floor. Run with
//! `cargo bench --bench store`. Prints rows/s for each phase.

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::Store;
use usage_archiver::store::usage::{self, SubjectKey};

const SUBJECTS: usize = 33_334;
const DAYS: usize = 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db"))?;
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).ok_or("date")?;
    let days: Vec<DayUsage> = (0..DAYS)
        .map(|i| DayUsage {
            day: start + TimeDelta::days(i as i64),
            upload_mb: Some(1.5 * i as f64),
            download_mb: Some(2.5 * i as f64),
            total_mb: 4.0 * i as f64,
        })
        .collect();
    let keys: Vec<SubjectKey> = (0..SUBJECTS)
        .map(|i| SubjectKey {
            provider: "hydraproxy",
            account: "bench".into(),
            subject: (10_000 + i).to_string(),
        })
        .collect();
    let rows = (SUBJECTS * DAYS) as f64;
    let fetched = FetchTime(
        chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")?.with_timezone(&chrono::Utc),
    );

    let upsert_all = |label: &str| -> Result<u64, Box<dyn std::error::Error>> {
        let began = Instant::now();
        let changes = store.with_conn(|c| {
            let before = c.total_changes();
            for key in &keys {
                let tx = usage::begin(c)?;
                usage::upsert_days(&tx, key, &days, false, fetched)?;
                tx.commit()?;
            }
            Ok(c.total_changes() - before)
        })?;
        let secs = began.elapsed().as_secs_f64();
        println!(
            "{label:<28} {:>10.0} rows/s  ({secs:.2} s, {changes} changes)",
            rows / secs
        );
        Ok(changes)
    };
    let inserted = upsert_all("upsert, new rows")?;
    let unchanged = upsert_all("upsert, unchanged re-sync")?;
    assert_eq!(unchanged, 0, "an unchanged re-sync must write nothing");
    assert!(inserted >= rows as u64);

    // Large backfill batches: 1,000 subjects per transaction, into a fresh archive.
    let batched = Store::open(&dir.path().join("batched.db"))?;
    let began = Instant::now();
    batched.with_conn(|c| {
        for chunk in keys.chunks(1_000) {
            let tx = usage::begin(c)?;
            for key in chunk {
                usage::upsert_days(&tx, key, &days, false, fetched)?;
            }
            tx.commit()?;
        }
        Ok(())
    })?;
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>10.0} rows/s  ({secs:.2} s)",
        "upsert, 1000 subjects/tx",
        rows / secs
    );

    let began = Instant::now();
    store.with_conn(|c| {
        c.execute_batch(
            "CREATE TABLE bare (p TEXT, a TEXT, s TEXT, d TEXT, u REAL, dl REAL, t REAL)",
        )?;
        for key in &keys {
            let tx = usage::begin(c)?;
            {
                let mut stmt =
                    tx.prepare_cached("INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
                for d in &days {
                    stmt.execute(rusqlite::params![
                        key.provider,
                        key.account,
                        key.subject,
                        d.day.to_string(),
                        d.upload_mb,
                        d.download_mb,
                        d.total_mb
                    ])?;
                }
            }
            tx.commit()?;
        }
        Ok(())
    })?;
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>10.0} rows/s  ({secs:.2} s)",
        "bare insert (floor)",
        rows / secs
    );
    Ok(())
}
