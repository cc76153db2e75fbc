//! The binary as users run it: exit codes, output, config discovery, secrets kept out.

use std::path::Path;
use std::process::{Command, Output};

use httpmock::MockServer;
use usage_archiver::sim::{SimConfig, Simulator};

use crate::common::*;

mod documented;

/// Runs the binary at trace level and asserts the test token appears nowhere in its output.
fn run(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "trace")
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(stream).contains(TOKEN),
            "the token leaked into {name}"
        );
    }
    out
}

async fn run_async(args: Vec<String>, cwd: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &cwd, &[])
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// check-config validates, lists accounts, and never prints the token.
#[test]
fn check_config_lists_accounts_without_secrets() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "daemon.toml",
        &format!("[[hydraproxy]]\nname = \"main\"\ntoken = \"{TOKEN}\"\n"),
        0o600,
    );
    let out = run(
        &["check-config", "--config", cfg.to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("hydraproxy/main: https://app.hydraproxy.com/api"),
        "{}",
        stdout(&out)
    );
}

/// The config is found in ./daemon.toml, or through $USAGE_ARCHIVER_CONFIG; a missing one says what to do.
#[test]
fn config_is_found_at_default_locations() {
    let dir = TestDir::new();
    let out = run(&["check-config"], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no config file found") && stderr(&out).contains("--config"),
        "{}",
        stderr(&out)
    );
    dir.write(
        "daemon.toml",
        "[[hydraproxy]]\nname = \"here\"\ntoken = \"x\"\n",
        0o600,
    );
    assert!(stdout(&run(&["check-config"], dir.dir.path(), &[])).contains("hydraproxy/here"));
    let other = dir.write(
        "other.toml",
        "[[hydraproxy]]\nname = \"env\"\ntoken = \"x\"\n",
        0o600,
    );
    let out = run(
        &["check-config"],
        dir.dir.path(),
        &[("USAGE_ARCHIVER_CONFIG", other.to_str().unwrap())],
    );
    assert!(stdout(&out).contains("hydraproxy/env"), "{}", stdout(&out));
}

/// A bad config exits 2 with the key and line.
#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "daemon.toml",
        "[[hydraproxy]]\nname = \"m\"\ntoken = \"x\"\nschedule = \"* * * * *\"\n",
        0o600,
    );
    let out = run(
        &["check-config", "--config", cfg.to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(":4: `hydraproxy.schedule`"),
        "{}",
        stderr(&out)
    );
}

/// --online sends the token from token_env or the systemd credential, and reports rejection.
#[tokio::test]
async fn check_config_online_uses_env_and_credentials() {
    let server = MockServer::start_async().await;
    let ok = server
        .mock_async(|when, then| {
            when.path("/api/get_account_info/")
                .header("authorization", format!("Token {TOKEN}"));
            then.status(200).body(fixture(
                "hydraproxy",
                "get_account_info__reseller_host.json",
            ));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/api/get_account_info/");
            then.status(403)
                .body(fixture("hydraproxy", "error__unauthorised_request.json"));
        })
        .await;
    let dir = TestDir::new();
    let base = format!(
        "base_url = \"{}/api\"\nallow_insecure_http = true\n",
        server.base_url()
    );
    let env_cfg = dir.write(
        "env.toml",
        &format!("[[hydraproxy]]\nname = \"main\"\ntoken_env = \"HP_TOKEN\"\n{base}"),
        0o644,
    );
    let out = run(
        &[
            "check-config",
            "--online",
            "--config",
            env_cfg.to_str().unwrap(),
        ],
        dir.dir.path(),
        &[("HP_TOKEN", TOKEN)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("credentials accepted"));

    let creds = dir.path("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("hydraproxy-main"), TOKEN).unwrap();
    let cred_cfg = dir.write(
        "cred.toml",
        &format!("[[hydraproxy]]\nname = \"main\"\n{base}"),
        0o644,
    );
    let out = run(
        &[
            "check-config",
            "--online",
            "--config",
            cred_cfg.to_str().unwrap(),
        ],
        dir.dir.path(),
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    ok.assert_calls_async(2).await;

    let wrong = dir.write(
        "wrong.toml",
        &format!("[[hydraproxy]]\nname = \"main\"\ntoken = \"wrong\"\n{base}"),
        0o600,
    );
    let out = run(
        &[
            "check-config",
            "--online",
            "--config",
            wrong.to_str().unwrap(),
        ],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAILED") && stdout(&out).contains("credentials rejected"),
        "{}",
        stdout(&out)
    );
}

/// backfill archives the simulator; a re-run inserts nothing; status and report read the result from --db alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_then_status_and_report() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    // Pinned, so that today's provisional figures do not grow between the two backfills.
    sim.clock().set(chrono::Utc::now());
    let dir = TestDir::new();
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    let cwd = dir.dir.path().to_path_buf();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = run_async(
        args(&["backfill", "--config", cfg.to_str().unwrap()]),
        cwd.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Backfill summary") && stdout(&out).contains("hydraproxy/sim"));
    let rows = count(&dir.db(), "SELECT count(*) FROM usage_daily");
    assert!(rows > 100, "{rows} rows");

    let again = run_async(
        args(&[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--source",
            "hydraproxy/sim",
        ]),
        cwd.clone(),
    )
    .await;
    assert_eq!(again.status.code(), Some(0));
    let line = stdout(&again)
        .lines()
        .find(|l| l.starts_with("hydraproxy/sim"))
        .unwrap()
        .to_owned();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (cols[4], cols[5]),
        ("0", "0"),
        "nothing inserted or updated: {line}"
    );

    std::fs::remove_file(&cfg).unwrap();
    let db = dir.db().display().to_string();
    let status = run_async(args(&["status", "--db", &db, "--json"]), cwd.clone()).await;
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}{}",
        stdout(&status),
        stderr(&status)
    );
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(
        accounts.len(),
        5,
        "one per simulated account (Hostens has two)"
    );
    assert!(
        accounts.iter().all(|a| a["health"] == "healthy"),
        "{accounts:?}"
    );
    let archived: i64 = accounts.iter().map(|a| a["rows"].as_i64().unwrap()).sum();
    assert_eq!(archived, rows);

    let csv = run_async(
        args(&["report", "--db", &db, "--by", "month", "--format", "csv"]),
        cwd.clone(),
    )
    .await;
    assert_eq!(csv.status.code(), Some(0), "{}", stderr(&csv));
    assert!(stdout(&csv).starts_with(
        "period,provider,account,subjects,upload_mb,download_mb,total_mb,is_final\r\n"
    ));

    let unknown = run_async(
        args(&["backfill", "--db", &db, "--config", "/nonexistent.toml"]),
        cwd,
    )
    .await;
    assert_eq!(unknown.status.code(), Some(2));
}

/// A failing source makes backfill exit 1 with the error in the summary.
#[tokio::test]
async fn backfill_exits_1_when_a_source_fails() {
    let server = MockServer::start_async().await;
    mock_no_orders(&server).await;
    mock_account_info(&server).await;
    server
        .mock_async(|when, then| {
            when.path("/api/view_usage_history/");
            then.status(200).body(
                r#"{"status":"ERROR","url":"view_usage_history/","message":"order_not_found"}"#,
            );
        })
        .await;
    let dir = TestDir::new();
    let cfg = dir.write(
        "daemon.toml",
        &hydra_toml(
            &server.base_url(),
            &dir.path("unused.db"),
            "orders = [5]",
            "",
        ),
        0o600,
    );
    let out = run(
        &[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--db",
            dir.db().to_str().unwrap(),
        ],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("subject 5: view_usage_history/: provider error: order_not_found"),
        "{}",
        stdout(&out)
    );
    assert!(
        dir.db().exists() && !dir.path("unused.db").exists(),
        "--db overrides [archive] database"
    );
}

/// status exits 2 without an archive, 1 when an account never succeeded or is stale, 0 when healthy.
#[test]
fn status_exit_codes() {
    let dir = TestDir::new();
    let db = dir.db();
    let db_arg = db.to_str().unwrap();
    let out = run(&["status", "--db", db_arg], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    usage_archiver::store::Store::open(&db).unwrap();
    let conn = open(&db);
    conn.execute_batch(
        "INSERT INTO account_state VALUES ('hydraproxy', 'main', '0 10 * * * *', 7);
         INSERT INTO sync_run (provider, account, started_at, finished_at, status, error)
         VALUES ('hydraproxy', 'main', '2020-01-01T00:00:00Z', '2020-01-01T00:01:00Z', 'failed', 'boom');",
    )
    .unwrap();
    let out = run(&["status", "--db", db_arg], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("never synced successfully") && stdout(&out).contains("boom"),
        "{}",
        stdout(&out)
    );

    conn.execute_batch("INSERT INTO sync_run (provider, account, started_at, finished_at, status) VALUES ('hydraproxy', 'main', '2020-01-02T00:00:00Z', '2020-01-02T00:01:00Z', 'ok');").unwrap();
    let out = run(&["status", "--db", db_arg], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("more than twice the schedule's interval"),
        "{}",
        stdout(&out)
    );

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    conn.execute("INSERT INTO sync_run (provider, account, started_at, finished_at, status) VALUES ('hydraproxy', 'main', ?1, ?1, 'ok')", [&now]).unwrap();
    let out = run(&["status", "--db", db_arg], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A configured account that never ran is listed as never synced, and status exits 1.
#[test]
fn status_lists_configured_accounts_that_never_ran() {
    let dir = TestDir::new();
    usage_archiver::store::Store::open(&dir.db()).unwrap();
    let cfg = dir.write(
        "daemon.toml",
        &format!(
            "[archive]\ndatabase = {:?}\n\n[[hydraproxy]]\nname = \"fresh\"\ntoken = \"{TOKEN}\"\n",
            dir.db().display().to_string()
        ),
        0o600,
    );
    let out = run(
        &["status", "--config", cfg.to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("hydraproxy/fresh") && text.contains("never synced successfully"),
        "{text}"
    );
}
