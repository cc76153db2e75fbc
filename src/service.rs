//! The daemon's life: start, READY, watchdog, signals, graceful stop.
//!
//! Signal handlers are installed first. READY=1 is sent only once the
//! archive is open and migrated and the scheduler runs. The watchdog is
//! pinged at half `WATCHDOG_USEC` only while the scheduler's heartbeat job
//! keeps firing, so a hung scheduler gets the service restarted. On SIGTERM
//! or SIGINT: STOPPING=1, no new runs, fetches in flight cancelled, writes
//! in progress finished (up to [`DRAIN_DEADLINE`]), exit 0. Without
//! `NOTIFY_SOCKET` every notification is a no-op.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio_cron_scheduler::JobScheduler;

use crate::config::Config;
use crate::http::HttpClient;
use crate::scheduler::{Heartbeat, Runner, add_heartbeat};
use crate::store::Store;
use crate::sync::{RunReport, SyncOptions};

/// How long systemd is asked to wait for a schema upgrade before READY: 30 minutes.
pub const MIGRATION_TIMEOUT_USEC: u32 = 30 * 60 * 1_000_000;

/// How long shutdown waits for running syncs to finish their writes.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run_daemon(config: Config) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    if config.accounts.is_empty() {
        anyhow::bail!(
            "no account is configured; add a {} table to the config (daemon.toml in the repository shows each)",
            crate::config::account_tables()
        );
    }
    if Store::needs_migration(&config.archive.database) {
        // An upgrade rewrites the archive (about 2 s per million rows): tell systemd to
        // wait for it instead of killing a start that looks hung.
        tracing::info!("Upgrading the archive's schema before starting");
        notify(&[
            NotifyState::ExtendTimeoutUsec(MIGRATION_TIMEOUT_USEC),
            NotifyState::Status("upgrading the archive"),
        ]);
    }
    let store = Store::open(&config.archive.database)?;
    let http = HttpClient::new(&config.http).context("cannot set up the HTTP client")?;
    let accounts = config
        .accounts
        .iter()
        .map(|a| {
            let vault = crate::sync::vault(Some(store.path()), a);
            (a.clone(), crate::providers::build(a, &http, vault))
        })
        .collect();
    let runner = Arc::new(
        Runner::new(
            accounts,
            store,
            SyncOptions {
                plan: true,
                ..SyncOptions::new(config.archive.keep_raw)
            },
            Box::new(notify_run),
        )
        .with_metrics(config.archive.metrics_textfile.clone()),
    );
    let mut scheduler = JobScheduler::new()
        .await
        .context("cannot create the scheduler")?;
    runner
        .schedule(&scheduler)
        .await
        .context("cannot schedule the accounts")?;
    let beat = Arc::new(Heartbeat::new());
    add_heartbeat(&scheduler, Arc::clone(&beat))
        .await
        .context("cannot schedule the heartbeat")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    let caught_up = runner.catch_up(chrono::Utc::now()).await?;
    tracing::info!(accounts = config.accounts.len(), catch_up_runs = caught_up, database = %config.archive.database.display(), "Daemon started");
    notify(&[NotifyState::Ready, NotifyState::Status("scheduling")]);
    let watchdog = tokio::spawn(watchdog(beat));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
        _ = int.recv() => tracing::info!("SIGINT received; stopping"),
    }
    notify(&[NotifyState::Stopping]);
    watchdog.abort();
    if let Err(err) = scheduler.shutdown().await {
        tracing::warn!(error = %err, "Scheduler did not shut down cleanly");
    }
    if !runner.shutdown(DRAIN_DEADLINE).await {
        tracing::warn!(
            "Runs still going after the drain deadline; exiting anyway (each subject's writes are atomic)"
        );
    }
    if !crate::critical::wait(DRAIN_DEADLINE).await {
        tracing::error!(
            "A token rotation did not finish before the drain deadline; its new token may be lost"
        );
    }
    tracing::info!("Stopped");
    Ok(())
}

/// Tells systemd (and tests listening on `NOTIFY_SOCKET`) how a run ended.
fn notify_run(report: &RunReport) {
    let status = format!(
        "{}: run {} {} ({} subjects, {} rows inserted, {} updated)",
        report.label,
        report.run_id,
        report.status.as_str(),
        report.totals.subjects_ok,
        report.totals.rows_inserted,
        report.totals.rows_updated
    );
    notify(&[NotifyState::Status(&status)]);
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, "Cannot notify systemd");
    }
}

/// Pings the watchdog at half its interval while the heartbeat is fresh (younger than
/// the watchdog interval, and never less than two heartbeats' worth).
async fn watchdog(beat: Arc<Heartbeat>) {
    // WATCHDOG_USEC=0 (or unreadable) means no watchdog; a zero period would panic the ticker.
    let Some(interval) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    let limit = interval.max(Duration::from_secs(20));
    let mut ticker = tokio::time::interval(interval / 2);
    loop {
        ticker.tick().await;
        let age = beat.age_at(std::time::Instant::now());
        if age <= limit {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::error!(
                heartbeat_age_secs = age.as_secs(),
                "Scheduler heartbeat stale (did the clock move back?); withholding the watchdog ping"
            );
        }
    }
}
