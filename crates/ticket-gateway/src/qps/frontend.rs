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
//! 3. Anything else is sent to the authentication module with a fresh target id.
//!
//! "The resource" is the virtual proxy's back end when it has one (see [`crate::proxy`]),
//! else the built-in identity page.

use std::future::Future;

use http::{Request, Response, Uri};
use ticket_core::{Redemption, Session};

use super::error::PageError;
use super::{identity, login, session};
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::http::{found, query_param, query_without, Body, BoxError};
use crate::identity_page;
use crate::proxy::Forward;
use crate::state::State;
use crate::telemetry::{audit, metrics};

/// The query parameter that carries a ticket back to the proxy.
pub(crate) const TICKET_PARAM: &str = "qlikTicket";
/// The name Qlik's Authentication API page gives the same parameter.
pub(crate) const TICKET_PARAM_DOCUMENTED: &str = "X-Qlik-Ticket";
/// The header name the Qlik documentation gives for the same purpose.
pub(crate) const TICKET_HEADER: http::HeaderName = http::HeaderName::from_static("x-qlik-ticket");

/// Why a browser gets no session.
enum Refusal {
    /// No or a bad ticket, no or a dead session: log in.
    Login,
    /// Anything else, as a page.
    Page(PageError),
}

impl From<ticket_core::StoreError> for Refusal {
    fn from(e: ticket_core::StoreError) -> Self {
        Refusal::Page(PageError::Unavailable(e))
    }
}

/// Serves a request behind a virtual proxy.
pub(crate) fn serve<'a, B>(
    state: &'a State,
    mut req: Request<B>,
    vp: &'a VirtualProxy,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let query = req.uri().query();
    let ticket = query_param(query, TICKET_PARAM)
        .or_else(|| query_param(query, TICKET_PARAM_DOCUMENTED))
        .map(|t| t.into_owned());
    let ticket = match ticket {
        Some(t) => {
            // The back end never sees the ticket.
            *req.uri_mut() = without_ticket(req.uri());
            Some(t)
        }
        None => req
            .headers()
            .get(TICKET_HEADER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    };
    // A plain function returning an `async` block: the block holds the request once,
    // where an `async fn` would hold its argument and a copy of it.
    async move {
        let redeemed = match ticket {
            Some(ticket) => redeem(state, vp, &ticket, conn).await.map(|s| (s, true)),
            None => Err(Refusal::Login),
        };
        let outcome = match redeemed {
            Err(Refusal::Login) => match session::current(state, vp, req.headers()).await {
                Ok(Some(s)) => Ok((s, false)),
                Ok(None) => Err(Refusal::Login),
                Err(e) => Err(e.into()),
            },
            other => other,
        };
        match outcome {
            Ok((session, new)) => {
                let mut res = resource(state, req, vp, &session, conn).await;
                if new {
                    session::set_cookie(&mut res, vp, conn, &session.id);
                }
                res
            }
            Err(Refusal::Login) => login_redirect(state, vp, &req).await,
            Err(Refusal::Page(e)) => e.into_response(),
        }
    }
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
    match &vp.upstream {
        Some(upstream) => {
            let to = Forward {
                upstream,
                identity: identity::headers(vp, session),
                also_strip: Some(&state.settings.qlikview.upstream_user_header),
                session: (&session.realm, &session.id),
            };
            state.proxy.forward(req, to, conn).await
        }
        None => {
            let logout = login::frontend_path(vp, "/qps/user");
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

/// `302` to the authentication module with `proxyRestUri` and a new `targetId` naming the
/// URL the browser asked for (without any ticket parameter: it was taken out already).
async fn login_redirect<B>(state: &State, vp: &VirtualProxy, req: &Request<B>) -> Response<Body> {
    let mut target = format!("{}{}", state.settings.frontend.public_url, req.uri().path());
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    match login::location(state, vp, &target).await {
        Ok(location) => found(&location),
        Err(e) => PageError::Unavailable(e).into_response(),
    }
}
