//! Forwarding one authenticated request to its back end (see [`super`]).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use super::headers::{forwarded_headers, is_websocket, strip, strip_hop_by_hop};
use super::websocket::{Liveness, Relay, Speech};
use super::Proxy;
use crate::config::Upstream;
use crate::conn::Conn;
use crate::http::pace::{ClientFault, Fault, Paced};
use crate::http::{page, Body, BoxError};
use crate::telemetry::metrics;

/// Where and as whom to forward.
#[derive(Debug)]
pub(crate) struct Forward<'a> {
    /// The back end.
    pub upstream: &'a Upstream,
    /// Headers naming the user, added after every client-supplied identity header is gone.
    pub identity: Vec<(HeaderName, HeaderValue)>,
    /// More client headers to strip (a header-authentication header, `Authorization`).
    pub also_strip: &'a [HeaderName],
    /// The session, for closing its sockets when it ends: `(realm, id)`.
    pub session: (&'a str, &'a str),
    /// For a WebSocket: what the gateway says on it, and the session it keeps alive.
    pub websocket: Option<WebSocketTerms>,
}

/// What a bridged WebSocket gets from the gateway.
#[derive(Debug, Clone)]
pub(crate) struct WebSocketTerms {
    /// What the gateway says on it.
    pub speech: Speech,
    /// The session its use keeps alive.
    pub liveness: Option<Liveness>,
}

impl Default for WebSocketTerms {
    fn default() -> Self {
        WebSocketTerms {
            speech: Speech {
                greeting: None,
                farewell: |_| None,
            },
            liveness: None,
        }
    }
}

/// A proxied request in flight.
pub(crate) type Forwarding<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Forwards `req` and returns the back end's response (or a `502`/`504` page).
///
/// Boxed: a proxied request's state (the back end's response future among it) is large,
/// and every request future that might await it would otherwise carry it, and copy it
/// each time the future moves.
pub(super) fn forward<'a, B>(
    proxy: &'a Proxy,
    req: Request<B>,
    to: Forward<'a>,
    conn: &'a Conn,
) -> Forwarding<'a>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Box::pin(forward_boxed(proxy, req, to, conn))
}

async fn forward_boxed<B>(
    proxy: &Proxy,
    mut req: Request<B>,
    to: Forward<'_>,
    conn: &Conn,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let websocket = is_websocket(req.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));

    // Origin form (`/path?query`), as a request to an origin server is written; hyper's
    // connection writes the target as it is given. The client's own path and query, shared.
    let mut target = http::uri::Parts::default();
    target.path_and_query = req.uri().path_and_query().cloned();
    let Ok(uri) = Uri::from_parts(target) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request target cannot be forwarded.",
        );
    };

    let (mut parts, body) = req.into_parts();
    // The host the client asked for: its `Host`, or an HTTP/2 client's `:authority`.
    let original_host = parts
        .headers
        .insert(header::HOST, to.upstream.host.clone())
        .or_else(|| {
            let authority = parts.uri.authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
    let seen = strip(&mut parts.headers, to.also_strip);
    forwarded_headers(&mut parts.headers, conn, original_host, seen);
    if websocket {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    for (name, value) in to.identity {
        parts.headers.append(name, value);
    }
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    // The client's body streams on, held to the same pace as any other; its failures are
    // the client's, told apart from the back end's below.
    let fault = Fault::default();
    let body = Paced::new(body, proxy.pace, fault.clone());
    let upstream_req = Request::from_parts(parts, body.boxed_unsync());

    let Some(pool) = proxy.pools.get(&to.upstream.authority) else {
        // Every upstream of the settings has a pool: a bug, not a client error.
        tracing::error!(upstream = %to.upstream.authority, "no connection pool for this back end");
        return page(
            StatusCode::BAD_GATEWAY,
            "Bad gateway",
            "The back end could not be reached.",
        );
    };
    let mut res = match tokio::time::timeout(proxy.settings.timeout, pool.send(upstream_req)).await
    {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            if let Some(fault) = fault.get() {
                tracing::debug!(error = %e, "the client's request body failed: {fault}");
                return client_fault(fault);
            }
            tracing::warn!(error = %e, upstream = %to.upstream.authority, "upstream unreachable");
            metrics::upstream_error("unreachable");
            return page(StatusCode::BAD_GATEWAY, "Bad gateway", "The back end could not be reached. Your session is still valid; try again in a moment.");
        }
        Err(_) => {
            tracing::warn!(upstream = %to.upstream.authority, "upstream timed out");
            metrics::upstream_error("timeout");
            return page(StatusCode::GATEWAY_TIMEOUT, "Gateway timeout", "The back end did not answer in time. Your session is still valid; try again in a moment.");
        }
    };

    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, res.status())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        let registration = proxy.sockets.register(to.session.0, to.session.1);
        let terms = to.websocket.unwrap_or_default();
        let relay = Relay {
            speech: terms.speech,
            liveness: terms.liveness,
            ending: registration.ending.clone(),
            idle_timeout: proxy.websocket_idle_timeout,
        };
        // The socket keeps the connection's place under `max_connections`.
        let slot = conn.take_slot();
        proxy.tasks.spawn(async move {
            let _held = (slot, registration);
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    relay
                        .run(TokioIo::new(client), TokioIo::new(upstream))
                        .await;
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let (parts, _) = res.into_parts();
        return Response::from_parts(parts, crate::http::empty());
    }

    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::stream(body.map_err(Into::into)))
}

/// A request whose body the client failed to send: its fault, not the back end's.
fn client_fault(fault: ClientFault) -> Response<Body> {
    match fault {
        ClientFault::TimedOut => page(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout",
            "The request body did not arrive in time.",
        ),
        ClientFault::Broken => page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request body could not be read.",
        ),
    }
}
