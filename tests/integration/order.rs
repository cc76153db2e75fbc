//! Counter snapshots ordered by time, not arrival (issue 22): a clock stepped back, two
//! processes committing out of order, the demo run twice and a backup restored on a
//! machine whose clock lags all give the simulator's true days; archives inflated by
//! earlier versions are repaired on upgrade.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, NaiveDate, Utc};
use usage_archiver::config::Config;
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;

use crate::common::*;

const MB: f64 = 1_048_576.0;

/// The rounding derived days are kept at (a millionth of a MB, about a byte), with room
/// for the float sum of a day's increases.
const ROUNDING_MB: f64 = 1e-5;

/// A config of the simulator's Basic-auth Hostens account and its ProxyShard account.
fn counters_config(sim: &Simulator, db: &Path) -> Config {
    let mut config = usage_archiver::config::parse(&sim.daemon_toml(db), Path::new("t.toml"))
        .unwrap()
        .config;
    config
        .accounts
        .retain(|a| matches!(a.kind.as_str(), "proxyshard") || a.label() == "hostens/sim");
    config
}

/// What a subject's counters read at `t` in the simulator: `(upload, download)` MB for a
/// Hostens server, `(None, total)` for a ProxyShard counter.
fn truth_at(
    sim: &Simulator,
    provider: &str,
    subject: &str,
    t: DateTime<Utc>,
) -> (Option<f64>, f64) {
    let config = sim.config();
    if provider == "hostens" {
        let id: u64 = subject.parse().unwrap();
        let (down, up) = (
            config.hostens.counter(id, 0, t),
            config.hostens.counter(id, 1, t),
        );
        return (Some(up), down);
    }
    let (kind, who) = subject.split_once('/').unwrap();
    let base = if kind == "premium" { 1000 } else { 0 };
    let who = match who.strip_prefix('u') {
        Some(n) => n.parse().unwrap(),
        None => 900 + base,
    };
    (None, config.proxyshard.data_spent(who, t) / MB)
}

fn increase(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// SPEC §5.7 on the simulator's own counters: day D is the increase over the snapshots
/// taken (`instants`, any order) from D's first to D+1's first, a drop counting from zero.
fn true_days(
    sim: &Simulator,
    provider: &str,
    subject: &str,
    instants: &[DateTime<Utc>],
) -> BTreeMap<NaiveDate, f64> {
    let mut sorted = instants.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut days = BTreeMap::new();
    for pair in sorted.windows(2) {
        let (a, b) = (
            truth_at(sim, provider, subject, pair[0]),
            truth_at(sim, provider, subject, pair[1]),
        );
        let up = a.0.zip(b.0).map_or(0.0, |(x, y)| increase(x, y));
        let day_of_a = pair[0].date_naive();
        *days.entry(day_of_a).or_insert(0.0) += up + increase(a.1, b.1);
    }
    // Only days closed by a snapshot of the next day are final.
    let closed: Vec<NaiveDate> = sorted.iter().map(|t| t.date_naive()).collect();
    days.retain(|d, _| closed.contains(&(*d + chrono::TimeDelta::days(1))));
    days
}

/// Every final derived day of the archive equals the simulator's truth for the snapshots
/// taken, within the rounding; returns how many days were checked.
fn assert_true_days(sim: &Simulator, db: &Path, instants: &[DateTime<Utc>]) -> usize {
    let conn = open(db);
    let mut stmt = conn
        .prepare("SELECT provider, subject, day, total_mb FROM usage_daily WHERE derived = 1 AND is_final = 1")
        .unwrap();
    let rows: Vec<(String, String, String, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (provider, subject, day, total) in &rows {
        let truth = true_days(sim, provider, subject, instants);
        let day: NaiveDate = day.parse().unwrap();
        let expected = truth.get(&day).copied().unwrap_or(f64::NAN);
        assert!(
            (total - expected).abs() < ROUNDING_MB,
            "{provider}/{subject} {day}: archived {total} MB, the simulator's truth {expected} MB"
        );
    }
    rows.len()
}

/// Backfills every account of `config` at each instant in turn (the simulator's clock with it).
async fn backfill_at(
    sim: &Simulator,
    config: &Config,
    store: &Store,
    instants: &[&str],
) -> Vec<DateTime<Utc>> {
    let mut taken = Vec::new();
    for instant in instants {
        let t = at(instant);
        assert_all_ok(&sync_all(sim, config, store, t).await);
        taken.push(t);
    }
    taken
}

/// Issue 22 (b): backfills at 01-06 10:00, 01-06 22:00, 01-07 10:00, then the clock
/// steps back to 01-07 09:00, then 01-08 10:00. Every final day is the simulator's.
// See: issue 22
#[tokio::test]
async fn a_clock_stepped_back_gives_the_true_days() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let config = counters_config(&sim, &dir.db());
    let store = Store::open(&dir.db()).unwrap();
    let instants = backfill_at(
        &sim,
        &config,
        &store,
        &[
            "2026-01-06T10:00:00Z",
            "2026-01-06T22:00:00Z",
            "2026-01-07T10:00:00Z",
            "2026-01-07T09:00:00Z",
            "2026-01-08T10:00:00Z",
        ],
    )
    .await;
    let checked = assert_true_days(&sim, &dir.db(), &instants);
    assert!(
        checked >= 2 * 15,
        "01-06 and 01-07 of 3 servers and 12 counters: {checked}"
    );
    // Three more steps back: before the first snapshot of a day, mid-day, across midnight.
    let more = backfill_at(
        &sim,
        &config,
        &store,
        &[
            "2026-01-09T00:20:00Z",
            "2026-01-08T23:55:00Z",
            "2026-01-09T16:00:00Z",
            "2026-01-09T15:00:00Z",
            "2026-01-10T00:10:00Z",
        ],
    )
    .await;
    let all: Vec<_> = instants.into_iter().chain(more).collect();
    assert!(assert_true_days(&sim, &dir.db(), &all) >= 4 * 15);
    let flagged = count(&dir.db(), "SELECT count(*) FROM suspect_days");
    assert_eq!(flagged, 0, "no day is implausible");
}

/// Two processes on one archive: one commits a fetch taken earlier than what the other
/// already committed. Both are placed by time, and the days are the simulator's.
// See: issue 22
#[tokio::test]
async fn two_processes_committing_out_of_order_give_the_true_days() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let config = counters_config(&sim, &dir.db());
    // Two connections, as the daemon's and a backfill's.
    let daemon = Store::open(&dir.db()).unwrap();
    let backfill = Store::open(&dir.db()).unwrap();
    let mut instants = backfill_at(
        &sim,
        &config,
        &daemon,
        &["2026-02-10T00:30:00Z", "2026-02-10T12:00:00Z"],
    )
    .await;
    // The backfill fetched at 00:10 and 11:00, and commits only now.
    instants.extend(
        backfill_at(
            &sim,
            &config,
            &backfill,
            &["2026-02-10T00:10:00Z", "2026-02-10T11:00:00Z"],
        )
        .await,
    );
    instants.extend(
        backfill_at(
            &sim,
            &config,
            &daemon,
            &["2026-02-11T00:30:00Z", "2026-02-12T00:30:00Z"],
        )
        .await,
    );
    instants.extend(backfill_at(&sim, &config, &backfill, &["2026-02-11T00:05:00Z"]).await);
    assert!(assert_true_days(&sim, &dir.db(), &instants) >= 2 * 15);
}

/// A backup restored on a machine whose clock lags the one that took the newest
/// snapshots: its next syncs are older than what the archive holds, and change no day
/// wrongly.
// See: issue 22
#[tokio::test]
async fn a_backup_restored_where_the_clock_lags_gives_the_true_days() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let config = counters_config(&sim, &dir.db());
    let store = Store::open(&dir.db()).unwrap();
    let mut instants = backfill_at(
        &sim,
        &config,
        &store,
        &[
            "2026-03-01T06:00:00Z",
            "2026-03-02T06:00:00Z",
            "2026-03-02T18:00:00Z",
        ],
    )
    .await;
    drop(store);
    let copy = dir.path("copy.db");
    usage_archiver::store::backup::copy_archive(&dir.db(), &copy, &|_, _| {}).unwrap();
    // The standby's clock is behind: 03-02 05:00, then it catches up.
    let restored = Store::open(&copy).unwrap();
    let mut standby = counters_config(&sim, &copy);
    standby.archive.database = copy.clone();
    instants.extend(
        backfill_at(
            &sim,
            &standby,
            &restored,
            &[
                "2026-03-02T05:00:00Z",
                "2026-03-02T12:00:00Z",
                "2026-03-03T06:00:00Z",
            ],
        )
        .await,
    );
    assert!(assert_true_days(&sim, &copy, &instants) >= 2 * 15);
}

/// `(provider, account, subject, day)`.
type DayKey = (String, String, String, String);

/// `(upload, download, total)` MB.
type Figures = (Option<f64>, Option<f64>, f64);

/// The final derived days of the archive.
fn final_derived(db: &Path) -> BTreeMap<DayKey, Figures> {
    let conn = open(db);
    let mut stmt = conn
        .prepare("SELECT provider, account, subject, day, upload_mb, download_mb, total_mb FROM usage_daily WHERE derived = 1 AND is_final = 1")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
            (r.get(4)?, r.get(5)?, r.get(6)?),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The README's promise, literally: the demo run twice at the same instant updates no
/// row, revises nothing, and `status` stays OK with the same days.
// See: issue 22
#[test]
fn the_demo_run_twice_changes_nothing() {
    let dir = TestDir::new();
    let db = dir.path("demo.db");
    let demo = || {
        let out = Command::new(BIN)
            .args([
                "demo",
                "--db",
                db.to_str().unwrap(),
                "--now",
                "2026-06-15T09:30:00Z",
            ])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    demo();
    let first = final_derived(&db);
    assert!(first.len() >= 30, "the demo derives days: {}", first.len());
    let runs_before = count(&db, "SELECT max(id) FROM sync_runs");
    let second = demo();
    assert!(second.contains("OK: 5 of 5 accounts healthy"), "{second}");
    assert_eq!(final_derived(&db), first);
    assert_eq!(count(&db, "SELECT count(*) FROM usage_revisions"), 0);
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT coalesce(sum(rows_updated + rows_inserted), 0) FROM sync_runs WHERE id > {runs_before}"
            )
        ),
        0,
        "the second run writes no row"
    );
}

/// An archive that release 7958fd4 inflated (its demo run twice) is repaired on upgrade:
/// every final derived day is back to what its first run archived, and each correction
/// is a revision with the old and the new total.
// See: issue 22
#[test]
fn an_archive_inflated_by_an_earlier_release_is_repaired_on_upgrade() {
    let dir = TestDir::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archives");
    let conn = open(&dir.db());
    conn.execute_batch(&std::fs::read_to_string(fixtures.join("demo-twice-v11.sql")).unwrap())
        .unwrap();
    drop(conn);
    let inflated = final_derived(&dir.db());
    let revisions_before = count(&dir.db(), "SELECT count(*) FROM usage_revisions");
    drop(Store::open(&dir.db()).unwrap());
    let expected: BTreeMap<_, _> =
        std::fs::read_to_string(fixtures.join("demo-twice-v11.expected.csv"))
            .unwrap()
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('|').collect();
                let num = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
                (
                    (f[0].into(), f[1].into(), f[2].into(), f[3].into()),
                    (num(f[4]), num(f[5]), num(f[6]).unwrap()),
                )
            })
            .collect();
    let repaired = final_derived(&dir.db());
    for (key, want) in &expected {
        let got = repaired
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is gone"));
        assert!(
            (got.2 - want.2).abs() < ROUNDING_MB,
            "{key:?}: {got:?}, the first run had {want:?}"
        );
    }
    let corrected: Vec<_> = expected
        .keys()
        .filter(|k| inflated[*k].2 != repaired[*k].2)
        .collect();
    assert!(
        corrected.len() >= 40,
        "most final days were inflated: {}",
        corrected.len()
    );
    let revisions = count(&dir.db(), "SELECT count(*) FROM usage_revisions") - revisions_before;
    assert_eq!(
        revisions,
        corrected.len() as i64,
        "one revision per corrected final day"
    );
    let wrong_revision = count(
        &dir.db(),
        &format!(
            "SELECT count(*) FROM (SELECT * FROM usage_revision ORDER BY id LIMIT -1 OFFSET {revisions_before}) WHERE new_total_mb >= old_total_mb"
        ),
    );
    assert_eq!(
        wrong_revision, 0,
        "every correction brings an inflated day down"
    );
}
