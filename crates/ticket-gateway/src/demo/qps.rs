//! The demo authentication module: `http://localhost:8080/hub/` redirects here with
//! `proxyRestUri` and `targetId`, the form asks who you are, and the module gets a ticket
//! for the target id and sends the browser on with `qlikTicket`, as a real module does.

use http::{Request, Response, StatusCode};

use super::{form_page, html_escape, read_form, WRONG};
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::http::{found, query_param, respond, Body, BoxError, HTML};
use crate::qps::api::issue;
use crate::qps::wire::TicketRequest;
use crate::state::State;

/// What the form shows.
#[derive(Default)]
struct Form<'a> {
    rest: &'a str,
    target: &'a str,
    dir: &'a str,
    user: &'a str,
    attrs: &'a str,
}

/// `GET /demo/login?proxyRestUri=…&targetId=…`: the login form.
pub(crate) fn login_form<B>(state: &State, req: &Request<B>) -> Response<Body> {
    let q = req.uri().query();
    let rest = query_param(q, "proxyRestUri").unwrap_or_default();
    let target = query_param(q, "targetId").unwrap_or_default();
    let form = Form {
        rest: &rest,
        target: &target,
        dir: "INTERNAL",
        ..Form::default()
    };
    respond(StatusCode::OK, HTML, page(state, &form, None))
}

/// `POST /demo/login`: checks the password (with a users file), issues a ticket and sends
/// the browser back to the proxy with it.
pub(crate) async fn login<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let fields = match read_form(state, req).await {
        Ok(form) => form,
        Err(res) => return res,
    };
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    let form = Form {
        rest: field("proxyRestUri"),
        target: field("targetId"),
        dir: field("userDirectory"),
        user: field("userId"),
        attrs: field("attributes"),
    };
    let (dir, user) = (form.dir.trim(), form.user.trim());
    if [dir, user].iter().any(|v| v.is_empty() || v.contains('\\')) {
        let error = "The user directory and the user id must be given, without a backslash.";
        return respond(
            StatusCode::BAD_REQUEST,
            HTML,
            page(state, &form, Some(error)),
        );
    }
    let attributes = match &state.demo_users {
        Some(users) => match users
            .check(&format!("{dir}\\{user}"), field("password"))
            .await
        {
            Some(found) => found.attributes,
            None => {
                return respond(
                    StatusCode::UNAUTHORIZED,
                    HTML,
                    page(state, &form, Some(WRONG)),
                )
            }
        },
        None => typed_attributes(form.attrs),
    };
    let vp = virtual_proxy_of(state, form.rest);
    let ticket_req = TicketRequest {
        user_directory: dir.to_owned(),
        user_id: user.to_owned(),
        attributes,
        target_id: Some(form.target.to_owned()).filter(|t| !t.is_empty()),
    };
    match issue(state, vp, ticket_req, conn).await {
        Ok((ticket, stored)) => {
            let back = stored
                .target_uri
                .unwrap_or_else(|| state.settings.frontend_url(vp, "/hub/"));
            let sep = if back.contains('?') { '&' } else { '?' };
            found(&format!("{back}{sep}qlikTicket={ticket}"))
        }
        Err(e) => e.into_response(),
    }
}

/// Attributes typed one `key=value` a line.
fn typed_attributes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

/// The virtual proxy a `proxyRestUri` (`…/qps/<prefix>/`) names; the default one otherwise.
fn virtual_proxy_of<'g>(state: &'g State, proxy_rest_uri: &str) -> &'g VirtualProxy {
    let settings = &state.settings;
    proxy_rest_uri
        .rsplit_once("/qps/")
        .map(|(_, p)| p.trim_matches('/'))
        .and_then(|p| settings.virtual_proxy(p))
        .unwrap_or_else(|| settings.default_virtual_proxy())
}

fn page(state: &State, form: &Form<'_>, error: Option<&str>) -> String {
    let checks = state.demo_users.is_some();
    let last = if checks {
        "<p><label>Password <input name=\"password\" type=\"password\"></label></p>".to_owned()
    } else {
        format!(
            "<p><label>Attributes, one <code>key=value</code> a line<br><textarea name=\"attributes\" rows=\"4\" cols=\"40\">{}</textarea></label></p>",
            html_escape(form.attrs)
        )
    };
    let html = format!(
        "<form method=\"post\" action=\"/demo/login\">\
<input type=\"hidden\" name=\"proxyRestUri\" value=\"{}\"><input type=\"hidden\" name=\"targetId\" value=\"{}\">\
<p><label>User directory <input name=\"userDirectory\" value=\"{}\"></label></p>\
<p><label>User id <input name=\"userId\" value=\"{}\" autofocus></label></p>{last}\
<p><button type=\"submit\">Sign in</button></p></form>",
        html_escape(form.rest),
        html_escape(form.target),
        html_escape(form.dir),
        html_escape(form.user),
    );
    form_page("Demo authentication module", checks, error, &html)
}
