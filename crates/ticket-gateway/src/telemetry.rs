//! Logging: human-readable by default, JSON on request, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Keeps the log writer's thread alive; logs written before it drops are flushed.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber, writing to stderr. `RUST_LOG` filters; by default the
/// gateway logs at `info`, its audit trail included. Colours only on a terminal.
///
/// Lines are written by a dedicated thread, so a request never waits on stderr; the queue
/// is not lossy (the audit trail must be complete): when it is full, logging waits.
#[must_use = "dropping the guard stops logging"]
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // Buffered: the writer thread flushes once per batch it drains, not once per line.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Human => builder.event_format(crate::logline::LogLine).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}
