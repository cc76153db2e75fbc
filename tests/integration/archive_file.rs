//! The archive file as something users share (issue 15.7, 15.10): ours and nothing
//! else's, private to the service and its group, free of credentials, bounded, and
//! readable by readers who cannot write beside it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use usage_archiver::store::{APPLICATION_ID, LATEST_VERSION, Store, StoreError};

use crate::common::*;

/// Every migration from version 1 to 8: the archive as version 8 left it.
const MIGRATIONS_TO_8: [&str; 7] = [
    include_str!("../../src/store/migrations/0002_subject_coverage.sql"),
    include_str!("../../src/store/migrations/0003_counter_snapshot.sql"),
    include_str!("../../src/store/migrations/0004_entity_snapshot.sql"),
    include_str!("../../src/store/migrations/0005_hostens.sql"),
    include_str!("../../src/store/migrations/0006_coverage_gaps.sql"),
    include_str!("../../src/store/migrations/0007_month_rollup.sql"),
    include_str!("../../src/store/migrations/0008_subject_ids.sql"),
];

/// A version-8 archive, built the way its migrations built it.
fn version_8_archive(db: &std::path::Path) -> rusqlite::Connection {
    let conn = open(db);
    conn.execute_batch(include_str!("../fixtures/schema-v1.sql"))
        .unwrap();
    for sql in MIGRATIONS_TO_8 {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 8).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn
}

fn bytes_contain(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// Upgrading a version-8 archive moves its Hostens token chain to the credential file
/// (mode 0600) and leaves no byte of it in the archive or its WAL; runs keep their errors.
// See: issue 15.7
#[test]
fn upgrade_moves_tokens_out_of_the_archive() {
    let dir = TestDir::new();
    let conn = version_8_archive(&dir.db());
    let refresh = "refresh-V8-9f3c-SECRET";
    conn.execute(
        "INSERT INTO auth_token (provider, account, seed, refresh_token, access_token, rotated_at) \
         VALUES ('hostens', 'main', 'seed-V8-SECRET', ?1, 'access-V8-SECRET', '2026-11-01T00:00:00Z')",
        [refresh],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO sync_run (provider, account, started_at, status, error) \
         VALUES ('hostens', 'main', '2026-11-01T00:00:00Z', 'partial', 'e1');
         INSERT INTO sync_error (run_id, subject, error) VALUES (1, '113', 'e1');",
    )
    .unwrap();
    drop(conn);
    assert!(
        bytes_contain(&dir.db(), refresh)
            || bytes_contain(&dir.db().with_extension("db-wal"), refresh)
    );

    Store::open(&dir.db()).unwrap();
    let credentials = dir.path("archive.db.credentials");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    assert_eq!(stored["chains"]["hostens/main"]["refresh_token"], refresh);
    assert_eq!(stored["chains"]["hostens/main"]["seed"], "seed-V8-SECRET");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for file in [dir.db(), dir.db().with_extension("db-wal")] {
        for secret in [refresh, "access-V8-SECRET", "seed-V8-SECRET"] {
            assert!(
                !bytes_contain(&file, secret),
                "{secret} is in {}",
                file.display()
            );
        }
    }
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM sqlite_schema WHERE name = 'auth_token'"
        ),
        0
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM sync_error WHERE run_id = 1"
        ),
        1,
        "the rebuilt sync_run kept the errors that refer to it"
    );
    assert_eq!(
        count(&dir.db(), "PRAGMA application_id"),
        i64::from(APPLICATION_ID)
    );
    assert_eq!(
        count(&dir.db(), "PRAGMA user_version"),
        i64::from(LATEST_VERSION)
    );
}

/// A new archive is created without access for others, whatever the umask (here none).
// See: issue 15.7
#[test]
fn a_new_archive_is_private_whatever_the_umask() {
    let dir = TestDir::new();
    let db = dir.path("state/archive.db");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("umask 000 && exec {BIN} demo --db {}", db.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [db.clone(), dir.path("state/archive.db.credentials")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "{} is {mode:o}", file.display());
        assert!(mode <= 0o640, "{} is {mode:o}", file.display());
    }
}

/// A SQLite file that is not an archive is refused before anything touches it: another
/// program's application_id, or a user_version without an archive's tables.
// See: issue 15.10
#[test]
fn a_foreign_database_is_refused_untouched() {
    let dir = TestDir::new();
    let cases = [
        (
            "versioned.db",
            "CREATE TABLE notes (x); PRAGMA user_version = 3;",
        ),
        (
            "other-app.db",
            "CREATE TABLE t (x); PRAGMA application_id = 42; PRAGMA user_version = 9;",
        ),
        ("bare.db", "CREATE TABLE t (x);"),
    ];
    for (name, sql) in cases {
        let path = dir.path(name);
        open(&path).execute_batch(sql).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(
            matches!(Store::open(&path), Err(StoreError::Foreign { .. })),
            "{name} opened for writing"
        );
        assert!(
            matches!(
                Store::open_read_only(&path),
                Err(StoreError::Foreign { .. })
            ),
            "{name} opened for reading"
        );
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{name} was changed"
        );
        let out = Command::new(BIN)
            .args(["status", "--db", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("is a SQLite database but not a usage-archiver archive"),
            "{name}"
        );
    }
}

/// Readers who cannot write beside the archive (a group reader, the daemon stopped, no
/// `-shm` left) can still run `status` and `report`.
// See: issue 15.10
#[tokio::test]
async fn readers_without_write_access_read_a_stopped_archive() {
    let (server, dir) = hydra_server().await;
    mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":[{"date":"2026-03-01","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}]}"#).await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    assert!(
        !dir.db().with_extension("db-shm").exists(),
        "no writer has it open"
    );
    // A name the immutable URI must escape: a space, `%`, `#`, `?` and UTF-8.
    let shared = dir.path("shared 50% #1? é");
    std::fs::create_dir(&shared).unwrap();
    std::fs::copy(dir.db(), shared.join("archive.db")).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        shared.join("archive.db"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let db = shared.join("archive.db");
    // Root writes anywhere: read as nobody where we can switch, else as ourselves.
    let as_reader = |args: &[&str]| {
        let mut cmd = if running_as_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.args(args)
            .env_remove("USAGE_ARCHIVER_CONFIG")
            .current_dir("/")
            .output()
            .unwrap()
    };
    let report = as_reader(&["report", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(String::from_utf8_lossy(&report.stdout).contains("2026-03,hydraproxy,main"));
    let status = as_reader(&["status", "--db", db.to_str().unwrap()]);
    assert_ne!(
        status.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!shared.join("archive.db-shm").exists());
    // A `-wal` file beside it may hold committed rows the file lacks: no stale read, a
    // clear error instead.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(shared.join("archive.db-wal"), b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o555)).unwrap();
    let refused = as_reader(&["report", "--db", db.to_str().unwrap()]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a -wal file without its -shm"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("archive.db"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether this process runs as root (which ignores file modes), so the reader must be
/// another user.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// A reader holding an old snapshot lets the WAL grow; once it lets go, the next run's
/// truncating checkpoint takes the WAL back to nothing.
// See: issue 15.10
#[tokio::test]
async fn the_wal_shrinks_back_after_a_reader_lets_go() {
    let (server, dir) = hydra_server().await;
    let days: Vec<String> = (1..=28)
        .map(|d| format!(r#"{{"date":"2026-02-{d:02}","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}}"#))
        .collect();
    server
        .mock_async(|when, then| {
            when.method("POST").path("/api/view_usage_history/");
            then.status(200).body(format!(
                r#"{{"status":"OK","order_id":1,"usage":[{}]}}"#,
                days.join(",")
            ));
        })
        .await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    sync_at(&config, at("2026-03-01T12:00:00Z")).await;
    let wal = dir.db().with_extension("db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_size(), 0, "each run ends with a truncating checkpoint");

    // A reader holds a snapshot while runs write.
    let reader = open(&dir.db());
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM usage_daily;")
        .unwrap();
    for hour in 13..=16 {
        sync_at(&config, at(&format!("2026-03-01T{hour}:00:00Z"))).await;
    }
    assert!(wal_size() > 0, "the reader's snapshot keeps the WAL");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    sync_at(&config, at("2026-03-01T17:00:00Z")).await;
    assert_eq!(
        wal_size(),
        0,
        "the next run took the WAL back once the reader let go"
    );
}

/// A daemon that must upgrade the archive first asks systemd for more time
/// (`EXTEND_TIMEOUT_USEC`) before READY; one on a current archive does not.
// See: issue 15.10
#[test]
fn a_long_migration_extends_the_start_timeout() {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    for old in [true, false] {
        let dir = TestDir::new();
        if old {
            drop(version_8_archive(&dir.db()));
        }
        let text = format!(
            "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[hydraproxy]]\nname = \"main\"\n\
             base_url = \"http://127.0.0.1:9/api\"\nreseller_base_url = \"http://127.0.0.1:9\"\n\
             allow_insecure_http = true\ntoken = \"t\"\nschedule = \"0 0 0 1 1 *\"\n",
            dir.db().display().to_string()
        );
        let cfg = dir.write("daemon.toml", &text, 0o600);
        let socket = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("NOTIFY_SOCKET", dir.path("notify.sock"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        wait_for(&socket, &mut child, "READY=1", &mut seen);
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0));
        let extend = seen
            .iter()
            .position(|m| m.contains("EXTEND_TIMEOUT_USEC=1800000000"));
        let ready = seen.iter().position(|m| m.contains("READY=1"));
        if old {
            assert!(extend.is_some() && extend < ready, "{seen:?}");
        } else {
            assert_eq!(extend, None, "{seen:?}");
        }
    }
}
