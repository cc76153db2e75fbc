//! Command-line definitions (clap derive). Parsing only; `commands` executes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::model::Period;
use crate::telemetry::LogFormat;

/// Keeps a permanent SQLite archive of provider usage history.
#[derive(Debug, Parser)]
#[command(name = "usage-archiver", version, about, long_about = None)]
pub struct Cli {
    /// Log line format on stderr (level from RUST_LOG; default info, dependencies warn).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of SPEC §2.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: sync every account on its UTC schedule until SIGTERM (or, with
    /// --once, one scheduled pass).
    #[command(
        after_help = "Examples:\n  usage-archiver run --config /etc/usage-archiver/daemon.toml\n  usage-archiver run --once --source hydraproxy   # from a systemd timer or cron"
    )]
    Run(RunArgs),
    /// Fetch everything every selected account exposes now, then exit.
    #[command(after_help = "Example:\n  usage-archiver backfill --source hydraproxy/main")]
    Backfill(BackfillArgs),
    /// Show each account's health; exit 0 healthy, 1 degraded, 2 archive unreadable.
    #[command(
        after_help = "Example:\n  usage-archiver status --db /var/lib/usage-archiver/archive.db --json"
    )]
    Status(StatusArgs),
    /// Print usage totals from the archive.
    #[command(
        after_help = "Examples:\n  usage-archiver report --by day --provider hydraproxy --from 2026-11-01\n  usage-archiver report --by month --per-subject --format csv > usage.csv"
    )]
    Report(ReportArgs),
    /// Validate the config file, and with --online that the credentials work.
    #[command(after_help = "Example:\n  usage-archiver check-config --config daemon.toml --online")]
    CheckConfig(CheckConfigArgs),
    /// Archive built-in simulated providers on loopback; no credentials, no network.
    #[command(
        after_help = "Example:\n  usage-archiver demo --db demo.db && sqlite3 demo.db 'SELECT * FROM usage_daily LIMIT 5'"
    )]
    Demo(DemoArgs),
    /// Copy the archive consistently while the daemon runs (with its credential file).
    #[command(
        after_help = "Examples:\n  usage-archiver backup /var/backups/usage-archiver --keep 14\n  usage-archiver backup copy.db --db /var/lib/usage-archiver/archive.db\n\nRestore: stop the service, copy a backup (and its .credentials file) over the\narchive, start the service."
    )]
    Backup(BackupArgs),
    /// Print the man page (roff), generated from these definitions (for packagers).
    #[command(hide = true)]
    Manpage,
    /// Print a shell completion script (for packagers).
    #[command(hide = true)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the copy goes: a file, or a directory where copies are named by UTC time.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// With DEST a directory: keep the newest N copies and remove older ones.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
}

/// Where the config and the archive are.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Config file [default: $USAGE_ARCHIVER_CONFIG, ./daemon.toml, /etc/usage-archiver/daemon.toml]
    #[arg(long, env = "USAGE_ARCHIVER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Archive file, overriding `database` in the config's `[archive]` table.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// One pass as the scheduler would make it now (the same fetch plan, the same run
    /// records), then exit with backfill's exit codes: for systemd timers and cron.
    #[arg(long)]
    pub once: bool,
    /// With --once: only this source, a provider (`hydraproxy`) or an account
    /// (`hydraproxy/main`). Repeatable.
    #[arg(long = "source", value_name = "NAME", requires = "once")]
    pub sources: Vec<String>,
    /// With --once: take this instant as now (RFC 3339; for tests and benchmarks).
    #[arg(long, hide = true, value_name = "RFC3339", requires = "once")]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// `backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// Only this source: a provider (`hydraproxy`) or one account (`hydraproxy/main`). Repeatable.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// No progress bars, even on a terminal (log lines only).
    #[arg(long, short)]
    pub quiet: bool,
    /// Take this instant as now (RFC 3339; for tests).
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Judge as of this instant instead of now (RFC 3339; for tests and golden outputs).
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// Output format of `report`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array.
    Json,
    /// One self-contained HTML page: a stacked bar chart (SVG) above the table.
    Html,
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// Group by day or month.
    #[arg(long, value_enum, default_value_t = Period::Month)]
    pub by: Period,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this subject (order id, customer, …).
    #[arg(long)]
    pub subject: Option<String>,
    /// First day included (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Last day included (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// One row per subject (order, customer, server, …) instead of per account.
    #[arg(long)]
    pub per_subject: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub paths: ConfigArgs,
    /// Also check that each account's credentials are accepted.
    #[arg(long)]
    pub online: bool,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Archive file to create or update.
    #[arg(long, value_name = "PATH", default_value = "usage-archiver-demo.db")]
    pub db: PathBuf,
    /// Take this instant as now, for the simulated providers and the archive alike
    /// (RFC 3339; for tests).
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// `--by day|month`: the domain's [`Period`] as a command-line value.
impl clap::ValueEnum for Period {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Day, Self::Month]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            Self::Day => clap::builder::PossibleValue::new("day").help("One row per UTC day"),
            Self::Month => {
                clap::builder::PossibleValue::new("month").help("One row per calendar month")
            }
        })
    }
}
