//! `usage-archiver run`: the daemon.

use super::load_config;
use crate::cli::RunArgs;

pub(super) async fn execute(args: RunArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.paths)?;
    crate::service::run_daemon(config).await?;
    Ok(super::EXIT_OK)
}
