//! Operator metrics in Prometheus text format on the API listener (`GET /metrics`).
//!
//! Counters and histograms go through the `metrics` facade, so recording costs an atomic
//! increment on the request path; the exposition is rendered only when scraped (see
//! [`crate::ops`], which adds the live sessions counted in the store).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often samples recorded into histograms are folded into their buckets. The
/// exporter buffers every sample until then (or until a scrape), so without this a
/// gateway nobody scrapes would hold every latency it ever measured.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide recorder (installed once; every gateway in the process shares it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed already; /metrics shows only this one"
            );
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms fold only when scraped");
        }
        handle
    })
}

/// Installs the recorder; called when a gateway is built, before any request.
pub fn install() {
    let _ = handle();
}

/// The exposition of every metric recorded so far, Prometheus text.
pub fn render() -> String {
    handle().render()
}

/// A registry of handles that are registered once and then live as long as the process:
/// label values are few and fixed by configuration (routes, virtual proxy prefixes), so
/// recording is an atomic operation on the request path, without a lookup in the
/// exporter's registry or an allocation.
struct Handles<V: ?Sized + 'static> {
    map: RwLock<HashMap<Box<str>, &'static V, foldhash::fast::FixedState>>,
}

impl<V: ?Sized> Handles<V> {
    fn new() -> Self {
        Handles {
            map: RwLock::new(HashMap::default()),
        }
    }
}

impl<V> Handles<V> {
    fn get(&self, key: &str, register: impl FnOnce() -> V) -> &'static V {
        if let Some(v) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return v;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key.into())
            .or_insert_with(|| Box::leak(Box::new(register())))
    }
}

/// The ticket counters of one dialect and virtual proxy.
struct TicketCounters {
    issued: metrics::Counter,
    redeemed: metrics::Counter,
}

fn ticket_counters(dialect: &'static str, vp: &str) -> &'static TicketCounters {
    static QPS: OnceLock<Handles<TicketCounters>> = OnceLock::new();
    static QLIKVIEW: OnceLock<Handles<TicketCounters>> = OnceLock::new();
    let handles = if dialect == "qps" { &QPS } else { &QLIKVIEW };
    handles.get_or_init(Handles::new).get(vp, || {
        let vp = label(vp);
        TicketCounters {
            issued: metrics::counter!("ticket_gateway_tickets_issued_total", "dialect" => dialect, "vp" => vp),
            redeemed: metrics::counter!("ticket_gateway_tickets_redeemed_total", "dialect" => dialect, "vp" => vp),
        }
    })
}

/// A label value that lives as long as the process (see [`Handles`]).
fn label(value: &str) -> &'static str {
    static INTERNED: OnceLock<Handles<str>> = OnceLock::new();
    INTERNED.get_or_init(Handles::new).get_str(value)
}

impl Handles<str> {
    fn get_str(&self, key: &str) -> &'static str {
        if let Some(v) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return v;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key.into())
            .or_insert_with(|| Box::leak(key.to_owned().into_boxed_str()))
    }
}

/// A ticket was issued.
pub fn ticket_issued(dialect: &'static str, vp: &str) {
    ticket_counters(dialect, vp).issued.increment(1);
}

/// A ticket was redeemed into a session.
pub fn ticket_redeemed(dialect: &'static str, vp: &str) {
    ticket_counters(dialect, vp).redeemed.increment(1);
}

/// A ticket request or redemption was refused. An unknown prefix from a request is not
/// interned (it could be anything): it is counted under `vp="?"`.
pub fn ticket_refused(dialect: &'static str, vp: &str, reason: &'static str) {
    metrics::counter!("ticket_gateway_tickets_refused_total", "dialect" => dialect, "vp" => label(vp), "reason" => reason)
        .increment(1);
}

/// The store failed an operation.
pub fn store_error() {
    metrics::counter!("ticket_gateway_store_errors_total").increment(1);
}

/// A back end could not be reached (`unreachable`) or did not answer in time (`timeout`).
pub fn upstream_error(kind: &'static str) {
    metrics::counter!("ticket_gateway_upstream_errors_total", "kind" => kind).increment(1);
}

/// The handles of one route's metrics.
struct RouteMetrics {
    latency: metrics::Histogram,
    /// Requests by status class, `1xx` to `5xx`.
    by_class: [metrics::Counter; 5],
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn route_metrics(route: &'static str) -> &'static RouteMetrics {
    static ROUTES: OnceLock<Handles<RouteMetrics>> = OnceLock::new();
    ROUTES.get_or_init(Handles::new).get(route, || RouteMetrics {
        latency: metrics::histogram!("ticket_gateway_request_duration_seconds", "route" => route),
        by_class: CLASSES.map(|class| metrics::counter!("ticket_gateway_requests_total", "route" => route, "status" => class)),
    })
}

/// One request answered.
pub fn request(route: &'static str, status: u16, elapsed: Duration) {
    let m = route_metrics(route);
    m.latency.record(elapsed.as_secs_f64());
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    m.by_class[class].increment(1);
}
