//! Liveness and readiness on the API listener, for load balancers and orchestrators.

use http::{Response, StatusCode};

use crate::gateway::Gateway;
use crate::http::{respond, Body, TEXT};

/// `GET /healthz`: the process is up and serving.
pub(crate) fn alive() -> Response<Body> {
    respond(StatusCode::OK, TEXT, "ok")
}

/// `GET /readyz`: the store answers; a node whose Redis is gone takes no traffic.
pub(crate) async fn ready(gw: &Gateway) -> Response<Body> {
    match gw.core().ping().await {
        Ok(()) => respond(StatusCode::OK, TEXT, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, "store unreachable")
        }
    }
}
