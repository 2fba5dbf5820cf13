//! Forwarding authenticated requests to a back end, with the identity the gateway vouches
//! for and nothing the client claimed.
//!
//! Bodies stream both ways (nothing is buffered), connections to the back end are pooled
//! and kept alive, hop-by-hop headers stop here, `X-Forwarded-For/-Proto/-Host` are added,
//! and WebSocket upgrades (the Qlik engine socket `/{vp}/app/…`) are bridged byte for byte
//! until either side closes or the session logs out.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::{ProxySettings, Upstream};
use crate::gateway::{Conn, Gateway};
use crate::http::{query_without, respond, Body, BoxError, HTML};

/// The pooled client every upstream request goes through.
pub type UpstreamClient = Client<HttpConnector, UnsyncBoxBody<Bytes, BoxError>>;

/// Builds the shared client.
pub fn client(settings: &ProxySettings) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http)
}

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

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
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

/// Forwards `req` and returns the back end's response (or a `502`/`504` page).
pub(crate) async fn forward<B>(
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
    target.scheme = Some(to.upstream.scheme.clone());
    target.authority = Some(to.upstream.authority.clone());
    target.path_and_query = path_and_query;
    let Ok(uri) = Uri::from_parts(target) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request target cannot be forwarded.",
        );
    };

    let (mut parts, body) = req.into_parts();
    let original_host = parts.headers.remove(header::HOST);
    strip(&mut parts.headers, to.also_strip);
    forwarded_headers(&mut parts.headers, conn, original_host);
    parts.headers.insert(header::HOST, to.upstream.host.clone());
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

    let settings = &gw.settings().proxy;
    let mut res = match tokio::time::timeout(
        settings.timeout,
        gw.upstream_client().request(upstream_req),
    )
    .await
    {
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
        q.split('&').any(|part| {
            let key = part.split('=').next().unwrap_or("");
            crate::http::percent_decode(key)
                .eq_ignore_ascii_case(crate::qps::frontend::TICKET_PARAM)
        })
    })
}

/// Removes hop-by-hop headers (and any the `Connection` header names) and every
/// client-supplied identity header.
fn strip(headers: &mut HeaderMap, also: Option<&HeaderName>) {
    strip_hop_by_hop(headers);
    // One pass over what the client sent rather than a lookup per forbidden name: a
    // request carries a handful of headers, and almost never one of these.
    let forbidden: Vec<HeaderName> = headers
        .keys()
        .filter(|name| IDENTITY_HEADERS.contains(name) || Some(*name) == also)
        .cloned()
        .collect();
    for name in forbidden {
        headers.remove(name);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    named.extend(
        headers
            .keys()
            .filter(|name| HOP_BY_HOP.contains(name))
            .cloned(),
    );
    for name in named {
        headers.remove(name);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, conn: &Conn, host: Option<HeaderValue>) {
    let peer = conn.peer_ip_text();
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {peer}")).ok(),
        None => HeaderValue::from_str(peer).ok(),
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
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
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
    // `http`'s own rule for the bytes of a header value.
    if !s.bytes().all(|b| b >= 32 && b != 127 || b == b'\t') {
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
