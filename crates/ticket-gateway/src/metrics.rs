//! Operator metrics in Prometheus text format on the API listener (`GET /metrics`).
//!
//! Counters and histograms go through the `metrics` facade, so recording costs an atomic
//! increment on the request path; the exposition is rendered only when scraped. Live
//! sessions are counted at scrape time from the store, so the figure stays right whoever
//! ended a session (a timeout, another node).

use std::sync::OnceLock;
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

/// A ticket was issued.
pub fn ticket_issued(dialect: &'static str, vp: &str) {
    metrics::counter!("ticket_gateway_tickets_issued_total", "dialect" => dialect, "vp" => vp.to_owned()).increment(1);
}

/// A ticket was redeemed into a session.
pub fn ticket_redeemed(dialect: &'static str, vp: &str) {
    metrics::counter!("ticket_gateway_tickets_redeemed_total", "dialect" => dialect, "vp" => vp.to_owned()).increment(1);
}

/// A ticket request or redemption was refused.
pub fn ticket_refused(dialect: &'static str, vp: &str, reason: &'static str) {
    metrics::counter!("ticket_gateway_tickets_refused_total", "dialect" => dialect, "vp" => vp.to_owned(), "reason" => reason)
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

/// One request answered.
pub fn request(route: &'static str, status: u16, elapsed: Duration) {
    metrics::histogram!("ticket_gateway_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("ticket_gateway_requests_total", "route" => route, "status" => class)
        .increment(1);
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
