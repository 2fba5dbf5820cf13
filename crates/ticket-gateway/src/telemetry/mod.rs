//! What the gateway tells its operators: log lines ([`human`], [`json`], written by
//! [`sink`]), the audit trail ([`audit`]), the access log and request metrics ([`access`]),
//! and the Prometheus counters ([`metrics`]).
//!
//! Logging: human-readable by default, JSON on request, filtered by `RUST_LOG`. Every
//! request logs two to four events, so an event must be cheap: [`LogLayer`] formats it
//! straight into bytes in a per-thread buffer and hands the line to a [`LogSink`], which
//! writes lines in batches from a thread of its own. No system call and no thread wake-up
//! per line.
//!
//! No spans. Every event that concerns a connection carries its peer as a field (formatted
//! once per connection, see [`crate::Conn`]), so a line stands on its own in either format.
//! A span per connection or per request would cost the subscriber's registry an allocation
//! and bookkeeping on every request, and the formatters would still have to walk it to
//! write the same peer; events inside spans made by dependencies are written as if outside.

pub mod access;
pub mod audit;
pub mod clock;
pub mod human;
pub mod json;
pub mod metrics;
pub mod sink;

use std::cell::RefCell;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use human::Scratch;
use sink::{Limits, LogSink};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Keeps the log writer's thread alive; logs written before it drops are flushed.
pub type LogGuard = sink::LogGuard;

/// Installs the global subscriber, writing to stderr. `RUST_LOG` filters; by default the
/// gateway logs at `info`, its audit trail included.
///
/// Lines are written by a dedicated thread, so a request never waits on stderr; the buffer
/// is not lossy (the audit trail must be complete): when it is full, logging waits.
#[must_use = "dropping the guard stops logging"]
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (sink, guard) = LogSink::spawn(std::io::stderr(), Limits::default());
    // Fails only if a subscriber is already installed; that one keeps logging.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(LogLayer::new(format, sink))
        .try_init();
    guard
}

/// A `tracing` layer that formats each event into one line and appends it to a sink.
/// Spans are not recorded (see the module documentation).
#[derive(Debug, Clone)]
pub struct LogLayer {
    format: LogFormat,
    sink: LogSink,
}

impl LogLayer {
    /// Lines in `format`, to `sink`.
    pub fn new(format: LogFormat, sink: LogSink) -> Self {
        Self { format, sink }
    }

    fn write(&self, event: &Event<'_>, line: &mut Line) {
        let now = clock::now();
        line.bytes.clear();
        match self.format {
            LogFormat::Human => human::human(event, now, &mut line.scratch, &mut line.bytes),
            LogFormat::Json => json::json(event, now, &mut line.scratch, &mut line.bytes),
        }
        let urgent = matches!(*event.metadata().level(), Level::ERROR | Level::WARN);
        self.sink.write(&line.bytes, urgent);
        // A huge event should not pin its memory for the life of the thread.
        if line.bytes.capacity() > MAX_RETAINED {
            line.bytes = Vec::new();
        }
        if line.scratch.text.capacity() > MAX_RETAINED {
            line.scratch.text = String::new();
        }
    }
}

/// Per-thread buffers larger than this are let go after the line.
const MAX_RETAINED: usize = 64 * 1024;

/// A line being formatted, and what formatting it needs; one per thread, reused.
#[derive(Debug, Default)]
struct Line {
    bytes: Vec<u8>,
    scratch: Scratch,
}

thread_local! {
    static LINE: RefCell<Line> = RefCell::new(Line::default());
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let done = LINE
            .try_with(|line| match line.try_borrow_mut() {
                Ok(mut line) => {
                    self.write(event, &mut line);
                    true
                }
                // An event logged while formatting another (by a `Debug` impl).
                Err(_) => false,
            })
            // Or the thread is ending and its buffer is gone already.
            .unwrap_or(false);
        if !done {
            self.write(event, &mut Line::default());
        }
    }
}

/// A store operation failed: the one log line and count of it. Each dialect calls this
/// where it renders the failure, once per failure.
pub fn store_failed(error: &ticket_core::StoreError) {
    tracing::error!(error = %error, "the ticket store failed");
    metrics::store_error();
}
