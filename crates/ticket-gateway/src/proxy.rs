//! Forwarding authenticated requests to a back end, with the identity the gateway vouches
//! for and nothing the client claimed.
//!
//! Bodies stream both ways (nothing is buffered), connections to the back end are pooled
//! and kept alive, hop-by-hop headers stop here, `X-Forwarded-For/-Proto/-Host` are added,
//! and WebSocket upgrades (the Qlik engine socket `/{vp}/app/…`) are bridged byte for byte
//! until either side closes or the session logs out.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::config::Upstream;
use crate::gateway::{Conn, Gateway};
use crate::http::{query_without, respond, Body, BoxError, HTML};

/// Identity headers a client may never set: the gateway alone speaks for the user.
/// (Constant names: no parsing per request.)
pub const IDENTITY_HEADERS: [HeaderName; 6] = [
    HeaderName::from_static("x-qlik-user"),
    HeaderName::from_static("x-qlik-security"),
    HeaderName::from_static("x-qlik-proxysession"),
    HeaderName::from_static("x-qlik-proxyid"),
    HeaderName::from_static("x-qlik-virtual-proxy-prefix"),
    HeaderName::from_static("x-qlik-ticket"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Where and as whom to forward.
#[derive(Debug)]
pub(crate) struct Forward<'a> {
    /// The back end.
    pub upstream: &'a Upstream,
    /// Headers naming the user, added after every client-supplied identity header is gone.
    pub identity: Vec<(HeaderName, HeaderValue)>,
    /// One more client header to strip (the QlikView header-authentication header).
    pub also_strip: Option<&'a HeaderName>,
    /// The session, for closing its sockets on logout: `(realm, id)`.
    pub session: (&'a str, &'a str),
}

/// A proxied request in flight.
pub(crate) type Forwarding<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Forwards `req` and returns the back end's response (or a `502`/`504` page).
///
/// Boxed: a proxied request's state (the back end's response future among it) is large,
/// and every request future that might await it would otherwise carry it, and copy it
/// each time the future moves.
pub(crate) fn forward<'a, B>(
    gw: &'a Gateway,
    req: Request<B>,
    to: Forward<'a>,
    conn: &'a Conn,
) -> Forwarding<'a>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Box::pin(forward_boxed(gw, req, to, conn))
}

async fn forward_boxed<B>(
    gw: &Gateway,
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

    let (path, query) = (req.uri().path(), req.uri().query());
    // Origin form (`/path?query`), as a request to an origin server is written; hyper's
    // connection writes the target as it is given.
    let path_and_query = if has_ticket_param(query) {
        match query_without(query, crate::qps::frontend::TICKET_PARAM) {
            Some(q) => format!("{path}?{q}").parse().ok(),
            None => path.parse().ok(),
        }
    } else {
        // The common case, no ticket to drop: the client's own path and query, shared.
        req.uri().path_and_query().cloned()
    };
    let mut target = http::uri::Parts::default();
    target.path_and_query = path_and_query;
    let Ok(uri) = Uri::from_parts(target) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request target cannot be forwarded.",
        );
    };

    let (mut parts, body) = req.into_parts();
    let original_host = parts.headers.insert(header::HOST, to.upstream.host.clone());
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
    let upstream_req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());

    let Some(pool) = gw.upstreams().get(&to.upstream.authority) else {
        // Every upstream of the settings has a pool: a bug, not a client error.
        tracing::error!(upstream = %to.upstream.authority, "no connection pool for this back end");
        return page(
            StatusCode::BAD_GATEWAY,
            "Bad gateway",
            "The back end could not be reached.",
        );
    };
    let settings = &gw.settings().proxy;
    let mut res = match tokio::time::timeout(settings.timeout, pool.send(upstream_req)).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, upstream = %to.upstream.authority, "upstream unreachable");
            crate::metrics::upstream_error("unreachable");
            return page(StatusCode::BAD_GATEWAY, "Bad gateway", "The back end could not be reached. Your session is still valid; try again in a moment.");
        }
        Err(_) => {
            tracing::warn!(upstream = %to.upstream.authority, "upstream timed out");
            crate::metrics::upstream_error("timeout");
            return page(StatusCode::GATEWAY_TIMEOUT, "Gateway timeout", "The back end did not answer in time. Your session is still valid; try again in a moment.");
        }
    };

    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, res.status())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        let registration = gw.sockets().register(to.session.0, to.session.1);
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(both) => both,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                    tracing::debug!(result = ?r.map(|_| ()), "websocket closed");
                }
                () = registration.closed.cancelled() => {
                    tracing::debug!("websocket closed: the session logged out");
                }
            }
        });
        let (parts, _) = res.into_parts();
        return Response::from_parts(parts, crate::http::empty());
    }

    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::stream(body.map_err(Into::into)))
}

fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Whether a query holds a `qlikTicket` parameter (any casing) to drop before forwarding.
fn has_ticket_param(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        crate::http::split_ascii(q, b'&').any(|part| {
            let key = crate::http::split_ascii(part, b'=').next().unwrap_or("");
            crate::http::percent_decode(key)
                .eq_ignore_ascii_case(crate::qps::frontend::TICKET_PARAM)
        })
    })
}

/// What [`strip`] saw of the headers [`forwarded_headers`] sets.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    forwarded_for: bool,
    forwarded_host: bool,
}

/// Removes hop-by-hop headers (and any the `Connection` header names) and every
/// client-supplied identity header, in one pass over the names the client sent: a request
/// carries a handful of headers, and almost never one of these.
fn strip(headers: &mut HeaderMap, also: Option<&HeaderName>) -> Seen {
    let mut seen = Seen::default();
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut connection = false;
    for name in headers.keys() {
        let text = name.as_str();
        let remove = if text.starts_with("x-") {
            match text {
                "x-forwarded-for" => seen.forwarded_for = true,
                "x-forwarded-host" => seen.forwarded_host = true,
                _ => {}
            }
            (text.starts_with("x-qlik-") && IDENTITY_HEADERS.contains(name)) || Some(name) == also
        } else {
            connection |= name == header::CONNECTION;
            is_hop_by_hop(text) || Some(name) == also
        };
        if remove {
            doomed.push(name.clone());
        }
    }
    if connection {
        doomed.extend(connection_tokens(headers));
    }
    for name in doomed {
        headers.remove(name);
    }
    seen
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The header names a `Connection` header lists: hop-by-hop too.
fn connection_tokens(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// Removes hop-by-hop headers from a back end's response.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut connection = false;
    for name in headers.keys() {
        connection |= name == header::CONNECTION;
        if is_hop_by_hop(name.as_str()) {
            doomed.push(name.clone());
        }
    }
    if connection {
        doomed.extend(connection_tokens(headers));
    }
    for name in doomed {
        headers.remove(name);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, conn: &Conn, host: Option<HeaderValue>, seen: Seen) {
    let prior = seen
        .forwarded_for
        .then(|| headers.get(&X_FORWARDED_FOR))
        .flatten()
        .and_then(|v| v.to_str().ok());
    let xff = match prior {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {}", conn.peer_ip_text())).ok(),
        None => Some(conn.peer_ip_header().clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    let proto = if conn.secure { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    match host {
        Some(h) => {
            headers.insert(X_FORWARDED_HOST, h);
        }
        None if seen.forwarded_host => {
            headers.remove(X_FORWARDED_HOST);
        }
        None => {}
    }
}

/// A header value from user data: as UTF-8 bytes when valid, percent-encoded otherwise
/// (a control character must never split a header).
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| {
        let encoded = crate::redirect::location_safe(s);
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// [`header_value`] of a string built for the purpose: its buffer becomes the value, with
/// no copy.
pub(crate) fn header_value_owned(s: String) -> HeaderValue {
    // `http`'s own rule for the bytes of a header value, over every byte without an early
    // exit, so that it runs on whole vectors.
    let invalid = s
        .bytes()
        .fold(false, |bad, b| bad | (b < 32 && b != b'\t') | (b == 127));
    if invalid {
        return header_value(&s);
    }
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    respond(
        status,
        HTML,
        format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"),
    )
}
