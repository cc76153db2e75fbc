//! Days derived from running counters (SPEC §5.7): several snapshots a day, drops, gaps, finality.

use usage_archiver::model::{CounterKind, CounterReading, FetchTime};
use usage_archiver::store::Store;
use usage_archiver::store::counters::record_readings;
use usage_archiver::store::usage::{self, SubjectKey};

use crate::common::*;

fn key() -> SubjectKey {
    SubjectKey {
        provider: "proxyshard",
        account: "main".into(),
        subject: "standart/owner".into(),
    }
}

/// Feeds one fetch's readings to the store the way sync does; returns rows written.
fn snapshot(store: &Store, when: &str, readings: &[(CounterKind, f64)]) -> u64 {
    let readings: Vec<CounterReading> = readings
        .iter()
        .map(|(kind, value_mb)| CounterReading {
            kind: *kind,
            value_mb: *value_mb,
            read_at: None,
        })
        .collect();
    let fetched = FetchTime(at(when));
    store
        .with_conn(|c| {
            let before = c.total_changes();
            let tx = usage::begin(c)?;
            let (days, read) = record_readings(&tx, &key(), &readings, fetched)?;
            usage::upsert_days(&tx, &key(), &days, true, read)?;
            tx.commit()?;
            Ok(c.total_changes() - before)
        })
        .unwrap()
}

fn total(store: &Store, when: &str, mb: f64) -> u64 {
    snapshot(store, when, &[(CounterKind::Total, mb)])
}

fn days(dir: &TestDir) -> Vec<(String, f64, bool)> {
    day_rows(&dir.db(), "standart/owner")
        .into_iter()
        .map(|r| (r.0, r.3, r.4))
        .collect()
}

/// Day D is the increase from D's first snapshot to D+1's first, whatever lies between.
#[test]
fn day_is_first_to_next_first_over_many_snapshots() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-03-01T00:10:00Z", 100.0);
    total(&store, "2026-03-01T08:00:00Z", 130.0);
    total(&store, "2026-03-01T23:10:00Z", 180.0);
    assert_eq!(
        days(&dir),
        [("2026-03-01".into(), 80.0, false)],
        "provisional: so far today"
    );
    total(&store, "2026-03-02T00:10:00Z", 200.0);
    assert_eq!(
        days(&dir),
        [
            ("2026-03-01".into(), 100.0, true),
            ("2026-03-02".into(), 0.0, false)
        ]
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE derived = 1"
        ),
        2
    );
}

/// A counter that drops (reset, recreated sub-user) counts from zero: never a negative day.
#[test]
fn counter_drop_counts_from_zero() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-03-31T00:05:00Z", 900.0);
    total(&store, "2026-03-31T12:00:00Z", 950.0);
    total(&store, "2026-03-31T18:00:00Z", 10.0); // reset: 10 MB since
    total(&store, "2026-04-01T00:05:00Z", 40.0);
    let got = days(&dir);
    assert_eq!(got[0], ("2026-03-31".into(), 50.0 + 10.0 + 30.0, true));
    assert!(got.iter().all(|d| d.1 >= 0.0));
    // A drop right at the day boundary counts too.
    total(&store, "2026-04-02T00:05:00Z", 5.0);
    assert_eq!(days(&dir)[1], ("2026-04-01".into(), 5.0, true));
}

/// A day without a snapshot of its own is never invented; the day before stays provisional.
#[test]
fn day_without_snapshots_is_a_gap() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-03-01T00:10:00Z", 100.0);
    total(&store, "2026-03-01T20:00:00Z", 120.0);
    // Nothing on 03-02; the next snapshot is on 03-03.
    total(&store, "2026-03-03T00:10:00Z", 300.0);
    assert_eq!(
        days(&dir),
        [
            ("2026-03-01".into(), 20.0, false),
            ("2026-03-03".into(), 0.0, false)
        ]
    );
}

/// The same reading again writes nothing.
#[test]
fn unchanged_reading_writes_nothing() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-03-01T00:10:00Z", 100.0);
    total(&store, "2026-03-01T01:10:00Z", 110.0);
    assert_eq!(total(&store, "2026-03-01T02:10:00Z", 110.0), 0);
    total(&store, "2026-03-02T00:10:00Z", 120.0);
    assert_eq!(
        total(&store, "2026-03-02T01:10:00Z", 120.0),
        0,
        "yesterday re-derived unchanged, today unchanged"
    );
}

/// Upload and download counters give a row with both and their sum as total.
#[test]
fn upload_and_download_counters_combine() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    snapshot(
        &store,
        "2026-03-01T00:00:30Z",
        &[(CounterKind::Download, 10.0), (CounterKind::Upload, 1.0)],
    );
    snapshot(
        &store,
        "2026-03-02T00:00:30Z",
        &[(CounterKind::Download, 25.5), (CounterKind::Upload, 3.25)],
    );
    let rows = day_rows(&dir.db(), "standart/owner");
    assert_eq!(
        (rows[0].1, rows[0].2, rows[0].3, rows[0].4),
        (Some(2.25), Some(15.5), 17.75, true)
    );
}

/// Derived days run through 29 February in a leap year like any other day.
#[test]
fn derived_days_cross_a_leap_day() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2024-02-28T00:10:00Z", 100.0);
    total(&store, "2024-02-29T00:10:00Z", 150.0);
    total(&store, "2024-03-01T00:10:00Z", 230.0);
    assert_eq!(
        days(&dir),
        [
            ("2024-02-28".into(), 50.0, true),
            ("2024-02-29".into(), 80.0, true),
            ("2024-03-01".into(), 0.0, false),
        ]
    );
}
