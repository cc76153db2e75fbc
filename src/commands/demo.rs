//! `usage-archiver demo`: the embedded default. Starts the simulated
//! providers on loopback, backfills them into `--db`, prints status and a
//! report, and says what to try next. No credentials, no network.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::backfill::{backfill, exit_code, print_summary};
use crate::cli::{ConfigArgs, DemoArgs, ReportArgs, StatusArgs};
use crate::config;
use crate::sim::{SimConfig, Simulator};
use crate::sync::NoObserver;

pub(super) async fn execute(args: DemoArgs) -> anyhow::Result<u8> {
    let sim = Simulator::start(SimConfig::demo())
        .await
        .context("cannot start the simulated providers")?;
    let toml = sim.daemon_toml(&args.db);
    let config = config::parse(&toml, Path::new("<demo>"))?.config;
    println!("Simulated providers listening on {}", sim.base_url());
    println!("Archiving them into {}\n", args.db.display());
    let reports = backfill(
        &config,
        &config.accounts,
        Arc::new(NoObserver),
        &CancellationToken::new(),
    )
    .await?;
    print_summary(&reports);
    let paths = ConfigArgs {
        config: None,
        db: Some(args.db.clone()),
    };
    println!();
    super::status::execute(StatusArgs {
        paths: paths.clone(),
        json: false,
    })
    .await?;
    println!();
    super::report::execute(ReportArgs {
        paths,
        by: crate::store::query::Period::Day,
        provider: None,
        account: None,
        subject: None,
        from: None,
        to: None,
        format: crate::cli::ReportFormat::Table,
    })
    .await?;
    let db = args.db.display();
    println!("\nTry next:");
    println!("  sqlite3 -readonly {db} 'SELECT * FROM usage_daily ORDER BY day DESC LIMIT 10'");
    println!("  usage-archiver report --db {db} --by month --format csv");
    println!("  usage-archiver status --db {db} --json");
    println!("  The SQL views are documented in schema.sql; the config the demo used:\n");
    for line in toml.lines().filter(|l| !l.starts_with('#')) {
        println!("    {line}");
    }
    Ok(exit_code(&reports))
}
