//! What a Qlik Sense virtual proxy adds to an engine WebSocket beyond passing it through:
//! the `Origin` check and the CSRF token of the newer releases (cross-site WebSocket
//! hijacking protection), the greeting and farewells ([`super::notify`]), and the upgrade
//! it answers alone for a socket that may not enter.

use http::header;
use http::{Request, Response, StatusCode};
use ticket_core::Session;
use url::Url;

use super::error::PageError;
use super::session::CSRF_HEADER;
use super::signed_in::{Refusal, SignedIn};
use super::{login, notify};
use crate::config::VirtualProxy;
use crate::http::{query_param, respond, Body, TEXT};
use crate::proxy::websocket::{self, Liveness, Speech};
use crate::proxy::WebSocketTerms;
use crate::state::State;

/// The body of every refused upgrade, as Qlik's proxy words it.
pub(crate) const HIJACKING: &str = "Cross-Site Websocket Hijacking attack prevention check failed. Possible Cross-Site Websocket Hijacking attack (CSWSH) discovered.";

/// The query parameter that carries the CSRF token on an upgrade.
pub(crate) const CSRF_PARAM: &str = "qlik-csrf-token";

/// An upgrade refused: `403` with Qlik's words.
pub(crate) fn refused() -> Response<Body> {
    respond(StatusCode::FORBIDDEN, TEXT, HIJACKING)
}

/// The checks an upgrade must pass before anything else: an `Origin` naming the front end's
/// own host or one of the host allow list (a script without `Origin` is not refused for
/// that); and, with CSRF protection, no `Authorization` and no ticket on the upgrade.
pub(crate) fn admit<B>(vp: &VirtualProxy, req: &Request<B>, with_ticket: bool) -> bool {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let url = origin.to_str().ok().and_then(|o| Url::parse(o).ok());
        if !url.is_some_and(|u| vp.origin_hosts.admit(&u)) {
            return false;
        }
    }
    !(vp.websocket_csrf_protection
        && (req.headers().contains_key(header::AUTHORIZATION) || with_ticket))
}

/// With CSRF protection, an upgrade must reuse an existing session and show its token (as
/// the query parameter or the header of that name).
pub(crate) fn token_ok<B>(vp: &VirtualProxy, req: &Request<B>, signed_in: &SignedIn) -> bool {
    if !vp.websocket_csrf_protection {
        return true;
    }
    let expected = signed_in.session.csrf_token.as_bytes();
    let shown = query_param(req.uri().query(), CSRF_PARAM)
        .map(|t| t.into_owned().into_bytes())
        .or_else(|| {
            req.headers()
                .get(CSRF_HEADER)
                .map(|h| h.as_bytes().to_vec())
        });
    let matches = shown.is_some_and(|s| {
        !expected.is_empty() && subtle::ConstantTimeEq::ct_eq(s.as_slice(), expected).into()
    });
    !signed_in.new && matches
}

/// What a signed-in socket gets: its greeting, its farewells, and its session kept alive
/// while it is used.
pub(crate) fn terms(state: &State, vp: &VirtualProxy, session: &Session) -> WebSocketTerms {
    let (directory, user) = session.identity.user();
    let logout = state.settings.frontend_url(vp, "/qps/user");
    WebSocketTerms {
        speech: Speech {
            greeting: Some(notify::greeting(directory, user, &logout)),
            farewell: notify::farewell,
        },
        liveness: Some(Liveness {
            core: state.core.clone(),
            realm: session.realm.clone(),
            id: session.id.clone(),
            idle: vp.session_inactivity_timeout,
        }),
    }
}

/// An upgrade that may not enter is upgraded all the same, told why, and closed: where to
/// log in, or that the user holds too many sessions.
pub(crate) async fn refuse<B>(
    state: &State,
    vp: &VirtualProxy,
    req: &mut Request<B>,
    refusal: Refusal,
) -> Response<Body> {
    let message = match refusal {
        Refusal::Login => match login::location(state, vp, &login::target(state, vp, req)).await {
            Ok(login) => notify::must_authenticate(&login),
            Err(e) => return PageError::Unavailable(e).into_response(),
        },
        Refusal::Page(PageError::TooManySessions) => notify::max_parallel_sessions(),
        Refusal::Unauthorized(why) => return PageError::Unauthorized(why).into_response(),
        Refusal::Page(e) => return e.into_response(),
    };
    websocket::answer(req, message, 1000)
}
