//! Archives of earlier versions upgraded: every row kept through subject ids, customer balances relabelled.

use super::*;

/// A version-7 archive (text-keyed days) is refused by readers until a writer upgrades it
/// to numbered subjects, with every day, rollup and revision as it was: the views answer
/// the same, a re-sync of the same days writes nothing, and new days and revisions land on
/// the migrated subjects.
#[test]
fn version_7_archive_keeps_every_row_through_subject_ids() {
    let dir = TestDir::new();
    let conn = open(&dir.db());
    conn.execute_batch(include_str!("../../fixtures/schema-v1.sql"))
        .unwrap();
    let (to_6, [month_rollup]) = MIGRATIONS_TO_7.split_at(5) else {
        unreachable!("six migrations")
    };
    for sql in to_6 {
        conn.execute_batch(sql).unwrap();
    }
    // Days (and a revision) as version 6 held them; 0007 then sums them into month_rollup.
    conn.execute_batch(
        "INSERT INTO day_usage VALUES
           ('hydraproxy','main','1','2026-01-01',1,2,3,1,0,'2026-01-02T00:00:00Z','2026-01-02T00:00:00Z'),
           ('hydraproxy','main','1','2026-01-02',1,1,2,0,0,'2026-01-02T00:00:00Z','2026-01-02T00:00:00Z'),
           ('hydraproxy','main','10','2026-01-01',NULL,NULL,5,1,0,'2026-01-02T00:00:00Z','2026-01-02T00:00:00Z'),
           ('hostens','vps','42','2025-12-31',0.5,0.25,0.75,1,1,'2026-01-01T00:00:00Z','2026-01-01T00:00:00Z');
         UPDATE day_usage SET total_mb = 4, last_seen_at = '2026-01-03T00:00:00Z'
         WHERE subject = '1' AND day = '2026-01-01';",
    )
    .unwrap();
    conn.execute_batch(month_rollup).unwrap();
    conn.execute_batch("PRAGMA user_version = 7;").unwrap();
    let views = |db: &std::path::Path| -> Vec<Vec<String>> {
        [
            "SELECT * FROM usage_daily ORDER BY 1, 2, 3, 4",
            "SELECT * FROM usage_monthly ORDER BY 1, 2, 3, 4",
            "SELECT * FROM usage_revisions ORDER BY 1, 2, 3, 4",
        ]
        .iter()
        .map(|sql| {
            let conn = open(db);
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("\n")
        })
        .map(|rows| rows.lines().map(str::to_owned).collect())
        .collect()
    };
    drop(conn);
    let before = views(&dir.db());
    assert_eq!(before[0].len(), 4, "{before:?}");
    assert_eq!(before[2].len(), 1, "the revision logged as version 7");

    // Readers never migrate: they say what to do and leave the file as it was.
    let refused = Store::open_read_only(&dir.db()).unwrap_err();
    assert!(
        matches!(refused, StoreError::TooOld { found: 7, .. }),
        "{refused:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
        .args(["status", "--db"])
        .arg(dir.db())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schema version 7") && err.contains("`usage-archiver run` or `backfill`"),
        "{err}"
    );
    assert_eq!(count(&dir.db(), "PRAGMA user_version"), 7);

    let store = Store::open(&dir.db()).unwrap();
    assert_eq!(
        count(&dir.db(), "PRAGMA user_version"),
        i64::from(LATEST_VERSION)
    );
    assert_eq!(views(&dir.db()), before, "the views answer as before");
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM subject"), 3);
    let integrity: String = open(&dir.db())
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    // The same days again change nothing; a changed final day is a revision of subject 1.
    let mut same = days(2, 0.0);
    same[0].upload_mb = Some(1.0);
    same[0].download_mb = Some(2.0);
    same[0].total_mb = 4.0;
    same[1].upload_mb = Some(1.0);
    same[1].download_mb = Some(1.0);
    same[1].total_mb = 2.0;
    let first = FetchTime(at("2026-01-02T12:00:00Z"));
    let stats = store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            let stats = usage::upsert_days(&tx, &key(), &same, false, first)?;
            tx.commit()?;
            Ok(stats)
        })
        .unwrap();
    assert_eq!((stats.inserted, stats.updated), (0, 0), "{stats:?}");
    same[0].total_mb = 5.0;
    same.push(DayUsage {
        day: NaiveDate::from_ymd_opt(2026, 1, 3).unwrap(),
        upload_mb: None,
        download_mb: None,
        total_mb: 1.0,
    });
    // A later fetch than the one that wrote the day (an earlier one never replaces it).
    let later = FetchTime(at("2026-01-03T00:00:00Z"));
    store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            usage::upsert_days(&tx, &key(), &same, false, later)?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM subject"), 3);
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_revisions WHERE subject = '1' AND period = '2026-01-01' \
             AND old_total_mb = 4 AND new_total_mb = 5"
        ),
        1
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT r.days FROM month_rollup r JOIN subject s ON s.id = r.subject_id \
             WHERE s.subject = '1'"
        ),
        3
    );
}

/// Upgrading to schema 11 relabels the InfiniteProxies customer balances archived as GB
/// to MB (the figures stay as they were) and adds the views of issue 18.
// See: issue 18.5
#[test]
fn schema_11_relabels_customer_balances_as_mb() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    {
        // What version 10 left: no views of issue 18, balances labelled GB.
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch(
            "DROP VIEW hydraproxy_order_history; DROP VIEW hostens_invoices; \
             DROP VIEW hostens_service_history; DROP VIEW suspect_days; DROP TABLE day_flag; \
             DROP VIEW hostens_domain_history; DROP VIEW hostens_certificate_history; DROP TABLE window_evidence; \
             PRAGMA user_version = 10; \
             INSERT INTO balance_snapshot VALUES \
             ('infiniteproxies', 'main', '2026-03-01', 'customer_balance:alice', 150, 'GB', '2026-03-01T10:00:00Z'), \
             ('infiniteproxies', 'main', '2026-03-01', 'balance_mobile_mb', 3000, 'MB', '2026-03-01T10:00:00Z'), \
             ('hostens', 'main', '2026-03-01', 'customer_balance:x', 1, 'GB', '2026-03-01T10:00:00Z');",
        )
        .unwrap();
    }
    drop(Store::open(&dir.db()).unwrap());
    let units: Vec<(String, String, f64, String)> = open(&dir.db())
        .prepare(
            "SELECT provider, metric, value, unit FROM balance_snapshots ORDER BY provider, metric",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        units,
        [
            (
                "hostens".into(),
                "customer_balance:x".into(),
                1.0,
                "GB".into()
            ),
            (
                "infiniteproxies".into(),
                "balance_mobile_mb".into(),
                3000.0,
                "MB".into()
            ),
            (
                "infiniteproxies".into(),
                "customer_balance:alice".into(),
                150.0,
                "MB".into()
            ),
        ]
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM sqlite_schema WHERE name = 'hostens_invoices'"
        ),
        1
    );
}
