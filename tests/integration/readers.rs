//! Readers beside the writer (issue 7.4): `report`, `status`, Python's sqlite3 (what
//! Datasette uses) and the `sqlite3` shell read the archive while `run` writes a large sync
//! into it. Nobody sees "database is locked", and the daemon's runs all end ok.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use usage_archiver::sim::hydraproxy::SimHydraProxy;
use usage_archiver::sim::{SimConfig, Simulator};

use crate::common::*;

/// How long the readers may wait for the daemon to get going or to finish (a deadline).
const DEADLINE: Duration = Duration::from_secs(120);

/// The reader's own words when it fails, for the assertion message.
fn ok_or_explain(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}): {stderr}",
        out.status
    );
    assert!(!stderr.contains("locked"), "{what}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sqlite3_shell() -> bool {
    Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// While `run` archives 3,000 orders × 30 days, four kinds of readers query the archive in
/// a loop: each succeeds every time, and together they see it grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_locked_archive_while_run_writes() {
    let sim = Simulator::start(SimConfig {
        hydraproxy: SimHydraProxy {
            orders: 3_000,
            history_days: 30,
            retention_days: 30,
            seed: 5,
            ended: 0,
            life: None,
            window_shrinks: None,
        },
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    let dir = TestDir::new();
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    let sock_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let db = dir.db();
    let with_shell = sqlite3_shell();
    if !with_shell {
        eprintln!("sqlite3 shell not installed: checking report, status and Python only");
    }

    tokio::task::spawn_blocking(move || {
        let mut daemon = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // READY=1 comes once the archive is migrated and the catch-up runs have started.
        wait_for(&socket, &mut daemon, "READY=1", &mut Vec::new());
        let db_arg = db.to_str().unwrap().to_owned();
        let done =
            "SELECT count(*) FROM sync_runs WHERE provider = 'hydraproxy' AND status != 'running'";
        let deadline = Instant::now() + DEADLINE;
        let mut seen = std::collections::BTreeSet::new();
        let mut rounds = 0;
        while rounds < 5 || count(&db, done) == 0 {
            assert!(
                Instant::now() < deadline,
                "the daemon's first sync never ended"
            );
            assert_running(&mut daemon, "during the readers' rounds");
            rounds += 1;
            let report = Command::new(BIN)
                .args([
                    "report", "--by", "month", "--format", "csv", "--db", &db_arg,
                ])
                .output()
                .unwrap();
            let csv = ok_or_explain("report", &report);
            assert!(csv.starts_with("period,"), "{csv}");
            let status = Command::new(BIN)
                .args(["status", "--json", "--db", &db_arg])
                .output()
                .unwrap();
            // Exit 1 (degraded: a sync running, days not yet archived) is a fine answer;
            // 2 would mean the archive could not be read.
            assert_ne!(
                status.status.code(),
                Some(2),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
            let python = Command::new("python3")
                .arg("-c")
                .arg(
                    "import sqlite3, sys\n\
                     c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                     print(c.execute('SELECT count(*) FROM usage_daily').fetchone()[0])\n\
                     print(c.execute('SELECT count(*) FROM usage_monthly').fetchone()[0])",
                )
                .arg(&db_arg)
                .output()
                .unwrap();
            let rows = ok_or_explain("python3 sqlite3", &python);
            seen.insert(rows.lines().next().unwrap_or_default().to_owned());
            if with_shell {
                let shell = Command::new("sqlite3")
                    .args(["-readonly", &db_arg, "SELECT count(*) FROM usage_daily"])
                    .output()
                    .unwrap();
                seen.insert(ok_or_explain("sqlite3 -readonly", &shell).trim().to_owned());
            }
        }
        Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap();
        assert_eq!(daemon.wait().unwrap().code(), Some(0));
        assert!(
            seen.len() >= 2,
            "the readers never overlapped the writes: {seen:?} in {rounds} rounds"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM sync_runs WHERE status IN ('failed', 'partial')"
            ),
            0,
            "a run of the writer failed"
        );
        assert!(
            count(
                &db,
                "SELECT count(*) FROM usage_daily WHERE provider = 'hydraproxy'"
            ) > 50_000
        );
    })
    .await
    .unwrap();
}
