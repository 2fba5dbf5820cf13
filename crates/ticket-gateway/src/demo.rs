//! A built-in demo authentication module, so that a newcomer sees the whole Qlik Sense
//! flow with nothing else installed: `http://localhost:8080/hub/` redirects here with
//! `proxyRestUri` and `targetId`, the form asks who you are, and the module gets a ticket
//! for the target id and sends the browser on with `qlikTicket`, as a real module does.
//!
//! It trusts whatever is typed in: turn it off (`[demo] enabled = false`) anywhere but on a
//! developer's machine.

use http::{Request, Response, StatusCode};

use crate::config::{VirtualProxy, DEMO_PORTAL_PATH};
use crate::conn::Conn;
use crate::http::{
    found, page, percent_encode_lower, query_param, read_body, respond, Body, BodyError, BoxError,
    HTML,
};
use crate::qps::api::issue;
use crate::qps::wire::TicketRequest;
use crate::state::State;
use crate::text::escape::html as html_escape;

/// A submitted `application/x-www-form-urlencoded` form, by field name.
async fn read_form<B>(
    state: &State,
    req: Request<B>,
) -> Result<std::collections::HashMap<String, String>, Response<Body>>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    match read_body(req.into_body(), &state.settings.limits).await {
        Ok(body) => Ok(form_urlencoded::parse(&body).into_owned().collect()),
        Err(e) => {
            let status = match e {
                BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
                BodyError::Broken => StatusCode::BAD_REQUEST,
            };
            Err(page(status, "The form could not be read", &e.to_string()))
        }
    }
}

/// `GET /demo/login?proxyRestUri=…&targetId=…`: the login form.
pub(crate) fn login_form<B>(req: &Request<B>) -> Response<Body> {
    let q = req.uri().query();
    let rest = query_param(q, "proxyRestUri").unwrap_or_default();
    let target = query_param(q, "targetId").unwrap_or_default();
    respond(
        StatusCode::OK,
        HTML,
        login_page(&rest, &target, "INTERNAL", "", "", None),
    )
}

/// `POST /demo/login`: issues a ticket and sends the browser back to the proxy with it.
pub(crate) async fn login<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let form = match read_form(state, req).await {
        Ok(form) => form,
        Err(res) => return res,
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (rest, target, dir, user, attrs) = (
        field("proxyRestUri"),
        field("targetId"),
        field("userDirectory"),
        field("userId"),
        field("attributes"),
    );
    let vp = virtual_proxy_of(state, &rest);
    let attributes = attrs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect();
    let ticket_req = TicketRequest {
        user_directory: dir.trim().to_owned(),
        user_id: user.trim().to_owned(),
        attributes,
        target_id: Some(target.clone()).filter(|t| !t.is_empty()),
    };
    let invalid = [
        ("UserDirectory", &ticket_req.user_directory),
        ("UserId", &ticket_req.user_id),
    ]
    .into_iter()
    .find(|(_, v)| v.is_empty() || v.contains('\\'))
    .map(|(k, _)| format!("{k} must be non-empty and hold no backslash."));
    if let Some(error) = invalid {
        let html = login_page(&rest, &target, &dir, &user, &attrs, Some(&error));
        return respond(StatusCode::BAD_REQUEST, HTML, html);
    }
    match issue(state, vp, ticket_req, conn).await {
        Ok((ticket, stored)) => {
            let back = stored.target_uri.unwrap_or_else(|| {
                let prefix = if vp.prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{}", vp.prefix)
                };
                format!("{}{prefix}/hub/", state.settings.frontend.public_url)
            });
            let sep = if back.contains('?') { '&' } else { '?' };
            found(&format!("{back}{sep}qlikTicket={ticket}"))
        }
        Err(e) => e.into_response(),
    }
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

fn login_page(
    rest: &str,
    target: &str,
    dir: &str,
    user: &str,
    attrs: &str,
    error: Option<&str>,
) -> String {
    let error = error
        .map(|e| format!("<p style=\"color:#b00\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Demo authentication module</title></head><body>\
<h1>Demo authentication module</h1>\
<p>Anyone may sign in as anyone here. This module is for trying the gateway out; disable it with <code>[demo] enabled = false</code>.</p>{error}\
<form method=\"post\" action=\"/demo/login\">\
<input type=\"hidden\" name=\"proxyRestUri\" value=\"{}\"><input type=\"hidden\" name=\"targetId\" value=\"{}\">\
<p><label>User directory <input name=\"userDirectory\" value=\"{}\"></label></p>\
<p><label>User id <input name=\"userId\" value=\"{}\" autofocus></label></p>\
<p><label>Attributes, one <code>key=value</code> a line<br><textarea name=\"attributes\" rows=\"4\" cols=\"40\">{}</textarea></label></p>\
<p><button type=\"submit\">Sign in</button></p></form></body></html>",
        html_escape(rest),
        html_escape(target),
        html_escape(dir),
        html_escape(user),
        html_escape(attrs),
    )
}

/// `GET /demo/qlikview/?try=…`: the demo QlikView portal's sign-in form.
pub(crate) fn portal_form<B>(req: &Request<B>) -> Response<Body> {
    let try_ = query_param(req.uri().query(), "try").unwrap_or_default();
    respond(StatusCode::OK, HTML, portal_page(&try_, "", "", None))
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
        let html = portal_page(&try_, &user, &groups, Some("UserId must not be empty."));
        return respond(StatusCode::BAD_REQUEST, HTML, html);
    }
    let groups_list: Vec<String> = groups
        .split([',', ';'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let groups_list = if groups_list.is_empty() {
        state.groups().groups_of(&user_id)
    } else {
        groups_list
    };
    let identity = ticket_core::Identity::QlikView {
        user_id,
        groups: groups_list,
        groups_is_names: true,
    };
    match crate::qlikview::webticket::issue_for(state, identity, conn).await {
        Ok(ticket) => {
            let try_ = if try_.is_empty() {
                "/QvAJAXZfc/opendoc.htm?document=demo.qvw".to_owned()
            } else {
                try_
            };
            found(&format!(
                "/QvAJAXZfc/Authenticate.aspx?type=html&try={}&back={}&webticket={ticket}",
                percent_encode_lower(&try_),
                percent_encode_lower(DEMO_PORTAL_PATH),
            ))
        }
        Err(e) => e.into_response(&state.settings.qlikview),
    }
}

fn portal_page(try_: &str, user: &str, groups: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p style=\"color:#b00\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Demo QlikView portal</title></head><body>\
<h1>Demo QlikView portal</h1>\
<p>Anyone may sign in as anyone here. This portal is for trying the gateway out; disable it with <code>[demo] enabled = false</code>.</p>{error}\
<form method=\"post\" action=\"/demo/qlikview/\"><input type=\"hidden\" name=\"try\" value=\"{}\">\
<p><label>User id <input name=\"userId\" value=\"{}\" autofocus></label></p>\
<p><label>Groups, comma-separated (empty: look them up) <input name=\"groups\" value=\"{}\"></label></p>\
<p><button type=\"submit\">Sign in</button></p></form></body></html>",
        html_escape(try_),
        html_escape(user),
        html_escape(groups),
    )
}
