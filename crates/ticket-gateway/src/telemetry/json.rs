//! The JSON log line of `--log-format json`, written straight into bytes, byte for byte what
//! tracing-subscriber's `fmt().json()` wrote for an event outside any span (log shippers
//! parse it; the gateway has no spans, and spans are ignored here):
//!
//! `{"timestamp":"2026-12-01T21:03:52.123456Z","level":"INFO","fields":{"message":"…","n":5},"target":"audit"}`
//!
//! Keys in that order, fields in the order the event declares them; the time in UTC to the
//! microsecond. Strings are escaped as serde_json escapes them; `u64`, `i64` and `bool` are
//! JSON numbers and booleans; an `f64` is a JSON number, or `null` when it is not finite
//! (NaN, ±infinity), as serde_json writes it; `Debug` and `Display` values are strings.
//! Events bridged from the `log` crate get their own target (`log.target`), as before.

use std::fmt;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level};

use super::clock;
use super::human::Scratch;
use crate::text::escape::json_string as string;

/// Appends the JSON object of `event`, logged at `now` (since the Unix epoch), and a newline.
pub fn json(event: &Event<'_>, now: Duration, scratch: &mut Scratch, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    let nanos = scratch.clock.second(now, out);
    clock::micros(nanos, out);
    let meta = event.metadata();
    out.extend_from_slice(match *meta.level() {
        Level::ERROR => b"\",\"level\":\"ERROR\",\"fields\":{",
        Level::WARN => b"\",\"level\":\"WARN\",\"fields\":{",
        Level::INFO => b"\",\"level\":\"INFO\",\"fields\":{",
        Level::DEBUG => b"\",\"level\":\"DEBUG\",\"fields\":{",
        Level::TRACE => b"\",\"level\":\"TRACE\",\"fields\":{",
    });
    let mut fields = Fields {
        out: &mut *out,
        text: &mut scratch.text,
        first: true,
        from_log: meta.target() == "log",
        log_target: None,
    };
    event.record(&mut fields);
    let log_target = fields.log_target;
    out.extend_from_slice(b"},\"target\":");
    string(out, log_target.as_deref().unwrap_or(meta.target()));
    out.extend_from_slice(b"}\n");
}

struct Fields<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
    first: bool,
    /// The event may come from the `log` bridge, whose events all have the target `log`
    /// and carry the record's target as the field `log.target`.
    from_log: bool,
    log_target: Option<String>,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, field.name());
        self.out.push(b':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.from_log && field.name() == "log.target" {
            self.log_target = Some(value.to_owned());
        }
        self.key(field);
        string(self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text.clear();
        if fmt::write(self.text, format_args!("{value:?}")).is_ok() {
            self.key(field);
            string(self.out, self.text);
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

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // serde_json's own number format (shortest round-trip), `null` if not finite.
        if serde_json::to_writer(&mut *self.out, &value).is_err() {
            self.out.extend_from_slice(b"null");
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use crate::telemetry::sink::testing::{capture, Captured};
    use crate::telemetry::sink::{Limits, LogSink};
    use crate::telemetry::{LogFormat, LogLayer};

    #[test]
    fn lines_parse_with_the_right_keys_values_and_escapes() {
        let lines = capture(LogFormat::Json, || {
            tracing::info!(target: "audit", event = "ticket_issued", vp = "", n = 5u64, i = -2i64,
                ok = true, f = 0.25, nan = f64::NAN, quote = "say \"hi\"\n\\", peer = %"10.0.0.1:4",
                "issued");
        });
        let v: serde_json::Value = serde_json::from_str(lines.trim_end()).unwrap();
        // serde_json's map sorts its keys: the order is checked on the text.
        let in_order = |keys: &[&str]| {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| lines.find(&format!("\"{k}\":")).unwrap())
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{keys:?} in {lines}");
        };
        in_order(&["timestamp", "level", "fields", "target"]);
        assert_eq!(v.as_object().unwrap().len(), 4);
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.starts_with("20") && ts.ends_with('Z') && ts.as_bytes()[19] == b'.');
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "audit");
        let f = &v["fields"];
        in_order(&[
            "message", "event", "vp", "n", "i", "ok", "f", "nan", "quote", "peer",
        ]);
        assert_eq!(f.as_object().unwrap().len(), 10);
        assert_eq!(f["message"], "issued");
        assert_eq!(f["event"], "ticket_issued");
        assert_eq!(f["vp"], "");
        assert_eq!(f["n"], 5);
        assert_eq!(f["i"], -2);
        assert_eq!(f["ok"], true);
        assert_eq!(f["f"], 0.25);
        assert!(f["nan"].is_null());
        assert_eq!(f["quote"], "say \"hi\"\n\\");
        assert_eq!(f["peer"], "10.0.0.1:4");
    }

    /// Both formatters see the same events; apart from the clock, the lines are the same.
    #[test]
    fn the_same_bytes_as_tracing_subscribers_json() {
        let theirs = Captured::default();
        let writer = theirs.clone();
        let ours = Captured::default();
        let (sink, guard) = LogSink::spawn(ours.clone(), Limits::default());
        let subscriber = tracing_subscriber::registry()
            .with(LogLayer::new(LogFormat::Json, sink))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "access", method = "GET", route = "qps_frontend", status = 200u16,
                latency_us = 182u64, peer = "192.0.2.7:50412");
            tracing::warn!(error = %"broken \"pipe\"\t\u{7}", grace = ?std::time::Duration::from_millis(1500),
                big = u64::MAX, small = i64::MIN, wide = 1u128 << 100, inf = f64::INFINITY,
                f = 1e21, g = -0.0, "grace period over; é");
            tracing::error!("");
        });
        drop(guard);
        let strip = |c: &Captured| -> Vec<String> {
            let text = c.text();
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let ts = v["timestamp"].as_str().unwrap();
                    assert_eq!(ts.len(), 27, "{ts}");
                    l.replacen(ts, "T", 1)
                })
                .collect()
        };
        let (ours, theirs) = (strip(&ours), strip(&theirs));
        assert_eq!(ours.len(), 3);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn log_records_keep_their_own_target() {
        let lines = capture(LogFormat::Json, || {
            tracing::event!(target: "log", tracing::Level::WARN, { log.target = "rustls::conn", log.line = 7u64 }, "alert");
        });
        let v: serde_json::Value = serde_json::from_str(lines.trim_end()).unwrap();
        assert_eq!(v["target"], "rustls::conn");
        assert_eq!(v["fields"]["message"], "alert");
        assert_eq!(v["fields"]["log.target"], "rustls::conn");
    }
}
