//! `POST /QvAJAXZfc/GetWebTicket.aspx`: a trusted portal asks for a web ticket.

use std::future::Future;

use http::{Request, Response, StatusCode};
use ticket_core::{id, Identity};

use super::error::{QvError, XML};
use super::{trust, xml, REALM};
use crate::conn::Conn;
use crate::http::{read_body, respond, Body, BoxError};
use crate::state::State;
use crate::telemetry::audit;

/// The method the root element must name.
pub(crate) const METHOD: &str = "GetWebTicket";

/// Handles a GetWebTicket call.
///
/// The caller is checked before the returned future is made: the future keeps only the
/// body it has yet to read, not the whole request.
pub(crate) fn get_web_ticket<'a, B>(
    state: &'a State,
    req: Request<B>,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: http_body::Body + 'a,
    B::Error: Into<BoxError>,
{
    let qv = &state.settings.qlikview;
    let trusted = trust::is_trusted(qv, conn.peer, req.headers());
    let body = req.into_body();
    async move {
        let issued = if trusted {
            issue(state, body, conn).await
        } else {
            Err(QvError::InvalidCall("untrusted_caller"))
        };
        match issued {
            Ok(ticket) => respond(StatusCode::OK, XML, reply(&ticket)),
            Err(e) => {
                audit::ticket_refused("qlikview", "", conn, e.label());
                e.into_response(qv)
            }
        }
    }
}

/// `<Global><_retval_>TICKET</_retval_></Global>`, exactly: no declaration, no whitespace.
fn reply(ticket: &str) -> String {
    const OPEN: &str = "<Global><_retval_>";
    const CLOSE: &str = "</_retval_></Global>";
    let mut out = String::with_capacity(OPEN.len() + ticket.len() + CLOSE.len());
    out.push_str(OPEN);
    out.push_str(ticket);
    out.push_str(CLOSE);
    out
}

async fn issue<B>(state: &State, body: B, conn: &Conn) -> Result<String, QvError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let body = read_body(body, &state.settings.limits).await?;
    let doc = xml::parse(&body).map_err(|e| QvError::BadXml(e.to_string()))?;
    let method_ok = doc.root.eq_ignore_ascii_case("Global")
        && doc
            .method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(METHOD));
    if !method_ok {
        return Err(QvError::InvalidCall("wrong_method"));
    }
    let user_id = doc
        .user_id
        .filter(|u| !u.is_empty())
        .ok_or(QvError::InvalidCall("no_user_id"))?;
    let (groups, groups_is_names) = match doc.groups.filter(|g| !g.is_empty()) {
        Some(groups) => (groups, doc.groups_is_names.unwrap_or(true)),
        // No groups sent: look them up, as the web server does. Looked-up groups are names.
        None => (state.groups().groups_of(&user_id), true),
    };
    let identity = Identity::QlikView {
        user_id,
        groups,
        groups_is_names,
    };
    issue_for(state, identity, conn).await
}

/// Issues a web ticket for `identity`: the caller has been trusted already (a portal that
/// passed the check, or the built-in demo portal).
pub(crate) async fn issue_for(
    state: &State,
    identity: Identity,
    conn: &Conn,
) -> Result<String, QvError> {
    let (ticket, stored) = state
        .core
        .issue_ticket(REALM, identity, None, id::web_ticket)
        .await?;
    audit::ticket_issued("qlikview", "", &stored.identity, &ticket, conn);
    Ok(ticket)
}
