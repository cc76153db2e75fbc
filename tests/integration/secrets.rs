//! Secrets (issue 7.5): every command, at trace level, in text and JSON logs, on success and
//! on failure, with known secret values: none appears in any output, log line or error, nor
//! anywhere in the archive (issue 15.7: the Hostens token chain lives in the service's own
//! credential file beside it), nor in the metrics file. The config-permission warning fires
//! for a world-readable file.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use usage_archiver::sim::{SimConfig, Simulator, hostens, hydraproxy, infiniteproxies, proxyshard};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(120);
/// Every refresh token the simulator issues, the seed included, starts with this.
const REFRESH: &str = "sim-hostens-refresh";

/// Credentials in the config, the customers' proxy passwords the simulator's bodies carry,
/// and the wrong credentials of the failing configs: never stored anywhere.
fn config_secrets() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        hostens::SIM_USERNAME,
        hostens::SIM_PASSWORD
    ));
    [
        hydraproxy::SIM_TOKEN,
        hydraproxy::SIM_PROXY_PASSWORD,
        infiniteproxies::SIM_API_KEY,
        hostens::SIM_PASSWORD,
        hostens::SIM_SERVICE_PASSWORD,
        hostens::SIM_CLIENT_ADDRESS,
        proxyshard::SIM_TOKEN,
        "sim-proxy-password",
        "sim-order-secret",
        "wrong-secret-7c1d",
        &basic,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Asserts no secret, issued access token or refresh token is in `text`.
fn assert_clean(what: &str, text: &str) {
    let issued = ["sim-hostens-access", REFRESH];
    for secret in config_secrets().iter().map(String::as_str).chain(issued) {
        assert!(!text.contains(secret), "{secret:?} leaked into {what}");
    }
}

/// The end of a trace-level log, for an assertion message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("TRACE")).collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs the binary at trace level and checks both streams.
fn run(cfg: &Path, args: &[&str], log_format: &str) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .args(["--log-format", log_format, "--config"])
        .arg(cfg)
        .env("RUST_LOG", "trace")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let what = format!("`{}` ({log_format} logs)", args.join(" "));
    assert_clean(
        &format!("stdout of {what}"),
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_clean(
        &format!("stderr of {what}"),
        &String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{what} panicked"
    );
    out
}

/// Runs the daemon on a new archive until its catch-up runs (every account) have ended, then
/// stops it with SIGTERM.
fn run_daemon(cfg: &Path, db: &Path, log_format: &str, socket_path: &Path) {
    let socket = UnixDatagram::bind(socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (out_path, err_path) = (
        socket_path.with_extension("stdout"),
        socket_path.with_extension("stderr"),
    );
    let mut child = Command::new(BIN)
        .args(["run", "--log-format", log_format, "--config"])
        .arg(cfg)
        .env("RUST_LOG", "trace")
        .env("NOTIFY_SOCKET", socket_path)
        // Files, not pipes: nobody reads a pipe until the end, and trace logs would fill it.
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // The catch-up runs: the daemon reports each on the notify socket as it ends.
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    let mut ended = 0;
    while ended < 5 {
        assert_running(&mut child, "before its catch-up runs ended");
        assert!(
            Instant::now() < deadline,
            "the daemon's catch-up runs never ended"
        );
        if let Ok(n) = socket.recv(&mut buf) {
            ended += String::from_utf8_lossy(&buf[..n]).matches(": run ").count();
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(count(db, "SELECT count(*) FROM sync_runs") >= 5);
    let what = format!("`run` ({log_format} logs)");
    for (stream, path) in [("stdout", out_path), ("stderr", err_path)] {
        let text = std::fs::read_to_string(path).unwrap();
        assert_clean(&format!("{stream} of {what}"), &text);
        if stream == "stderr" {
            assert!(text.contains("TRACE"), "no trace logs in {what}");
        }
    }
}

/// Every value of every table, as text.
fn archive_dump(db: &Path) -> String {
    let conn = open(db);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut dump = String::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        dump.push_str(&String::from_utf8_lossy(t));
                    }
                    other => dump.push_str(&format!("{other:?}")),
                }
                dump.push('|');
            }
            dump.push('\n');
        }
    }
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_nowhere_but_the_credential_file() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let db = dir.db();
    let metrics = dir.path("usage_archiver.prom");
    let text = sim.daemon_toml(&db).replace(
        "keep_raw = \"errors\"",
        &format!(
            "keep_raw = \"all\"\nmetrics_textfile = {:?}",
            metrics.display().to_string()
        ),
    );
    // World-readable with inline secrets: the permission warning must fire.
    let cfg = dir.write("daemon.toml", &text, 0o644);
    // The same accounts with wrong credentials, and one pointing at a closed port.
    let mut wrong = text.clone();
    for secret in [
        hydraproxy::SIM_TOKEN,
        infiniteproxies::SIM_API_KEY,
        hostens::SIM_PASSWORD,
        hostens::SIM_REFRESH_SEED,
        proxyshard::SIM_TOKEN,
    ] {
        wrong = wrong.replace(secret, "wrong-secret-7c1d");
    }
    let wrong_db = dir.path("wrong.db");
    let wrong = wrong.replace(&db.display().to_string(), &wrong_db.display().to_string());
    let wrong_cfg = dir.write("wrong.toml", &wrong, 0o600);
    let closed = text.replace(&sim.base_url(), "http://127.0.0.1:9").replace(
        &db.display().to_string(),
        &dir.path("closed.db").display().to_string(),
    );
    let closed_cfg = dir.write("closed.toml", &closed, 0o600);
    // A second archive for the daemon in JSON logs: a fresh archive makes every account
    // due. Its own simulator: two archives must not share one rotating refresh token.
    let daemon_sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let daemon_db = dir.path("daemon.db");
    let daemon_cfg = dir.write(
        "daemon-json.toml",
        &daemon_sim
            .daemon_toml(&daemon_db)
            .replace("keep_raw = \"errors\"", "keep_raw = \"all\""),
        0o600,
    );
    let (socket_text, socket_json) = (dir.path("notify-text.sock"), dir.path("notify-json.sock"));

    tokio::task::spawn_blocking(move || {
        let check = run(&cfg, &["check-config"], "text");
        assert!(check.status.success());
        let warning = String::from_utf8_lossy(&check.stderr);
        assert!(
            warning.contains("readable by every user") || warning.contains("world-readable"),
            "no permission warning: {warning}"
        );
        assert!(
            run(&cfg, &["check-config", "--online"], "json")
                .status
                .success()
        );
        // Both daemons start on empty archives, so catch-up runs every account at once.
        run_daemon(&cfg, &db, "text", &socket_text);
        run_daemon(&daemon_cfg, &daemon_db, "json", &socket_json);
        for format in ["text", "json"] {
            let backfill = run(&cfg, &["backfill"], format);
            assert_eq!(
                backfill.status.code(),
                Some(0),
                "{}",
                tail(&backfill.stderr)
            );
        }
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["report"],
            &["report", "--by", "day", "--format", "csv"],
            &["report", "--per-subject", "--format", "json"],
        ] {
            assert!(
                run(&cfg, args, "text")
                    .status
                    .code()
                    .is_some_and(|c| c <= 1)
            );
        }

        // Failures: refused credentials and an unreachable provider, in every format.
        for format in ["text", "json"] {
            for cfg in [&wrong_cfg, &closed_cfg] {
                assert_eq!(run(cfg, &["backfill"], format).status.code(), Some(1));
                assert_eq!(
                    run(cfg, &["check-config", "--online"], format)
                        .status
                        .code(),
                    Some(1)
                );
                run(cfg, &["status", "--json"], format);
            }
        }

        // The archive holds no credential; the credential file beside it (the service's
        // alone, 0600) holds the newest refresh token.
        for db in [&db, &daemon_db, &wrong_db] {
            assert_clean(&format!("archive {}", db.display()), &archive_dump(db));
        }
        let credentials = db.with_file_name("archive.db.credentials");
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
        assert!(
            stored["chains"]["hostens/sim-token"]["refresh_token"]
                .as_str()
                .unwrap()
                .starts_with(REFRESH),
            "the credential file holds the refresh token"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&credentials).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o600,
            "the credential file is the service's alone"
        );
        assert_clean(
            "metrics textfile",
            &std::fs::read_to_string(&metrics).unwrap(),
        );
        // Byte for byte, the database files hold none of the credentials the config gives,
        // nor any token the provider issued.
        let files =
            [&db, &daemon_db, &wrong_db].map(|db| [db.clone(), db.with_extension("db-wal")]);
        let issued = [REFRESH.to_owned(), "sim-hostens-access".to_owned()];
        for file in files.iter().flatten() {
            if let Ok(bytes) = std::fs::read(file) {
                let text = String::from_utf8_lossy(&bytes);
                for secret in config_secrets().into_iter().chain(issued.clone()) {
                    assert!(
                        !text.contains(&secret),
                        "{secret:?} is in {}",
                        file.display()
                    );
                }
            }
        }
    })
    .await
    .unwrap();
}
