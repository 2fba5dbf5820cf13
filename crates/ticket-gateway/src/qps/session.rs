//! A virtual proxy's session as the browser holds it: read from the cookie, set, expired;
//! and what a new session's start means for the user's other sessions.

use http::header::SET_COOKIE;
use http::{HeaderMap, Response};
use ticket_core::{Session, StoreError};

use crate::config::VirtualProxy;

/// The header that carries a session's CSRF token.
pub(crate) const CSRF_HEADER: http::HeaderName = http::HeaderName::from_static("qlik-csrf-token");
use crate::conn::Conn;
use crate::http::{cookies, expired_cookie, session_cookie, Body};
use crate::state::State;
use crate::telemetry::audit;

/// The live session named by one of this virtual proxy's cookies, touched. Both the plain
/// name and the `-HTTP` name are read: a portal that created the session through the
/// session API sets the cookie itself, under the configured name.
pub(crate) async fn current(
    state: &State,
    vp: &VirtualProxy,
    headers: &HeaderMap,
) -> Result<Option<Session>, StoreError> {
    for id in ids(vp, headers) {
        if let Some(s) = state.core.touch_session(&vp.realm, id).await? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// The non-empty values of this virtual proxy's session cookies.
pub(crate) fn ids<'r>(
    vp: &'r VirtualProxy,
    headers: &'r HeaderMap,
) -> impl Iterator<Item = &'r str> + 'r {
    cookies(headers, &vp.session_cookie_name)
        .chain(cookies(headers, &vp.http_session_cookie_name))
        .filter(|id| !id.is_empty())
}

/// The cookie name for this connection: `-HTTP` over plain http.
pub(crate) fn cookie_name<'v>(vp: &'v VirtualProxy, conn: &Conn) -> &'v str {
    if conn.secure {
        &vp.session_cookie_name
    } else {
        &vp.http_session_cookie_name
    }
}

/// `<name>[-HTTP]=<id>; Path=/; HttpOnly[; Secure]<attributes>`.
pub(crate) fn set_cookie(res: &mut Response<Body>, vp: &VirtualProxy, conn: &Conn, id: &str) {
    let name = cookie_name(vp, conn);
    if let Some(v) = session_cookie(name, id, conn.secure, &vp.session_cookie_attributes) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Expires the session cookie in the browser, under both names it may have, with the same
/// `Domain` it was set with.
pub(crate) fn clear_cookies(res: &mut Response<Body>, vp: &VirtualProxy, conn: &Conn) {
    for name in [&vp.session_cookie_name, &vp.http_session_cookie_name] {
        if let Some(v) = expired_cookie(name, conn.secure, &vp.session_cookie_attributes) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
}

/// Audits a new session and the sessions it evicted (the core announces their end, and
/// the proxy closes their sockets).
pub(crate) fn started(vp: &VirtualProxy, session: &Session, evicted: Vec<Session>, conn: &Conn) {
    for old in evicted {
        audit::session_ended(
            "qps",
            &vp.prefix,
            &old.identity,
            &old.id,
            conn,
            "evicted by a newer session",
        );
    }
    audit::session_started("qps", &vp.prefix, &session.identity, &session.id, conn);
}
