//! One module per subcommand; the only code that prints to stdout.
//!
//! Each `execute` returns the process exit code, or an error that `main`
//! prints and maps to [`EXIT_ERROR`].
#![allow(clippy::print_stdout)]

mod backfill;
mod backup;
mod chart;
mod check_config;
mod demo;
mod report;
mod run;
mod status;

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{Command, ConfigArgs};
use crate::config::{self, Config};

/// Everything worked / the archive is healthy.
pub const EXIT_OK: u8 = 0;
/// Some source failed, or `status` found the archive degraded.
pub const EXIT_DEGRADED: u8 = 1;
/// The command could not do its job (bad config, unreadable archive, …).
pub const EXIT_ERROR: u8 = 2;

/// Runs a subcommand on a fresh multi-threaded tokio runtime.
pub fn dispatch(command: Command) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Run(args) => run::execute(args).await,
            Command::Backfill(args) => backfill::execute(args).await,
            Command::Status(args) => status::execute(args).await,
            Command::Report(args) => report::execute(args).await,
            Command::CheckConfig(args) => check_config::execute(args).await,
            Command::Demo(args) => demo::execute(args).await,
            Command::Backup(args) => backup::execute(args).await,
            Command::Manpage => manpage(),
            Command::Completions { shell } => completions(shell),
        }
    })
}

/// `manpage`: the man page of every command, generated from the clap definitions.
fn manpage() -> anyhow::Result<u8> {
    use clap::CommandFactory;
    use std::io::Write;
    let command = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context("cannot render the man page")?;
    // A section per command, so `man usage-archiver` documents each one's options.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone());
        writeln!(out, ".SH \"usage-archiver {}\"", sub.get_name())
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                if let Some(about) = sub.get_about() {
                    writeln!(out, "{about}")?;
                }
                page.render_synopsis_section(&mut out)?;
                page.render_options_section(&mut out)?;
                Ok(())
            })
            .context("cannot render the man page")?;
    }
    std::io::stdout()
        .write_all(&out)
        .context("cannot write the man page")?;
    Ok(EXIT_OK)
}

/// `completions SHELL`: the shell's completion script.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(
        shell,
        &mut command,
        "usage-archiver",
        &mut std::io::stdout(),
    );
    Ok(EXIT_OK)
}

/// Loads the config from `--config` or the default locations, applies `--db`, logs warnings.
pub(crate) fn load_config(paths: &ConfigArgs) -> anyhow::Result<Config> {
    let path = config::locate(paths.config.as_deref())?;
    let mut config = config::load(&path)?;
    if let Some(db) = &paths.db {
        config.archive.database = db.clone();
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The config when one can be found; `None` only when `--db` is given and no file exists.
pub(crate) fn load_optional_config(paths: &ConfigArgs) -> anyhow::Result<Option<Config>> {
    match (config::locate(paths.config.as_deref()), &paths.db) {
        (Err(config::ConfigError::NotFound { .. }), Some(_)) => Ok(None),
        _ => load_config(paths).map(Some),
    }
}

/// The archive path: `--db`, else the config's `[archive] database`.
pub(crate) fn database_path(paths: &ConfigArgs, config: Option<&Config>) -> PathBuf {
    paths
        .db
        .clone()
        .or_else(|| config.map(|c| c.archive.database.clone()))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATABASE))
}

/// `1234.5` as `1,234.50`.
pub(crate) fn format_mb(mb: f64) -> String {
    let fixed = format!("{:.2}", mb.abs());
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if mb < 0.0 { "-" } else { "" })
}

/// Prints rows as aligned columns, the first row being the header.
pub(crate) fn print_table(rows: &[Vec<String>]) {
    print!("{}", render_columns(rows));
}

/// Rows as columns, the first row being the header; numeric columns are right-aligned.
pub(crate) fn render_columns(rows: &[Vec<String>]) -> String {
    // Whatever the archive holds, a terminal gets no control character to act on.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| crate::redact::escape_control(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    // A column is numeric when every body cell is a number, "-" or empty.
    let numeric: Vec<bool> = (0..widths.len())
        .map(|i| {
            rows.iter()
                .skip(1)
                .filter_map(|r| r.get(i))
                .any(|c| !c.is_empty() && c != "-")
                && rows.iter().skip(1).filter_map(|r| r.get(i)).all(|c| {
                    c.is_empty()
                        || c == "-"
                        || c.chars()
                            .all(|ch| ch.is_ascii_digit() || ",./-".contains(ch))
                })
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, w), right)| {
                if *right {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_mb;

    #[test]
    fn megabytes_are_grouped() {
        assert_eq!(format_mb(0.0), "0.00");
        assert_eq!(format_mb(1234.5), "1,234.50");
        assert_eq!(format_mb(1_234_567.891), "1,234,567.89");
        assert_eq!(format_mb(-12.0), "-12.00");
    }
}
