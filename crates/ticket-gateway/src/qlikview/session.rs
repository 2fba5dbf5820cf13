//! The QlikView session as the browser holds it: the `AccessPointSession` cookie.

use http::header::SET_COOKIE;
use http::{HeaderMap, Response};
use ticket_core::{Session, StoreError};

use super::REALM;
use crate::conn::Conn;
use crate::http::{cookies, expired_cookie, session_cookie, Body};
use crate::state::State;

/// The non-empty values of the QlikView session cookie.
pub(crate) fn ids<'r>(
    state: &'r State,
    headers: &'r HeaderMap,
) -> impl Iterator<Item = &'r str> + 'r {
    cookies(headers, &state.settings.qlikview.session_cookie_name).filter(|id| !id.is_empty())
}

/// The live QlikView session named by the request's cookie, touched.
pub(crate) async fn current(
    state: &State,
    headers: &HeaderMap,
) -> Result<Option<Session>, StoreError> {
    for id in ids(state, headers) {
        if let Some(s) = state.core.touch_session(REALM, id).await? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// `AccessPointSession=<id>; Path=/; HttpOnly[; Secure]`.
pub(crate) fn set_cookie(res: &mut Response<Body>, state: &State, conn: &Conn, id: &str) {
    let name = &state.settings.qlikview.session_cookie_name;
    if let Some(v) = session_cookie(name, id, conn.secure, "") {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Expires the session cookie in the browser.
pub(crate) fn clear_cookie(res: &mut Response<Body>, state: &State, conn: &Conn) {
    let name = &state.settings.qlikview.session_cookie_name;
    if let Some(v) = expired_cookie(name, conn.secure, "") {
        res.headers_mut().append(SET_COOKIE, v);
    }
}
