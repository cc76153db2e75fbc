//! `usage-archiver backfill`: fetch everything each selected account exposes now.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{EXIT_DEGRADED, EXIT_OK, load_config};
use crate::cli::BackfillArgs;
use crate::config::{AccountConfig, Config};
use crate::store::Store;
use crate::store::runs::RunStatus;
use crate::sync::{self, Observer, RunReport, SyncOptions};

pub(super) async fn execute(args: BackfillArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.paths)?;
    let pass = Pass {
        sources: &args.sources,
        quiet: args.quiet,
        now: args.now,
        plan: false,
    };
    one_pass(&config, &pass).await
}

/// One pass over the selected accounts: `backfill` (everything) or `run --once` (the plan).
pub(super) struct Pass<'a> {
    /// `--source` selections; all accounts when empty.
    pub sources: &'a [String],
    /// No progress bars.
    pub quiet: bool,
    /// The instant taken as now, for tests.
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether to follow the fetch plan.
    pub plan: bool,
}

/// Runs one pass: a run per selected account, concurrently; SIGTERM/SIGINT finish the
/// writes in progress. Prints the summary and returns the exit code (0 only if every
/// run was ok).
pub(super) async fn one_pass(config: &Config, pass: &Pass<'_>) -> anyhow::Result<u8> {
    let accounts = select_accounts(config, pass.sources)?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = term.recv() => {}
        }
        tracing::warn!("Interrupted; finishing the writes in progress");
        on_signal.cancel();
    });
    let clock = pass
        .now
        .map_or_else(sync::Clock::system, sync::Clock::fixed);
    let accounts = if pass.plan {
        due_accounts(config, accounts, clock.now().0).await?
    } else {
        accounts
    };
    if accounts.is_empty() {
        println!("No account is due: each has run since its schedule's last tick");
        return Ok(EXIT_OK);
    }
    let options = SyncOptions {
        observer: observer(pass.quiet),
        clock,
        plan: pass.plan,
        ..SyncOptions::new(config.archive.keep_raw)
    };
    let reports = backfill(config, &accounts, &options, &cancel).await;
    crate::telemetry::set_progress(None);
    let reports = reports?;
    print_summary(&reports, pass.plan);
    Ok(exit_code(&reports))
}

/// The accounts a scheduler would have started by `now`: a tick of the account's schedule
/// came since its last success. The others are named with their next tick.
async fn due_accounts(
    config: &Config,
    accounts: Vec<AccountConfig>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<AccountConfig>> {
    let store = Store::open(&config.archive.database)?;
    let mut due = Vec::new();
    for account in accounts {
        let (kind, name) = (account.kind.as_str(), account.name.clone());
        let last = store
            .call(move |c| crate::store::runs::load_last_success(c, kind, &name))
            .await?
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        if account.schedule.ticked_since(last, now) {
            due.push(account);
        } else {
            let next = last.and_then(|t| account.schedule.next_after(t));
            let next = next.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
            println!(
                "{}: not due (ran since the last tick; next tick {next})",
                account.label()
            );
        }
    }
    Ok(due)
}

/// Progress bars on a terminal (unless `quiet`), plain log lines otherwise.
pub(super) fn observer(quiet: bool) -> Arc<dyn Observer> {
    if !quiet && std::io::stderr().is_terminal() {
        Arc::new(ProgressObserver::new())
    } else {
        Arc::new(LogObserver)
    }
}

/// Opens the archive and syncs `accounts` concurrently, one run each.
pub(super) async fn backfill(
    config: &Config,
    accounts: &[AccountConfig],
    options: &SyncOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<RunReport>> {
    let store = Store::open(&config.archive.database)?;
    let http =
        crate::http::HttpClient::new(&config.http).context("cannot set up the HTTP client")?;
    let runs = accounts.iter().map(|account| {
        let vault = sync::vault(Some(store.path()), account);
        let provider = crate::providers::build(account, &http, vault);
        let (store, options) = (store.clone(), options.clone());
        async move { sync::run_account(account, provider, &store, &options, cancel).await }
    });
    let results = futures_util::future::join_all(runs).await;
    // A token rotation a cancelled run left behind still stores its pair.
    crate::critical::wait(crate::service::DRAIN_DEADLINE).await;
    if let Some(path) = &config.archive.metrics_textfile {
        crate::metrics::update(&store, path).await;
    }
    Ok(results.into_iter().collect::<Result<_, _>>()?)
}

/// Exit 0 only when every run ended `ok`.
pub(super) fn exit_code(reports: &[RunReport]) -> u8 {
    if reports.iter().all(|r| r.status == RunStatus::Ok) {
        EXIT_OK
    } else {
        EXIT_DEGRADED
    }
}

/// The accounts named by `--source` (`provider` or `provider/account`), or all of them.
fn select_accounts(config: &Config, sources: &[String]) -> anyhow::Result<Vec<AccountConfig>> {
    if config.accounts.is_empty() {
        anyhow::bail!(
            "no account is configured; add a {} table to the config (daemon.toml in the repository shows each)",
            crate::config::account_tables()
        );
    }
    if sources.is_empty() {
        return Ok(config.accounts.clone());
    }
    for source in sources {
        if !config.accounts.iter().any(|a| matches_source(a, source)) {
            let known: Vec<String> = config.accounts.iter().map(AccountConfig::label).collect();
            anyhow::bail!(
                "--source {source:?} matches no configured account (configured: {})",
                known.join(", ")
            );
        }
    }
    Ok(config
        .accounts
        .iter()
        .filter(|a| sources.iter().any(|s| matches_source(a, s)))
        .cloned()
        .collect())
}

fn matches_source(account: &AccountConfig, source: &str) -> bool {
    source == account.kind.as_str() || source == account.label()
}

/// One progress bar per account on stderr: subjects done of total, rate, ETA.
struct ProgressObserver {
    bars: MultiProgress,
    by_account: Mutex<HashMap<String, ProgressBar>>,
}

impl ProgressObserver {
    fn new() -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        crate::telemetry::set_progress(Some(bars.clone()));
        Self {
            bars,
            by_account: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for ProgressObserver {
    fn subjects_found(&self, account: &str, count: usize) {
        let style = ProgressStyle::with_template(
            "{prefix:<24} [{bar:30}] {pos}/{len} subjects  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.bars.add(
            ProgressBar::new(count as u64)
                .with_style(style)
                .with_prefix(account.to_owned()),
        );
        self.by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.to_owned(), bar);
    }

    fn subject_done(&self, account: &str, _ok: bool) {
        if let Some(bar) = self
            .by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
        {
            bar.inc(1);
        }
    }
}

/// Logs each account's progress as plain lines.
struct LogObserver;

impl Observer for LogObserver {
    fn subjects_found(&self, account: &str, count: usize) {
        tracing::info!(account, subjects = count, "Fetching subjects");
    }
}

/// Prints what each run did, with its first errors; `planned` adds the subjects the fetch
/// plan left for later.
pub(super) fn print_summary(reports: &[RunReport], planned: bool) {
    println!(
        "{}",
        if planned {
            "Run summary"
        } else {
            "Backfill summary"
        }
    );
    let mut header = vec![
        "account",
        "status",
        "subjects ok",
        "failed",
        "inserted",
        "updated",
        "unchanged",
    ];
    if planned {
        header.push("not due");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in reports {
        let t = &r.totals;
        let mut row = vec![
            r.label.clone(),
            r.status.as_str().to_owned(),
            t.subjects_ok.to_string(),
            t.subjects_failed.to_string(),
            t.rows_inserted.to_string(),
            t.rows_updated.to_string(),
            r.rows_unchanged.to_string(),
        ];
        if planned {
            row.push(r.planned_skips.to_string());
        }
        rows.push(row);
    }
    super::print_table(&rows);
    for r in reports {
        for lost in &r.newly_lost {
            println!(
                "\n{}: {} days of subject {} are lost ({} to {}): never archived, no longer kept by the provider",
                r.label, lost.days, lost.subject, lost.first, lost.last
            );
        }
    }
    for r in reports.iter().filter(|r| !r.errors.is_empty()) {
        println!("\n{} errors:", r.label);
        for e in &r.errors {
            println!("  - {e}");
        }
    }
}
