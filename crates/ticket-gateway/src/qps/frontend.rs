//! What a browser meets at `/{vp}/…`: ticket redemption, the session cookie, and the
//! redirect to the authentication module.
//!
//! Order of checks on every request:
//! 1. A ticket (`qlikTicket` in any casing, or an `X-Qlik-Ticket` header) is consumed. If it
//!    was good, a new session starts and the response is the requested resource itself
//!    with `Set-Cookie`, not a redirect. If not, the browser goes to log in again.
//! 2. A session cookie naming a live session of this virtual proxy lets the request through
//!    and restarts the inactivity timeout.
//! 3. Anything else is sent to the authentication module with a fresh target id.
//!
//! "The resource" is the virtual proxy's back end when it has one (see [`crate::proxy`]),
//! else the built-in identity page.

use std::future::Future;

use http::header::{HeaderValue, SET_COOKIE};
use http::{Request, Response, StatusCode};
use ticket_core::{Redemption, Session, StoreError};

use crate::audit;
use crate::config::VirtualProxy;
use crate::gateway::{Conn, Gateway};
use crate::http::{
    cookies, found, percent_encode_lower, query_param, query_without, respond, session_cookie,
    Body, BoxError, HTML,
};
use crate::identity_page;
use crate::proxy::{self, Forward};

/// The query parameter that carries a ticket back to the proxy.
pub const TICKET_PARAM: &str = "qlikTicket";
/// The header name the Qlik documentation gives for the same purpose.
pub const TICKET_HEADER: http::HeaderName = http::HeaderName::from_static("x-qlik-ticket");

/// Why a browser gets no session.
enum Refusal {
    /// No or a bad ticket, no or a dead session: log in.
    Login,
    /// The user already holds the most sessions allowed.
    TooManySessions,
    /// The store failed.
    Unavailable,
}

/// Serves a request behind a virtual proxy.
pub(crate) fn serve<'a, B>(
    gw: &'a Gateway,
    req: Request<B>,
    vp: &'a VirtualProxy,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let ticket = query_param(req.uri().query(), TICKET_PARAM)
        .map(|t| t.into_owned())
        .or_else(|| {
            req.headers()
                .get(TICKET_HEADER)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    // A plain function returning an `async` block: the block holds the request once,
    // where an `async fn` would hold its argument and a copy of it.
    async move {
        let outcome = match ticket {
            Some(ticket) => redeem(gw, vp, &ticket, conn).await.map(|s| (s, true)),
            None => match current_session(gw, vp, &req).await {
                Ok(Some(s)) => Ok((s, false)),
                Ok(None) => Err(Refusal::Login),
                Err(()) => Err(Refusal::Unavailable),
            },
        };
        match outcome {
            Ok((session, new)) => {
                let mut res = resource(gw, req, vp, &session, conn).await;
                if new {
                    set_session_cookie(&mut res, vp, conn, &session.id);
                }
                res
            }
            Err(Refusal::Login) => login_redirect(gw, vp, &req).await,
            Err(Refusal::TooManySessions) => too_many_sessions(),
            Err(Refusal::Unavailable) => unavailable(),
        }
    }
}

/// What an authenticated request gets: the back end's answer, or the identity page.
async fn resource<B>(
    gw: &Gateway,
    req: Request<B>,
    vp: &VirtualProxy,
    session: &Session,
    conn: &Conn,
) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match &vp.upstream {
        Some(upstream) => {
            let to = Forward {
                upstream,
                identity: super::identity::headers(vp, session),
                also_strip: Some(&gw.settings().qlikview.upstream_user_header),
                session: (&session.realm, &session.id),
            };
            proxy::forward(gw, req, to, conn).await
        }
        None => identity_page::render(
            req.headers(),
            req.uri().path(),
            Some(&vp.prefix),
            &session.identity,
        ),
    }
}

/// Consumes `ticket` and starts a session for its user, within the per-user limit: one
/// step for the store (one round trip for Redis).
async fn redeem(
    gw: &Gateway,
    vp: &VirtualProxy,
    ticket: &str,
    conn: &Conn,
) -> Result<Session, Refusal> {
    let redeemed = gw
        .core()
        .redeem_into_session(
            &vp.realm,
            ticket,
            vp.session_inactivity_timeout,
            Some(vp.session_limit),
        )
        .await
        .map_err(|e| store_failed(&e))?;
    let identity = match &redeemed {
        Redemption::Started { ticket, .. } | Redemption::LimitReached(ticket) => {
            Some(&ticket.identity)
        }
        Redemption::NoTicket | Redemption::WrongRealm(_) => None,
    };
    audit::ticket_redeemed("qps", &vp.prefix, identity, ticket, conn);
    match redeemed {
        Redemption::Started {
            session, evicted, ..
        } => {
            session_started(gw, vp, &session, evicted, conn);
            Ok(session)
        }
        Redemption::LimitReached(_) => {
            crate::metrics::ticket_refused("qps", &vp.prefix, "too_many_sessions");
            tracing::info!(target: "audit", event = "session_refused", dialect = "qps", vp = vp.prefix.as_str(),
                peer = conn.peer_text(), outcome = "refused", reason = "UsageDenied: too many sessions");
            Err(Refusal::TooManySessions)
        }
        Redemption::NoTicket | Redemption::WrongRealm(_) => Err(Refusal::Login),
    }
}

/// Audits a new session and ends, with their sockets, the sessions it evicted.
pub(crate) fn session_started(
    gw: &Gateway,
    vp: &VirtualProxy,
    session: &Session,
    evicted: Vec<Session>,
    conn: &Conn,
) {
    for old in evicted {
        gw.sockets().close(&old.realm, &old.id);
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

/// The live session named by one of this virtual proxy's cookies, touched. Both the plain
/// name and the `-HTTP` name are read: a portal that created the session through the
/// session API sets the cookie itself, under the configured name.
pub(crate) async fn current_session<B>(
    gw: &Gateway,
    vp: &VirtualProxy,
    req: &Request<B>,
) -> Result<Option<Session>, ()> {
    for id in session_ids(vp, req) {
        match gw.core().touch_session(&vp.realm, id).await {
            Ok(Some(s)) => return Ok(Some(s)),
            Ok(None) => {}
            Err(e) => {
                store_failed(&e);
                return Err(());
            }
        }
    }
    Ok(None)
}

/// The non-empty values of this virtual proxy's session cookies.
pub(crate) fn session_ids<'r, B>(
    vp: &'r VirtualProxy,
    req: &'r Request<B>,
) -> impl Iterator<Item = &'r str> + 'r {
    cookies(req.headers(), &vp.session_cookie_name)
        .chain(cookies(req.headers(), &vp.http_session_cookie_name))
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

/// `<name>[-HTTP]=<id>; Path=/; HttpOnly[; Secure]`.
fn set_session_cookie(res: &mut Response<Body>, vp: &VirtualProxy, conn: &Conn, id: &str) {
    let name = cookie_name(vp, conn);
    if let Some(v) = session_cookie(name, id, conn.secure, &vp.session_cookie_attributes) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Expires the session cookie in the browser, under both names it may have, with the same
/// `Domain` it was set with (a browser clears only a cookie whose domain matches).
pub(crate) fn clear_session_cookies(res: &mut Response<Body>, vp: &VirtualProxy, conn: &Conn) {
    let secure = if conn.secure { "; Secure" } else { "" };
    for name in [&vp.session_cookie_name, &vp.http_session_cookie_name] {
        let cookie = format!(
            "{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}{}",
            vp.session_cookie_attributes
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
}

/// `302` to the authentication module with `proxyRestUri` and a new `targetId` naming the
/// URL the browser asked for (without any ticket parameter).
async fn login_redirect<B>(gw: &Gateway, vp: &VirtualProxy, req: &Request<B>) -> Response<Body> {
    let settings = gw.settings();
    let mut target = format!("{}{}", settings.frontend.public_url, req.uri().path());
    if let Some(q) = query_without(req.uri().query(), TICKET_PARAM) {
        target.push('?');
        target.push_str(&q);
    }
    match login_location(gw, vp, &target).await {
        Ok(location) => found(&location),
        Err(e) => {
            store_failed(&e);
            unavailable()
        }
    }
}

/// The authentication module's URL for a browser that should come back to `target`:
/// `<auth module>?proxyRestUri=<lowercase %xx>&targetId=<new guid>`.
pub(crate) async fn login_location(
    gw: &Gateway,
    vp: &VirtualProxy,
    target: &str,
) -> Result<String, StoreError> {
    let target_id = gw.core().new_target(&vp.realm, target).await?;
    let uri = &vp.auth_module_redirect_uri;
    let sep = if uri.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{uri}{sep}proxyRestUri={}&targetId={target_id}",
        percent_encode_lower(&proxy_rest_uri(gw, vp))
    ))
}

/// The REST base of a virtual proxy, with the trailing slash auth modules expect:
/// `<api public url>/qps/<prefix>/`, or `/qps/` for the default proxy.
pub(crate) fn proxy_rest_uri(gw: &Gateway, vp: &VirtualProxy) -> String {
    let base = &gw.settings().api.public_url;
    if vp.prefix.is_empty() {
        format!("{base}/qps/")
    } else {
        format!("{base}/qps/{}/", vp.prefix)
    }
}

/// The front-end URL of a path under a virtual proxy: `<public url>[/<prefix>]<path>`.
pub(crate) fn frontend_url(gw: &Gateway, vp: &VirtualProxy, path: &str) -> String {
    let base = &gw.settings().frontend.public_url;
    if vp.prefix.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}/{}{path}", vp.prefix)
    }
}

fn store_failed(e: &StoreError) -> Refusal {
    tracing::error!(error = %e, "session store failed");
    crate::metrics::store_error();
    Refusal::Unavailable
}

fn too_many_sessions() -> Response<Body> {
    respond(
        StatusCode::FORBIDDEN,
        HTML,
        "<!DOCTYPE html><html><head><title>Too many sessions</title></head><body><h1>Too many sessions</h1><p>You already have the maximum number of sessions open. Log out of another session, or wait for one to time out, and try again.</p></body></html>",
    )
}

fn unavailable() -> Response<Body> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        HTML,
        "<!DOCTYPE html><html><head><title>Service unavailable</title></head><body><h1>Service unavailable</h1><p>The session store cannot be reached. Try again in a moment.</p></body></html>",
    )
}
