//! What operators and load balancers ask of the API listener: liveness (`/healthz`),
//! readiness (`/readyz`) and Prometheus metrics (`/metrics`).

use std::fmt::Write;
use std::time::Duration;

use http::{Response, StatusCode};

use crate::http::{respond, Body, TEXT};
use crate::state::State;
use crate::telemetry::{self, metrics};

/// How long a scrape waits for the store to count one realm's sessions.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up and serving.
pub(crate) fn alive() -> Response<Body> {
    respond(StatusCode::OK, TEXT, "ok")
}

/// `GET /readyz`: the store answers and every OpenID provider has been discovered; a node
/// whose Redis is gone, or that cannot sign anyone in yet, takes no traffic.
pub(crate) async fn ready(state: &State) -> Response<Body> {
    if let Err(e) = state.core.ping().await {
        tracing::warn!(error = %e, "not ready: the store does not answer");
        return respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, "store unreachable");
    }
    let mut waiting: Vec<&str> = state
        .oidc
        .values()
        .filter(|p| !p.is_ready())
        .map(|p| p.issuer())
        .collect();
    if waiting.is_empty() {
        return respond(StatusCode::OK, TEXT, "ready");
    }
    waiting.sort_unstable();
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        TEXT,
        format!("OpenID provider not discovered: {}", waiting.join(", ")),
    )
}

/// `GET /metrics`: the recorded metrics, then the live sessions of every realm, counted
/// at scrape time by the store (without reading them), so the figure stays right whoever
/// ended a session (a timeout, another node).
pub(crate) async fn metrics(state: &State) -> Response<Body> {
    let mut out = metrics::render();
    out.push_str("# HELP ticket_gateway_sessions_live Live sessions per realm.\n# TYPE ticket_gateway_sessions_live gauge\n");
    let realms = state
        .settings
        .virtual_proxies
        .iter()
        .map(|vp| (vp.realm.as_str(), "qps", vp.prefix.as_str()))
        .chain([(crate::qlikview::REALM, "qlikview", "")]);
    for (realm, dialect, vp) in realms {
        match tokio::time::timeout(COUNT_TIMEOUT, state.core.count_sessions(realm)).await {
            Ok(Ok(n)) => {
                let _ = writeln!(
                    out,
                    "ticket_gateway_sessions_live{{dialect=\"{dialect}\",vp=\"{vp}\"}} {n}"
                );
            }
            Ok(Err(e)) => telemetry::store_failed(&e),
            Err(_) => metrics::store_error(),
        }
    }
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out,
    )
}
