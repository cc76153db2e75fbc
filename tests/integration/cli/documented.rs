//! What the README and docs promise on the command line: the demo, the SQL and TOML examples, the journal, usual mistakes, the man page, Datasette.

use super::*;

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
