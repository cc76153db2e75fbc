//! The binary as users run it: exit codes, output, config discovery, secrets kept out.

use std::path::Path;
use std::process::{Command, Output};

use httpmock::MockServer;
use usage_archiver::sim::{SimConfig, Simulator};

use crate::common::*;

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

/// The demo needs nothing but the binary and prints status, a report and what to try next.
#[test]
fn demo_runs_offline() {
    let dir = TestDir::new();
    let out = run(
        &["demo", "--db", dir.db().to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in ["Backfill summary", "healthy", "total MB", "Try next"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE is_final = 0"
        ) > 0,
        "today is provisional"
    );
    // See: issue 18.7 (the demo fills every view)
    for view in [
        "usage_daily",
        "usage_monthly",
        "balance_snapshots",
        "sync_runs",
        "proxyshard_order_history",
        "hostens_monthly",
        "hostens_server_history",
        "hydraproxy_order_history",
        "hostens_invoices",
        "hostens_service_history",
    ] {
        assert!(
            count(&dir.db(), &format!("SELECT count(*) FROM {view}")) > 0,
            "{view} is empty after the demo"
        );
    }
    assert!(
        count(
            &dir.db(),
            "SELECT count(DISTINCT provider) FROM subjects WHERE label IS NOT NULL"
        ) == 3,
        "HydraProxy, Hostens and ProxyShard name their subjects"
    );
}

/// The text of README.md and every page of docs/, where the examples live.
/// Every SQL example in the README and docs/ runs against a demo archive and returns rows where it should.
#[test]
fn readme_sql_examples_run_on_the_demo_archive() {
    let dir = TestDir::new();
    let out = run(
        &["demo", "--db", dir.db().to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let readme = documentation();
    let conn =
        rusqlite::Connection::open_with_flags(dir.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let examples =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/queries.sql"))
            .unwrap();
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut ran = 0;
    let readme_blocks = readme
        .split("```sql\n")
        .skip(1)
        .filter_map(|b| b.split("```").next());
    for text in readme_blocks.chain([examples.as_str()]) {
        assert!(
            squash(&examples).contains(&squash(text)),
            "examples/queries.sql lacks a README query:\n{text}"
        );
        let statements = text.split(';').map(str::trim).filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        });
        for statement in statements {
            let mut stmt = conn
                .prepare(statement)
                .unwrap_or_else(|e| panic!("{e}: {statement}"));
            let rows = stmt.query_map([], |_| Ok(())).unwrap().count();
            let may_be_empty = ["usage_revisions", "sync_runs", "coverage_gaps"]
                .iter()
                .any(|view| statement.contains(view));
            assert!(rows > 0 || may_be_empty, "no rows from: {statement}");
            ran += 1;
        }
    }
    assert!(
        ran >= 5,
        "the README and docs/ have at least five example queries, found {ran}"
    );
}

/// Every TOML block in the README and docs/ passes check-config (secrets from the environment it names).
#[test]
fn readme_toml_snippets_pass_check_config() {
    let readme = documentation();
    let dir = TestDir::new();
    let mut found = 0;
    for (i, block) in readme.split("```toml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        let file = dir.write(&format!("readme-{i}.toml"), text, 0o600);
        let out = run(
            &["check-config", "--config", file.to_str().unwrap()],
            dir.dir.path(),
            &[("HYDRAPROXY_TOKEN", TOKEN)],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "README snippet {i} fails: {}\n{text}",
            stderr(&out)
        );
        found += 1;
    }
    assert!(found >= 1, "the README has TOML examples");
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

/// Under systemd ($JOURNAL_STREAM names stderr), log lines carry a syslog priority and no timestamp.
#[test]
fn journal_log_lines_carry_a_priority_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let dir = TestDir::new();
    let cfg = dir.write(
        "daemon.toml",
        "[[hydraproxy]]\nname = \"m\"\ntoken = \"inline-secret\"\n",
        0o644,
    );
    let log = dir.path("journal.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let status = Command::new(BIN)
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let warning = text
        .lines()
        .find(|l| l.contains("readable by every user"))
        .unwrap_or_else(|| panic!("no warning in {text:?}"));
    assert!(warning.starts_with("<4> WARN "), "{warning}");
    assert!(!warning.contains("Z "), "no timestamp: {warning}");
}

/// The usual first-day mistakes exit 2 with a message that says what to do.
#[test]
fn usual_mistakes_say_what_to_do() {
    let dir = TestDir::new();
    let empty = dir.write(
        "empty.toml",
        &format!(
            "[archive]\ndatabase = {:?}\n",
            dir.db().display().to_string()
        ),
        0o600,
    );
    for command in ["backfill", "run"] {
        let out = run(
            &[command, "--config", empty.to_str().unwrap()],
            dir.dir.path(),
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            stderr(&out).contains("no account is configured; add a [[hydraproxy]], [[infiniteproxies]], [[hostens]] or [[proxyshard]] table"),
            "{command}: {}",
            stderr(&out)
        );
    }
    let garbage = dir.write(
        "garbage.db",
        "not sqlite at all, just text that is long enough",
        0o600,
    );
    for command in ["status", "report"] {
        let out = run(
            &[command, "--db", garbage.to_str().unwrap()],
            dir.dir.path(),
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            stderr(&out).contains("cannot open archive") && stderr(&out).contains("not a database"),
            "{command}: {}",
            stderr(&out)
        );
    }
    let missing = run(
        &["status", "--db", dir.path("nope.db").to_str().unwrap()],
        dir.dir.path(),
        &[],
    );
    assert!(
        stderr(&missing).contains("`backfill` or `run` creates it"),
        "{}",
        stderr(&missing)
    );
}

/// The man page and the completion scripts are generated from the command definitions:
/// every visible command and its options are in the page, and bash accepts its script.
// See: issue 17.3
#[test]
fn man_page_and_completions_are_generated() {
    let dir = TestDir::new();
    let man = run(&["manpage"], dir.dir.path(), &[]);
    assert_eq!(man.status.code(), Some(0));
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") && page.contains(".TH usage-archiver 1"),
        "{page}"
    );
    for command in [
        "run",
        "backfill",
        "status",
        "report",
        "check-config",
        "demo",
        "backup",
    ] {
        assert!(
            page.contains(&format!(".SH \"usage-archiver {command}\"")),
            "{command} has no section"
        );
    }
    assert!(
        page.contains("keep") && page.contains("per\\-subject"),
        "options are listed"
    );
    assert!(
        !page.contains("usage-archiver manpage"),
        "hidden commands stay hidden"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell], dir.dir.path(), &[]);
        assert_eq!(script.status.code(), Some(0), "{shell}");
        assert!(stdout(&script).contains("backfill"), "{shell}");
    }
    let bash = run(&["completions", "bash"], dir.dir.path(), &[]);
    let file = dir.write("usage-archiver.bash", &stdout(&bash), 0o644);
    let checked = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(checked.success(), "bash accepts the completion script");
}

/// `datasette.yml` serves the README's queries as canned queries: a real Datasette,
/// read-only over the demo archive, answers one as JSON. Its SQL is the README's.
// See: issue 17.4
#[test]
fn datasette_serves_the_canned_queries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let metadata = std::fs::read_to_string(root.join("datasette.yml")).unwrap();
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let docs = squash(&documentation());
    let mut canned = 0;
    for block in metadata.split("sql: |-\n").skip(1) {
        let sql: String = block
            .lines()
            .take_while(|l| l.starts_with("          ") || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(docs.contains(&squash(&sql)), "not a README query:\n{sql}");
        canned += 1;
    }
    assert_eq!(
        canned, 7,
        "the README's money-and-plans queries and the month totals"
    );
    let datasette = std::env::var("DATASETTE").unwrap_or_else(|_| "datasette".to_owned());
    if Command::new(&datasette).arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED datasette_serves_the_canned_queries: no Datasette here (.ci/run installs it from PyPI)"
        );
        return;
    }
    let dir = TestDir::new();
    let db = dir.path("archive.db");
    let out = run(&["demo", "--db", db.to_str().unwrap()], dir.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&datasette)
        .arg("serve")
        .arg("--immutable")
        .arg(&db)
        .arg("--metadata")
        .arg(root.join("datasette.yml"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    };
    // Until it answers (it starts in about a second), or a minute at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        if let Some(body) = get("/archive/month_totals.json?_shape=array") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Datasette did not answer"
        );
        assert!(server.try_wait().unwrap().is_none(), "Datasette exited");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    let rows: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let rows = rows.as_array().unwrap();
    assert!(
        !rows.is_empty() && rows[0].get("total_gb").is_some(),
        "{rows:?}"
    );
}
