//! Logging: tracing to stderr as text or JSON, level from `RUST_LOG` (default: the
//! product's lines from `info`, its dependencies' from `warn`).
//!
//! ANSI colours only when stderr is a terminal, so the journal and log files
//! stay clean. While `backfill` shows progress bars, log lines are written
//! around them ([`set_progress`]) instead of through them.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;

/// The progress bars on screen, if any; log lines suspend them while printing.
static PROGRESS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Routes log lines around `bars` until called again with `None`.
pub fn set_progress(bars: Option<MultiProgress>) {
    *PROGRESS.lock().unwrap_or_else(PoisonError::into_inner) = bars;
}

/// While set, log lines are dropped (the demo's replay of simulated days).
static MUTED: AtomicBool = AtomicBool::new(false);

/// Drops log lines until called with `false`.
pub fn mute(muted: bool) {
    MUTED.store(muted, Ordering::Relaxed);
}

/// Stderr that steps around the progress bars.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if MUTED.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
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

/// What is logged when `RUST_LOG` is unset: the product's lines from INFO, its
/// dependencies' (the scheduler's start-up chatter among them) from WARN.
pub const DEFAULT_FILTER: &str = "warn,usage_archiver=info";

/// Installs the global subscriber. Safe to call once per process.
///
/// When stderr is the systemd journal (`$JOURNAL_STREAM` names it), text lines
/// carry no timestamp (the journal stamps them) and start with a `<N>`
/// syslog priority, so `journalctl -p warning` finds warnings and errors.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_target(false);
    let result = match format {
        LogFormat::Text if stderr_is_journal() => builder
            .with_ansi(false)
            .event_format(JournalFormat(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_target(false)
                    .with_ansi(false),
            ))
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // Err only means a subscriber is already installed (tests); keep it.
    let _ = result;
}

/// Whether stderr is the journal stream `$JOURNAL_STREAM` (`<device>:<inode>`) names.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

/// A text line prefixed with its syslog priority (`<3>` error … `<7>` debug) for the journal.
struct JournalFormat<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The syslog priority of a tracing level.
fn syslog_priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}
