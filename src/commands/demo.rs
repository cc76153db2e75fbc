//! `usage-archiver demo`: the embedded default. Starts the simulated
//! providers on loopback, backfills them into `--db`, prints status and a
//! report, and says what to try next. No credentials, no network.

use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::backfill::{backfill, exit_code, observer, print_summary};
use crate::cli::{DemoArgs, ReportFormat};
use crate::config;
use crate::model::Period;
use crate::sim::{SimConfig, Simulator};
use crate::store::query::ReportFilter;
use chrono::{TimeDelta, Utc};

use crate::store::runs::RunStatus;
use crate::sync::{Clock, SyncOptions};

/// Simulated days of snapshots replayed before the backfill, for providers without history.
const REPLAY_DAYS: i64 = 3;

/// Providers that keep no daily history (only running counters) have nothing to
/// backfill, so the demo first lets three simulated days pass for them:
/// snapshots just after each midnight (today's too) and at noon, with the simulator's and the
/// archive's clocks moved together. That gives derived days, a counter drop and
/// order status changes to look at.
async fn replay_history(
    sim: &Simulator,
    config: &config::Config,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let accounts: Vec<_> = config
        .accounts
        .iter()
        .filter(|a| !config::profile(a.kind).daily_history)
        .cloned()
        .collect();
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 5, 0)
        .map_or(now, |t| t.and_utc());
    let moments = (1..=REPLAY_DAYS)
        .rev()
        .flat_map(|day| {
            [0, 12].map(|hour| midnight - TimeDelta::days(day) + TimeDelta::hours(hour))
        })
        .chain(Some(midnight).filter(|m| *m < now));
    let mut names: Vec<&str> = accounts.iter().map(|a| a.kind.as_str()).collect();
    names.dedup();
    println!(
        "Replaying {REPLAY_DAYS} simulated days of snapshots for {}, which keep no daily history…",
        names.join(" and ")
    );
    crate::telemetry::mute(true);
    let mut runs = Vec::new();
    for at in moments {
        sim.clock().set(at);
        let options = SyncOptions {
            clock: Clock::fixed(at),
            ..SyncOptions::new(config.archive.keep_raw)
        };
        let reports = backfill(config, &accounts, &options, &CancellationToken::new()).await;
        match reports {
            Ok(reports) => runs.extend(reports),
            Err(err) => {
                crate::telemetry::mute(false);
                return Err(err);
            }
        }
    }
    crate::telemetry::mute(false);
    sim.clock().set(now);
    let failed: Vec<_> = runs.iter().filter(|r| r.status != RunStatus::Ok).collect();
    println!("  {} replayed syncs, {} not ok", runs.len(), failed.len());
    for r in failed {
        println!(
            "  {}: {} {}",
            r.label,
            r.status.as_str(),
            r.errors.join("; ")
        );
    }
    println!();
    Ok(())
}

pub(super) async fn execute(args: DemoArgs) -> anyhow::Result<u8> {
    let sim = Simulator::start(SimConfig::demo())
        .await
        .context("cannot start the simulated providers")?;
    let toml = sim.daemon_toml(&args.db);
    let config = config::parse(&toml, Path::new("<demo>"))?.config;
    println!("Simulated providers listening on {}", sim.base_url());
    println!("Archiving them into {}\n", args.db.display());
    let now = args.now.unwrap_or_else(Utc::now);
    replay_history(&sim, &config, now).await?;
    let mut options = SyncOptions {
        observer: observer(false),
        ..SyncOptions::new(config.archive.keep_raw)
    };
    if args.now.is_some() {
        options.clock = Clock::fixed(now);
    }
    let reports = backfill(
        &config,
        &config.accounts,
        &options,
        &CancellationToken::new(),
    )
    .await;
    crate::telemetry::set_progress(None);
    let reports = reports?;
    print_summary(&reports, false);
    let db = args.db.display();
    println!("\n$ usage-archiver status --db {db}");
    super::status::show(&args.db, Some(&config), now, false)?;
    println!("\n$ usage-archiver report --db {db} --by month");
    let filter = ReportFilter {
        by: Period::Month,
        ..ReportFilter::default()
    };
    super::report::show(&args.db, &filter, ReportFormat::Table)?;
    println!("\nTry next:");
    println!("  usage-archiver report --db {db} --by day --provider hostens    # daily bars");
    println!(
        "  usage-archiver report --db {db} --per-subject --format csv     # one row per order/customer/server"
    );
    println!("  usage-archiver status --db {db} --json                         # exact gap days");
    println!(
        "  sqlite3 -readonly {db} 'SELECT * FROM hydraproxy_order_history'   # orders, invoices: see README"
    );
    println!(
        "  sqlite3 -readonly -header -column {db} < examples/queries.sql  # the example queries of docs/archive.md"
    );
    println!("  sqlite3 -readonly {db} 'SELECT * FROM usage_daily ORDER BY day DESC LIMIT 10'");
    println!("The views are documented in schema.sql. The config the demo used:\n");
    for line in toml.lines().filter(|l| !l.starts_with('#')) {
        println!("    {line}");
    }
    Ok(exit_code(&reports))
}
