//! The archive file: schema, versions, WAL, idempotent upserts.

use chrono::NaiveDate;
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::usage::{self, SubjectKey};
use usage_archiver::store::{LATEST_VERSION, Store, StoreError};

use crate::common::*;

mod upgrades;

fn key() -> SubjectKey {
    SubjectKey {
        provider: "hydraproxy",
        account: "main".into(),
        subject: "1".into(),
    }
}

fn days(n: u32, total: f64) -> Vec<DayUsage> {
    (0..n)
        .map(|i| DayUsage {
            day: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                + chrono::TimeDelta::days(i64::from(i)),
            upload_mb: Some(1.0),
            download_mb: Some(total - 1.0),
            total_mb: total,
        })
        .collect()
}

/// A fresh archive has the latest user_version, WAL, and every SPEC §4 view.
#[test]
fn fresh_archive_has_schema_views_and_wal() {
    let dir = TestDir::new();
    Store::open(&dir.db()).unwrap();
    let conn = open(&dir.db());
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for view in [
        "usage_daily",
        "usage_monthly",
        "balance_snapshots",
        "sync_runs",
        "usage_revisions",
    ] {
        let n = count(
            &dir.db(),
            &format!("SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND name = '{view}'"),
        );
        assert_eq!(n, 1, "view {view}");
        conn.prepare(&format!("SELECT * FROM {view}")).unwrap();
    }
}

/// Reopening an archive migrates nothing and keeps its rows.
#[test]
fn reopening_keeps_rows() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            usage::upsert_days(
                &tx,
                &key(),
                &days(3, 5.0),
                false,
                FetchTime(at("2026-02-01T00:00:00Z")),
            )?;
            Ok(tx.commit()?)
        })
        .unwrap();
    drop(store);
    Store::open(&dir.db()).unwrap();
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_daily"), 3);
}

/// A database from a newer binary, or another program's database, is refused untouched.
#[test]
fn foreign_or_newer_databases_are_refused() {
    let dir = TestDir::new();
    let conn = open(&dir.db());
    conn.execute_batch("CREATE TABLE mine (x); PRAGMA user_version = 0;")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&dir.db()),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM sqlite_schema"),
        1,
        "nothing was added"
    );

    let newer = dir.path("newer.db");
    Store::open(&newer).unwrap();
    open(&newer)
        .pragma_update(None, "user_version", LATEST_VERSION + 1)
        .unwrap();
    assert!(matches!(
        Store::open(&newer),
        Err(StoreError::TooNew { .. })
    ));
    assert!(matches!(
        Store::open_read_only(&newer),
        Err(StoreError::TooNew { .. })
    ));
}

/// Upserting the same rows again changes nothing in SQLite's own change counter.
#[test]
fn unchanged_upsert_makes_zero_changes() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let fetched = FetchTime(at("2026-02-01T00:00:00Z"));
    let rows = days(30, 7.5);
    let stats = store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            let first = usage::upsert_days(&tx, &key(), &rows, false, fetched)?;
            tx.commit()?;
            let before = c.total_changes();
            let tx = usage::begin(c)?;
            let second = usage::upsert_days(
                &tx,
                &key(),
                &rows,
                false,
                FetchTime(at("2026-02-01T05:00:00Z")),
            )?;
            tx.commit()?;
            assert_eq!(c.total_changes(), before, "no row written");
            Ok((first, second))
        })
        .unwrap();
    assert_eq!(
        (stats.0.inserted, stats.1.unchanged, stats.1.updated),
        (30, 30, 0)
    );
}

/// A response mixing new, changed and unchanged days (40 of them, so several multi-row
/// inserts), listed newest first and naming one day twice, is counted row by row and
/// leaves each day as its last mention says.
#[test]
fn mixed_response_is_counted_row_by_row() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let fetched = FetchTime(at("2026-03-01T00:00:00Z"));
    let mut response = days(40, 7.5);
    // Archive days 10-29 first; then days 20 and 25 change, and day 3 comes twice.
    let archived = response[10..30].to_vec();
    response[20].total_mb = 99.0;
    response[25].upload_mb = None;
    let mut twice = response[3].clone();
    twice.total_mb = 8.5;
    response.reverse();
    response.push(twice);
    let (first, second) = store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            let first = usage::upsert_days(&tx, &key(), &archived, false, fetched)?;
            let second = usage::upsert_days(&tx, &key(), &response, false, fetched)?;
            tx.commit()?;
            Ok((first, second))
        })
        .unwrap();
    assert_eq!(first.inserted, 20);
    // 20 new days (one of them then updated by its second mention), days 20 and 25
    // updated, the 18 other archived days unchanged.
    assert_eq!(
        (second.inserted, second.updated, second.unchanged),
        (20, 3, 18)
    );
    let conn = open(&dir.db());
    let total = |day: &str| -> f64 {
        conn.query_row(
            "SELECT total_mb FROM usage_daily WHERE day = ?1",
            [day],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(total("2026-01-04"), 8.5, "day 3's last mention wins");
    assert_eq!(total("2026-01-21"), 99.0);
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM day_usage"), 40);
    let (rollup, summed) = rollup_and_summed_days(&store);
    assert_eq!(rollup, summed);
}

/// The CHECK constraints refuse rows no provider data should produce.
#[test]
fn schema_rejects_impossible_rows() {
    let dir = TestDir::new();
    Store::open(&dir.db()).unwrap();
    let conn = open(&dir.db());
    conn.execute("INSERT INTO subject VALUES (1, 'p', 'a', 's')", [])
        .unwrap();
    for bad in [
        "INSERT INTO day_usage VALUES (1,'2026-1-1',1,1,2,1,0,'x','x')",
        "INSERT INTO day_usage VALUES (1,'2026-01-01',1,1,-2,1,0,'x','x')",
        "INSERT INTO day_usage VALUES (1,'2026-01-01',1,1,'lots',1,0,'x','x')",
        "INSERT INTO day_usage VALUES (1,'2026-01-01',1,1,2,2,0,'x','x')",
        "INSERT INTO subject VALUES (3, 'p', 'a', 's')",
    ] {
        assert!(conn.execute(bad, []).is_err(), "{bad}");
    }
    conn.execute(
        "INSERT INTO day_usage VALUES (1,'2026-01-01',1,1,2,1,0,'x','x')",
        [],
    )
    .expect("the same row with sane values is accepted");
}

/// A reader can query the archive while a writer holds a write transaction.
#[test]
fn readers_are_not_blocked_by_a_writer() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let mut writer = open(&dir.db());
    let tx = usage::begin(&mut writer).unwrap();
    usage::upsert_days(
        &tx,
        &key(),
        &days(2, 1.0),
        false,
        FetchTime(at("2026-02-01T00:00:00Z")),
    )
    .unwrap();
    let reader = Store::open_read_only(&dir.db()).unwrap();
    let statuses = reader
        .with_conn(|c| usage_archiver::store::query::load_account_statuses(c))
        .unwrap();
    assert!(
        statuses.is_empty(),
        "uncommitted rows are invisible, and the read did not fail"
    );
    tx.commit().unwrap();
    drop(store);
}

/// `month_rollup` by subject and month, and the same figures summed from `usage_daily`,
/// each value printed with its SQLite type (so 2.0 as REAL and 2 as INTEGER differ).
fn rollup_and_summed_days(store: &Store) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let table = |sql: &str| -> Vec<Vec<String>> {
        store
            .with_conn(|c| {
                let mut stmt = c.prepare(sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap()
    };
    let rollup = table(
        "SELECT s.provider, s.account, s.subject, month, days, last_day, upload_mb, \
         download_mb, total_mb, is_final FROM month_rollup JOIN subject s ON s.id = subject_id \
         ORDER BY 1, 2, 3, 4",
    );
    let summed = table(
        "SELECT provider, account, subject, substr(day, 1, 7), count(*), max(day), \
         CASE WHEN count(upload_mb) = count(*) THEN sum(upload_mb) END, \
         CASE WHEN count(download_mb) = count(*) THEN sum(download_mb) END, \
         sum(total_mb), min(is_final) FROM usage_daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    );
    (rollup, summed)
}

/// A figure that rounds when added: any size from tiny to near overflow, an exact zero,
/// or infinity.
fn awkward_mb() -> impl proptest::strategy::Strategy<Value = f64> {
    use proptest::prelude::*;
    prop_oneof![
        6 => 0.0..1e6f64,
        2 => proptest::num::f64::POSITIVE | proptest::num::f64::ZERO,
        1 => Just(f64::MAX),
        1 => Just(f64::INFINITY),
    ]
}

/// One write of a rollup test: subject, first day (days after 2025-12-01), rows, their
/// size in quarter MB, whether upload is known, and the fetch's day.
type Write = (u8, u16, u8, u16, bool, u16);

fn rollup_write() -> impl proptest::strategy::Strategy<Value = Write> {
    use proptest::prelude::*;
    (
        0u8..3,
        0u16..120,
        1u8..40,
        0u16..400,
        any::<bool>(),
        0u16..200,
    )
}

proptest::proptest! {
    #![proptest_config(crate::common::proptest_config(proptest::test_runner::Config {
        cases: 48,
        ..Default::default()
    }))]

    /// Whatever sequence of new, changed, unchanged and finalised days is written,
    /// `month_rollup` equals the sum of `day_usage` per subject and month, and the monthly
    /// report read from it equals the one summed from the days.
    #[test]
    fn month_rollup_equals_the_sum_of_its_days(writes in proptest::collection::vec(rollup_write(), 1..12)) {
        let dir = TestDir::new();
        let store = Store::open(&dir.db()).unwrap();
        let origin = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        for (subject, start, n, quarters, upload, fetched_day) in writes {
            let key = SubjectKey { subject: subject.to_string(), ..key() };
            let total = f64::from(quarters) / 4.0;
            let rows: Vec<DayUsage> = (0..n)
                .map(|i| DayUsage {
                    day: origin + chrono::TimeDelta::days(i64::from(start) + i64::from(i)),
                    upload_mb: upload.then_some(total / 2.0),
                    download_mb: Some(total / 2.0),
                    total_mb: total + f64::from(i),
                })
                .collect();
            let fetched = origin + chrono::TimeDelta::days(i64::from(fetched_day));
            let fetched = FetchTime(fetched.and_hms_opt(12, 0, 0).unwrap().and_utc());
            store
                .with_conn(|c| {
                    let tx = usage::begin(c)?;
                    usage::upsert_days(&tx, &key, &rows, false, fetched)?;
                    Ok(tx.commit()?)
                })
                .unwrap();
        }
        let (rollup, summed) = rollup_and_summed_days(&store);
        proptest::prop_assert_eq!(rollup, summed);

        // The report over whole months reads the rollup; one day short of the last month
        // sums the days. Both agree on every month but the shortened one.
        use usage_archiver::store::query::{ReportFilter, load_report};
        let report = |to: &str| {
            let filter = ReportFilter {
                from: Some("2025-12-01".into()),
                to: Some(to.into()),
                per_subject: true,
                ..ReportFilter::default()
            };
            store.with_conn(|c| load_report(c, &filter)).unwrap()
        };
        let whole = report("2026-07-31");
        let mut by_days = report("2026-07-30");
        by_days.retain(|r| r.period != "2026-07");
        let mut whole_but_july = whole.clone();
        whole_but_july.retain(|r| r.period != "2026-07");
        proptest::prop_assert_eq!(whole_but_july, by_days);
        proptest::prop_assert_eq!(
            whole.iter().map(|r| r.subjects).sum::<i64>(),
            count(&dir.db(), "SELECT count(*) FROM month_rollup WHERE month <= '2026-07'")
        );
    }
}

/// Every migration before version 8, for building an archive as version 7 left it.
const MIGRATIONS_TO_7: [&str; 6] = [
    include_str!("../../../src/store/migrations/0002_subject_coverage.sql"),
    include_str!("../../../src/store/migrations/0003_counter_snapshot.sql"),
    include_str!("../../../src/store/migrations/0004_entity_snapshot.sql"),
    include_str!("../../../src/store/migrations/0005_hostens.sql"),
    include_str!("../../../src/store/migrations/0006_coverage_gaps.sql"),
    include_str!("../../../src/store/migrations/0007_month_rollup.sql"),
];

proptest::proptest! {
    #![proptest_config(crate::common::proptest_config(proptest::test_runner::Config {
        cases: 64,
        ..Default::default()
    }))]

    /// A subject's first days get their month's rollup summed in memory, not read back
    /// from `day_usage`: it still equals SQLite's `sum()` to the bit, on figures whose
    /// additions round, overflow or are infinite, over months of up to 31 days.
    #[test]
    fn rollup_from_memory_equals_sqlites_sum(
        subjects in proptest::collection::vec(
            (0u16..90, proptest::collection::vec(
                (proptest::option::weighted(0.9, awkward_mb()), awkward_mb(), awkward_mb()),
                1..75,
            )),
            1..4,
        )
    ) {
        let dir = TestDir::new();
        let store = Store::open(&dir.db()).unwrap();
        let origin = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let fetched = FetchTime(at("2026-03-15T12:00:00Z"));
        store
            .with_conn(|c| {
                let tx = usage::begin(c)?;
                for (n, (start, figures)) in subjects.iter().enumerate() {
                    let key = SubjectKey { subject: n.to_string(), ..key() };
                    let rows: Vec<DayUsage> = figures
                        .iter()
                        .enumerate()
                        .map(|(i, &(upload_mb, download_mb, total_mb))| DayUsage {
                            day: origin + chrono::TimeDelta::days(i64::from(*start) + i as i64),
                            upload_mb,
                            download_mb: Some(download_mb),
                            total_mb,
                        })
                        .collect();
                    let stats = usage::upsert_days(&tx, &key, &rows, false, fetched)?;
                    assert_eq!(stats.inserted, rows.len() as u64);
                }
                Ok(tx.commit()?)
            })
            .unwrap();
        let (rollup, summed) = rollup_and_summed_days(&store);
        proptest::prop_assert_eq!(rollup, summed);
    }
}
