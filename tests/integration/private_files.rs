//! Backups that keep what they made, and files of the service that follow no links
//! (issue 29.1-29.4): `--keep` prunes only its own regular copies by the time in their
//! names and never the copy just made; a failed backup deletes nothing it did not
//! create and never leaves a copy without its credential file; the credential file and
//! its lock are never reached through a link nor taken from another user; directories
//! are created 0750 and loose ones are warned about.

use std::os::unix::fs::{PermissionsExt, symlink};
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

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An archive with a Hostens token-flow account synced once, so it has a credential file.
async fn archive_with_credentials(dir: &TestDir) -> Simulator {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let config = usage_archiver::config::parse(&sim.daemon_toml(&dir.db()), Path::new("t.toml"))
        .unwrap()
        .config;
    let store = Store::open(&dir.db()).unwrap();
    let token = config
        .accounts
        .iter()
        .find(|a| a.label() == "hostens/sim-token")
        .unwrap();
    assert_all_ok(&[sync_with(&config, &store, token, at("2026-03-01T10:00:00Z")).await]);
    assert!(dir.path("archive.db.credentials").exists());
    sim
}

/// `--keep` counts only regular files named exactly `archive-<stamp>.db`, orders them by
/// the time in the name, and never removes the copy just made: a user's
/// `archive-manual-before-upgrade.db`, `archive-zz.db` and `archive-0-my-notes.db`, a link
/// named like a copy (and what it points to) all stay; a copy stamped in the future
/// (the clock stepped back) counts as the newest; pruned copies take their credential
/// files along.
// See: issue 29.1
#[test]
fn keep_prunes_only_its_own_copies_by_their_time() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    let dest = dir.path("copies");
    std::fs::create_dir(&dest).unwrap();
    let user_files = [
        "archive-manual-before-upgrade.db",
        "archive-zz.db",
        "archive-0-my-notes.db",
        "archive-20200101T000000Z.db",
    ];
    for name in user_files {
        std::fs::write(dest.join(name), "the user's").unwrap();
    }
    for stamp in [
        "20200101T000000.000",
        "20210101T000000.000",
        "29991231T000000.000",
    ] {
        std::fs::write(dest.join(format!("archive-{stamp}Z.db")), "an old copy").unwrap();
        std::fs::write(dest.join(format!("archive-{stamp}Z.db.credentials")), "{}").unwrap();
    }
    let elsewhere = dir.path("precious.db");
    std::fs::write(&elsewhere, "not a copy").unwrap();
    symlink(&elsewhere, dest.join("archive-19990101T000000.000Z.db")).unwrap();

    let out = backup(&[
        dest.to_str().unwrap(),
        "--db",
        dir.db().to_str().unwrap(),
        "--keep",
        "2",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = names(&dest);
    let made: Vec<&String> = after
        .iter()
        .filter(|n| n.starts_with("archive-2026") || n.starts_with("archive-2027"))
        .collect();
    assert_eq!(made.len(), 1, "the new copy is kept: {after:?}");
    for name in user_files {
        assert!(
            after.iter().any(|n| n == name),
            "{name} is the user's: {after:?}"
        );
    }
    assert!(
        after.iter().any(|n| n == "archive-29991231T000000.000Z.db"),
        "the newest by time: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|n| n == "archive-29991231T000000.000Z.db.credentials")
    );
    for gone in [
        "archive-20200101T000000.000Z.db",
        "archive-20210101T000000.000Z.db",
        "archive-20210101T000000.000Z.db.credentials",
    ] {
        assert!(!after.iter().any(|n| n == gone), "{gone} pruned: {after:?}");
    }
    assert!(
        dest.join("archive-19990101T000000.000Z.db").is_symlink(),
        "a link is not pruned"
    );
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "not a copy");

    // --keep 1 keeps the copy just made, even beside a copy stamped later.
    let out = backup(&[
        dest.to_str().unwrap(),
        "--db",
        dir.db().to_str().unwrap(),
        "--keep",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // This command's copies: `archive-YYYYMMDDTHHMMSS.mmmZ.db`, the link aside.
    let own: Vec<String> = names(&dest)
        .into_iter()
        .filter(|n| n.len() == "archive-20261203T192501.123Z.db".len() && n.ends_with("Z.db"))
        .filter(|n| !dest.join(n).is_symlink())
        .collect();
    assert!(
        !own[0].starts_with("archive-2999"),
        "the copy just made stays: {own:?}"
    );
}

/// `--keep` into a directory that does not exist yet creates it, mode 0750.
// See: issue 28.6
#[test]
fn keep_creates_a_missing_destination_directory() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    let dest = dir.path("new/backups");
    let out = backup(&[
        dest.to_str().unwrap(),
        "--db",
        dir.db().to_str().unwrap(),
        "--keep",
        "3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o750, 0, "{mode:o}");
    assert_eq!(names(&dest).len(), 1);
}

/// A failed backup deletes nothing it did not create: files planted beside the
/// destination under every name an earlier version used (`<dest>.tmp-<pid>`) stay, and the
/// failure leaves no file of its own.
// See: issue 29.2
#[test]
fn a_failed_backup_deletes_nothing_it_did_not_create() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    // Padding, so that a file size limit stops the copy part way.
    open(&dir.db())
        .execute_batch(
            "CREATE TABLE padding (x BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
             SELECT i + 1 FROM n WHERE i < 300) INSERT INTO padding SELECT randomblob(4096) FROM n;",
        )
        .unwrap();
    let out_dir = dir.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    // What a guess at the temporary name would plant: every pid the shell may get.
    let planted: Vec<String> = (0..50)
        .map(|i| format!("copy.db.tmp-{}", std::process::id() + i))
        .collect();
    for name in &planted {
        std::fs::write(out_dir.join(name), "planted").unwrap();
    }
    let before = names(&out_dir);
    let full = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 256; exec {BIN} backup {} --db {}",
            out_dir.join("copy.db").display(),
            dir.db().display()
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
        names(&out_dir),
        before,
        "only what the backup created is gone"
    );
}

/// A credential file that cannot be copied (a link, or not a credential file) fails the
/// backup whole: no copy of the archive is left without it, and a link is never followed.
// See: issue 29.2, 29.3
#[tokio::test]
async fn a_backup_never_leaves_a_copy_without_its_credential_file() {
    let dir = TestDir::new();
    let _sim = archive_with_credentials(&dir).await;
    let credentials = dir.path("archive.db.credentials");
    let real = std::fs::read(&credentials).unwrap();

    // A link in its place, to a file of anyone's: refused, and not copied.
    let secret = dir.write("someone-elses-secret", "root:x:0:0", 0o600);
    std::fs::remove_file(&credentials).unwrap();
    symlink(&secret, &credentials).unwrap();
    let dest = dir.path("copy.db");
    let out = backup(&[dest.to_str().unwrap(), "--db", dir.db().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to follow the symbolic link")
            && err.contains("archive.db.credentials"),
        "{err}"
    );
    assert!(!dest.exists() && !dir.path("copy.db.credentials").exists());

    // Not a credential file: refused too.
    std::fs::remove_file(&credentials).unwrap();
    std::fs::write(&credentials, "not json").unwrap();
    let out = backup(&[dest.to_str().unwrap(), "--db", dir.db().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a credential file"), "{err}");
    assert!(!dest.exists() && !dir.path("copy.db.credentials").exists());

    // The real one: copied beside the copy.
    std::fs::write(&credentials, &real).unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = backup(&[dest.to_str().unwrap(), "--db", dir.db().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path("copy.db.credentials")).unwrap(),
        real
    );
}

/// The credential lock is never reached through a link: a run of a token-flow account
/// fails with an error naming the link, and nothing is created where it points; a lock
/// of another user is refused too (checked where the tests run as root).
// See: issue 29.3
#[tokio::test]
async fn the_credential_lock_follows_no_link() {
    let dir = TestDir::new();
    let sim = archive_with_credentials(&dir).await;
    let config = usage_archiver::config::parse(&sim.daemon_toml(&dir.db()), Path::new("t.toml"))
        .unwrap()
        .config;
    let token = config
        .accounts
        .iter()
        .find(|a| a.label() == "hostens/sim-token")
        .unwrap();
    let lock = dir.path("archive.db.credentials.lock");
    let target = dir.path("created-through-the-link");
    std::fs::remove_file(&lock).unwrap();
    symlink(&target, &lock).unwrap();
    // An hour later the access token has expired: the run must rotate, under the lock.
    let store = Store::open(&dir.db()).unwrap();
    let report = sync_with(&config, &store, token, at("2026-03-01T12:00:00Z")).await;
    let errors = report.errors.join("; ");
    assert!(
        errors.contains("refusing to follow the symbolic link")
            && errors.contains("credentials.lock"),
        "{errors}"
    );
    assert!(!target.exists(), "nothing created through the link");

    if rustix::process::geteuid().is_root() {
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, "").unwrap();
        std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).unwrap();
        let report = sync_with(&config, &store, token, at("2026-03-01T14:00:00Z")).await;
        let errors = report.errors.join("; ");
        assert!(errors.contains("belongs to uid 65534"), "{errors}");
        // Root running a command for the service: a lock of the archive's owner is the
        // service's own.
        std::os::unix::fs::chown(dir.db(), Some(65534), Some(65534)).unwrap();
        let report = sync_with(&config, &store, token, at("2026-03-01T16:00:00Z")).await;
        assert!(
            !report.errors.join("; ").contains("belongs to uid"),
            "{:?}",
            report.errors
        );
    } else {
        eprintln!("skipped: a lock of another user needs root to plant");
    }
}

/// Under umask 000 the archive's missing parent directories are created 0750.
// See: issue 29.4
#[test]
fn archive_directories_are_created_private_whatever_the_umask() {
    let dir = TestDir::new();
    let db = dir.path("var/lib/usage-archiver/archive.db");
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
    for d in ["var", "var/lib", "var/lib/usage-archiver"] {
        let mode = std::fs::metadata(dir.path(d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750, "{d} is {mode:o}");
    }
}

/// `check-config` warns when the directory of the config, of a `*_file` secret or of the
/// archive is writable by its group or others without the sticky bit, and not otherwise.
// See: issue 29.4
#[test]
fn loose_directories_are_warned_about() {
    let dir = TestDir::new();
    let loose = dir.path("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
    let token = loose.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let db = loose.join("archive.db");
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[[hydraproxy]]\nname = \"main\"\ntoken_file = {:?}\n",
        db.display().to_string(),
        token.display().to_string()
    );
    let config = loose.join("daemon.toml");
    std::fs::write(&config, &text).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for what in ["the config", "the archive", "the secret file"] {
        assert!(
            said.contains(&format!("the directory of {what}")),
            "{what}: {said}"
        );
    }
    assert!(!said.contains(TOKEN));
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains("the directory of"), "sticky: {said}");
}

/// A copy named without a directory goes beside where the command runs.
// See: issue 29.2
#[test]
fn a_copy_named_without_a_directory_lands_in_the_working_directory() {
    let dir = TestDir::new();
    drop(Store::open(&dir.db()).unwrap());
    let out = Command::new(BIN)
        .args(["backup", "copy.db", "--db", dir.db().to_str().unwrap()])
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .current_dir(dir.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path("copy.db").is_file());
}
