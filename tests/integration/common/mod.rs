//! Helpers every integration test uses.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use httpmock::MockServer;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use usage_archiver::config::{self, AccountConfig, Config};
use usage_archiver::http::HttpClient;
use usage_archiver::sim::Simulator;
use usage_archiver::store::Store;
use usage_archiver::sync::{self, Clock, RunReport, SyncOptions};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_usage-archiver");

/// The token every test config uses; tests assert it never shows up in output.
pub const TOKEN: &str = "tok-3f9c1e7a-SECRET";

/// A fixture from `tests/fixtures/<provider>/<name>`, as bytes.
pub fn fixture(provider: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(provider)
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A temp directory holding the archive (and anything else a test writes).
pub struct TestDir {
    pub dir: TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("archive.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file with the given mode.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

/// Config text for one HydraProxy account on `base` (both hosts), archiving into `db`.
pub fn hydra_toml(base: &str, db: &Path, extra_account: &str, extra_http: &str) -> String {
    format!(
        "[archive]\ndatabase = {db:?}\nkeep_raw = \"errors\"\n\n\
         [http]\ntimeout_secs = 5\nmax_retries = 3\nbackoff_initial_ms = 1\nbackoff_max_secs = 5\n{extra_http}\n\n\
         [[hydraproxy]]\nname = \"main\"\nbase_url = \"{base}/api\"\nreseller_base_url = \"{base}/reseller\"\n\
         allow_insecure_http = true\ntoken = \"{TOKEN}\"\nschedule = \"0 10 * * * *\"\n{extra_account}\n",
        db = db.display().to_string()
    )
}

/// A validated config for one HydraProxy account on an httpmock server.
pub fn hydra_config(
    server: &MockServer,
    db: &Path,
    extra_account: &str,
    extra_http: &str,
) -> Config {
    let text = hydra_toml(&server.base_url(), db, extra_account, extra_http);
    config::parse(&text, Path::new("test.toml"))
        .expect("test config is valid")
        .config
}

/// An httpmock HydraProxy with no listed orders and the documented account info, and a temp dir.
pub async fn hydra_server() -> (MockServer, TestDir) {
    let server = MockServer::start_async().await;
    mock_no_orders(&server).await;
    mock_account_info(&server).await;
    (server, TestDir::new())
}

/// Mocks every `get_orders_status/` status with an empty list, so discovery finds nothing.
pub async fn mock_no_orders(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.method("POST").path("/reseller/get_orders_status/");
            then.status(200).body("[]");
        })
        .await;
}

/// What a `multipart/form-data` body holds for the text field `name` (HydraProxy's
/// requests), for `body_includes`.
pub fn form_field(name: &str, value: &str) -> String {
    format!("name=\"{name}\"\r\n\r\n{value}\r\n")
}

/// Whether any archive file (db, WAL) contains `needle`.
pub fn archive_contains(db: &Path, needle: &str) -> bool {
    let wal = db.with_extension("db-wal");
    [db.to_path_buf(), wal].iter().any(|file| {
        let bytes = std::fs::read(file).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

/// Mocks every `view_usage_history/` request with HTTP 200 and `body`.
pub async fn mock_usage(server: &MockServer, body: impl Into<String>) -> httpmock::Mock<'_> {
    let body = body.into();
    server
        .mock_async(|when, then| {
            when.method("POST").path("/api/view_usage_history/");
            then.status(200).body(body);
        })
        .await
}

/// Mocks `get_account_info/` with the reseller document's example.
pub async fn mock_account_info(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.method("GET").path("/api/get_account_info/");
            then.status(200).body(fixture(
                "hydraproxy",
                "get_account_info__reseller_host.json",
            ));
        })
        .await;
}

/// Parses an RFC 3339 instant.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid instant")
        .with_timezone(&Utc)
}

/// Runs one sync of the config's first account at `now`.
pub async fn sync_at(config: &Config, now: DateTime<Utc>) -> RunReport {
    let store = Store::open(&config.archive.database).expect("archive opens");
    sync_with(config, &store, &config.accounts[0], now).await
}

/// Runs one sync of `account` into `store` at `now`, fetching everything (as `backfill`).
pub async fn sync_with(
    config: &Config,
    store: &Store,
    account: &AccountConfig,
    now: DateTime<Utc>,
) -> RunReport {
    sync_options(config, store, account, now, false).await
}

/// Runs one sync of `account` into `store` at `now` as the daemon does: by the fetch plan.
pub async fn sync_planned(
    config: &Config,
    store: &Store,
    account: &AccountConfig,
    now: DateTime<Utc>,
) -> RunReport {
    sync_options(config, store, account, now, true).await
}

async fn sync_options(
    config: &Config,
    store: &Store,
    account: &AccountConfig,
    now: DateTime<Utc>,
    plan: bool,
) -> RunReport {
    let http = HttpClient::new(&config.http).expect("client");
    let vault = sync::vault(Some(store.path()), account);
    let provider = usage_archiver::providers::build(account, &http, vault);
    let mut options = SyncOptions::new(config.archive.keep_raw);
    options.clock = Clock::fixed(now);
    options.plan = plan;
    sync::run_account(
        account,
        provider,
        store,
        &options,
        &CancellationToken::new(),
    )
    .await
    .expect("run recorded")
}

/// Syncs every account of `config` once at the simulated instant `at`.
pub async fn sync_all(
    sim: &Simulator,
    config: &Config,
    store: &Store,
    at: DateTime<Utc>,
) -> Vec<RunReport> {
    sim.clock().set(at);
    let mut reports = Vec::new();
    for account in &config.accounts {
        reports.push(sync_with(config, store, account, at).await);
    }
    reports
}

/// Every run ended ok.
pub fn assert_all_ok(reports: &[RunReport]) {
    for report in reports {
        assert_eq!(
            report.status,
            usage_archiver::store::runs::RunStatus::Ok,
            "{}: {:?}",
            report.label,
            report.errors
        );
    }
}

/// How long a test waits for a notification before failing (a deadline, not a sleep).
pub const NOTIFY_DEADLINE: Duration = Duration::from_secs(60);

/// Reads notify messages from `daemon` until one contains `needle` (or one already read
/// does). Fails at once, with the exit status, if the daemon exits before that.
pub fn wait_for(
    socket: &std::os::unix::net::UnixDatagram,
    daemon: &mut std::process::Child,
    needle: &str,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + NOTIFY_DEADLINE;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} notification; saw {seen:?}"
        );
        match socket.recv(&mut buf) {
            Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            // Nothing queued: a daemon that has exited will send nothing more.
            Err(_) => assert_running(daemon, &format!("before {needle:?}; saw {seen:?}")),
        }
    }
}

/// Fails at once if `daemon` has exited, naming its exit status and `when`.
pub fn assert_running(daemon: &mut std::process::Child, when: &str) {
    if let Some(status) = daemon.try_wait().expect("the daemon's status can be read") {
        panic!("the daemon exited ({status}) {when}");
    }
}

/// Opens the archive read-write for assertions.
pub fn open(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db).expect("archive opens")
}

/// `(day, upload, download, total, is_final)` of one archived day.
pub type DayRow = (String, Option<f64>, Option<f64>, f64, bool);

/// The rows of one subject, by day.
pub fn day_rows(db: &Path, subject: &str) -> Vec<DayRow> {
    let conn = open(db);
    let mut stmt = conn
        .prepare("SELECT day, upload_mb, download_mb, total_mb, is_final FROM usage_daily WHERE subject = ?1 ORDER BY day")
        .expect("query");
    stmt.query_map([subject], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// A single integer from a query.
pub fn count(db: &Path, sql: &str) -> i64 {
    open(db)
        .query_row(sql, [], |r| r.get(0))
        .expect("count query")
}

/// Shared handle to a config for tasks.
pub fn shared(config: Config) -> Arc<Config> {
    Arc::new(config)
}

/// The fenced code blocks of README.md in one language.
pub fn readme_blocks(lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    readme
        .split(&format!("```{lang}\n"))
        .skip(1)
        .filter_map(|block| block.split("```").next().map(str::to_owned))
        .collect()
}

/// `base` with no failure files and, unless `PROPTEST_RNG_SEED` names another, a
/// fixed seed: every run tries the same cases, so a failure repeats and CI is
/// deterministic. Set `PROPTEST_RNG_SEED` (and `PROPTEST_CASES`) to explore further.
pub fn proptest_config(base: proptest::test_runner::Config) -> proptest::test_runner::Config {
    let rng_seed = match std::env::var_os("PROPTEST_RNG_SEED") {
        Some(_) => base.rng_seed,
        None => proptest::test_runner::RngSeed::Fixed(0x5eed_2026),
    };
    proptest::test_runner::Config {
        failure_persistence: None,
        rng_seed,
        ..base
    }
}

/// The README and every page of docs/, one after the other.
pub fn documentation() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    for page in pages {
        text.push_str(&std::fs::read_to_string(page).expect("a docs page"));
    }
    text
}
