//! Promises mutation testing found unguarded (issue 19): reported months re-synced,
//! finality at month edges, coverage extended by overlapping fetches, and run totals
//! that count every kind of row.

use chrono::NaiveDate;
use usage_archiver::model::{DayUsage, FetchTime, MonthResources, MonthUsage};
use usage_archiver::store::Store;
use usage_archiver::store::months;
use usage_archiver::store::usage::{self, SubjectKey, UpsertStats};

use crate::common::*;

fn key() -> SubjectKey {
    SubjectKey {
        provider: "hostens",
        account: "main".into(),
        subject: "113".into(),
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn month(first: &str, total_mb: f64) -> MonthUsage {
    MonthUsage {
        month: date(first),
        upload_mb: Some(total_mb / 4.0),
        download_mb: Some(total_mb * 3.0 / 4.0),
        total_mb,
    }
}

fn resources(first: &str, quota_usage: f64) -> MonthResources {
    MonthResources {
        month: date(first),
        quota_usage: Some(quota_usage),
        quota_limit: Some(46_566.0),
        inode_usage: Some(74_921.0),
        inode_limit: None,
    }
}

/// Writes reported months and their resources as a sync fetched at `at` would.
fn write_months(
    store: &Store,
    at_text: &str,
    months: &[MonthUsage],
    res: &[MonthResources],
) -> (UpsertStats, UpsertStats) {
    let fetched = FetchTime(at(at_text));
    store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            let m = months::upsert_months(&tx, &key(), months, fetched)?;
            let r = months::upsert_month_resources(&tx, &key(), res, fetched)?;
            tx.commit()?;
            Ok((m, r))
        })
        .unwrap()
}

/// `(total_mb, is_final)` of the reported month.
fn reported(db: &std::path::Path, month: &str) -> (f64, bool) {
    open(db)
        .query_row(
            "SELECT total_mb, is_final FROM usage_monthly \
             WHERE source = 'reported' AND subject = '113' AND month = ?1",
            [month],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn quota(db: &std::path::Path, month: &str) -> f64 {
    open(db)
        .query_row(
            "SELECT quota_usage FROM hostens_monthly WHERE server_id = '113' AND month = ?1",
            [month],
            |r| r.get(0),
        )
        .unwrap()
}

/// A reported month re-synced with changed figures is updated (usage and resources alike);
/// the current month stays provisional until fetched after it ends; a change to a final
/// month is applied and logged in `usage_revisions` with old and new totals.
// See: issue 19
#[test]
fn reported_months_are_updated_become_final_and_revisions_are_logged() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let first = write_months(
        &store,
        "2026-10-20T10:00:00Z",
        &[month("2026-09-01", 1000.0), month("2026-10-01", 400.0)],
        &[
            resources("2026-09-01", 5960.0),
            resources("2026-10-01", 6000.0),
        ],
    );
    assert_eq!((first.0.inserted, first.1.inserted), (2, 2));
    assert_eq!(
        reported(&dir.db(), "2026-09"),
        (1000.0, true),
        "a past month"
    );
    assert_eq!(
        reported(&dir.db(), "2026-10"),
        (400.0, false),
        "the current month is provisional"
    );

    // Later the same month: October grew, its quota too; September is unchanged.
    let later = write_months(
        &store,
        "2026-10-31T23:00:00Z",
        &[month("2026-09-01", 1000.0), month("2026-10-01", 900.0)],
        &[
            resources("2026-09-01", 5960.0),
            resources("2026-10-01", 6100.0),
        ],
    );
    assert_eq!(
        (
            later.0.updated,
            later.0.unchanged,
            later.1.updated,
            later.1.unchanged
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(reported(&dir.db(), "2026-10"), (900.0, false));
    assert_eq!(quota(&dir.db(), "2026-10"), 6100.0);

    // Fetched after October ended, with the same figures: only its finality changes.
    let closed = write_months(
        &store,
        "2026-11-01T00:10:00Z",
        &[month("2026-10-01", 900.0)],
        &[resources("2026-10-01", 6100.0)],
    );
    assert_eq!((closed.0.updated, closed.1.unchanged), (1, 1));
    assert_eq!(reported(&dir.db(), "2026-10"), (900.0, true));
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_revisions"), 0);

    // The provider revises the final October: applied, and logged with both totals.
    write_months(
        &store,
        "2026-11-05T10:00:00Z",
        &[month("2026-10-01", 950.0)],
        &[resources("2026-10-01", 6100.0)],
    );
    assert_eq!(reported(&dir.db(), "2026-10"), (950.0, true));
    let revision: (String, String, f64, f64) = open(&dir.db())
        .query_row(
            "SELECT subject, period, old_total_mb, new_total_mb FROM usage_revisions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(revision, ("113".into(), "2026-10".into(), 900.0, 950.0));
}

fn days_through(first: &str, last: &str) -> Vec<DayUsage> {
    date(first)
        .iter_days()
        .take_while(|d| *d <= date(last))
        .map(|day| DayUsage {
            day,
            upload_mb: None,
            download_mb: None,
            total_mb: 2.5,
        })
        .collect()
}

/// `(month, is_final)` of every rollup month of the subject, from the view users read
/// and from the table itself.
fn rollups(db: &std::path::Path) -> Vec<(String, bool, bool)> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT m.month, m.is_final, r.is_final FROM usage_monthly m \
             JOIN subject s ON s.provider = m.provider AND s.account = m.account AND s.subject = m.subject \
             JOIN month_rollup r ON r.subject_id = s.id AND r.month = m.month \
             WHERE m.source = 'rollup' ORDER BY m.month",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn write_days(store: &Store, at_text: &str, days: &[DayUsage]) {
    store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            usage::upsert_days(&tx, &key(), days, false, FetchTime(at(at_text)))?;
            Ok(tx.commit()?)
        })
        .unwrap();
}

/// After a first sync whose answer ends today, the month holding today is provisional in
/// the rollup; so is it on the 1st of a month, when today is the month's only day.
// See: issue 19
#[test]
fn the_month_holding_today_is_provisional_in_the_rollup() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    write_days(
        &store,
        "2026-03-15T10:00:00Z",
        &days_through("2026-02-20", "2026-03-15"),
    );
    assert_eq!(
        rollups(&dir.db()),
        [
            ("2026-02".to_owned(), true, true),
            ("2026-03".to_owned(), false, false)
        ]
    );

    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    write_days(
        &store,
        "2026-04-01T00:30:00Z",
        &days_through("2026-03-25", "2026-04-01"),
    );
    assert_eq!(
        rollups(&dir.db()),
        [
            ("2026-03".to_owned(), true, true),
            ("2026-04".to_owned(), false, false)
        ],
        "on the 1st, March is closed and April provisional"
    );
    // The next day's fetch closes April 1st, and the month re-summed from the table stays
    // provisional while it holds today.
    write_days(
        &store,
        "2026-04-02T00:30:00Z",
        &days_through("2026-03-26", "2026-04-02"),
    );
    assert_eq!(
        rollups(&dir.db()),
        [
            ("2026-03".to_owned(), true, true),
            ("2026-04".to_owned(), false, false)
        ]
    );
}

/// Syncs on consecutive days, whose windows overlap, leave one covered interval and no gap,
/// however many there are.
// See: issue 19
#[tokio::test]
async fn overlapping_daily_syncs_extend_one_covered_interval() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    for day in 1..=5 {
        sync_at(&config, at(&format!("2026-03-{day:02}T12:00:00Z"))).await;
    }
    let intervals: Vec<(String, String)> = {
        let conn = open(&dir.db());
        let mut stmt = conn
            .prepare("SELECT first_day, last_day FROM subject_coverage WHERE subject = '1'")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        intervals,
        [("2026-02-23".to_owned(), "2026-03-04".to_owned())],
        "the first window (7 days back from 03-01) extended to the day before the last sync"
    );
    let store = Store::open_read_only(&dir.db()).unwrap();
    let gaps = store
        .with_conn(|c| {
            usage_archiver::store::coverage::load_gaps(
                c,
                "hydraproxy",
                "main",
                date("2026-03-06"),
                7,
            )
        })
        .unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(
        (gaps[0].recoverable.as_slice(), gaps[0].lost.len()),
        (&["2026-03-05".to_owned()][..], 0),
        "only the last day, fetched before it ended, waits for its final figure"
    );
}

/// A Basic-auth Hostens account on `server` whose server 113 has `details` and `history`.
async fn hostens_account(server: &httpmock::MockServer, details: &str, history: &str) {
    let answers = [
        ("/balance", fixture("hostens", "balance__braces_fixed.json")),
        (
            "/server",
            fixture("hostens", "server__documented_single.json"),
        ),
        ("/server/113", details.to_owned()),
        ("/server/113/history", history.to_owned()),
    ];
    for (path, body) in answers {
        server
            .mock_async(|when, then| {
                when.method("GET").path(path);
                then.status(200).body(body);
            })
            .await;
    }
}

/// `(rows_inserted, rows_updated)` of the latest run, as `sync_runs` records it.
fn last_run_rows(db: &std::path::Path) -> (i64, i64) {
    open(db)
        .query_row(
            "SELECT rows_inserted, rows_updated FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Run totals (`sync_runs` and the backfill summary) count reported months and their
/// resources as inserted, updated or unchanged, like days.
// See: issue 19
#[tokio::test]
async fn run_totals_count_month_rows() {
    let server = httpmock::MockServer::start_async().await;
    let dir = TestDir::new();
    let history = fixture("hostens", "history__with_months.json");
    let details = fixture("hostens", "server_details__documented.json");
    hostens_account(&server, &details, &history).await;
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[hostens]]\nname = \"main\"\n\
         base_url = \"{}\"\nallow_insecure_http = true\nusername = \"ops@example.com\"\npassword = \"pw\"\n",
        dir.db().display().to_string(),
        server.base_url()
    );
    let config = usage_archiver::config::parse(&text, std::path::Path::new("t.toml"))
        .unwrap()
        .config;
    // Two valid months (2026-09, 2026-10) with their resources, today's derived day and
    // the server's snapshot.
    let first = sync_at(&config, at("2026-10-20T10:00:00Z")).await;
    // The fixture's month-13 row is refused and recorded: the run is partial.
    assert_eq!(first.totals.subjects_failed, 0, "{:?}", first.errors);
    assert_eq!(last_run_rows(&dir.db()), (6, 0));
    assert_eq!(first.totals.rows_inserted, 6);

    let again = sync_at(&config, at("2026-10-20T11:00:00Z")).await;
    assert_eq!(last_run_rows(&dir.db()), (0, 0));
    assert_eq!(
        again.rows_unchanged, 5,
        "2 months, 2 resource rows and the derived day"
    );

    // October grows and its quota with it, and the server's disk use changes: three rows
    // updated (a month, its resources, the day's snapshot), the rest unchanged.
    server.reset_async().await;
    let grown = history
        .replace(r#""bw_in": 2000"#, r#""bw_in": 2600"#)
        .replace(r#""quota_usage": 6100"#, r#""quota_usage": 6200"#);
    let mut moved: serde_json::Value = serde_json::from_str(&details).unwrap();
    moved["disk_usage"] = serde_json::json!(12345);
    hostens_account(&server, &moved.to_string(), &grown).await;
    let third = sync_at(&config, at("2026-10-20T12:00:00Z")).await;
    assert_eq!(third.totals.subjects_failed, 0, "{:?}", third.errors);
    assert_eq!(last_run_rows(&dir.db()), (0, 3));
    assert_eq!(third.rows_unchanged, 3);
}

/// Coverage: a fetch whose window starts the day after the last covered day extends that
/// stretch (no second row), and a fetch that covers nothing new writes nothing at all.
// See: issue 19 (mutants of extend_coverage left every test green)
#[test]
fn adjacent_windows_merge_and_repeats_write_nothing() {
    use usage_archiver::store::coverage::extend_coverage;
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let changes = store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            extend_coverage(&tx, &key(), date("2026-02-23"), date("2026-03-01"))?;
            extend_coverage(&tx, &key(), date("2026-03-02"), date("2026-03-08"))?;
            tx.commit()?;
            let before = c.total_changes();
            let tx = usage::begin(c)?;
            extend_coverage(&tx, &key(), date("2026-03-02"), date("2026-03-08"))?;
            tx.commit()?;
            Ok(c.total_changes() - before)
        })
        .unwrap();
    assert_eq!(changes, 0, "a repeat covers nothing new and writes nothing");
    let stretches = count(&dir.db(), "SELECT count(*) FROM subject_coverage");
    assert_eq!(stretches, 1, "adjacent windows are one stretch");
    let last: String = open(&dir.db())
        .query_row("SELECT last_day FROM subject_coverage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(last, "2026-03-08");
}

/// Readings no counter can show (NaN, infinite, negative) are never stored, whatever a
/// provider let through.
// See: issue 19
#[test]
fn impossible_readings_are_never_stored() {
    use usage_archiver::model::{CounterKind, CounterReading};
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let fetched = FetchTime(at("2026-03-01T10:00:00Z"));
    for value_mb in [f64::NAN, f64::INFINITY, -1.0] {
        let readings = [CounterReading {
            kind: CounterKind::Total,
            value_mb,
            read_at: None,
            limit_mb: None,
        }];
        store
            .with_conn(|c| {
                let tx = usage::begin(c)?;
                usage_archiver::store::counters::record_readings(&tx, &key(), &readings, fetched)?;
                Ok(tx.commit()?)
            })
            .unwrap();
    }
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM counter_snapshot"), 0);
}

/// Every connection the archive opens waits for a busy writer, enforces foreign keys,
/// syncs at NORMAL in WAL and bounds the WAL.
// See: issue 19
#[test]
fn connections_are_configured() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let pragmas = store
        .with_conn(|c| {
            let get =
                |name: &str| -> i64 { c.pragma_query_value(None, name, |r| r.get(0)).unwrap() };
            Ok([
                get("busy_timeout"),
                get("foreign_keys"),
                get("synchronous"),
                get("journal_size_limit"),
            ])
        })
        .unwrap();
    assert_eq!(
        pragmas,
        [
            usage_archiver::store::BUSY_TIMEOUT.as_millis() as i64,
            1,
            1,
            // The 64 MiB docs/archive.md promises.
            67_108_864
        ]
    );
}
