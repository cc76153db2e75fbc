//! The `usage-archiver` binary: parse, set up logging, dispatch, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use usage_archiver::cli::Cli;
use usage_archiver::{commands, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match commands::dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::EXIT_ERROR)
        }
    }
}
