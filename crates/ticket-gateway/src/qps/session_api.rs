//! The session and user APIs on the REST listener (`/qps/{vp}/session…`,
//! `/qps/{vp}/user/{directory}/{id}`): what a portal uses to create sessions it hands to
//! browsers itself, to look them up, and to log users out.
//!
//! Session ids are the caller's choice and may be any string; a browser presenting
//! `<session cookie name>=<SessionId>` is then authenticated like one that redeemed a
//! ticket. Bodies of GET and DELETE are never read.

use http::{Request, Response, StatusCode};
use serde::Serialize;
use ticket_core::{EndReason, Identity, Session, StoreError};

use super::api::{admit, VpRef};
use super::error::ApiError;
use super::session;
use super::wire::{sessions_doc, DeletedDoc, SessionDoc, SessionRequest};
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::http::{read_body, respond, Body, BoxError, JSON};
use crate::state::State;
use crate::telemetry::audit;

/// A session API operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionOp {
    /// `POST /qps/{vp}/session`.
    Create,
    /// `GET /qps/{vp}/session`.
    List,
    /// `GET /qps/{vp}/session/{id}`.
    Get(String),
    /// `DELETE /qps/{vp}/session/{id}`.
    Delete(String),
    /// `GET /qps/{vp}/user/{directory}/{id}`.
    User(String, String),
    /// `DELETE /qps/{vp}/user/{directory}/{id}`.
    LogoutUser(String, String),
}

impl SessionOp {
    /// The operation's name, for the access log and metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SessionOp::Create => "qps_session_create",
            SessionOp::List => "qps_session_list",
            SessionOp::Get(_) => "qps_session_get",
            SessionOp::Delete(_) => "qps_session_delete",
            SessionOp::User(..) => "qps_user_get",
            SessionOp::LogoutUser(..) => "qps_user_delete",
        }
    }
}

/// Handles one session or user API call.
pub(crate) async fn handle<B>(
    state: &State,
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
        let core = &state.core;
        match op {
            SessionOp::Create => create(state, req, vp, conn).await,
            SessionOp::List => Ok(json(
                StatusCode::OK,
                &sessions_doc(&core.sessions(&vp.realm).await?),
            )),
            SessionOp::Get(id) => match core.session(&vp.realm, &id).await? {
                Some(s) => Ok(json(StatusCode::OK, &SessionDoc::of(&s))),
                None => Err(ApiError::NoSession(id)),
            },
            SessionOp::Delete(id) => {
                let session = core
                    .end_session(&vp.realm, &id, EndReason::Closed)
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
                let left = core.user_sessions(&vp.realm, &session.user_key()).await?;
                Ok(json(
                    StatusCode::OK,
                    &DeletedDoc {
                        session: SessionDoc::of(&session),
                        last_session_for_user: left.is_empty(),
                    },
                ))
            }
            SessionOp::User(dir, id) => {
                let sessions = core.user_sessions(&vp.realm, &user_key(&dir, &id)).await?;
                Ok(json(StatusCode::OK, &sessions_doc(&sessions)))
            }
            SessionOp::LogoutUser(dir, id) => {
                let ended = core
                    .end_user_sessions(&vp.realm, &user_key(&dir, &id), EndReason::LoggedOut)
                    .await?;
                for s in &ended {
                    audit::session_ended(
                        "qps",
                        &vp.prefix,
                        &s.identity,
                        &s.id,
                        conn,
                        "user API delete",
                    );
                }
                Ok(json(StatusCode::OK, &sessions_doc(&ended)))
            }
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

/// `POST /qps/{vp}/session`.
async fn create<B>(
    state: &State,
    req: Request<B>,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Result<Response<Body>, ApiError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let body = read_body(req.into_body(), &state.settings.limits).await?;
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
    let inserted = state
        .core
        .insert_session(
            &session,
            vp.session_inactivity_timeout,
            Some(vp.session_limit),
        )
        .await;
    match inserted {
        Ok(evicted) => {
            session::started(vp, &session, evicted, conn);
            Ok(json(StatusCode::CREATED, &SessionDoc::of(&session)))
        }
        Err(StoreError::Conflict) => Err(ApiError::SessionExists(session.id)),
        Err(StoreError::LimitReached) => {
            let (dir, user) = session.identity.user();
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

/// A JSON reply. The documents are structs of strings: serializing cannot fail.
fn json(status: StatusCode, doc: &impl Serialize) -> Response<Body> {
    respond(status, JSON, serde_json::to_vec(doc).unwrap_or_default())
}
