//! Crash safety (issue 7.2): a large backfill in a child process, killed with SIGKILL at
//! several points, leaves a sound archive with no half-written subject, and a re-run
//! completes it.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use usage_archiver::sim::hydraproxy::SimHydraProxy;
use usage_archiver::sim::{SimConfig, Simulator};

use crate::common::*;

const NOW: &str = "2026-11-20T12:00:00Z";
/// How long a test waits for the child to get somewhere (a deadline, not a sleep).
const DEADLINE: Duration = Duration::from_secs(120);

/// Every archived day row of every subject, values and finality included.
fn rows_by_subject(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT subject, day, upload_mb, download_mb, total_mb, is_final \
             FROM usage_daily ORDER BY subject, day",
        )
        .unwrap();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                format!(
                    "{}|{:?}|{:?}|{}|{}",
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, bool>(5)?
                ),
            ))
        })
        .unwrap();
    for row in rows {
        let (subject, text) = row.unwrap();
        map.entry(subject).or_default().push(text);
    }
    map
}

/// Day rows archived so far, read the way a user's `sqlite3 -readonly` would; 0 while the
/// child has not created the archive yet.
fn archived_rows(db: &Path) -> usize {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM usage_daily", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map_or(0, |n| n as usize)
}

fn backfill(cfg: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "backfill",
        "--quiet",
        "--source",
        "hydraproxy",
        "--now",
        NOW,
        "--config",
    ])
    .arg(cfg)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

/// A backfill of 3,000 orders × 30 days is killed with SIGKILL three times, at growing
/// row counts, each run resuming the last one's archive. After every kill: `PRAGMA
/// integrity_check` is ok, every archived subject has exactly the rows a complete backfill
/// gives it (one response, one transaction: never half of it), and the killed run stays
/// on record as `running`. A last run completes the archive to the same rows as an
/// uninterrupted backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_backfill_leaves_whole_subjects_and_a_rerun_completes() {
    let sim = Simulator::start(SimConfig {
        hydraproxy: SimHydraProxy {
            orders: 3_000,
            history_days: 30,
            retention_days: 30,
            seed: 11,
            ended: 0,
            life: None,
            window_shrinks: None,
        },
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    sim.clock().set(at(NOW));
    let (reference_dir, dir) = (TestDir::new(), TestDir::new());
    let reference_cfg =
        reference_dir.write("daemon.toml", &sim.daemon_toml(&reference_dir.db()), 0o600);
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    let db = dir.db();
    let reference_db = reference_dir.db();

    tokio::task::spawn_blocking(move || {
        // The archive an uninterrupted backfill writes.
        assert!(backfill(&reference_cfg).status().unwrap().success());
        let reference = rows_by_subject(&reference_db);
        let total: usize = reference.values().map(Vec::len).sum();
        assert!(total > 50_000, "reference backfill archived {total} rows");

        for (kill, threshold) in [1, total / 3, 2 * total / 3].into_iter().enumerate() {
            let mut child = backfill(&cfg).spawn().unwrap();
            let deadline = Instant::now() + DEADLINE;
            while archived_rows(&db) < threshold {
                assert!(
                    Instant::now() < deadline,
                    "kill {kill}: never reached {threshold} rows"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "kill {kill}: backfill ended before the kill"
                );
                // A polling interval under a deadline, not a guess at how long the work takes.
                std::thread::sleep(Duration::from_millis(2));
            }
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(9), "kill {kill}: {status:?}");

            let check: String = open(&db)
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "kill {kill}");
            let archived = rows_by_subject(&db);
            let rows: usize = archived.values().map(Vec::len).sum();
            assert!(
                rows >= threshold && rows < total,
                "kill {kill}: {rows} of {total} rows"
            );
            for (subject, rows) in &archived {
                assert_eq!(
                    Some(rows),
                    reference.get(subject),
                    "kill {kill}: subject {subject} is partial"
                );
            }
            assert_eq!(
                count(
                    &db,
                    "SELECT count(*) FROM sync_runs WHERE status = 'running'"
                ),
                1,
                "the killed run stays on record as never finished"
            );
            // See: issue 15.8 (a run a crash left running is marked at the next start)
            assert_eq!(
                count(
                    &db,
                    "SELECT count(*) FROM sync_runs WHERE status = 'crashed'"
                ),
                kill as i64,
                "the runs killed before were marked crashed when the next backfill started"
            );
        }

        let out = backfill(&cfg).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("marked crashed"),
            "the run left unfinished is named in the log"
        );
        assert_eq!(rows_by_subject(&db), reference);
        assert_eq!(
            count(&db, "SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
            1
        );
        let again = backfill(&cfg).stderr(Stdio::piped()).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&again.stderr).contains("marked crashed"),
            "nothing to mark after a clean run"
        );
    })
    .await
    .unwrap();
}
