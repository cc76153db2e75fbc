//! Rotating refresh tokens across processes and across shutdown (issue 15.1, 15.2): a
//! chain shared by the daemon, `backfill` and `check-config --online` never presents a
//! spent token, and a rotation in flight when SIGTERM arrives is stored, not dropped.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use httpmock::MockServer;
use serde_json::{Value, json};
use usage_archiver::sim::{SimConfig, Simulator, hostens};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(120);

/// The chain stored for `account` in the credential file beside `db`.
fn stored_chain(db: &std::path::Path, account: &str) -> Value {
    let text = std::fs::read_to_string(db.with_file_name("archive.db.credentials")).unwrap();
    let content: Value = serde_json::from_str(&text).unwrap();
    content["chains"][account].clone()
}

/// The daemon, two `backfill`s and two `check-config --online`s at once share one
/// token-flow account against a server that accepts only the newest refresh token and
/// whose access tokens expire (its clock moves two hours between rounds, so every process
/// meets an expired token together): many rotations, every run ok, and no spent refresh
/// token is ever presented.
// See: issue 15.1
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_token_chain() {
    let mut sim_config = SimConfig::demo();
    sim_config.hostens.strict_tokens = true;
    let sim = Simulator::start(sim_config).await.unwrap();
    let start = at("2026-11-02T00:00:00Z");
    sim.clock().set(start);
    let clock = sim.clock().clone();
    let dir = TestDir::new();
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 1\nbackoff_initial_ms = 10\n\n\
         [[hostens]]\nname = \"sim-token\"\nbase_url = \"{}/hostens/api\"\nallow_insecure_http = true\n\
         refresh_token = \"{}\"\nschedule = \"*/2 * * * * *\"\n",
        dir.db().display().to_string(),
        sim.base_url(),
        hostens::SIM_REFRESH_SEED
    );
    let cfg = dir.write("daemon.toml", &text, 0o600);
    let socket = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let db = dir.db();
    let cfg_arg = cfg.to_str().unwrap().to_owned();
    let notify = dir.path("notify.sock");
    tokio::task::spawn_blocking(move || {
        let mut daemon = Command::new(BIN)
            .args(["run", "--config", &cfg_arg])
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        wait_for(&socket, &mut daemon, "READY=1", &mut seen);
        // Rounds of two backfills and two online checks at once, while the daemon syncs
        // every 2 s.
        for round in 0..6 {
            // Every access token issued so far has expired (they last one hour).
            clock.set(start + chrono::TimeDelta::hours(2 * (round + 1)));
            let spawn = |args: &[&str]| {
                Command::new(BIN)
                    .args(args)
                    .args(["--config", &cfg_arg])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let children = [
                ("backfill", spawn(&["backfill", "--quiet"])),
                ("check-config", spawn(&["check-config", "--online"])),
                ("backfill", spawn(&["backfill", "--quiet"])),
                ("check-config", spawn(&["check-config", "--online"])),
            ];
            for (what, child) in children {
                let out = child.wait_with_output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "round {round}: {what}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        // A few more daemon runs after the others rotated under it.
        let runs_now = seen.iter().filter(|m| m.contains(": run ")).count();
        let deadline = Instant::now() + DEADLINE;
        while seen.iter().filter(|m| m.contains(": run ")).count() < runs_now + 2 {
            assert!(
                Instant::now() < deadline,
                "the daemon stopped running: {seen:?}"
            );
            let mut buf = [0u8; 4096];
            match socket.recv(&mut buf) {
                Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) => assert_running(&mut daemon, "while the others rotated"),
            }
        }
        Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap();
        assert_eq!(daemon.wait().unwrap().code(), Some(0));
    })
    .await
    .unwrap();
    let stats = sim.hostens_token_stats();
    assert_eq!(stats.spent_presented, 0, "{stats:?}");
    // One rotation per expiry (six, and the seed's first exchange): the others adopt it.
    assert!((6..=7).contains(&stats.rotations), "{stats:?}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM sync_runs WHERE status != 'ok'"),
        0,
        "every run is ok"
    );
    assert!(count(&db, "SELECT count(*) FROM sync_runs") >= 6);
    assert!(
        stored_chain(&db, "hostens/sim-token")["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("sim-hostens-refresh-")
    );
}

/// SIGTERM while `POST /token` is in flight: the daemon waits for the answer and stores
/// the new pair before it exits 0, so the rotated refresh token is not lost.
// See: issue 15.2
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_rotation_keeps_the_new_token() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let exchange = server
        .mock_async(|when, then| {
            when.method("POST")
                .path("/token")
                .json_body(json!({"refresh_token": "seed-SECRET"}));
            then.status(200)
                .delay(Duration::from_secs(3))
                .json_body(json!({"token": "access-new", "refresh": "refresh-new"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/balance");
            then.status(200)
                .body(fixture("hostens", "balance__braces_fixed.json"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/server");
            then.status(200).body("[]");
        })
        .await;
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[hostens]]\nname = \"main\"\n\
         base_url = \"{}\"\nallow_insecure_http = true\nrefresh_token = \"seed-SECRET\"\n",
        dir.db().display().to_string(),
        server.base_url()
    );
    let cfg = dir.write("daemon.toml", &text, 0o600);
    let socket = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut daemon = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", dir.path("notify.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&socket, &mut daemon, "READY=1", &mut Vec::new());
    // The catch-up run's first request needs a token: wait until POST /token is in flight.
    let deadline = Instant::now() + DEADLINE;
    while exchange.calls_async().await == 0 {
        assert_running(&mut daemon, "before it asked for a token");
        assert!(Instant::now() < deadline, "POST /token never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || daemon.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let chain = stored_chain(&dir.db(), "hostens/main");
    assert_eq!(chain["refresh_token"], "refresh-new", "{chain}");
    assert_eq!(chain["access_token"], "access-new", "{chain}");
}
