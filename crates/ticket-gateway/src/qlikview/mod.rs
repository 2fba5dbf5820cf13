//! The QlikView web server dialect (`/QvAJAXZfc/…`).
//!
//! - [`webticket`]: `POST GetWebTicket.aspx`: a trusted portal asks for a web ticket.
//! - [`authenticate`]: `GET Authenticate.aspx`: the browser redeems it into a session.
//! - [`accesspoint`]: `POST AccessPoint.aspx`: logout and other AccessPoint commands.
//! - [`pages`]: `opendoc.htm`, `/QlikView/…` and the rest, behind the session.
//! - [`xml`], [`trust`], [`groups`]: the reader, who may ask, and group lookup.
//! - [`error`]: every failure, rendered in one place.

pub mod accesspoint;
pub mod authenticate;
pub mod error;
pub mod groups;
pub mod pages;
pub mod trust;
pub mod webticket;
pub mod xml;

use http::header::{HeaderValue, SET_COOKIE};
use http::{HeaderMap, Response};
use ticket_core::model::QLIKVIEW_REALM;
use ticket_core::Session;

use crate::gateway::{Conn, Gateway};
use crate::http::{cookies, Body};

/// The realm QlikView tickets and sessions live in.
pub const REALM: &str = QLIKVIEW_REALM;

/// The live QlikView session named by the request's cookie, touched.
pub(crate) async fn current_session(
    gw: &Gateway,
    headers: &HeaderMap,
) -> Result<Option<Session>, ticket_core::StoreError> {
    let name = &gw.settings().qlikview.session_cookie_name;
    for id in cookies(headers, name) {
        if id.is_empty() {
            continue;
        }
        if let Some(s) = gw.core().touch_session(REALM, id).await? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// `AccessPointSession=<id>; Path=/; HttpOnly[; Secure]`.
pub(crate) fn set_session_cookie(res: &mut Response<Body>, gw: &Gateway, conn: &Conn, id: &str) {
    let name = &gw.settings().qlikview.session_cookie_name;
    if let Some(v) = crate::http::session_cookie(name, id, conn.secure, "") {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Expires the session cookie in the browser.
pub(crate) fn clear_session_cookie(res: &mut Response<Body>, gw: &Gateway, conn: &Conn) {
    let name = &gw.settings().qlikview.session_cookie_name;
    let secure = if conn.secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}
