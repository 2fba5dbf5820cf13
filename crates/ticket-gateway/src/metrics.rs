//! Operator metrics in Prometheus text format on the API listener (`GET /metrics`).
//!
//! Counters and histograms go through the `metrics` facade, so recording costs an atomic
//! increment on the request path; the exposition is rendered only when scraped. Live
//! sessions are counted at scrape time from the store, so the figure stays right whoever
//! ended a session (a timeout, another node).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use http::{Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::gateway::Gateway;
use crate::http::{respond, Body};

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

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
        handle
    })
}

/// Installs the recorder; called when a gateway is built, before any request.
pub fn install() {
    let _ = handle();
}

/// A label value that lives as long as the process: virtual proxy prefixes are few and fixed
/// by configuration, so each is interned once and labels cost no allocation per request.
fn label(value: &str) -> &'static str {
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match set.get(value) {
        Some(v) => v,
        None => {
            let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
            set.insert(leaked);
            leaked
        }
    }
}

/// A ticket was issued.
pub fn ticket_issued(dialect: &'static str, vp: &str) {
    metrics::counter!("ticket_gateway_tickets_issued_total", "dialect" => dialect, "vp" => label(vp)).increment(1);
}

/// A ticket was redeemed into a session.
pub fn ticket_redeemed(dialect: &'static str, vp: &str) {
    metrics::counter!("ticket_gateway_tickets_redeemed_total", "dialect" => dialect, "vp" => label(vp)).increment(1);
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

/// The handles of one route's metrics, registered once: recording is then an atomic
/// operation, without a registry lookup per request.
#[derive(Clone)]
struct RouteMetrics {
    latency: metrics::Histogram,
    /// Requests by status class, `1xx` to `5xx`.
    by_class: [metrics::Counter; 5],
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn route_metrics(route: &'static str) -> RouteMetrics {
    static ROUTES: OnceLock<RwLock<HashMap<&'static str, RouteMetrics>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(m) = routes.read().unwrap_or_else(|p| p.into_inner()).get(route) {
        return m.clone();
    }
    let m = RouteMetrics {
        latency: metrics::histogram!("ticket_gateway_request_duration_seconds", "route" => route),
        by_class: CLASSES.map(|class| metrics::counter!("ticket_gateway_requests_total", "route" => route, "status" => class)),
    };
    routes
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(route, m.clone());
    m
}

/// One request answered.
pub fn request(route: &'static str, status: u16, elapsed: Duration) {
    let m = route_metrics(route);
    m.latency.record(elapsed.as_secs_f64());
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    m.by_class[class].increment(1);
}

/// `GET /metrics`.
pub(crate) async fn render(gw: &Gateway) -> Response<Body> {
    let mut out = handle().render();
    out.push_str("# HELP ticket_gateway_sessions_live Live sessions per realm.\n# TYPE ticket_gateway_sessions_live gauge\n");
    let realms = gw
        .settings()
        .virtual_proxies
        .iter()
        .map(|vp| (vp.realm.as_str(), "qps", vp.prefix.as_str()))
        .chain([(crate::qlikview::REALM, "qlikview", "")]);
    for (realm, dialect, vp) in realms {
        let store = gw.core().store().sessions(realm);
        match tokio::time::timeout(Duration::from_secs(2), store).await {
            Ok(Ok(sessions)) => out.push_str(&format!(
                "ticket_gateway_sessions_live{{dialect=\"{dialect}\",vp=\"{vp}\"}} {}\n",
                sessions.len()
            )),
            _ => store_error(),
        }
    }
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out,
    )
}
