//! The daemon: catch-up at start, no overlapping runs, systemd notify, SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use usage_archiver::config;
use usage_archiver::http::HttpClient;
use usage_archiver::scheduler::Runner;
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;
use usage_archiver::sync::SyncOptions;

use crate::common::*;

/// `run` catches up at start, says READY, reports the run, pings the watchdog, and on SIGTERM says STOPPING and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_catches_up_notifies_and_stops_on_sigterm() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    let sock_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let db = dir.db();
    let log = dir.path("daemon.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
            .args([
                "run",
                "--log-format",
                "json",
                "--config",
                cfg.to_str().unwrap(),
            ])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "2000000")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        wait_for(&socket, &mut child, "READY=1", &mut seen);
        wait_for(&socket, &mut child, "hydraproxy/sim: run", &mut seen);
        wait_for(&socket, &mut child, "infiniteproxies/sim: run", &mut seen);
        wait_for(&socket, &mut child, "hostens/sim: run", &mut seen);
        wait_for(&socket, &mut child, "hostens/sim-token: run", &mut seen);
        wait_for(&socket, &mut child, "proxyshard/sim: run", &mut seen);
        wait_for(&socket, &mut child, "WATCHDOG=1", &mut seen);
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        wait_for(&socket, &mut child, "STOPPING=1", &mut seen);
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(count(&db, "SELECT count(*) FROM usage_daily") > 100);
    assert_eq!(
        count(&db, "SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        5,
        "one run per account"
    );
    // A quiet journal (issue 28.4): by default every INFO line is the product's own (its
    // message is in src/), none from a dependency (the scheduler's start-up chatter).
    let source = source_text();
    let text = std::fs::read_to_string(&log).unwrap();
    let mut info = 0;
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["level"] == "INFO" {
            let message = event["fields"]["message"].as_str().unwrap_or_default();
            assert!(
                source.contains(&format!("\"{message}\"")),
                "an INFO line not from the product: {line}"
            );
            info += 1;
        }
    }
    assert!(info >= 5, "the product's own INFO lines are kept: {text}");
}

/// Every Rust source file of the product, one after the other.
fn source_text() -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut out,
    );
    out
}

async fn runner_for(sim: &Simulator, dir: &TestDir) -> (Arc<Runner>, Store) {
    let text = sim.daemon_toml(&dir.db());
    let config = config::parse(&text, std::path::Path::new("sim.toml"))
        .unwrap()
        .config;
    let store = Store::open(&dir.db()).unwrap();
    let http = HttpClient::new(&config.http).unwrap();
    let accounts = config
        .accounts
        .iter()
        .map(|a| {
            let vault = usage_archiver::sync::vault(Some(store.path()), a);
            (a.clone(), usage_archiver::providers::build(a, &http, vault))
        })
        .collect();
    let runner = Arc::new(Runner::new(
        accounts,
        store.clone(),
        SyncOptions::new(config.archive.keep_raw),
        Box::new(|_| {}),
    ));
    (runner, store)
}

/// A tick that comes while the account's previous run is going does not start a second run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_tick_does_not_start_a_second_run() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let (runner, _store) = runner_for(&sim, &dir).await;
    assert!(runner.trigger(0, "test"));
    assert!(
        !runner.trigger(0, "test"),
        "the first run still holds the account"
    );
    runner.wait_idle().await;
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM sync_runs"), 1);
    assert!(
        runner.trigger(0, "test"),
        "free again once the run finished"
    );
    runner.wait_idle().await;
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM sync_runs"), 2);
}

/// Catch-up runs an account with no recent success, and skips one that synced within its interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_runs_only_overdue_accounts() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let (runner, _store) = runner_for(&sim, &dir).await;
    let now = chrono::Utc::now();
    assert_eq!(
        runner.catch_up(now).await.unwrap(),
        5,
        "never synced: every account runs now"
    );
    runner.wait_idle().await;
    assert_eq!(
        runner.catch_up(now).await.unwrap(),
        0,
        "synced moments ago: wait for the schedule"
    );
    let later = now + chrono::TimeDelta::hours(2);
    assert_eq!(
        runner.catch_up(later).await.unwrap(),
        4,
        "two hours later the four hourly accounts are overdue, the six-hourly one is not"
    );
    runner.wait_idle().await;
}

/// SIGTERM in the middle of a sync stops it at once, exits 0, keeps what was written, and records the run as interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_sync_stops_cleanly() {
    let (server, dir) = hydra_server().await;
    // One order answers at once; the other would take far longer than the test allows.
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/")
                .body_includes(form_field("order_id", "37798"));
            then.status(200).body(fixture(
                "hydraproxy",
                "view_usage_history__used_comma_fixed.json",
            ));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/")
                .body_includes(form_field("order_id", "1"));
            then.status(200).delay(Duration::from_secs(600)).body("{}");
        })
        .await;
    let text = hydra_toml(&server.base_url(), &dir.db(), "orders = [1, 37798]", "")
        .replace("timeout_secs = 5", "timeout_secs = 900");
    let cfg = dir.write("daemon.toml", &text, 0o600);
    let sock_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let db = dir.db();
    let (status, elapsed) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        wait_for(&socket, &mut child, "READY=1", &mut seen);
        // The fast order's rows are committed while the slow one is still in flight.
        let deadline = Instant::now() + NOTIFY_DEADLINE;
        while count(&db, "SELECT count(*) FROM usage_daily") < 3 {
            assert_running(&mut child, "before the fast order was archived");
            assert!(Instant::now() < deadline, "fast order never archived");
            // A polling interval under a deadline, not a guess at how long the work takes.
            std::thread::sleep(Duration::from_millis(10));
        }
        let stop = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        (status, stop.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        elapsed < Duration::from_secs(20),
        "stopped in {elapsed:?}, not after the slow request"
    );
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_daily"), 3);
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM sync_runs WHERE status = 'interrupted'"
        ),
        1
    );
    let check: String = open(&dir.db())
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// A daemon that dies makes the waiting test fail at once, saying so, instead of
/// waiting out the notification deadline.
// See: issue 19 (daemon tests must fail fast when the process exits)
#[test]
fn waiting_on_a_daemon_that_exited_fails_at_once() {
    let dir = TestDir::new();
    // No account: `run` refuses to start and exits 2.
    let cfg = dir.write("daemon.toml", "[archive]\ndatabase = \"a.db\"\n", 0o600);
    let socket = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_usage-archiver"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", dir.path("notify.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&socket, &mut child, "READY=1", &mut Vec::new());
    }));
    let panic = waited.expect_err("READY never comes from a daemon that refused to start");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("the daemon exited (exit status: 2)"),
        "{message}"
    );
}
