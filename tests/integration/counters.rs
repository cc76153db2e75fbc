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
            limit_mb: None,
        })
        .collect();
    let fetched = FetchTime(at(when));
    store
        .with_conn(|c| {
            let before = c.total_changes();
            let tx = usage::begin(c)?;
            let d = record_readings(&tx, &key(), &readings, fetched)?;
            usage::upsert_days_final_before(&tx, &key(), &d.days, true, d.read, d.final_before)?;
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

/// A snapshot older than its day's first (the clock stepped back before it) becomes the
/// day's first: the day before ends at it, and neither day counts a reset.
// See: issue 22
#[test]
fn a_step_back_before_the_days_first_snapshot_moves_the_boundary() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-01-06T10:00:00Z", 1_000.0);
    total(&store, "2026-01-06T22:00:00Z", 1_120.0);
    total(&store, "2026-01-07T10:00:00Z", 1_240.0);
    // The clock steps back an hour: the counter read then is lower, and older.
    total(&store, "2026-01-07T09:00:00Z", 1_230.0);
    total(&store, "2026-01-08T10:00:00Z", 1_480.0);
    assert_eq!(
        days(&dir),
        [
            ("2026-01-06".into(), 230.0, true),
            ("2026-01-07".into(), 250.0, true),
            ("2026-01-08".into(), 0.0, false),
        ],
        "each day from its first snapshot (09:00 on 01-07) to the next day's"
    );
}

/// A snapshot between its day's first and latest changes no boundary and is ignored.
// See: issue 22
#[test]
fn a_step_back_mid_day_changes_nothing() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-01-07T00:10:00Z", 100.0);
    total(&store, "2026-01-07T16:00:00Z", 260.0);
    assert_eq!(
        total(&store, "2026-01-07T15:00:00Z", 250.0),
        0,
        "nothing written"
    );
    total(&store, "2026-01-08T00:10:00Z", 340.0);
    assert_eq!(days(&dir)[0], ("2026-01-07".into(), 240.0, true));
}

/// The clock stepping back across midnight puts the snapshot on its own day: after
/// that day's latest it is appended there, and the next day keeps its first.
// See: issue 22
#[test]
fn a_step_back_across_midnight_lands_on_its_own_day() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    total(&store, "2026-01-06T00:10:00Z", 100.0);
    total(&store, "2026-01-06T20:00:00Z", 180.0);
    total(&store, "2026-01-07T00:20:00Z", 205.0);
    total(&store, "2026-01-06T23:55:00Z", 200.0);
    assert_eq!(
        days(&dir),
        [
            ("2026-01-06".into(), 105.0, true),
            ("2026-01-07".into(), 0.0, false)
        ]
    );
    // A day that had no snapshot of its own is filled in, and the day before it closes.
    total(&store, "2026-01-09T00:10:00Z", 300.0);
    total(&store, "2026-01-08T00:30:00Z", 260.0);
    assert_eq!(
        days(&dir),
        [
            ("2026-01-06".into(), 105.0, true),
            ("2026-01-07".into(), 55.0, true),
            ("2026-01-08".into(), 40.0, true),
            ("2026-01-09".into(), 0.0, false),
        ]
    );
}

proptest::proptest! {
    #![proptest_config(proptest_config(proptest::test_runner::Config::with_cases(64)))]

    /// Whatever order a counter's snapshots arrive in, the final days are those of the
    /// same snapshots in time order: each the increase from its first snapshot to the next
    /// day's, a drop (at a day boundary) counting from zero.
    // See: issue 22
    #[test]
    fn final_days_do_not_depend_on_arrival_order(
        steps in proptest::collection::vec((0u32..=1440, 0u32..500, proptest::bool::weighted(0.1)), 2..40),
        order in proptest::collection::vec(proptest::num::usize::ANY, 40),
    ) {
        // Snapshots over 4 days, in time order; a reset may come only between two days.
        let start = at("2026-05-01T00:00:00Z");
        let mut snapshots: Vec<(chrono::DateTime<chrono::Utc>, f64)> = steps
            .iter()
            .enumerate()
            .map(|(i, (minute, _, _))| {
                let day = (i * 4 / steps.len()) as i64;
                (start + chrono::TimeDelta::days(day) + chrono::TimeDelta::minutes(i64::from(*minute)), 0.0)
            })
            .collect();
        snapshots.sort_by_key(|s| s.0);
        snapshots.dedup_by_key(|s| s.0);
        let mut value = 1_000.0;
        let mut last_day = None;
        for (s, (_, grow, reset)) in snapshots.iter_mut().zip(&steps) {
            let new_day = last_day.is_some_and(|d| d != s.0.date_naive());
            value = if *reset && new_day { 0.0 } else { value } + f64::from(*grow);
            last_day = Some(s.0.date_naive());
            s.1 = value;
        }
        let feed = |dir: &TestDir, order: &[usize]| {
            let store = Store::open(&dir.db()).unwrap();
            for i in order {
                let (t, v) = snapshots[*i];
                total(&store, &t.to_rfc3339(), v);
            }
            days(dir).into_iter().filter(|d| d.2).collect::<Vec<_>>()
        };
        let in_time = TestDir::new();
        let sorted: Vec<usize> = (0..snapshots.len()).collect();
        let expected = feed(&in_time, &sorted);
        let mut shuffled = sorted.clone();
        for (i, r) in order.iter().enumerate().take(shuffled.len()) {
            let j = r % shuffled.len();
            shuffled.swap(i, j);
        }
        let arrived = TestDir::new();
        proptest::prop_assert_eq!(feed(&arrived, &shuffled), expected);
    }
}
