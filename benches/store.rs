//! Store benchmark (SPEC §6, issue 8 point 1): upsert throughput against a bare insert.
//!
//! 1,000,000 day rows arrive as subjects' responses of 7, 14, 30 and 90 days in turn
//! (HydraProxy's week, InfiniteProxies' fortnight, a month, Hostens' quarter). Phases:
//!
//! - one transaction per subject: the worst case, a sync whose subjects trickle in;
//! - grouped commits of [`BATCH`] subjects, the way `sync` writes a backfill;
//! - the same rows re-synced unchanged, asserting SQLite counted zero changes;
//! - the same rows (all eleven values `day_usage` holds) into a bare table (no key, no
//!   constraints, no upsert logic), per subject and grouped, as the floor;
//! - to attribute the gap: the same plain insert into a table with `day_usage`'s text key,
//!   and into one keyed by integers (a subject id and a day number), the layout an
//!   integer-keyed archive would have.
//!
//! Run with `cargo bench --bench store` (or `scripts/bench.sh`); prints rows/s per phase
//! and the ratio of each upsert to its floor.

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

mod common;

use std::time::Instant;

use chrono::{Datelike, NaiveDate, TimeDelta};
use rusqlite::Connection;
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::usage::{self, SubjectKey};
use usage_archiver::store::{Store, StoreError};

/// Day rows written per phase (`BENCH_ROWS` overrides, e.g. for a run under valgrind).
const ROWS: usize = 1_000_000;
/// Days per subject's response, in turn.
const RESPONSE_DAYS: [usize; 4] = [7, 14, 30, 90];
/// Subjects per transaction in grouped phases (as `sync` groups them at most).
const BATCH: usize = 256;

type Subject = (SubjectKey, Vec<DayUsage>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let subjects = subjects(common::env_or("BENCH_ROWS", ROWS))?;
    let rows = subjects.iter().map(|(_, d)| d.len()).sum::<usize>() as f64;
    let fetched = FetchTime(
        chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")?.with_timezone(&chrono::Utc),
    );
    println!(
        "{} subjects, {rows} day rows, responses of {RESPONSE_DAYS:?} days",
        subjects.len()
    );
    let upsert = |tx: &rusqlite::Transaction<'_>, (key, days): &Subject| {
        usage::upsert_days(tx, key, days, false, fetched).map(drop)
    };

    let single = Store::open(&dir.path().join("single.db"))?;
    let per_subject = phase("upsert, 1 subject/tx", rows, &single, &subjects, 1, upsert)?;
    let grouped = Store::open(&dir.path().join("grouped.db"))?;
    let batched = phase("upsert, grouped", rows, &grouped, &subjects, BATCH, upsert)?;
    let again = phase(
        "upsert, unchanged re-sync",
        rows,
        &grouped,
        &subjects,
        BATCH,
        upsert,
    )?;
    assert_eq!(again.changes, 0, "an unchanged re-sync must write nothing");
    assert!(per_subject.changes >= rows as u64 && batched.changes >= rows as u64);

    let bare = |name: &str, columns: &str| -> Result<Store, StoreError> {
        let store = Store::open(&dir.path().join(name))?;
        store.with_conn(|c| Ok(c.execute_batch(&format!("CREATE TABLE bare ({columns}"))?))?;
        Ok(store)
    };
    // The values day_usage holds: key, three figures, is_final, derived, first and last seen.
    const COLUMNS: &str = "p TEXT, a TEXT, s TEXT, d TEXT, u REAL, dl REAL, t REAL, \
        f INTEGER, dv INTEGER, fs TEXT, ls TEXT";
    let seen = fetched.rfc3339();
    let insert = |tx: &rusqlite::Transaction<'_>, (key, days): &Subject| {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        )?;
        for d in days {
            stmt.execute(rusqlite::params![
                key.provider,
                key.account,
                key.subject,
                d.day.to_string(),
                d.upload_mb,
                d.download_mb,
                d.total_mb,
                true,
                false,
                seen
            ])?;
        }
        Ok(())
    };
    let bare_single = phase(
        "bare insert, 1 subject/tx",
        rows,
        &bare("bare1.db", &format!("{COLUMNS})"))?,
        &subjects,
        1,
        insert,
    )?;
    let bare_grouped = phase(
        "bare insert, grouped",
        rows,
        &bare("bare2.db", &format!("{COLUMNS})"))?,
        &subjects,
        BATCH,
        insert,
    )?;
    // What the archive's key costs by itself: the same plain insert into a table keyed
    // like day_usage (the key is what makes a re-sync an update instead of a duplicate).
    let keyed = bare(
        "keyed.db",
        &format!("{COLUMNS}, PRIMARY KEY (p, a, s, d)) WITHOUT ROWID"),
    )?;
    let keyed = phase(
        "text-keyed insert, grouped",
        rows,
        &keyed,
        &subjects,
        BATCH,
        insert,
    )?;
    // Subject ids and day numbers in place of the text key (what a `subject` table
    // mapping provider, account and subject to an integer would allow).
    let int_keyed = bare(
        "int_keyed.db",
        "sid INTEGER, d INTEGER, u REAL, dl REAL, t REAL, f INTEGER, dv INTEGER, \
         fs TEXT, ls TEXT, PRIMARY KEY (sid, d)) WITHOUT ROWID",
    )?;
    let int_insert = |tx: &rusqlite::Transaction<'_>, (key, days): &Subject| {
        let mut stmt =
            tx.prepare_cached("INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)")?;
        let sid: i64 = key.subject.parse().unwrap_or_default();
        for d in days {
            stmt.execute(rusqlite::params![
                sid,
                d.day.num_days_from_ce(),
                d.upload_mb,
                d.download_mb,
                d.total_mb,
                true,
                false,
                seen
            ])?;
        }
        Ok(())
    };
    let int_keyed = phase(
        "int-keyed insert, grouped",
        rows,
        &int_keyed,
        &subjects,
        BATCH,
        int_insert,
    )?;
    println!(
        "upsert / bare: {:.2}x one subject per transaction, {:.2}x grouped; grouped, \
         upsert / text-keyed insert {:.2}x, text-keyed / bare {:.2}x, int-keyed / bare {:.2}x",
        bare_single.rate / per_subject.rate,
        bare_grouped.rate / batched.rate,
        keyed.rate / batched.rate,
        bare_grouped.rate / keyed.rate,
        bare_grouped.rate / int_keyed.rate
    );
    Ok(())
}

/// Subjects whose responses cycle through [`RESPONSE_DAYS`], `total` rows in all.
fn subjects(total: usize) -> Result<Vec<Subject>, Box<dyn std::error::Error>> {
    let end = NaiveDate::from_ymd_opt(2026, 5, 31).ok_or("date")?;
    let mut subjects = Vec::new();
    let mut rows = 0;
    while rows < total {
        let n = RESPONSE_DAYS[subjects.len() % RESPONSE_DAYS.len()].min(total - rows);
        let days = (0..n)
            .map(|i| DayUsage {
                day: end - TimeDelta::days(i as i64),
                upload_mb: Some(1.5 * i as f64),
                download_mb: Some(2.5 * i as f64),
                total_mb: 4.0 * i as f64,
            })
            .collect();
        let key = SubjectKey {
            provider: "hydraproxy",
            account: "bench".into(),
            subject: (10_000 + subjects.len()).to_string(),
        };
        subjects.push((key, days));
        rows += n;
    }
    Ok(subjects)
}

struct Phase {
    rate: f64,
    changes: u64,
}

/// Writes every subject with `write`, `per_tx` subjects to a transaction; prints rows/s.
fn phase(
    label: &str,
    rows: f64,
    store: &Store,
    subjects: &[Subject],
    per_tx: usize,
    write: impl Fn(&rusqlite::Transaction<'_>, &Subject) -> Result<(), StoreError>,
) -> Result<Phase, StoreError> {
    let began = Instant::now();
    let changes = store.with_conn(|c: &mut Connection| {
        let before = c.total_changes();
        for chunk in subjects.chunks(per_tx) {
            let tx = usage::begin(c)?;
            for subject in chunk {
                write(&tx, subject)?;
            }
            tx.commit()?;
        }
        Ok(c.total_changes() - before)
    })?;
    let secs = began.elapsed().as_secs_f64();
    let rate = rows / secs;
    println!("{label:<28} {rate:>10.0} rows/s  ({secs:.2} s, {changes} changes)");
    Ok(Phase { rate, changes })
}
