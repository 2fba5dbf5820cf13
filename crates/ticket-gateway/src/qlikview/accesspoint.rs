//! `POST /QvAJAXZfc/AccessPoint.aspx` (and `/Accesspoint.aspx` at the root): the
//! AccessPoint command envelope. `AccessPoint.Logout` ends the session; every other command
//! gets a harmless reply describing the user.

use http::{Request, Response, StatusCode};
use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::XML;
use super::{clear_session_cookie, REALM};
use crate::gateway::{Conn, Gateway};
use crate::http::{cookies, html_escape, read_body, respond, Body, BodyError, BoxError};
use ticket_core::Identity;

/// The command that logs out.
pub const LOGOUT: &str = "AccessPoint.Logout";

/// What an anonymous (logged-out) user looks like to AccessPoint.
pub const LOGGED_OUT: &str =
    "<result><object><value name=\"User\" text=\"\" mode=\"anonymous\"/></object></result>";

/// Handles an AccessPoint command.
pub(crate) async fn command<B>(gw: &Gateway, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let session_ids: Vec<String> =
        cookies(req.headers(), &gw.settings().qlikview.session_cookie_name)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
    let body = match read_body(req.into_body(), gw.settings().limits.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                error("request body too large"),
            )
        }
        Err(BodyError::Broken) => {
            return reply(
                StatusCode::BAD_REQUEST,
                error("the request body could not be read"),
            )
        }
    };
    let commands = match set_names(&body) {
        Ok(c) => c,
        Err(reason) => return reply(StatusCode::BAD_REQUEST, error(reason)),
    };
    let store = gw.core();
    if commands.iter().any(|c| c.eq_ignore_ascii_case(LOGOUT)) {
        for id in &session_ids {
            match gw
                .end_session(REALM, id, ticket_core::EndReason::LoggedOut)
                .await
            {
                Ok(Some(s)) => {
                    crate::audit::session_ended("qlikview", "", &s.identity, &s.id, conn, "logout")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "session store failed");
                    crate::metrics::store_error();
                    return reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        error("the session store is unavailable"),
                    );
                }
            }
        }
        let mut res = reply(StatusCode::OK, LOGGED_OUT.to_owned());
        clear_session_cookie(&mut res, gw, conn);
        return res;
    }
    let mut user = None;
    for id in &session_ids {
        if let Ok(Some(s)) = store.session(REALM, id).await {
            user = Some(s.identity);
            break;
        }
    }
    let body = match user {
        Some(Identity::QlikView { user_id, .. }) => format!(
            "<result><object><value name=\"User\" text=\"{}\" mode=\"authenticated\"/></object></result>",
            html_escape(&user_id)
        ),
        _ => LOGGED_OUT.to_owned(),
    };
    reply(StatusCode::OK, body)
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    respond(status, XML, body)
}

fn error(reason: &str) -> String {
    format!(
        "<result><object><value name=\"ErrorMessage\" text=\"{}\"/></object></result>",
        html_escape(reason)
    )
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
