//! Metrics for monitoring: a Prometheus text file for node_exporter's textfile collector.
//!
//! With `[archive] metrics_textfile` set, the daemon and `backfill` rewrite
//! the file after every run, atomically (a temporary file in the same
//! directory, synced, then renamed over it), so the collector never reads
//! half a file. Every figure comes from the archive, so the file describes
//! every account the archive knows, whichever process wrote it last.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::model::ProviderKind;
use crate::store::coverage::load_gaps;
use crate::store::plan::load_observed_window;
use crate::store::query::{load_account_statuses, load_last_run};
use crate::store::{Store, StoreError};

/// One metric family: name, help text, and its samples.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

/// The metrics of every account in the archive, in the Prometheus text format.
pub fn render(conn: &Connection, now: DateTime<Utc>) -> Result<String, StoreError> {
    let mut families = [
        ("usage_archiver_last_success_timestamp_seconds", "Unix time the account's last ok or partial sync ended."),
        ("usage_archiver_last_run_timestamp_seconds", "Unix time the account's latest sync ended."),
        ("usage_archiver_last_run_duration_seconds", "How long the account's latest sync took."),
        ("usage_archiver_last_run_rows_written", "Rows inserted or updated by the account's latest sync."),
        ("usage_archiver_last_run_errors", "Errors recorded by the account's latest sync."),
        ("usage_archiver_last_run_status", "1 for the status of the account's latest sync (ok, partial, failed, interrupted, running)."),
        ("usage_archiver_recoverable_days", "Missing days the provider still keeps; the next sync fills them."),
        ("usage_archiver_lost_days", "Missing days the provider no longer keeps."),
        ("usage_archiver_final_revisions_7d", "Changes to final figures in the last 7 days (usage_revisions)."),
        ("usage_archiver_suspect_days_7d", "Final days marked implausible in the last 7 days (suspect_days)."),
    ]
    .map(|(name, help)| Family {
        name,
        help,
        samples: Vec::new(),
    });
    let epoch = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp() as f64)
    };
    let since =
        (now - chrono::TimeDelta::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let revisions = crate::store::flags::load_revisions(conn, &since)?;
    let suspects = crate::store::flags::load_suspect_days(conn, &since)?;
    for status in load_account_statuses(conn)? {
        let labels = format!(
            "provider=\"{}\",account=\"{}\"",
            escape(&status.provider),
            escape(&status.account)
        );
        let mut push = |family: usize, labels: String, value: f64| {
            families[family].samples.push((labels, value));
        };
        if let Some(t) = status.last_success_at.as_deref().and_then(epoch) {
            push(0, labels.clone(), t);
        }
        if let Some(run) = load_last_run(conn, &status.provider, &status.account)? {
            let finished = run.finished_at.as_deref().and_then(epoch);
            if let (Some(end), Some(start)) = (finished, epoch(&run.started_at)) {
                push(1, labels.clone(), end);
                push(2, labels.clone(), (end - start).max(0.0));
            }
            push(3, labels.clone(), run.rows_written as f64);
            push(4, labels.clone(), run.errors as f64);
            let status_labels = format!("{labels},status=\"{}\"", escape(&run.status));
            push(5, status_labels, 1.0);
        }
        let retention = status
            .retention_days
            .or_else(|| {
                ProviderKind::from_name(&status.provider)
                    .map(|k| crate::config::profile(k).retention_days)
            })
            .unwrap_or(1);
        let today = now.date_naive();
        let observed = load_observed_window(conn, &status.provider, &status.account, today)?;
        let window = crate::store::plan::ObservedWindow::trusted(observed, retention);
        let gaps = load_gaps(conn, &status.provider, &status.account, today, window)?;
        push(
            6,
            labels.clone(),
            gaps.iter().map(|g| g.recoverable.len()).sum::<usize>() as f64,
        );
        push(
            7,
            labels.clone(),
            gaps.iter().map(|g| g.lost.len()).sum::<usize>() as f64,
        );
        let ours = |p: &str, a: &str| p == status.provider && a == status.account;
        let revised = revisions
            .iter()
            .filter(|r| ours(&r.provider, &r.account))
            .count();
        push(8, labels.clone(), revised as f64);
        let suspect = suspects
            .iter()
            .filter(|d| ours(&d.provider, &d.account))
            .count();
        push(9, labels, suspect as f64);
    }
    let mut out = String::new();
    for f in &families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} gauge", f.name);
        for (labels, value) in &f.samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", f.name);
        }
    }
    Ok(out)
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Replaces `path` with `text` atomically: a synced temporary file renamed over it.
///
/// The temporary file is always created anew (`O_EXCL`), never opened if something is
/// already at its name: a link planted there by another user of a shared textfile
/// directory cannot redirect the write.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    write_through(&tmp, path, text)
}

/// Writes `text` to the new file `tmp` (refusing anything already there) and renames it
/// over `path`.
fn write_through(tmp: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(tmp)?;
    let result = (|| {
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Renders the archive's metrics into `path`; a failure is logged, never fatal.
pub async fn update(store: &Store, path: &Path) {
    let text = store.call(|c| render(c, Utc::now())).await;
    let result = match text {
        Ok(text) => write_atomically(path, &text).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), error = %error, "Cannot write the metrics file");
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, write_through};

    /// See: issue 15.7 (a planted link must not redirect the metrics write)
    #[test]
    fn a_planted_link_at_the_temporary_name_is_refused() {
        let dir = std::env::temp_dir().join(format!("ua-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let tmp = dir.join(".m.prom.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let err = write_through(&tmp, &dir.join("m.prom"), "metrics").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!dir.join("m.prom").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
