//! The personal API on the front end, `/{vp}/qps/user`: the browser asks who it is, or logs
//! out. Authenticated by the session cookie, without Xrfkey (a browser call, as Qlik's own
//! hub makes it). Keys are camelCase here, unlike the REST API.

use http::{Method, Request, Response, StatusCode};

use super::frontend::{
    clear_session_cookies, current_session, frontend_url, login_location, session_ids,
};
use super::json::write_string;
use crate::audit;
use crate::config::VirtualProxy;
use crate::gateway::{Conn, Gateway};
use crate::http::{empty, query_param, respond, Body, JSON};
use crate::redirect::is_allowed;
use ticket_core::Identity;

/// Handles `GET` and `DELETE /{vp}/qps/user`.
pub(crate) async fn handle<B>(
    gw: &Gateway,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Response<Body> {
    if req.method() == Method::DELETE {
        return logout(gw, &req, vp, conn).await;
    }
    let unavailable = || {
        respond(
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            "{\"error\":\"the session store is unavailable\"}",
        )
    };
    match current_session(gw, vp, &req).await {
        Ok(Some(session)) => {
            let (dir, user) = match &session.identity {
                Identity::Qps {
                    user_directory,
                    user_id,
                    ..
                } => (user_directory.as_str(), user_id.as_str()),
                Identity::QlikView { user_id, .. } => ("", user_id.as_str()),
            };
            let mut body = String::from("{\"userDirectory\":");
            write_string(&mut body, dir);
            body.push_str(",\"userId\":");
            write_string(&mut body, user);
            body.push_str(",\"userName\":");
            write_string(&mut body, user);
            body.push_str(",\"logoutUri\":");
            write_string(&mut body, &frontend_url(gw, vp, "/qps/user"));
            body.push('}');
            respond(StatusCode::OK, JSON, body)
        }
        Ok(None) => {
            let own = [gw.settings().frontend.public_url.as_str()];
            let target = query_param(req.uri().query(), "targetUri")
                .map(|t| t.into_owned())
                .filter(|t| {
                    !t.is_empty()
                        && is_allowed(t, &own, &gw.settings().frontend.allowed_redirect_hosts)
                })
                .unwrap_or_else(|| frontend_url(gw, vp, "/hub/"));
            match login_location(gw, vp, &target).await {
                Ok(login) => {
                    let mut body = String::from("{\"session\":\"inactive\",\"loginUri\":");
                    write_string(&mut body, &login);
                    body.push('}');
                    respond(StatusCode::OK, JSON, body)
                }
                Err(_) => unavailable(),
            }
        }
        Err(()) => unavailable(),
    }
}

/// `DELETE /{vp}/qps/user`: the session ends at once, its sockets close, the cookie is
/// expired. Without a session it is a `200` all the same.
async fn logout<B>(
    gw: &Gateway,
    req: &Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Response<Body> {
    for id in session_ids(vp, req) {
        match gw
            .end_session(&vp.realm, id, ticket_core::EndReason::LoggedOut)
            .await
        {
            Ok(Some(s)) => audit::session_ended(
                "qps",
                &vp.prefix,
                &s.identity,
                &s.id,
                conn,
                "personal API logout",
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "session store failed");
                crate::metrics::store_error();
                return respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    JSON,
                    "{\"error\":\"the session store is unavailable\"}",
                );
            }
        }
    }
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("0"),
    );
    clear_session_cookies(&mut res, vp, conn);
    res
}
