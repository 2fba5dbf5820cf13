//! `POST /qps/{vp}/ticket`: an authentication module asks for a ticket for a user it has
//! authenticated.

use std::future::Future;

use http::{Request, Response, StatusCode};

use super::error::ApiError;
use super::wire::{self, TicketRequest};
use super::xrf;
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::http::{read_body, respond, Body, BoxError, JSON};
use crate::state::State;
use crate::telemetry::audit;
use ticket_core::{id, Identity, Ticket};

/// The virtual proxy an API path names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VpRef<'s> {
    /// A configured virtual proxy.
    Known(&'s VirtualProxy),
    /// A prefix no virtual proxy has.
    Unknown(String),
}

/// Checks the Xrfkey, then resolves the virtual proxy: an unknown prefix is only revealed
/// to callers that pass the check.
pub(crate) fn admit<'s, B>(req: &Request<B>, vp: VpRef<'s>) -> Result<&'s VirtualProxy, ApiError> {
    if !xrf::check(req.uri().query(), req.headers()) {
        return Err(ApiError::Xsrf);
    }
    match vp {
        VpRef::Known(vp) => Ok(vp),
        VpRef::Unknown(prefix) => Err(ApiError::UnknownVirtualProxy(prefix)),
    }
}

/// Handles `POST /qps/{vp}/ticket`.
///
/// The head is checked before the returned future is made: the future keeps only the body
/// it has yet to read, not the whole request.
pub(crate) fn add_ticket<'a, B>(
    state: &'a State,
    req: Request<B>,
    vp: VpRef<'a>,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: http_body::Body + 'a,
    B::Error: Into<BoxError>,
{
    let vp_label = match &vp {
        VpRef::Known(vp) => vp.prefix.as_str(),
        // Not a configured prefix: anything a client sent, kept out of labels.
        VpRef::Unknown(_) => "?",
    };
    let admitted = admit(&req, vp);
    let body = req.into_body();
    async move {
        let result = async {
            let vp = admitted?;
            let body = read_body(body, &state.settings.limits).await?;
            let ticket_req = TicketRequest::read(&body).map_err(ApiError::BadRequest)?;
            let (ticket, stored) = issue(state, vp, ticket_req, conn).await?;
            Ok::<_, ApiError>(wire::ticket_response(&stored, &ticket))
        }
        .await;
        match result {
            Ok(body) => respond(StatusCode::CREATED, JSON, body),
            Err(e) => {
                audit::ticket_refused("qps", vp_label, conn, e.label());
                e.into_response()
            }
        }
    }
}

/// Issues a QPS ticket for a validated request; shared by the REST API and the demo
/// authentication module. Returns the ticket and what was stored under it (the user, and
/// the target URI its target id named). The request is moved into the ticket, not copied.
pub(crate) async fn issue(
    state: &State,
    vp: &VirtualProxy,
    req: TicketRequest,
    conn: &Conn,
) -> Result<(String, Ticket), ApiError> {
    let identity = Identity::Qps {
        user_directory: req.user_directory,
        user_id: req.user_id,
        attributes: req.attributes,
    };
    let (ticket, stored) = state
        .core
        .issue_ticket(
            &vp.realm,
            identity,
            req.target_id.as_deref(),
            id::qps_ticket,
        )
        .await
        .map_err(ApiError::from)?;
    audit::ticket_issued("qps", &vp.prefix, &stored.identity, &ticket, conn);
    Ok((ticket, stored))
}
