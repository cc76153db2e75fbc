//! `usage-archiver backup DEST`: a consistent copy of the archive while the daemon runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_OK, database_path, load_optional_config};
use crate::cli::BackupArgs;
use crate::store::backup::copy_archive;
use crate::store::credentials::CredentialFile;

/// What a copy in a destination directory is called: `archive-<UTC time>.db`.
const PREFIX: &str = "archive-";
const SUFFIX: &str = ".db";

pub(super) async fn execute(args: BackupArgs) -> anyhow::Result<u8> {
    let config = load_optional_config(&args.paths)?;
    let source = database_path(&args.paths, config.as_ref());
    tokio::task::spawn_blocking(move || backup(&source, &args.dest, args.keep))
        .await
        .context("the backup task stopped")?
}

fn backup(source: &Path, dest: &Path, keep: Option<u64>) -> anyhow::Result<u8> {
    let into_dir = dest.is_dir();
    if keep.is_some() && !into_dir {
        anyhow::bail!(
            "--keep needs DEST to be a directory, and {} is not one",
            dest.display()
        );
    }
    let target = if into_dir {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        dest.join(format!("{PREFIX}{stamp}{SUFFIX}"))
    } else {
        dest.to_path_buf()
    };
    let bar = progress_bar();
    copy_archive(source, &target, &|left, all| {
        bar.set_length(all);
        bar.set_position(all.saturating_sub(left));
    })
    .with_context(|| {
        format!(
            "cannot back up {} to {}; the archive and earlier copies are untouched",
            source.display(),
            target.display()
        )
    })?;
    bar.finish_and_clear();
    let credentials = copy_credentials(source, &target)?;
    println!("Backed up {} to {}", source.display(), target.display());
    if let Some(copied) = credentials {
        println!("  with its credential file: {}", copied.display());
    }
    if let Some(keep) = keep {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        for removed in prune(dest, keep)? {
            println!("  removed the older copy {}", removed.display());
        }
    }
    Ok(EXIT_OK)
}

/// A progress bar of pages on a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("backup [{bar:30}] {pos}/{len} pages  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()).with_style(style)
}

/// Copies the archive's credential file (the Hostens token chain, which a restored
/// archive needs) beside the copy, mode 0600, replaced atomically; `None` when there is none.
fn copy_credentials(source: &Path, target: &Path) -> anyhow::Result<Option<PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let from = CredentialFile::beside(source).path().to_path_buf();
    let Ok(bytes) = std::fs::read(&from) else {
        return Ok(None);
    };
    let to = CredentialFile::beside(target).path().to_path_buf();
    let temp = crate::store::backup::temp_beside(&to);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &to));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", to.display()));
    }
    Ok(Some(to))
}

/// Removes the oldest copies in `dir` beyond the newest `keep` (with their credential
/// files); returns what it removed. Only files named like this command's copies count.
fn prune(dir: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for old in copies.into_iter().take(excess) {
        std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
        let _ = std::fs::remove_file(CredentialFile::beside(&old).path());
        removed.push(old);
    }
    Ok(removed)
}
