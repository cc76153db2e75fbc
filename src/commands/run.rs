//! `usage-archiver run`: the daemon, or with `--once` one pass of its work.

use super::backfill::{Pass, one_pass};
use super::load_config;
use crate::cli::RunArgs;

pub(super) async fn execute(args: RunArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.paths)?;
    if args.once {
        let pass = Pass {
            sources: &args.sources,
            quiet: true,
            now: args.now,
            plan: true,
        };
        return one_pass(&config, &pass).await;
    }
    crate::service::run_daemon(config).await?;
    Ok(super::EXIT_OK)
}
