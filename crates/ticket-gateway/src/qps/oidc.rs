//! OpenID Connect on a virtual proxy, as a browser meets it.
//!
//! A browser without a session is sent to the provider ([`begin`]): the login's state,
//! nonce, PKCE verifier and the page first asked for are kept in the store under the state
//! (so any node can finish the login), for [`LOGIN_TTL`], and bound to the browser by a
//! short-lived `HttpOnly` cookie scoped to the callback path. The provider sends the
//! browser back to `/<prefix>/oidcauthn` ([`callback`]): the state is taken (single use),
//! must belong to that browser, and the code is exchanged and the ID token verified by
//! [`crate::signin::oidc`]. Then the session starts as after a ticket.
//!
//! Nothing here redirects on failure: a refused login is a `401` page naming the check
//! that failed, an unreachable provider a `503` page, so a broken provider cannot make a
//! browser loop.

use std::time::Duration;

use http::header::SET_COOKIE;
use http::{HeaderValue, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::error::PageError;
use super::signed_in::Refusal;
use super::{login, methods, session};
use crate::config::{VirtualProxy, OIDC_CALLBACK_PATH};
use crate::conn::Conn;
use crate::http::{cookies, found, page, query_param, Body};
use crate::signin::oidc::Failure;
use crate::state::State;
use crate::telemetry::metrics;

/// How long a login may take between the redirect to the provider and the callback.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);
/// The cookie that binds logins to a browser.
const BINDING_COOKIE: &str = "ticket-gateway-oidc";

/// What the callback needs of a login, kept under its state.
#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
    target: String,
    binding: String,
}

fn key(vp: &VirtualProxy, state: &str) -> String {
    format!("oidc:{}:{state}", vp.realm)
}

/// `302` to the provider for a browser without a session that asked for `req`.
pub(crate) async fn begin<B>(
    state: &State,
    vp: &VirtualProxy,
    req: &Request<B>,
    conn: &Conn,
) -> Response<Body> {
    let Some(provider) = state.oidc.get(&vp.realm) else {
        return unreachable("the virtual proxy has no OpenID provider");
    };
    let begun = match provider.begin().await {
        Ok(b) => b,
        Err(Failure::Unreachable(e)) => return unreachable(&e),
        Err(Failure::Refused(why)) => return PageError::Unauthorized(why).into_response(),
    };
    // One binding per browser, kept across its logins, so that logins begun in several
    // tabs can each finish.
    let binding = cookies(req.headers(), BINDING_COOKIE)
        .find(|v| looks_like_guid(v))
        .map_or_else(ticket_core::id::guid, str::to_owned);
    let pending = Pending {
        nonce: begun.nonce,
        verifier: begun.verifier,
        target: login::target(state, vp, req),
        binding,
    };
    let value = serde_json::to_string(&pending).unwrap_or_default();
    if let Err(e) = state
        .core
        .put_value(&key(vp, &begun.state), &value, LOGIN_TTL)
        .await
    {
        return PageError::Unavailable(e).into_response();
    }
    let mut res = found(&begun.url);
    let secure = if conn.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{BINDING_COOKIE}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        pending.binding,
        vp.frontend_path(OIDC_CALLBACK_PATH),
        LOGIN_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

/// `GET /<prefix>/oidcauthn?code=…&state=…`: finishes a login.
pub(crate) async fn callback<B>(
    state: &State,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Response<Body> {
    match finish(state, &req, vp, conn).await {
        Ok(res) => res,
        Err(refusal) => {
            metrics::ticket_refused("oidc", &vp.prefix, "login_refused");
            match refusal {
                Refusal::Unauthorized(why) => {
                    tracing::info!(vp = %vp.prefix, reason = why, "OpenID login refused");
                    PageError::Unauthorized(why).into_response()
                }
                Refusal::Page(e) => e.into_response(),
                Refusal::Login => PageError::Unauthorized("no login").into_response(),
            }
        }
    }
}

async fn finish<B>(
    state: &State,
    req: &Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Result<Response<Body>, Refusal> {
    let query = req.uri().query();
    let login_state = query_param(query, "state").filter(|s| !s.is_empty());
    // The state is spent whatever happens next: a login is finished at most once.
    let pending = match &login_state {
        Some(s) if s.len() <= 256 => state.core.take_value(&key(vp, s)).await?,
        _ => None,
    };
    if let Some(error) = query_param(query, "error") {
        return Err(Refusal::Unauthorized(provider_error(&error)));
    }
    let pending: Pending =
        pending
            .and_then(|p| serde_json::from_str(&p).ok())
            .ok_or(Refusal::Unauthorized(
                "the login is unknown, has expired or has already finished",
            ))?;
    let bound = cookies(req.headers(), BINDING_COOKIE)
        .any(|v| bool::from(v.as_bytes().ct_eq(pending.binding.as_bytes())));
    if !bound {
        return Err(Refusal::Unauthorized(
            "the login was begun in another browser",
        ));
    }
    let code =
        query_param(query, "code")
            .filter(|c| !c.is_empty())
            .ok_or(Refusal::Unauthorized(
                "the provider sent no authorization code",
            ))?;
    let provider = state.oidc.get(&vp.realm).ok_or(Refusal::Unauthorized(
        "the virtual proxy has no OpenID provider",
    ))?;
    let identity = match provider
        .finish(&code, &pending.nonce, &pending.verifier)
        .await
    {
        Ok(identity) => identity,
        Err(Failure::Refused(why)) => return Err(Refusal::Unauthorized(why)),
        Err(Failure::Unreachable(e)) => return Ok(unreachable(&e)),
    };
    let session = methods::start(state, vp, identity, conn).await?;
    let mut res = found(&pending.target);
    session::set_cookie(&mut res, vp, conn, &session.id);
    Ok(res)
}

/// A binding cookie this gateway could have set (a GUID); anything else is replaced.
fn looks_like_guid(v: &str) -> bool {
    v.len() == 36 && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The `503` page for a provider that cannot be reached; the cause is logged, not shown.
fn unreachable(cause: &str) -> Response<Body> {
    tracing::warn!(error = cause, "OpenID provider unreachable");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "The identity provider cannot be reached. Try again in a moment.",
    )
}

/// What an `error` from the provider is told as: its meaning, never its text (which
/// anyone can put in a link).
fn provider_error(code: &str) -> &'static str {
    match code {
        "access_denied" => "the provider refused the login: access denied",
        "login_required"
        | "interaction_required"
        | "consent_required"
        | "account_selection_required" => {
            "the provider refused the login: the user must sign in or consent"
        }
        "temporarily_unavailable" | "server_error" => {
            "the provider could not complete the login; try again"
        }
        "invalid_scope" => "the provider refused the login: a scope asked for is not allowed",
        "unauthorized_client" | "invalid_client" => {
            "the provider refused the login: this client may not sign users in"
        }
        _ => "the provider refused the login",
    }
}
