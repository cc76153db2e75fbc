//! Logging: tracing to stderr as text or JSON, level from `RUST_LOG` (default `info`).
//!
//! ANSI colours only when stderr is a terminal, so the journal and log files
//! stay clean. While `backfill` shows progress bars, log lines are written
//! around them ([`set_progress`]) instead of through them.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;

/// The progress bars on screen, if any; log lines suspend them while printing.
static PROGRESS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Routes log lines around `bars` until called again with `None`.
pub fn set_progress(bars: Option<MultiProgress>) {
    *PROGRESS.lock().unwrap_or_else(PoisonError::into_inner) = bars;
}

/// Stderr that steps around the progress bars.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bars = PROGRESS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bars {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // Err only means a subscriber is already installed (tests); keep it.
    let _ = result;
}
