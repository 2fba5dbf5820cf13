//! The session and user APIs on the REST listener (`/qps/{vp}/session…`,
//! `/qps/{vp}/user/{directory}/{id}`): what a portal uses to create sessions it hands to
//! browsers itself, to look them up, and to log users out.
//!
//! Session ids are the caller's choice and may be any string; a browser presenting
//! `<session cookie name>=<SessionId>` is then authenticated like one that redeemed a
//! ticket. Bodies of GET and DELETE are never read.

use http::{Request, Response, StatusCode};
use ticket_core::{Identity, Session, StoreError};

use super::api::admit;
use super::error::ApiError;
use super::wire::{self, SessionRequest};
use crate::audit;
use crate::config::VirtualProxy;
use crate::gateway::{Conn, Gateway};
use crate::http::{read_body, respond, Body, BoxError, JSON};
use crate::router::{SessionOp, VpRef};

/// Handles one session or user API call.
pub(crate) async fn handle<B>(
    gw: &Gateway,
    req: Request<B>,
    vp: VpRef<'_>,
    op: SessionOp,
    conn: &Conn,
) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let result = async {
        let vp = admit(&req, vp)?;
        let store = gw.core();
        match op {
            SessionOp::Create => create(gw, req, vp, conn).await,
            SessionOp::List => Ok(ok(wire::sessions_response(
                &store.sessions(&vp.realm).await?,
            ))),
            SessionOp::Get(id) => match store.session(&vp.realm, &id).await? {
                Some(s) => Ok(ok(one(&s))),
                None => Err(ApiError::NoSession(id)),
            },
            SessionOp::Delete(id) => {
                let session = gw
                    .end_session(&vp.realm, &id, ticket_core::EndReason::Closed)
                    .await?
                    .ok_or(ApiError::NoSession(id))?;
                audit::session_ended(
                    "qps",
                    &vp.prefix,
                    &session.identity,
                    &session.id,
                    conn,
                    "session API delete",
                );
                let last = store
                    .user_sessions(&vp.realm, &session.user_key())
                    .await?
                    .is_empty();
                let mut body = String::from("{\"Session\":");
                wire::write_session(&mut body, &session);
                body.push_str(if last {
                    ",\"LastSessionForUser\":true}"
                } else {
                    ",\"LastSessionForUser\":false}"
                });
                Ok(ok(body))
            }
            SessionOp::User(dir, id) => {
                let sessions = store.user_sessions(&vp.realm, &user_key(&dir, &id)).await?;
                Ok(ok(wire::sessions_response(&sessions)))
            }
            SessionOp::LogoutUser(dir, id) => {
                let ended = store
                    .end_user_sessions(
                        &vp.realm,
                        &user_key(&dir, &id),
                        ticket_core::EndReason::LoggedOut,
                    )
                    .await?;
                for s in &ended {
                    gw.sockets().close(&s.realm, &s.id);
                    audit::session_ended(
                        "qps",
                        &vp.prefix,
                        &s.identity,
                        &s.id,
                        conn,
                        "user API delete",
                    );
                }
                Ok(ok(wire::sessions_response(&ended)))
            }
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

/// `POST /qps/{vp}/session`.
async fn create<B>(
    gw: &Gateway,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Result<Response<Body>, ApiError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let body = read_body(req.into_body(), gw.settings().limits.max_body_bytes).await?;
    let r = SessionRequest::read(&body).map_err(ApiError::BadRequest)?;
    let session = Session::new(
        vp.realm.clone(),
        r.session_id.unwrap_or_else(ticket_core::id::guid),
        Identity::Qps {
            user_directory: r.user_directory,
            user_id: r.user_id,
            attributes: r.attributes,
        },
    );
    let inserted = gw
        .core()
        .insert_session(
            &session,
            vp.session_inactivity_timeout,
            Some(vp.session_limit),
        )
        .await;
    match inserted {
        Ok(evicted) => {
            super::frontend::session_started(gw, vp, &session, evicted, conn);
            Ok(respond(StatusCode::CREATED, JSON, one(&session)))
        }
        Err(StoreError::Conflict) => Err(ApiError::SessionExists(session.id)),
        Err(StoreError::LimitReached) => {
            let (dir, user) = match &session.identity {
                Identity::Qps {
                    user_directory,
                    user_id,
                    ..
                } => (user_directory.as_str(), user_id.as_str()),
                Identity::QlikView { user_id, .. } => ("", user_id.as_str()),
            };
            Err(ApiError::TooManySessions(format!("{dir}\\{user}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The grouping key of a Qlik Sense user, as [`Identity::user_key`] computes it.
fn user_key(directory: &str, id: &str) -> String {
    Identity::Qps {
        user_directory: directory.trim().to_owned(),
        user_id: id.trim().to_owned(),
        attributes: Vec::new(),
    }
    .user_key()
}

fn one(session: &Session) -> String {
    let mut out = String::new();
    wire::write_session(&mut out, session);
    out
}

fn ok(body: String) -> Response<Body> {
    respond(StatusCode::OK, JSON, body)
}
