//! The demo QlikView portal: it asks who you are and sends the browser through
//! `Authenticate.aspx`, as a portal does. Without `[qlikview] users_file` it requests a web
//! ticket for whoever is typed in; with one, its form posts the user name and password to
//! QlikView's own form login at `Authenticate.aspx`.

use http::{Request, Response, StatusCode};

use super::{form_page, html_escape, read_form};
use crate::config::DEMO_PORTAL_PATH;
use crate::conn::Conn;
use crate::http::{found, percent_encode_lower, query_param, respond, Body, BoxError, HTML};
use crate::state::State;

/// Where a sign-in goes when the portal was opened without `try`.
const DEFAULT_TRY: &str = "/QvAJAXZfc/opendoc.htm?document=demo.qvw";

/// `GET /demo/qlikview/?try=…`: the sign-in form.
pub(crate) fn portal_form<B>(state: &State, req: &Request<B>) -> Response<Body> {
    let try_ = query_param(req.uri().query(), "try").unwrap_or_default();
    let error = query_param(req.uri().query(), "failed").map(|_| super::WRONG);
    respond(StatusCode::OK, HTML, page(state, &try_, "", "", error))
}

/// `POST /demo/qlikview/`: requests a web ticket the way a portal does and sends the
/// browser through `Authenticate.aspx` with it.
pub(crate) async fn portal<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let form = match read_form(state, req).await {
        Ok(form) => form,
        Err(res) => return res,
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (try_, user, groups) = (field("try"), field("userId"), field("groups"));
    let user_id = user.trim().to_owned();
    if user_id.is_empty() {
        let html = page(
            state,
            &try_,
            &user,
            &groups,
            Some("UserId must not be empty."),
        );
        return respond(StatusCode::BAD_REQUEST, HTML, html);
    }
    let typed: Vec<String> = groups
        .split([',', ';'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let groups = if typed.is_empty() {
        state.groups().groups_of(&user_id)
    } else {
        typed
    };
    let identity = ticket_core::Identity::QlikView {
        user_id,
        groups,
        groups_is_names: true,
    };
    match crate::qlikview::webticket::issue_for(state, identity, conn).await {
        Ok(ticket) => found(&format!(
            "/QvAJAXZfc/Authenticate.aspx?type=html&try={}&back={}&webticket={ticket}",
            percent_encode_lower(try_or_default(&try_)),
            percent_encode_lower(DEMO_PORTAL_PATH),
        )),
        Err(e) => e.into_response(&state.settings.qlikview),
    }
}

fn try_or_default(try_: &str) -> &str {
    if try_.is_empty() {
        DEFAULT_TRY
    } else {
        try_
    }
}

fn page(state: &State, try_: &str, user: &str, groups: &str, error: Option<&str>) -> String {
    let checks = state.qlikview_users.is_some();
    let html = if checks {
        // QlikView's own form login; a failure comes back here with `failed`.
        let back = format!(
            "{DEMO_PORTAL_PATH}?failed=1&try={}",
            percent_encode_lower(try_)
        );
        format!(
            "<form method=\"post\" action=\"/QvAJAXZfc/Authenticate.aspx?try={}&back={}\">\
<p><label>User name <input name=\"username\" value=\"{}\" autofocus></label></p>\
<p><label>Password <input name=\"password\" type=\"password\"></label></p>\
<p><button type=\"submit\">Sign in</button></p></form>",
            percent_encode_lower(try_or_default(try_)),
            percent_encode_lower(&back),
            html_escape(user),
        )
    } else {
        format!(
            "<form method=\"post\" action=\"{DEMO_PORTAL_PATH}\"><input type=\"hidden\" name=\"try\" value=\"{}\">\
<p><label>User id <input name=\"userId\" value=\"{}\" autofocus></label></p>\
<p><label>Groups, comma-separated (empty: look them up) <input name=\"groups\" value=\"{}\"></label></p>\
<p><button type=\"submit\">Sign in</button></p></form>",
            html_escape(try_),
            html_escape(user),
            html_escape(groups),
        )
    };
    form_page("Demo QlikView portal", checks, error, &html)
}
