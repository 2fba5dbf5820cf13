//! The personal API on the front end, `/{vp}/qps/user`: the browser asks who it is, or logs
//! out. Authenticated by the session cookie, without Xrfkey (a browser call, as Qlik's own
//! hub makes it). Keys are camelCase here, unlike the REST API.

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;
use ticket_core::EndReason;

use super::error::PageError;
use super::{login, session};
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::http::{empty, query_param, respond, Body, JSON};
use crate::state::State;
use crate::telemetry::audit;

/// `GET /{vp}/qps/user` with a session.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User<'a> {
    user_directory: &'a str,
    user_id: &'a str,
    user_name: &'a str,
    logout_uri: &'a str,
}

/// `GET /{vp}/qps/user` without one; no `loginUri` for a `targetUri` on a host that may
/// not be redirected to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inactive<'a> {
    session: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_uri: Option<&'a str>,
}

/// Handles `GET` and `DELETE /{vp}/qps/user`.
pub(crate) async fn handle<B>(
    state: &State,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Response<Body> {
    let result = if req.method() == Method::DELETE {
        logout(state, &req, vp, conn).await
    } else {
        user(state, &req, vp).await
    };
    result.unwrap_or_else(PageError::into_json)
}

async fn user<B>(
    state: &State,
    req: &Request<B>,
    vp: &VirtualProxy,
) -> Result<Response<Body>, PageError> {
    let body = match session::current(state, vp, req.headers()).await? {
        Some(session) => {
            let (dir, user) = session.identity.user();
            serde_json::to_vec(&User {
                user_directory: dir,
                user_id: user,
                user_name: user,
                logout_uri: &state.settings.frontend_url(vp, "/qps/user"),
            })
        }
        None => {
            let redirects = &state.redirects;
            let target = match query_param(req.uri().query(), "targetUri").filter(|t| !t.is_empty())
            {
                Some(t) => redirects
                    .location(&t, "/", &vp.redirect_hosts)
                    .map(|t| login::absolute(state, t)),
                None => Some(state.settings.frontend_url(vp, "/hub/")),
            };
            let login = match target {
                Some(target) => Some(login::location(state, vp, &target).await?),
                None => None,
            };
            serde_json::to_vec(&Inactive {
                session: "inactive",
                login_uri: login.as_deref(),
            })
        }
    };
    // Serializing a struct of strings cannot fail.
    Ok(respond(StatusCode::OK, JSON, body.unwrap_or_default()))
}

/// `DELETE /{vp}/qps/user`: the session ends at once, its sockets are told and closed,
/// the cookie is expired: `204`, as Qlik answers. Without a session it is a `204` all the
/// same.
async fn logout<B>(
    state: &State,
    req: &Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Result<Response<Body>, PageError> {
    for id in session::ids(vp, req.headers()) {
        if let Some(s) = state
            .core
            .end_session(&vp.realm, id, EndReason::LoggedOut)
            .await?
        {
            audit::session_ended(
                "qps",
                &vp.prefix,
                &s.identity,
                &s.id,
                conn,
                "personal API logout",
            );
        }
    }
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    session::clear_cookies(&mut res, vp, conn);
    Ok(res)
}
