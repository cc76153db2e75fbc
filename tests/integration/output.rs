//! Golden outputs of `status` and `report` on a fixed archive, exit codes, CSV escaping, metrics.
//!
//! The archive is built by real syncs at fixed instants against httpmock, and
//! `status` is judged at a fixed `--now`, so every byte is reproducible. Run
//! with `UPDATE_GOLDEN=1` to rewrite `tests/golden/` after an intended change,
//! and review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use httpmock::MockServer;
use usage_archiver::config;
use usage_archiver::model::{DayUsage, FetchTime};
use usage_archiver::store::Store;
use usage_archiver::store::usage::{self, SubjectKey};

use crate::common::*;

const NOW: &str = "2022-04-26T01:00:00Z";

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .env("RUST_LOG", "warn")
        .env("TZ", "Pacific/Kiritimati")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("binary runs")
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites it with `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

/// Two HydraProxy accounts: `main` with the documented order synced twice (its days final),
/// `backup` whose every request fails. Returns the archive path.
async fn fixed_archive(dir: &TestDir) -> PathBuf {
    let server = MockServer::start_async().await;
    mock_no_orders(&server).await;
    mock_account_info(&server).await;
    mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    let base = server.base_url();
    let mut text = hydra_toml(&base, &dir.db(), "orders = [37798]", "");
    text.push_str(&format!(
        "\n[[hydraproxy]]\nname = \"backup\"\nbase_url = \"{base}/down/api\"\n\
         reseller_base_url = \"{base}/down/reseller\"\nallow_insecure_http = true\n\
         token = \"{TOKEN}\"\nschedule = \"0 10 */6 * * *\"\n"
    ));
    let config = config::parse(&text, Path::new("t.toml")).unwrap().config;
    let store = Store::open(&dir.db()).unwrap();
    for (account, when) in [
        (0, "2022-04-25T12:00:00Z"),
        (0, "2022-04-26T00:30:00Z"),
        (1, "2022-04-26T00:40:00Z"),
    ] {
        sync_with(&config, &store, &config.accounts[account], at(when)).await;
    }
    dir.db()
}

fn text(out: &Output, db: &Path) -> String {
    String::from_utf8_lossy(&out.stdout).replace(&db.display().to_string(), "<archive>")
}

#[tokio::test]
async fn status_table_and_json_are_stable_and_exit_1_when_degraded() {
    let dir = TestDir::new();
    let db = fixed_archive(&dir).await;
    let db_arg = db.display().to_string();
    let table = run(&["status", "--db", &db_arg, "--now", NOW]);
    assert_eq!(table.status.code(), Some(1), "backup never succeeded");
    golden("status.txt", &text(&table, &db));
    let json = run(&["status", "--db", &db_arg, "--now", NOW, "--json"]);
    assert_eq!(json.status.code(), Some(1));
    golden("status.json", &text(&json, &db));
}

#[tokio::test]
async fn status_of_a_healthy_archive_exits_0_and_says_ok() {
    let dir = TestDir::new();
    let db = fixed_archive(&dir).await;
    // Forget the failing account: only `main` remains, synced 30 minutes before NOW.
    open(&db)
        .execute_batch(
            "DELETE FROM sync_run WHERE account = 'backup'; DELETE FROM account_state WHERE account = 'backup';",
        )
        .unwrap();
    let out = run(&["status", "--db", &db.display().to_string(), "--now", NOW]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out, &db).starts_with("OK: 1 of 1 accounts healthy\n"),
        "{}",
        text(&out, &db)
    );
}

#[test]
fn status_of_a_missing_archive_exits_2_and_says_so() {
    let dir = TestDir::new();
    let out = run(&["status", "--db", &dir.db().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn report_formats_are_stable() {
    let dir = TestDir::new();
    let db = fixed_archive(&dir).await;
    let db_arg = db.display().to_string();
    for (name, args) in [
        ("report-day.txt", vec!["--by", "day"]),
        ("report-month.txt", vec!["--by", "month"]),
        ("report-month.csv", vec!["--by", "month", "--format", "csv"]),
        (
            "report-day-subject.csv",
            vec!["--by", "day", "--per-subject", "--format", "csv"],
        ),
        ("report-day.json", vec!["--by", "day", "--format", "json"]),
    ] {
        let mut full = vec!["report", "--db", &db_arg];
        full.extend(args);
        let out = run(&full);
        assert_eq!(out.status.code(), Some(0), "{name}");
        golden(name, &text(&out, &db));
    }
    let empty = run(&["report", "--db", &db_arg, "--provider", "hostens"]);
    assert_eq!(empty.status.code(), Some(0));
    assert_eq!(
        text(&empty, &db),
        "No usage in the archive matches these filters.\n"
    );
    let json = run(&[
        "report",
        "--db",
        &db_arg,
        "--provider",
        "hostens",
        "--format",
        "json",
    ]);
    assert_eq!(
        text(&json, &db),
        "[]\n",
        "an empty JSON report is an empty array"
    );
}

/// RFC 4180: a subject holding a comma, quotes and a line break is quoted, quotes doubled, CRLF rows.
#[tokio::test]
async fn csv_escapes_subjects() {
    let dir = TestDir::new();
    let store = Store::open(&dir.db()).unwrap();
    let key = SubjectKey {
        provider: "infiniteproxies",
        account: "main".to_owned(),
        subject: "odd, \"one\"\nx".to_owned(),
    };
    let day = DayUsage {
        day: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        upload_mb: None,
        download_mb: None,
        total_mb: 1.5,
    };
    store
        .with_conn(|c| {
            let tx = usage::begin(c)?;
            usage::upsert_days(
                &tx,
                &key,
                &[day],
                false,
                FetchTime(at("2026-03-02T00:00:00Z")),
            )?;
            Ok(tx.commit()?)
        })
        .unwrap();
    drop(store);
    let out = run(&[
        "report",
        "--db",
        &dir.db().display().to_string(),
        "--by",
        "day",
        "--per-subject",
        "--format",
        "csv",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "period,provider,account,subject,label,subjects,upload_mb,download_mb,total_mb,is_final\r\n\
         2026-03-01,infiniteproxies,main,\"odd, \"\"one\"\"\nx\",,1,,,1.5,1\r\n"
    );
}

/// `metrics_textfile` is written after a backfill, in the Prometheus text format.
#[tokio::test]
async fn backfill_writes_the_metrics_textfile() {
    let dir = TestDir::new();
    let server = MockServer::start_async().await;
    mock_no_orders(&server).await;
    mock_account_info(&server).await;
    mock_usage(
        &server,
        fixture("hydraproxy", "view_usage_history__used_comma_fixed.json"),
    )
    .await;
    let prom = dir.path("usage_archiver.prom");
    let text = hydra_toml(&server.base_url(), &dir.db(), "orders = [37798]", "").replace(
        "keep_raw = \"errors\"",
        &format!(
            "keep_raw = \"errors\"\nmetrics_textfile = {:?}",
            prom.display().to_string()
        ),
    );
    let cfg = dir.write("daemon.toml", &text, 0o600);
    let out = tokio::task::spawn_blocking(move || {
        run(&[
            "backfill",
            "--quiet",
            "--config",
            &cfg.display().to_string(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = std::fs::read_to_string(&prom).unwrap();
    let labels = "{provider=\"hydraproxy\",account=\"main\"}";
    for line in [
        "# TYPE usage_archiver_last_success_timestamp_seconds gauge".to_owned(),
        format!("usage_archiver_last_run_rows_written{labels} 3"),
        format!("usage_archiver_last_run_errors{labels} 0"),
        "usage_archiver_last_run_status{provider=\"hydraproxy\",account=\"main\",status=\"ok\"} 1"
            .to_owned(),
        format!("usage_archiver_recoverable_days{labels} 0"),
        // HydraProxy omits days without usage: 2022-04-24 is covered, not lost.
        format!("usage_archiver_lost_days{labels} 0"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    let success: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "usage_archiver_last_success_timestamp_seconds{labels} "
            ))
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(success > 1.6e9, "a Unix time: {success}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the temporary file was renamed");
}

/// What providers call their subjects is shown beside the ids: `report --per-subject`
/// (a `label` column) and `status` (the subjects missing days).
// See: issue 18.3
#[tokio::test]
async fn labels_name_subjects_in_report_and_status() {
    use usage_archiver::sim::{SimConfig, Simulator};
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    let config = usage_archiver::config::parse(&std::fs::read_to_string(&cfg).unwrap(), &cfg)
        .unwrap()
        .config;
    let store = usage_archiver::store::Store::open(&dir.db()).unwrap();
    // ProxyShard keeps no history: without a run for two days, three days have no final
    // figure (03-01 needs a snapshot of 03-02); 03-03 can still be closed today.
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-03-01T00:00:00Z")).await);
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-03-04T00:00:00Z")).await);
    drop(store);
    let db = dir.db().display().to_string();
    let report = run(&[
        "report",
        "--db",
        &db,
        "--per-subject",
        "--provider",
        "proxyshard",
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8_lossy(&report.stdout);
    assert!(
        csv.starts_with("period,provider,account,subject,label,"),
        "{csv}"
    );
    assert!(csv.contains(",sim,standart/u0,Sub 0,"), "{csv}");
    let report = run(&[
        "report",
        "--db",
        &db,
        "--per-subject",
        "--provider",
        "hydraproxy",
    ]);
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(
        table.contains("RESIDENTIAL") && table.contains("MOBILE"),
        "network types label the orders: {table}"
    );
    let status = run(&[
        "status",
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        "2026-03-04T01:00:00Z",
    ]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("Missing days, proxyshard/sim"), "{text}");
    assert!(
        text.contains("standart/u0 (Sub 0): 1/2, 2026-03-01 to 2026-03-03"),
        "{text}"
    );
    let json = run(&[
        "status",
        "--json",
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        "2026-03-04T01:00:00Z",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let gaps = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["provider"] == "proxyshard")
        .map(|a| a["gaps"].clone())
        .unwrap();
    assert!(
        gaps.as_array()
            .unwrap()
            .iter()
            .any(|g| g["subject"] == "standart/u0" && g["label"] == "Sub 0"),
        "{gaps}"
    );
}

/// `report --format html`: one self-contained page (no script, nothing fetched from
/// elsewhere) with a stacked bar per period, at most eight named series and "other",
/// and the table; names are escaped.
// See: issue 17.4
#[tokio::test]
async fn html_report_is_self_contained() {
    let (html, _, _dir) = demo_html_report().await;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script"), "no script");
    for external in ["src=", "href=", "url(", "@import", "http://", "https://"] {
        assert!(
            !html.contains(external),
            "nothing from elsewhere: {external}"
        );
    }
    assert!(html.contains("<svg id=\"chart\""));
    assert!(html.matches("class=\"bar\"").count() > 3, "bars");
    assert!(
        html.contains(">other ("),
        "the series beyond eight are summed as other"
    );
    assert!(html.contains("<table>") && html.contains("<th>label</th>"));
}

/// The demo archive's report, per subject and day, as HTML, where it was written, and
/// the directory that holds both.
async fn demo_html_report() -> (String, std::path::PathBuf, TestDir) {
    let dir = TestDir::new();
    let db = dir.db();
    let out = Command::new(BIN)
        .args(["demo", "--db", db.to_str().unwrap()])
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .current_dir(dir.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--by",
        "day",
        "--per-subject",
        "--format",
        "html",
    ]);
    assert_eq!(report.status.code(), Some(0));
    let html = String::from_utf8(report.stdout).unwrap();
    let path = dir.path("report.html");
    std::fs::write(&path, &html).unwrap();
    (html, path, dir)
}

/// The page in a real headless browser: the chart is laid out with its bars, each of a
/// real size. A probe script is added to a copy (the page itself has none) to measure
/// the laid-out elements into the DOM that Chromium dumps.
// See: issue 17.4
#[tokio::test]
async fn html_report_renders_in_a_browser() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!(
            "SKIPPED html_report_renders_in_a_browser: no Chromium here (.ci/run installs Debian's chromium)"
        );
        return;
    };
    let (html, path, _dir) = demo_html_report().await;
    let probe = "<script>addEventListener('load',()=>{const s=document.getElementById('chart').getBoundingClientRect();\
        const bars=[...document.querySelectorAll('rect.bar')].map(b=>b.getBoundingClientRect());\
        const sized=bars.filter(b=>b.width>0&&b.height>0).length;\
        document.body.setAttribute('data-probe',`svg=${Math.round(s.width)}x${Math.round(s.height)} bars=${bars.length} sized=${sized}`);});</script>";
    let probed = html.replace("</body>", &format!("{probe}</body>"));
    let probe_path = path.with_extension("probe.html");
    std::fs::write(&probe_path, probed).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe_path.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let probe = dom
        .split("data-probe=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no probe result: {}", String::from_utf8_lossy(&out.stderr)));
    let bars = html.matches("class=\"bar\"").count();
    assert!(probe.starts_with("svg=960x360"), "{probe}");
    assert!(
        probe.ends_with(&format!("bars={bars} sized={bars}")),
        "{probe}"
    );
}
