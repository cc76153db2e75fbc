//! `usage-archiver backup DEST`: a consistent copy of the archive while the daemon runs.
//!
//! The work is the store's (`store::backup`); this prints what it made.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_OK, database_path, load_optional_config};
use crate::cli::BackupArgs;
use crate::store::backup::back_up;

pub(super) async fn execute(args: BackupArgs) -> anyhow::Result<u8> {
    let config = load_optional_config(&args.paths)?;
    let source = database_path(&args.paths, config.as_ref());
    tokio::task::spawn_blocking(move || backup(&source, &args.dest, args.keep))
        .await
        .context("the backup task stopped")?
}

fn backup(source: &Path, dest: &Path, keep: Option<u64>) -> anyhow::Result<u8> {
    let bar = progress_bar();
    let keep = keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
    let copied = back_up(source, dest, keep, chrono::Utc::now(), &|left, all| {
        bar.set_length(all);
        bar.set_position(all.saturating_sub(left));
    })
    .with_context(|| {
        format!(
            "cannot back up {} to {}; the archive and earlier copies are untouched",
            source.display(),
            dest.display()
        )
    })?;
    bar.finish_and_clear();
    println!(
        "Backed up {} to {}",
        source.display(),
        copied.archive.display()
    );
    if let Some(credentials) = &copied.credentials {
        println!("  with its credential file: {}", credentials.display());
    }
    for removed in &copied.removed {
        println!("  removed the older copy {}", removed.display());
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
