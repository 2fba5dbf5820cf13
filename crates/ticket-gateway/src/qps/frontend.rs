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

use http::header::{HeaderValue, SET_COOKIE};
use http::{Request, Response, StatusCode};
use ticket_core::Session;

use crate::audit;
use crate::config::VirtualProxy;
use crate::gateway::{Conn, Gateway};
use crate::http::{
    cookies, found, percent_encode_lower, query_param, query_without, respond, Body, HTML,
};
use crate::identity_page;

/// The query parameter that carries a ticket back to the proxy.
pub const TICKET_PARAM: &str = "qlikTicket";
/// The header name the Qlik documentation gives for the same purpose.
pub const TICKET_HEADER: &str = "x-qlik-ticket";
/// Suffix Qlik Sense adds to the session cookie name over plain http.
pub const HTTP_COOKIE_SUFFIX: &str = "-HTTP";

/// Serves a request behind a virtual proxy.
pub(crate) async fn serve<B>(
    gw: &Gateway,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Response<Body> {
    let ticket = query_param(req.uri().query(), TICKET_PARAM)
        .map(|t| t.into_owned())
        .or_else(|| {
            req.headers()
                .get(TICKET_HEADER)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    if let Some(ticket) = ticket {
        return match redeem(gw, vp, &ticket, conn).await {
            Ok(Some(session)) => {
                let mut res = resource(&req, vp, &session);
                set_session_cookie(&mut res, vp, conn, &session.id);
                res
            }
            Ok(None) => login_redirect(gw, vp, &req).await,
            Err(()) => unavailable(),
        };
    }
    match current_session(gw, vp, &req).await {
        Ok(Some(session)) => resource(&req, vp, &session),
        Ok(None) => login_redirect(gw, vp, &req).await,
        Err(()) => unavailable(),
    }
}

/// What an authenticated request gets: the built-in identity page.
fn resource<B>(req: &Request<B>, vp: &VirtualProxy, session: &Session) -> Response<Body> {
    identity_page::render(
        req.headers(),
        req.uri().path(),
        Some(&vp.prefix),
        &session.identity,
    )
}

/// Consumes `ticket` and starts a session for its user.
async fn redeem(
    gw: &Gateway,
    vp: &VirtualProxy,
    ticket: &str,
    conn: &Conn,
) -> Result<Option<Session>, ()> {
    let redeemed = gw
        .core()
        .redeem(&vp.realm, ticket)
        .await
        .map_err(store_failed)?;
    audit::ticket_redeemed(
        "qps",
        &vp.prefix,
        redeemed.as_ref().map(|t| &t.identity),
        ticket,
        conn,
    );
    let Some(ticket) = redeemed else {
        return Ok(None);
    };
    let (session, _evicted) = gw
        .core()
        .start_session(
            &vp.realm,
            ticket.identity,
            vp.session_inactivity_timeout,
            None,
        )
        .await
        .map_err(store_failed)?;
    audit::session_started("qps", &vp.prefix, &session.identity, &session.id, conn);
    Ok(Some(session))
}

/// The live session named by one of this virtual proxy's cookies, touched. Both the plain
/// name and the `-HTTP` name are read: a portal that created the session through the
/// session API sets the cookie itself, under the configured name.
pub(crate) async fn current_session<B>(
    gw: &Gateway,
    vp: &VirtualProxy,
    req: &Request<B>,
) -> Result<Option<Session>, ()> {
    let http_name = format!("{}{HTTP_COOKIE_SUFFIX}", vp.session_cookie_name);
    let values =
        cookies(req.headers(), &vp.session_cookie_name).chain(cookies(req.headers(), &http_name));
    for id in values {
        if id.is_empty() {
            continue;
        }
        if let Some(s) = gw
            .core()
            .store()
            .touch_session(&vp.realm, id)
            .await
            .map_err(store_failed)?
        {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// `<name>[-HTTP]=<id>; Path=/; HttpOnly[; Secure]`.
fn set_session_cookie(res: &mut Response<Body>, vp: &VirtualProxy, conn: &Conn, id: &str) {
    let cookie = if conn.secure {
        format!("{}={id}; Path=/; HttpOnly; Secure", vp.session_cookie_name)
    } else {
        format!(
            "{}{HTTP_COOKIE_SUFFIX}={id}; Path=/; HttpOnly",
            vp.session_cookie_name
        )
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
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
    let target_id = match gw.core().new_target(&target).await {
        Ok(id) => id,
        Err(e) => return unavailable_because(&e),
    };
    let uri = &vp.auth_module_redirect_uri;
    let sep = if uri.contains('?') { '&' } else { '?' };
    let location = format!(
        "{uri}{sep}proxyRestUri={}&targetId={target_id}",
        percent_encode_lower(&proxy_rest_uri(gw, vp))
    );
    found(&location)
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

fn store_failed(e: ticket_core::StoreError) {
    tracing::error!(error = %e, "session store failed");
}

fn unavailable_because(e: &ticket_core::StoreError) -> Response<Body> {
    tracing::error!(error = %e, "session store failed");
    unavailable()
}

fn unavailable() -> Response<Body> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        HTML,
        "<!DOCTYPE html><html><head><title>Service unavailable</title></head><body><h1>Service unavailable</h1><p>The session store cannot be reached. Try again in a moment.</p></body></html>",
    )
}
