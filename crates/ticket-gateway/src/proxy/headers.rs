//! What a forwarded request and its response may carry: hop-by-hop headers stop at the
//! gateway, identity headers only the gateway writes, and `X-Forwarded-*` say where the
//! request came from.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::conn::Conn;

/// Identity headers a client may never set: the gateway alone speaks for the user.
/// (Constant names: no parsing per request.)
pub(crate) const IDENTITY_HEADERS: [HeaderName; 6] = [
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

/// Whether a request asks to upgrade to a WebSocket.
pub(crate) fn is_websocket(headers: &HeaderMap) -> bool {
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

/// What [`strip`] saw of the headers [`forwarded_headers`] sets.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    forwarded_for: bool,
    forwarded_host: bool,
}

/// Removes hop-by-hop headers (and any the `Connection` header names, but `Host`) and
/// every client-supplied identity header in any spelling, in one pass over the names the
/// client sent: a request carries a handful of headers, and almost never one of these.
pub(super) fn strip(headers: &mut HeaderMap, also: &[HeaderName]) -> Seen {
    let mut seen = Seen::default();
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut connection = false;
    for name in headers.keys() {
        let text = name.as_str();
        let remove = if text.contains('_') {
            disguised(text, also)
        } else if text.starts_with("x-") {
            match text {
                "x-forwarded-for" => seen.forwarded_for = true,
                "x-forwarded-host" => seen.forwarded_host = true,
                _ => {}
            }
            (text.starts_with("x-qlik-") && IDENTITY_HEADERS.contains(name)) || also.contains(name)
        } else {
            connection |= name == header::CONNECTION;
            is_hop_by_hop(text) || also.contains(name)
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

/// Whether `name` (which holds a `_`) is an identity header spelled with underscores:
/// `X_Qlik_User` for `X-Qlik-User`, `QV_USER` for `QVUSER`. CGI and WSGI back ends, and
/// many frameworks, fold `-` and `_` alike into `HTTP_X_QLIK_USER`, so such a name would
/// reach them as the identity header itself; the letters and digits are compared.
fn disguised(name: &str, also: &[HeaderName]) -> bool {
    let letters = |s: &str| -> Vec<u8> { s.bytes().filter(u8::is_ascii_alphanumeric).collect() };
    let name = letters(name);
    IDENTITY_HEADERS
        .iter()
        .chain(also)
        .any(|h| letters(h.as_str()) == name)
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

/// The header names a `Connection` header lists: hop-by-hop too, but never `Host` (the
/// gateway sets the back end's, and a request without one is not HTTP/1.1).
fn connection_tokens(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| n != header::HOST)
        .collect()
}

/// Removes hop-by-hop headers from a back end's response.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
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

/// `X-Forwarded-For` (the peer appended to what the client sent), `-Proto` and `-Host`.
pub(super) fn forwarded_headers(
    headers: &mut HeaderMap,
    conn: &Conn,
    host: Option<HeaderValue>,
    seen: Seen,
) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for name in names {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("spoofed"),
            );
        }
        h
    }

    #[test]
    fn identity_headers_go_in_every_spelling() {
        let qv = HeaderName::from_static("qvuser");
        let mut h = request(&[
            "X-Qlik-User",
            "X_Qlik_User",
            "x_qlik_security",
            "X-Qlik_ProxySession",
            "QV_USER",
            "qvuser",
            "x_forwarded_proto_x",
            "accept",
        ]);
        strip(&mut h, &[qv]);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x_forwarded_proto_x"]);
    }

    #[test]
    fn connection_may_not_name_the_host_away() {
        let mut h = request(&["host", "connection", "x-custom"]);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Host, X-Custom"),
        );
        strip(&mut h, &[]);
        assert!(h.contains_key(header::HOST));
        assert!(!h.contains_key("x-custom"));
        assert!(!h.contains_key(header::CONNECTION));
    }
}
