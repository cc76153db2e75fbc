//! `usage-archiver backup` (issue 17.1): consistent copies while the archive is written,
//! restored and synced, pruned with --keep, and failures that leave everything as it was.

use std::path::Path;
use std::process::{Command, Output};

use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;

use crate::common::*;

fn backup(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("backup")
        .args(args)
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .output()
        .unwrap()
}

fn integrity(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn copies(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy taken while a sync writes is sound, carries the archive's schema and its
/// credential file (the Hostens token chain); restored over a new path it passes
/// `status` and syncs every account, the token-flow one included.
#[tokio::test]
async fn a_copy_taken_while_syncing_restores_and_syncs() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let config_text = sim.daemon_toml(&dir.db());
    let config = usage_archiver::config::parse(&config_text, Path::new("t.toml"))
        .unwrap()
        .config;
    let store = Store::open(&dir.db()).unwrap();
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-03-01T10:00:00Z")).await);
    let dest = dir.path("copy.db");
    let (db, to) = (dir.db(), dest.clone());
    let copying = tokio::task::spawn_blocking(move || {
        backup(&[to.to_str().unwrap(), "--db", db.to_str().unwrap()])
    });
    // The daemon's next run writes while the copy is taken.
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-03-01T11:00:00Z")).await);
    let out = copying.await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(integrity(&dest), "ok");
    assert!(count(&dest, "SELECT count(*) FROM usage_daily") > 0);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dest), 0o640, "the archive's mode");
    let credentials = dir.path("copy.db.credentials");
    assert_eq!(
        mode(&credentials),
        0o600,
        "the token chain, the service's alone"
    );
    drop(store);

    // Restore: the copy and its credential file become an archive of their own.
    let restored = dir.path("restored.db");
    std::fs::copy(&dest, &restored).unwrap();
    std::fs::copy(&credentials, dir.path("restored.db.credentials")).unwrap();
    let status = Command::new(BIN)
        .args(["status", "--db", restored.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(
        status.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let config = usage_archiver::config::parse(&sim.daemon_toml(&restored), Path::new("t.toml"))
        .unwrap()
        .config;
    let store = Store::open(&restored).unwrap();
    assert_all_ok(&sync_all(&sim, &config, &store, at("2026-03-01T12:00:00Z")).await);
}

/// Into a directory, copies are named by UTC time; --keep removes the oldest (with their
/// credential files) and nothing else there.
#[test]
fn keep_removes_the_oldest_copies() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    let copies_dir = dir.path("copies");
    std::fs::create_dir(&copies_dir).unwrap();
    std::fs::write(copies_dir.join("notes.txt"), "mine").unwrap();
    let db = dir.db();
    for _ in 0..3 {
        let out = backup(&[
            copies_dir.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--keep",
            "2",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = copies(&copies_dir);
    let kept: Vec<&String> = names.iter().filter(|n| n.ends_with(".db")).collect();
    assert_eq!(kept.len(), 2, "{names:?}");
    assert!(names.contains(&"notes.txt".to_owned()), "{names:?}");
    let bad = backup(&[
        dir.db().to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--keep",
        "0",
    ]);
    assert_eq!(bad.status.code(), Some(2), "--keep 0 is refused");
}

/// An unwritable destination and a full disk are clear errors that leave the archive,
/// the destination's earlier copy and no temporary file behind.
#[test]
fn failures_leave_everything_as_it_was() {
    let dir = TestDir::new();
    {
        let store = Store::open(&dir.db()).unwrap();
        drop(store);
    }
    let db = dir.db();
    let blocker = dir.write("a-file", "x", 0o644);
    let out = backup(&[
        blocker.join("copy.db").to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot back up") && err.contains("a-file/copy.db"),
        "{err}"
    );

    // A full disk: the file size limit stops the copy part way (SIGXFSZ ignored, so the
    // write fails as it would on a full disk).
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS padding (x BLOB); \
             INSERT INTO padding SELECT randomblob(4096) FROM generate_series(1, 300);",
        )
        .unwrap_or_else(|_| {
            conn.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
                 INSERT INTO padding SELECT randomblob(4096) FROM n;",
            )
            .unwrap()
        });
    }
    let before = std::fs::read(&db).unwrap();
    let out_dir = dir.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let earlier = out_dir.join("earlier.db");
    std::fs::write(&earlier, b"an earlier copy").unwrap();
    let full = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 256; exec {BIN} backup {} --db {}",
            out_dir.join("earlier.db").display(),
            db.display()
        ))
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        full.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    assert_eq!(
        std::fs::read(&earlier).unwrap(),
        b"an earlier copy",
        "untouched"
    );
    assert_eq!(copies(&out_dir), ["earlier.db"], "no temporary file left");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the archive is untouched"
    );
    assert_eq!(integrity(&db), "ok");
}
