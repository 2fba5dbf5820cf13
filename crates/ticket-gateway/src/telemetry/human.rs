//! The human-readable log line, written straight into bytes: the gateway writes two to four
//! events per request (access and audit), so their format is on the hot path. Strings and
//! numbers are copied, not run through `fmt`; only `Debug`/`Display` values (`?x`, `%x`, the
//! message) are formatted, into a reusable buffer.
//!
//! `2026-11-23T20:06:07.680Z  INFO audit: event=ticket_issued dialect=qps vp="" user_id=jdoe`
//! — UTC time to the millisecond, level, target, the message if any, then `key=value`
//! pairs; values are quoted (as Rust's `Debug` quotes strings) when they hold a space, a
//! quote, `=`, a line break or nothing.

use std::fmt;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level};

use super::clock::{self, Clock};
use crate::text::scan;

/// What formatting a line needs besides the event, kept per thread and reused, so that a
/// line costs no allocation once the buffers have grown.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The current second, formatted.
    pub clock: Clock,
    /// Where `Debug` and `Display` values are formatted before they are quoted or escaped.
    pub text: String,
}

/// Appends the line of `event`, logged at `now` (since the Unix epoch), newline included.
pub fn human(event: &Event<'_>, now: Duration, scratch: &mut Scratch, out: &mut Vec<u8>) {
    let nanos = scratch.clock.second(now, out);
    clock::millis(nanos, out);
    let meta = event.metadata();
    out.extend_from_slice(match *meta.level() {
        Level::ERROR => b" ERROR ",
        Level::WARN => b"  WARN ",
        Level::INFO => b"  INFO ",
        Level::DEBUG => b" DEBUG ",
        Level::TRACE => b" TRACE ",
    });
    out.extend_from_slice(meta.target().as_bytes());
    out.push(b':');
    event.record(&mut Fields {
        out: &mut *out,
        text: &mut scratch.text,
    });
    out.push(b'\n');
}

struct Fields<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(b' ');
        self.out.extend_from_slice(field.name().as_bytes());
        self.out.push(b'=');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        pair(self.out, field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text.clear();
        if fmt::write(self.text, format_args!("{value:?}")).is_ok() {
            pair(self.out, field, self.text);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        super::human::integer(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        super::human::integer(self.out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        super::human::boolean(self.out, value);
    }
}

/// An integer value, as both formats write it.
pub(crate) fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A boolean value, as both formats write it.
pub(crate) fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// ` message` bare, or ` key=value`, quoted if need be.
fn pair(out: &mut Vec<u8>, field: &Field, value: &str) {
    out.push(b' ');
    if field.name() == "message" {
        let at = out.len();
        out.extend_from_slice(value.as_bytes());
        if scan::any(out, at, controls) {
            out.truncate(at);
            for c in value.chars() {
                if c.is_control() {
                    let _ = fmt::write(&mut Bytes(out), format_args!("{}", c.escape_debug()));
                } else {
                    let mut utf8 = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        return;
    }
    out.extend_from_slice(field.name().as_bytes());
    out.push(b'=');
    if value.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let at = out.len();
    out.extend_from_slice(value.as_bytes());
    if needs_quotes(out, at) {
        out.truncate(at);
        quoted(out, value);
    }
}

/// Whether `line[at..]` holds a space, `"`, `=` or a control character: a value from a
/// client (a user id) must not write a NUL, an escape sequence or a line break into the
/// log raw, nor pass for two fields.
fn needs_quotes(line: &[u8], at: usize) -> bool {
    scan::any(line, at, |w| {
        scan::equal(w, b' ') | scan::equal(w, b'"') | scan::equal(w, b'=') | controls(w)
    })
}

/// A C0 control or DEL, or the lead byte of a UTF-8 C1 control (U+0080 to U+009F are
/// `C2 80` to `C2 9F`; other characters after `C2`, such as `£`, are caught too and merely
/// quoted).
fn controls(w: u64) -> u64 {
    scan::below(w, 0x20) | scan::equal(w, 0x7f) | scan::equal(w, 0xc2)
}

/// `value` as Rust's `Debug` writes a string. Printable ASCII without `"` or `\` needs only
/// the quotes; anything else takes `Debug` itself, for its exact escapes.
fn quoted(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a `Vec` cannot fail.
        let _ = fmt::write(&mut Bytes(out), format_args!("{value:?}"));
    }
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::needs_quotes;
    use crate::telemetry::sink::testing::capture;
    use crate::telemetry::LogFormat;

    #[test]
    fn lines_are_readable_and_quote_what_needs_it() {
        let lines = capture(LogFormat::Human, || {
            tracing::info!(target: "audit", event = "ticket_issued", vp = "", user_id = "j doe", n = 5u64, "issued");
        });
        let (time, rest) = lines.split_once(' ').unwrap();
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z'));
        assert_eq!(
            rest,
            " INFO audit: issued event=ticket_issued vp=\"\" user_id=\"j doe\" n=5\n"
        );
    }

    #[test]
    fn quotes_exactly_the_values_that_need_it_at_any_length() {
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789.:_-/,";
        for len in 1..plain.len() {
            for at in 0..len {
                for special in [' ', '"', '=', '\n', '\r'] {
                    let mut v = plain[..len].to_owned();
                    v.replace_range(at..=at, &special.to_string());
                    let line = format!("2026-11-23T20:06:07.680Z  INFO audit: k={v}");
                    assert!(needs_quotes(line.as_bytes(), line.len() - len), "{v:?}");
                }
            }
            let line = format!(
                "2026-11-23T20:06:07.680Z  INFO audit: k=\" {}",
                &plain[..len]
            );
            assert!(!needs_quotes(line.as_bytes(), line.len() - len));
        }
    }

    #[test]
    fn control_characters_from_clients_are_escaped() {
        let lines = capture(LogFormat::Human, || {
            tracing::info!(target: "audit", user_id = "a\u{0}b\u{1b}[31mc\u{85}d\u{7f}", "m\u{1b}x");
        });
        assert!(
            lines
                .ends_with(" INFO audit: m\\u{1b}x user_id=\"a\\0b\\u{1b}[31mc\\u{85}d\\u{7f}\"\n"),
            "{lines:?}"
        );
        assert!(
            !lines.bytes().any(|b| b < 0x20 && b != b'\n' || b == 0x7f),
            "{lines:?}"
        );
    }

    #[test]
    fn display_debug_numbers_and_escapes() {
        let peer: std::net::SocketAddr = "192.0.2.7:50412".parse().unwrap();
        let lines = capture(LogFormat::Human, || {
            tracing::warn!(target: "access", %peer, why = %"no room", q = ?"a b", i = -3i64,
                ok = false, tab = "a\tb", nl = "a\nb", eq = "a=b", accent = "é x", f = 1.5);
            tracing::error!("store failed");
        });
        let rest: Vec<&str> = lines
            .lines()
            .map(|l| l.split_once(' ').unwrap().1)
            .collect();
        assert_eq!(
            rest,
            [
                " WARN access: peer=192.0.2.7:50412 why=\"no room\" q=\"\\\"a b\\\"\" i=-3 \
                 ok=false tab=\"a\\tb\" nl=\"a\\nb\" eq=\"a=b\" accent=\"é x\" f=1.5",
                "ERROR ticket_gateway::telemetry::human::tests: store failed",
            ]
        );
    }
}
