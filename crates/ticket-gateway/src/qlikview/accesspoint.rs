//! `POST /QvAJAXZfc/AccessPoint.aspx` (and `/Accesspoint.aspx` at the root): the
//! AccessPoint command envelope. `AccessPoint.Logout` ends the session; every other command
//! gets a harmless reply describing the user.

use http::{Request, Response, StatusCode};
use quick_xml::events::Event;
use quick_xml::Reader;
use ticket_core::{EndReason, Identity};

use super::error::{QvError, XML};
use super::{session, REALM};
use crate::conn::Conn;
use crate::http::{read_body, respond, Body, BoxError};
use crate::state::State;
use crate::telemetry::audit;
use crate::text::escape;

/// The command that logs out.
pub(crate) const LOGOUT: &str = "AccessPoint.Logout";

/// What an anonymous (logged-out) user looks like to AccessPoint.
pub(crate) const LOGGED_OUT: &str =
    "<result><object><value name=\"User\" text=\"\" mode=\"anonymous\"/></object></result>";

/// Handles an AccessPoint command.
pub(crate) async fn command<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    run(state, req, conn)
        .await
        .unwrap_or_else(QvError::into_accesspoint_response)
}

async fn run<B>(state: &State, req: Request<B>, conn: &Conn) -> Result<Response<Body>, QvError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let session_ids: Vec<&str> = session::ids(state, &parts.headers).collect();
    let body = read_body(body, &state.settings.limits).await?;
    let commands = set_names(&body).map_err(|reason| QvError::BadXml(reason.to_owned()))?;
    if commands.iter().any(|c| c.eq_ignore_ascii_case(LOGOUT)) {
        for id in &session_ids {
            if let Some(s) = state
                .core
                .end_session(REALM, id, EndReason::LoggedOut)
                .await?
            {
                audit::session_ended("qlikview", "", &s.identity, &s.id, conn, "logout");
            }
        }
        let mut res = reply(LOGGED_OUT.to_owned());
        session::clear_cookie(&mut res, state, conn);
        return Ok(res);
    }
    let mut user = None;
    for id in &session_ids {
        if let Ok(Some(s)) = state.core.session(REALM, id).await {
            user = Some(s.identity);
            break;
        }
    }
    Ok(reply(match user {
        Some(Identity::QlikView { user_id, .. }) => format!(
            "<result><object><value name=\"User\" text=\"{}\" mode=\"authenticated\"/></object></result>",
            escape::html(&user_id)
        ),
        _ => LOGGED_OUT.to_owned(),
    }))
}

fn reply(body: String) -> Response<Body> {
    respond(StatusCode::OK, XML, body)
}

/// The `name` of every `<set>` element in the envelope. An empty body holds no command.
fn set_names(body: &[u8]) -> Result<Vec<String>, &'static str> {
    let mut reader = Reader::from_reader(body);
    let mut names = Vec::new();
    let mut depth = 0usize;
    loop {
        let (e, empty) = match reader.read_event() {
            Err(_) => return Err("malformed XML"),
            Ok(Event::DocType(_)) => {
                return Err("DOCTYPE and entity declarations are not accepted")
            }
            Ok(Event::Eof) => break,
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(_) => continue,
        };
        if depth >= super::xml::MAX_DEPTH {
            return Err("XML nested too deeply");
        }
        if e.local_name().as_ref().eq_ignore_ascii_case(b"set") {
            for attr in e.attributes().flatten() {
                if attr.key.as_ref() == b"name" {
                    names.push(String::from_utf8_lossy(&attr.value).into_owned());
                }
            }
        }
        if !empty {
            depth += 1;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_logout_command() {
        let body = br#"<update mark="" stamp="" cookie="true" scope="Document" ident="AccessPoint" kind="AccessPoint"><set name="AccessPoint.Logout" action="" clientsizeWH="1280:939" /></update>"#;
        assert_eq!(set_names(body).unwrap(), ["AccessPoint.Logout"]);
        assert!(set_names(b"").unwrap().is_empty());
        assert!(set_names(b"<update><set name=\"a\"></update>").is_err());
        assert!(set_names(b"<!DOCTYPE x><update/>").is_err());
    }
}
