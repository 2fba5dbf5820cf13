//! The human-readable log line, written without the cost of the general-purpose formatter:
//! the gateway writes two to four events per request (access and audit), so their format
//! is on the hot path.
//!
//! `2026-11-23T20:06:07.680Z  INFO audit: event=ticket_issued dialect=qps vp="" user_id=jdoe`
//! — UTC time to the millisecond, level, target, the message if any, then `key=value`
//! pairs; values are quoted when they hold a space, a quote, `=` or nothing.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `--log-format human`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogLine;

impl<S, N> FormatEvent<S, N> for LogLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        timestamp(&mut w)?;
        let meta = event.metadata();
        w.write_str(match *meta.level() {
            tracing::Level::ERROR => " ERROR ",
            tracing::Level::WARN => "  WARN ",
            tracing::Level::INFO => "  INFO ",
            tracing::Level::DEBUG => " DEBUG ",
            tracing::Level::TRACE => " TRACE ",
        })?;
        w.write_str(meta.target())?;
        w.write_str(":")?;
        let mut visitor = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;
        w.write_char('\n')
    }
}

struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn value(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.w.write_str(" ")?;
            if field.name() != "message" {
                self.w.write_str(field.name())?;
                self.w.write_str("=")?;
                if value.is_empty()
                    || value
                        .bytes()
                        .any(|b| matches!(b, b' ' | b'"' | b'=' | b'\n' | b'\r'))
                {
                    return write!(self.w, "{value:?}");
                }
            }
            self.w.write_str(value)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // One reusable buffer per thread: no allocation per field.
        thread_local!(static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            if fmt::write(&mut *buf, format_args!("{value:?}")).is_ok() {
                self.value(field, &buf);
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = write!(self.w, " {}={value}", field.name());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = write!(self.w, " {}={value}", field.name());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_ok() {
            self.result = write!(self.w, " {}={value}", field.name());
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`. The part up to the second is formatted once per second per
/// thread; only the milliseconds are written for every line.
fn timestamp(w: &mut Writer<'_>) -> fmt::Result {
    thread_local!(static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            cache.1.clear();
            civil(&mut cache.1, secs)?;
            cache.0 = secs;
        }
        w.write_str(&cache.1)
    })?;
    let ms = now.subsec_millis();
    let digits = [
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ];
    w.write_str(std::str::from_utf8(&digits).unwrap_or(".000Z"))
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, from the civil-from-days algorithm (no calendar
/// crate).
fn civil(out: &mut String, secs: u64) -> fmt::Result {
    use fmt::Write as _;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn lines_are_readable_and_quote_what_needs_it() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LogLine)
            .with_writer(move || WriteTo(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "audit", event = "ticket_issued", vp = "", user_id = "j doe", n = 5u64, "issued");
        });
        let line = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z'));
        assert_eq!(
            rest,
            " INFO audit: issued event=ticket_issued vp=\"\" user_id=\"j doe\" n=5\n"
        );
    }

    struct WriteTo(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for WriteTo {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
