//! What a browser meets at `/{vp}/…`: ticket redemption, the session cookie, and the
//! redirect to the authentication module.
//!
//! Order of checks on every request:
//! 1. A ticket (`qlikTicket` or `X-Qlik-Ticket` in the query, in any casing, or an
//!    `X-Qlik-Ticket` header) is consumed. If it was good, a new session starts and the
//!    response is the requested resource itself with `Set-Cookie`, not a redirect.
//! 2. A session cookie naming a live session of this virtual proxy lets the request through
//!    and restarts the inactivity timeout. This holds when a spent or unknown ticket came
//!    along too: a browser reloading the page it landed on after login still has the
//!    ticket in its address bar.
//! 3. With anonymous access, a request without a session gets an anonymous one (unless it
//!    asks for `forceAuthentication=yes` and the mode is `allow`).
//! 4. Anything else is sent to the authentication module with a fresh target id.
//!
//! "The resource" is the virtual proxy's back end when it has one (see [`crate::proxy`]),
//! else the built-in identity page; or, at `/{vp}/qps/csrftoken`, the session's CSRF
//! token.
//!
//! A WebSocket upgrade goes the same way, with what Qlik's proxy adds (see [`socket`]):
//! its `Origin` must be allowed, the gateway greets it and tells it when its session
//! ends, and one that may not enter is still upgraded, told where to log in, and closed.

use std::future::Future;

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use ticket_core::{Redemption, Session};

use super::error::PageError;
use super::session::CSRF_HEADER;
use super::signed_in::{Refusal, SignedIn};
use super::{anonymous, identity, login, methods, oidc, session, socket};
use crate::config::{AnonymousAccess, Authentication, VirtualProxy};
use crate::conn::Conn;
use crate::http::{empty, query_param, query_without, Body, BoxError};
use crate::proxy::headers::is_websocket;
use crate::proxy::Forward;
use crate::state::State;
use crate::telemetry::{audit, metrics};
use crate::{forward_auth, identity_page};

/// The query parameter that carries a ticket back to the proxy.
pub(crate) const TICKET_PARAM: &str = "qlikTicket";
/// The name Qlik's Authentication API page gives the same parameter.
pub(crate) const TICKET_PARAM_DOCUMENTED: &str = "X-Qlik-Ticket";
/// The header name the Qlik documentation gives for the same purpose.
pub(crate) const TICKET_HEADER: HeaderName = HeaderName::from_static("x-qlik-ticket");

/// What a signed-in request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The resource asked for.
    Resource,
    /// The session's CSRF token (`/{vp}/qps/csrftoken`).
    CsrfToken,
}

/// Serves a request behind a virtual proxy.
pub(crate) fn serve<'a, B>(
    state: &'a State,
    mut req: Request<B>,
    vp: &'a VirtualProxy,
    conn: &'a Conn,
    target: Target,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let ticket = take_ticket(&mut req);
    // A plain function returning an `async` block: the block holds the request once,
    // where an `async fn` would hold its argument and a copy of it.
    async move {
        let websocket = is_websocket(req.headers());
        if websocket && !socket::admit(vp, &req, ticket.is_some()) {
            return socket::refused();
        }
        let signed_in = match sign_in(state, vp, &req, ticket.as_deref(), conn).await {
            Ok(s) => s,
            Err(refusal) if websocket => return socket::refuse(state, vp, &mut req, refusal).await,
            Err(Refusal::Login) => match vp.authentication {
                Authentication::Oidc(_) => return oidc::begin(state, vp, &req, conn).await,
                _ => return login::redirect(state, vp, &req).await,
            },
            Err(Refusal::Unauthorized(why)) => return PageError::Unauthorized(why).into_response(),
            Err(Refusal::Page(e)) => return e.into_response(),
        };
        if websocket && !socket::token_ok(vp, &req, &signed_in) {
            return socket::refused();
        }
        let mut res = match target {
            Target::Resource => resource(state, req, vp, &signed_in.session, conn).await,
            Target::CsrfToken => csrf_token(&signed_in.session),
        };
        if signed_in.new {
            session::set_cookie(&mut res, vp, conn, &signed_in.session.id);
        }
        res
    }
}

/// The ticket the request carries, if any: `qlikTicket` or `X-Qlik-Ticket` in the query
/// (any casing), taken out of the request (the back end never sees it), or the header.
fn take_ticket<B>(req: &mut Request<B>) -> Option<String> {
    let query = req.uri().query();
    let ticket = query_param(query, TICKET_PARAM)
        .or_else(|| query_param(query, TICKET_PARAM_DOCUMENTED))
        .map(|t| t.into_owned());
    match ticket {
        Some(t) => {
            *req.uri_mut() = without_ticket(req.uri());
            Some(t)
        }
        None => req
            .headers()
            .get(TICKET_HEADER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    }
}

/// The session a request may use: its ticket's, redeemed now, else its cookie's.
pub(crate) async fn sign_in<B>(
    state: &State,
    vp: &VirtualProxy,
    req: &Request<B>,
    ticket: Option<&str>,
    conn: &Conn,
) -> Result<SignedIn, Refusal> {
    match &vp.authentication {
        Authentication::Ticket | Authentication::Oidc(_) => {}
        Authentication::Header(rules) => return methods::header(state, vp, rules, req, conn).await,
        Authentication::Jwt(_) => {
            if let Some(signed_in) = methods::jwt(state, vp, req, conn).await? {
                return Ok(signed_in);
            }
        }
    }
    if let Some(ticket) = ticket {
        match redeem(state, vp, ticket, conn).await {
            Ok(session) => return Ok(SignedIn { session, new: true }),
            // A spent or unknown ticket beside a live session: the session serves.
            Err(Refusal::Login) => {}
            Err(other) => return Err(other),
        }
    }
    let forced = forces_authentication(req);
    match session::current(state, vp, req.headers()).await? {
        Some(session) if !(forced && anonymous::is(&session)) => {
            return Ok(SignedIn {
                session,
                new: false,
            })
        }
        _ => {}
    }
    match vp.anonymous_access {
        AnonymousAccess::Always => {}
        AnonymousAccess::Allow if !forced => {}
        // A JWT proxy never redirects: a request without a token or a session is refused.
        _ if matches!(vp.authentication, Authentication::Jwt(_)) => {
            return Err(Refusal::Unauthorized("no bearer token and no session"))
        }
        _ => return Err(Refusal::Login),
    }
    let session = anonymous::start(state, vp, conn).await?;
    Ok(SignedIn { session, new: true })
}

/// Whether the request asks for a real login: `forceAuthentication=yes` (any casing).
fn forces_authentication<B>(req: &Request<B>) -> bool {
    query_param(req.uri().query(), "forceAuthentication")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true"))
}

/// The request's target without its ticket parameters (other parameters kept byte for
/// byte); unchanged if that would not be a valid target.
fn without_ticket(uri: &Uri) -> Uri {
    let path = uri.path();
    let query = query_without(uri.query(), TICKET_PARAM);
    let query = query_without(query.as_deref(), TICKET_PARAM_DOCUMENTED);
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    match target.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return uri.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// What an authenticated request gets: the back end's answer, or the identity page.
async fn resource<B>(
    state: &State,
    req: Request<B>,
    vp: &VirtualProxy,
    session: &Session,
    conn: &Conn,
) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if forward_auth::is(&req) {
        return forward_auth::allowed(identity::headers(vp, session));
    }
    match &vp.upstream {
        Some(upstream) => {
            let websocket = is_websocket(req.headers()).then(|| socket::terms(state, vp, session));
            let to = Forward {
                upstream,
                identity: identity::headers(vp, session),
                also_strip: &vp.stripped_headers,
                session: (&session.realm, &session.id),
                websocket,
            };
            state.proxy.forward(req, to, conn).await
        }
        // No back end: a WebSocket is greeted, then closed (there is no engine to talk to).
        None if is_websocket(req.headers()) => {
            let mut req = req;
            let terms = socket::terms(state, vp, session);
            let greeting = terms.speech.greeting.unwrap_or_default();
            crate::proxy::websocket::answer(&mut req, greeting, 1000)
        }
        None => {
            let logout = vp.frontend_path("/qps/user");
            identity_page::render(
                req.headers(),
                req.uri().path(),
                req.uri().query(),
                Some(&vp.prefix),
                &session.identity,
                identity_page::SignOut::PersonalApi(&logout),
            )
        }
    }
}

/// `GET /{vp}/qps/csrftoken`: `200`, no body, the token in `qlik-csrf-token`.
fn csrf_token(session: &Session) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::OK;
    if let Ok(token) = HeaderValue::from_str(&session.csrf_token) {
        res.headers_mut().insert(CSRF_HEADER, token);
    }
    res.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// Consumes `ticket` and starts a session for its user, within the per-user limit: one
/// step for the store (one round trip for Redis).
async fn redeem(
    state: &State,
    vp: &VirtualProxy,
    ticket: &str,
    conn: &Conn,
) -> Result<Session, Refusal> {
    let redeemed = state
        .core
        .redeem_into_session(
            &vp.realm,
            ticket,
            vp.session_inactivity_timeout,
            Some(vp.session_limit),
        )
        .await?;
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
            session::started(vp, &session, evicted, conn);
            Ok(session)
        }
        Redemption::LimitReached(_) => {
            metrics::ticket_refused("qps", &vp.prefix, "too_many_sessions");
            tracing::info!(target: "audit", event = "session_refused", dialect = "qps", vp = vp.prefix.as_str(),
                peer = conn.peer_text(), outcome = "refused", reason = "UsageDenied: too many sessions");
            Err(Refusal::Page(PageError::TooManySessions))
        }
        Redemption::NoTicket | Redemption::WrongRealm(_) => Err(Refusal::Login),
    }
}
