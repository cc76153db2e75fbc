//! `usage-archiver check-config`: validate the file, optionally the credentials.

use anyhow::Context;

use super::{EXIT_DEGRADED, EXIT_OK, load_config};
use crate::cli::CheckConfigArgs;

pub(super) async fn execute(args: CheckConfigArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.paths)?;
    let path = config
        .path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("{path}: OK");
    println!(
        "archive: {} (keep_raw = {:?})",
        config.archive.database.display(),
        config.archive.keep_raw
    );
    if config.accounts.is_empty() {
        println!(
            "warning: no account is configured; add a {} table (daemon.toml in the repository shows each)",
            crate::config::account_tables()
        );
    }
    for a in &config.accounts {
        println!(
            "{}: {} schedule \"{}\" (UTC), max_concurrency {}",
            a.label(),
            a.base_url,
            a.schedule.as_str(),
            a.max_concurrency
        );
    }
    for w in &config.warnings {
        println!("warning: {w}");
    }
    if !args.online {
        return Ok(EXIT_OK);
    }
    let http =
        crate::http::HttpClient::new(&config.http).context("cannot set up the HTTP client")?;
    // A token-flow account rotates its refresh token on the check: it is kept in the
    // credential file beside the archive, under the lock the daemon shares.
    let archive = config.archive.database.as_path();
    let checks = config.accounts.iter().map(|account| {
        let vault = crate::sync::vault(Some(archive), account);
        let provider = crate::providers::build(account, &http, vault);
        async move { (account.label(), provider.check_credentials().await) }
    });
    let results = futures_util::future::join_all(checks).await;
    crate::critical::wait(crate::service::DRAIN_DEADLINE).await;
    let mut failed = false;
    for (label, result) in results {
        match result {
            Ok(()) => println!("{label}: credentials accepted"),
            Err(err) => {
                failed = true;
                println!("{label}: FAILED: {err}");
            }
        }
    }
    Ok(if failed { EXIT_DEGRADED } else { EXIT_OK })
}
