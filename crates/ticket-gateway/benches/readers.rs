//! Micro-benchmarks of the readers every request goes through: the lenient JSON of the
//! QPS API, the GetWebTicket XML, cookies and query strings; and of the access-log event
//! every request writes.
//!
//! `cargo bench -p ticket-gateway`. They show how much of a request's cost in
//! `scripts/bench` is parsing, and catch a reader that turns slow.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderMap, HeaderValue, COOKIE};
use ticket_gateway::fuzzing::{cookies, json, parse_query, query_param, xml, TicketRequest};
use ticket_gateway::telemetry::human::{self, Scratch};
use ticket_gateway::telemetry::sink::{Limits, LogSink};
use ticket_gateway::telemetry::{clock, LogFormat, LogLayer};
use tracing_subscriber::layer::SubscriberExt;

const TICKET_JSON: &[u8] =
    br#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}]}"#;
/// What .NET-minded clients send: other casing, single quotes, a comment, a trailing comma.
const LENIENT_JSON: &[u8] = br#"{ 'userDirectory': 'ACME', /* who */ 'USERID': 'jdoe',
    'Attributes': [ { 'Group': 'Sales' }, { 'Group': 'Finance' }, ], 'TargetId': '', }"#;
const WEBTICKET_XML: &[u8] = br#"<Global method="GetWebTicket"><UserId>ACME\jdoe</UserId><GroupList><string>Sales</string><string>Finance</string></GroupList><GroupsIsNames>true</GroupsIsNames></Global>"#;
const AUTHENTICATE_QUERY: &str = "type=html&try=/QvAJAXZfc/opendoc.htm?document=Sales.qvw&select=LB01,2024&back=/LoginPage.htm&webticket=C04C43FAB7E674520B65E8B095D0E313C1B40D80";
const REDEEM_QUERY: &str = "document=Sales.qvw&qlikTicket=cvXUkqtRnFkSYSHS&lang=en";

fn qps_json(c: &mut Criterion) {
    for (name, body) in [("strict", TICKET_JSON), ("lenient", LENIENT_JSON)] {
        c.bench_function(&format!("qps json::parse + TicketRequest ({name})"), |b| {
            b.iter(|| {
                let v = json::parse(black_box(body)).expect("json");
                black_box(TicketRequest::from_json(&v).expect("ticket request"))
            })
        });
    }
}

fn qlikview_xml(c: &mut Criterion) {
    c.bench_function("qlikview xml::parse", |b| {
        b.iter(|| black_box(xml::parse(black_box(WEBTICKET_XML)).expect("xml")))
    });
}

fn cookie_header(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_static("_ga=GA1.1.123456789.1700000000; X-Qlik-Session-HTTP=4475971f-279a-41f7-a0a0-d6ee45ec2b06; theme=dark"),
    );
    c.bench_function("http::cookies", |b| {
        b.iter(|| black_box(cookies(black_box(&headers), "X-Qlik-Session-HTTP").next()))
    });
}

fn queries(c: &mut Criterion) {
    c.bench_function("http::query_param qlikTicket", |b| {
        b.iter(|| black_box(query_param(Some(black_box(REDEEM_QUERY)), "qlikticket")))
    });
    c.bench_function("parse_query", |b| {
        b.iter(|| black_box(parse_query(black_box(AUTHENTICATE_QUERY))))
    });
}

/// One access event through `RUST_LOG=info`, the layer and the sink (into `io::sink()`).
fn log_event(c: &mut Criterion) {
    for format in [LogFormat::Human, LogFormat::Json] {
        let (sink, _guard) = LogSink::spawn(std::io::sink(), Limits::default());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(LogLayer::new(format, sink));
        tracing::subscriber::with_default(subscriber, || {
            c.bench_function(&format!("access log event ({format:?})"), |b| {
                b.iter(|| {
                    tracing::info!(target: "access", method = "GET", route = "qps_frontend",
                        status = 200u16, latency_us = black_box(182u64), peer = "192.0.2.7:50412")
                })
            });
        });
    }
}

/// The same event through the same formatter, handed to `tracing-appender`'s non-blocking
/// writer (a channel to a worker thread) over a `BufWriter`, lossless like the gateway's
/// sink: the crate the hand-written sink is measured against.
fn log_event_appender(c: &mut Criterion) {
    use std::cell::RefCell;
    use std::io::Write;
    use tracing_subscriber::fmt::MakeWriter;

    struct Appender(tracing_appender::non_blocking::NonBlocking);
    thread_local! {
        static LINE: RefCell<(Vec<u8>, Scratch)> = RefCell::new((Vec::new(), Scratch::default()));
    }
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Appender {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            LINE.with(|line| {
                let (bytes, scratch) = &mut *line.borrow_mut();
                bytes.clear();
                human::human(event, clock::now(), scratch, bytes);
                let _ = self.0.make_writer().write_all(bytes);
            });
        }
    }
    let (writer, _guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::sink()));
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(Appender(writer));
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("access log event (Human, tracing-appender)", |b| {
            b.iter(|| {
                tracing::info!(target: "access", method = "GET", route = "qps_frontend",
                    status = 200u16, latency_us = black_box(182u64), peer = "192.0.2.7:50412")
            })
        });
    });
}

criterion_group!(
    benches,
    log_event_appender,
    qps_json,
    qlikview_xml,
    cookie_header,
    queries,
    log_event
);
criterion_main!(benches);
