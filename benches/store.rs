//! Store benchmark (SPEC §6, issue 8 point 1): upsert throughput against a bare insert.
//!
//! 1,000,000 day rows arrive as subjects' responses of 7, 14, 30 and 90 days in turn
//! (HydraProxy's week, InfiniteProxies' fortnight, a month, Hostens' quarter). Phases:
//!
//! - one transaction per subject: the worst case, a sync whose subjects trickle in, for
//!   subjects new to the archive (a first backfill) and for subjects it already numbered
//!   (every later sync);
//! - grouped commits of [`BATCH`] subjects, the way `sync` writes a backfill;
//! - the same rows re-synced unchanged, asserting SQLite counted zero changes;
//! - the same rows (all eleven values a day row holds: provider, account, subject, day,
//!   figures, flags, timestamps) into a bare table (no key, no constraints, no upsert
//!   logic), per subject and grouped, as the floor: one plain `INSERT` per row;
//! - the floor again by multi-row `INSERT`s, the way the archive inserts new days, to
//!   show what that technique alone gives;
//! - to attribute the gap: the same plain insert into a table keyed like `day_usage`
//!   (a subject's number and the day), and into one keyed by the text columns as
//!   `day_usage` was before schema version 8.
//!
//! Every phase writes a new archive. `BENCH_RUNS` (default 3) repeats them all, and the
//! medians and their ratios are printed at the end (the VM is noisy; a median of runs that
//! interleave the phases is fairer than one pass). `BENCH_ROWS` sets the rows per phase.
//!
//! Run with `cargo bench --bench store` (or `scripts/bench.sh`).

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

mod common;

use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{Connection, ToSql};
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::usage::{self, SubjectKey};
use usage_archiver::store::{Store, StoreError};

/// Day rows written per phase (`BENCH_ROWS` overrides, e.g. for a run under valgrind).
const ROWS: usize = 1_000_000;
/// Days per subject's response, in turn.
const RESPONSE_DAYS: [usize; 4] = [7, 14, 30, 90];
/// Subjects per transaction in grouped phases (as `sync` groups them at most).
const BATCH: usize = 256;

/// A subject's key, its days, and their text for the plain inserts (made before any
/// phase, so the floor pays nothing to format a day).
type Subject = (SubjectKey, Vec<DayUsage>, Vec<String>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let subjects = subjects(common::env_or("BENCH_ROWS", ROWS))?;
    let rows = subjects.iter().map(|(_, d, _)| d.len()).sum::<usize>() as f64;
    let runs: usize = common::env_or("BENCH_RUNS", 3);
    println!(
        "{} subjects, {rows} day rows, responses of {RESPONSE_DAYS:?} days; \
         {runs} runs, medians at the end",
        subjects.len()
    );
    let mut rates: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for run in 1..=runs {
        println!("-- run {run}");
        for (label, rate) in one_run(&subjects, rows)? {
            match rates.iter_mut().find(|(l, _)| *l == label) {
                Some((_, all)) => all.push(rate),
                None => rates.push((label, vec![rate])),
            }
        }
    }
    println!("-- median of {runs}");
    let median = |label: &str| -> f64 {
        let mut all = rates
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, all)| all.clone())
            .unwrap_or_default();
        all.sort_by(f64::total_cmp);
        all.get(all.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for (label, _) in &rates {
        println!("{label:<38} {:>10.0} rows/s", median(label));
    }
    println!(
        "upsert / bare insert: {:.2}x one subject per transaction ({:.2}x for known subjects), \
         {:.2}x grouped ({:.2}x against the multi-row bare insert); \
         grouped, upsert / insert keyed like day_usage {:.2}x, \
         keyed like day_usage / bare {:.2}x, keyed by text as before / bare {:.2}x",
        median(BARE_SINGLE) / median(UPSERT_SINGLE),
        median(BARE_SINGLE) / median(UPSERT_KNOWN),
        median(BARE_GROUPED) / median(UPSERT_GROUPED),
        median(BARE_MULTI) / median(UPSERT_GROUPED),
        median(INT_KEYED) / median(UPSERT_GROUPED),
        median(BARE_GROUPED) / median(INT_KEYED),
        median(BARE_GROUPED) / median(TEXT_KEYED),
    );
    Ok(())
}

const UPSERT_SINGLE: &str = "upsert, 1 subject/tx";
const UPSERT_KNOWN: &str = "upsert, 1 subject/tx, known subjects";
const UPSERT_GROUPED: &str = "upsert, grouped";
const RESYNC: &str = "upsert, unchanged re-sync";
const BARE_SINGLE: &str = "bare insert, 1 subject/tx";
const BARE_GROUPED: &str = "bare insert, grouped";
const BARE_MULTI: &str = "bare multi-row insert, grouped";
const INT_KEYED: &str = "insert keyed like day_usage";
const TEXT_KEYED: &str = "insert keyed by text (before v8)";

/// Every phase once, each into a new archive; the rate of each.
fn one_run(
    subjects: &[Subject],
    rows: f64,
) -> Result<Vec<(&'static str, f64)>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let fetched = FetchTime(
        chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")?.with_timezone(&chrono::Utc),
    );
    let upsert = |tx: &rusqlite::Transaction<'_>, (key, days, _): &Subject| {
        usage::upsert_days(tx, key, days, false, fetched).map(drop)
    };

    let single = Store::open(&dir.path().join("single.db"))?;
    let per_subject = phase(UPSERT_SINGLE, rows, &single, subjects, 1, upsert)?;
    // The daily case: subjects the archive already numbered (a sync after the first).
    let known = Store::open(&dir.path().join("known.db"))?;
    known.with_conn(|c| {
        let tx = usage::begin(c)?;
        {
            let mut add =
                tx.prepare("INSERT INTO subject (provider, account, subject) VALUES (?1, ?2, ?3)")?;
            for (key, _, _) in subjects {
                add.execute(rusqlite::params![key.provider, key.account, key.subject])?;
            }
        }
        Ok(tx.commit()?)
    })?;
    let per_known = phase(UPSERT_KNOWN, rows, &known, subjects, 1, upsert)?;
    let grouped = Store::open(&dir.path().join("grouped.db"))?;
    let batched = phase(UPSERT_GROUPED, rows, &grouped, subjects, BATCH, upsert)?;
    let again = phase(RESYNC, rows, &grouped, subjects, BATCH, upsert)?;
    assert_eq!(again.changes, 0, "an unchanged re-sync must write nothing");
    assert!(per_subject.changes >= rows as u64 && batched.changes >= rows as u64);

    let bare = |name: &str, columns: &str| -> Result<Store, StoreError> {
        let store = Store::open(&dir.path().join(name))?;
        store.with_conn(|c| Ok(c.execute_batch(&format!("CREATE TABLE bare ({columns}"))?))?;
        Ok(store)
    };
    // The values a day row holds: provider, account, subject, day, three figures,
    // is_final, derived, first and last seen.
    const COLUMNS: &str = "p TEXT, a TEXT, s TEXT, d TEXT, u REAL, dl REAL, t REAL, \
        f INTEGER, dv INTEGER, fs TEXT, ls TEXT";
    let seen = fetched.rfc3339();
    let insert = |tx: &rusqlite::Transaction<'_>, (key, days, texts): &Subject| {
        let sql = "INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)";
        let names: [&dyn ToSql; 3] = [&key.provider, &key.account, &key.subject];
        insert_plain(tx, sql, &names, days, texts, &seen)
    };
    let plain = format!("{COLUMNS})");
    let bare_single = phase(
        BARE_SINGLE,
        rows,
        &bare("bare1.db", &plain)?,
        subjects,
        1,
        insert,
    )?;
    let bare_grouped = phase(
        BARE_GROUPED,
        rows,
        &bare("bare2.db", &plain)?,
        subjects,
        BATCH,
        insert,
    )?;
    // The floor written the way the archive writes: one statement per 32, 16, 8, 4, 2
    // or 1 rows instead of one per row.
    let multi_sql = multi_row_inserts();
    let multi_insert = |tx: &rusqlite::Transaction<'_>, (key, days, texts): &Subject| {
        let names: [&dyn ToSql; 3] = [&key.provider, &key.account, &key.subject];
        insert_multi_row(tx, &multi_sql, &names, days, texts, &seen)
    };
    let bare_multi = phase(
        BARE_MULTI,
        rows,
        &bare("bare3.db", &plain)?,
        subjects,
        BATCH,
        multi_insert,
    )?;
    assert_eq!(bare_multi.changes, rows as u64, "every row inserted");
    // What the key costs by itself: the same plain insert into a table keyed like
    // day_usage (a subject's number and the day; the key is what makes a re-sync an
    // update instead of a duplicate), and keyed by the text columns as before v8.
    let int_keyed = bare(
        "int_keyed.db",
        "sid INTEGER, d TEXT, u REAL, dl REAL, t REAL, f INTEGER, dv INTEGER, \
         fs TEXT, ls TEXT, PRIMARY KEY (sid, d)) WITHOUT ROWID",
    )?;
    let int_insert = |tx: &rusqlite::Transaction<'_>, (key, days, texts): &Subject| {
        let sql = "INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
        let sid: i64 = key.subject.parse().unwrap_or_default();
        insert_plain(tx, sql, &[&sid], days, texts, &seen)
    };
    let int_keyed = phase(INT_KEYED, rows, &int_keyed, subjects, BATCH, int_insert)?;
    let text_keyed = bare(
        "text_keyed.db",
        &format!("{COLUMNS}, PRIMARY KEY (p, a, s, d)) WITHOUT ROWID"),
    )?;
    let text_keyed = phase(TEXT_KEYED, rows, &text_keyed, subjects, BATCH, insert)?;
    Ok(vec![
        (UPSERT_SINGLE, per_subject.rate),
        (UPSERT_KNOWN, per_known.rate),
        (UPSERT_GROUPED, batched.rate),
        (RESYNC, again.rate),
        (BARE_SINGLE, bare_single.rate),
        (BARE_GROUPED, bare_grouped.rate),
        (BARE_MULTI, bare_multi.rate),
        (INT_KEYED, int_keyed.rate),
        (TEXT_KEYED, text_keyed.rate),
    ])
}

/// One plain `INSERT` per day: `names` (the key's columns), then the day's text, its
/// figures, `is_final`, `derived` and the time seen.
fn insert_plain(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    names: &[&dyn ToSql],
    days: &[DayUsage],
    texts: &[String],
    seen: &str,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(sql)?;
    for (d, text) in days.iter().zip(texts) {
        let row: [&dyn ToSql; 7] = [
            text,
            &d.upload_mb,
            &d.download_mb,
            &d.total_mb,
            &true,
            &false,
            &seen,
        ];
        stmt.execute(rusqlite::params_from_iter(names.iter().chain(&row)))?;
    }
    Ok(())
}

/// `INSERT INTO bare VALUES (…), …` for 32, 16, 8, 4, 2 and 1 rows: `?1`-`?3` the names,
/// `?4` derived, `?5` the time seen, then five per row (day, figures, `is_final`).
fn multi_row_inserts() -> Vec<(usize, String)> {
    [32, 16, 8, 4, 2, 1]
        .into_iter()
        .map(|size| {
            let values: Vec<String> = (0..size)
                .map(|r| {
                    let p = 6 + 5 * r;
                    let [u, dl, t, f] = [p + 1, p + 2, p + 3, p + 4];
                    format!("(?1, ?2, ?3, ?{p}, ?{u}, ?{dl}, ?{t}, ?{f}, ?4, ?5, ?5)")
                })
                .collect();
            (
                size,
                format!("INSERT INTO bare VALUES {}", values.join(", ")),
            )
        })
        .collect()
}

/// The rows of [`insert_plain`] by the statements of [`multi_row_inserts`], largest
/// first, as `upsert_days` inserts new days.
fn insert_multi_row(
    tx: &rusqlite::Transaction<'_>,
    sql: &[(usize, String)],
    names: &[&dyn ToSql; 3],
    days: &[DayUsage],
    texts: &[String],
    seen: &str,
) -> Result<(), StoreError> {
    let mut rest: Vec<(&DayUsage, &String)> = days.iter().zip(texts).collect();
    while let Some((size, sql)) = sql.iter().find(|(size, _)| *size <= rest.len()) {
        let mut stmt = tx.prepare_cached(sql)?;
        for (i, name) in names.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, name)?;
        }
        stmt.raw_bind_parameter(4, false)?;
        stmt.raw_bind_parameter(5, seen)?;
        for (r, (d, text)) in rest.drain(..*size).enumerate() {
            let p = 6 + 5 * r;
            stmt.raw_bind_parameter(p, text)?;
            stmt.raw_bind_parameter(p + 1, d.upload_mb)?;
            stmt.raw_bind_parameter(p + 2, d.download_mb)?;
            stmt.raw_bind_parameter(p + 3, d.total_mb)?;
            stmt.raw_bind_parameter(p + 4, true)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

/// Subjects whose responses cycle through [`RESPONSE_DAYS`], `total` rows in all.
fn subjects(total: usize) -> Result<Vec<Subject>, Box<dyn std::error::Error>> {
    let end = NaiveDate::from_ymd_opt(2026, 5, 31).ok_or("date")?;
    let mut subjects = Vec::new();
    let mut rows = 0;
    while rows < total {
        let n = RESPONSE_DAYS[subjects.len() % RESPONSE_DAYS.len()].min(total - rows);
        let days: Vec<DayUsage> = (0..n)
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
        let texts = days.iter().map(|d| d.day.to_string()).collect();
        subjects.push((key, days, texts));
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
    println!("{label:<38} {rate:>10.0} rows/s  ({secs:.2} s, {changes} changes)");
    Ok(Phase { rate, changes })
}
