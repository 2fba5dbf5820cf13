//! `GET /QvAJAXZfc/Authenticate.aspx`: the browser redeems a web ticket into a session.
//!
//! `type`, `webticket`, `try` and `back` come in any order. `try` is often not encoded at
//! all and carries its own `?document=…`; then everything up to the next `&` belongs to
//! it, and parameters that follow it but are not Authenticate.aspx's own (`select`,
//! `client`, …) belong to it too and are put back. An encoded `try` is decoded once.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use std::future::Future;

use http::{Request, Response};
use ticket_core::{Redemption, Session};

use super::error::QvError;
use super::{session, REALM};
use crate::conn::Conn;
use crate::http::{found, percent_decode, split_ascii, split_once_ascii, Body};
use crate::state::State;
use crate::telemetry::audit;

/// Where `try` points when a caller sends none: the AccessPoint portal.
pub(crate) const DEFAULT_TRY: &str = "/QlikView/";

/// The parameters of an Authenticate.aspx call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthParams {
    /// `webticket`, decoded.
    pub webticket: Option<String>,
    /// `try`, with the parameters that belong to it re-attached.
    pub try_: Option<String>,
    /// `back`.
    pub back: Option<String>,
    /// `keep`: reuse a live session without a ticket.
    pub keep: bool,
}

/// Names Authenticate.aspx itself understands; anything else near `try` is `try`'s.
const OWN: &[&str] = &["type", "webticket", "try", "back", "keep", "changepassword"];
/// Parameters that always belong to the document URL in `try`.
const TRY_PARAMS: &[&str] = &["select", "client"];

/// Parses a raw query string.
pub fn parse_query(raw: &str) -> AuthParams {
    let mut params = AuthParams::default();
    let mut try_raw: Option<&str> = None;
    let mut try_extras: Vec<&str> = Vec::new();
    let mut after_try = false;
    for piece in split_ascii(raw, b'&').filter(|p| !p.is_empty()) {
        let (name, value) = split_once_ascii(piece, b'=').unwrap_or((piece, ""));
        let name = percent_decode(name).to_ascii_lowercase();
        match name.as_str() {
            "try" => {
                try_raw = Some(value);
                after_try = true;
                continue;
            }
            "back" => params.back = Some(target(value)),
            "webticket" => params.webticket = Some(percent_decode(value).trim().to_owned()),
            "keep" => params.keep = true,
            n if !OWN.contains(&n) && (after_try || TRY_PARAMS.contains(&n)) => {
                try_extras.push(piece);
                continue;
            }
            _ => {}
        }
        after_try = false;
    }
    if let Some(raw_try) = try_raw {
        let mut t = target(raw_try);
        for extra in try_extras {
            t.push(if t.contains('?') { '&' } else { '?' });
            t.push_str(extra);
        }
        params.try_ = Some(t);
    }
    params
}

/// A `try`/`back` value: kept as sent when it is plainly raw (it holds a literal `/`, `?`
/// or `:`), decoded once when the caller encoded it.
fn target(raw: &str) -> String {
    if raw.contains(['/', '?', ':']) {
        raw.to_owned()
    } else {
        percent_decode(raw).into_owned()
    }
}

/// Handles an Authenticate.aspx call.
///
/// The query is read before the returned future is made; the future keeps the request's
/// headers only when it needs them (`keep`: the session to reuse is named by a cookie).
pub(crate) fn authenticate<'a, B>(
    state: &'a State,
    req: Request<B>,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + 'a
where
    B: 'a,
{
    let qv = &state.settings.qlikview;
    let params = parse_query(req.uri().query().unwrap_or(""));
    let targets = targets(state, &req, &params);
    let webticket = params.webticket.filter(|t| !t.is_empty());
    let keep = targets.is_some() && webticket.is_none() && params.keep;
    let headers = keep.then(|| req.into_parts().0.headers);
    async move {
        let Some((try_, back)) = targets else {
            return QvError::UnsafeRedirect.into_response(qv);
        };
        let outcome = match (&webticket, &headers) {
            (Some(ticket), _) => redeem(state, ticket, conn)
                .await
                .map(|s| s.map(|s| (s, true))),
            (None, Some(headers)) => session::current(state, headers)
                .await
                .map(|s| s.map(|s| (s, false))),
            (None, None) => Ok(None),
        };
        match outcome {
            Ok(Some((session, new))) => {
                let mut res = found(&try_);
                if new {
                    session::set_cookie(&mut res, state, conn, &session.id);
                }
                res
            }
            Ok(None) if back.is_empty() => QvError::Unauthorized.into_response(qv),
            Ok(None) => found(&back),
            Err(e) => QvError::Unavailable(e).into_response(qv),
        }
    }
}

/// `try` (or [`DEFAULT_TRY`]) and `back` (empty when none), each judged as a browser would
/// resolve it, ready to send; `None` when either may not be redirected to.
fn targets<B>(state: &State, req: &Request<B>, params: &AuthParams) -> Option<(String, String)> {
    let qv = &state.settings.qlikview;
    let try_ = params
        .try_
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TRY);
    let redirects = &state.redirects;
    let guard = |t: &str| redirects.location(t, req.uri().path(), &qv.safe_forward);
    let back = match params.back.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => guard(b),
        None => Some(String::new()),
    };
    guard(try_).zip(back)
}

/// `POST Authenticate.aspx` with `username` and `password` (QlikView's form login, with
/// `[qlikview] users_file`): `302` to `try` with the session cookie, or to `back` on
/// failure (a `401` page without one). `try` and `back` follow the same rules as with a
/// web ticket.
pub(crate) async fn form_login<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body,
    B::Error: Into<crate::http::BoxError>,
{
    let qv = &state.settings.qlikview;
    let params = parse_query(req.uri().query().unwrap_or(""));
    let Some((try_, back)) = targets(state, &req, &params) else {
        return QvError::UnsafeRedirect.into_response(qv);
    };
    let Some(users) = &state.qlikview_users else {
        return QvError::MethodNotAllowed("GET").into_response(qv);
    };
    let body = match crate::http::read_body(req.into_body(), &state.settings.limits).await {
        Ok(body) => body,
        Err(e) => return QvError::from(e).into_response(qv),
    };
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let Some(user) = users.check(field("username"), field("password")).await else {
        return if back.is_empty() {
            QvError::Unauthorized.into_response(qv)
        } else {
            found(&back)
        };
    };
    let groups = user
        .attributes
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("group"))
        .map(|(_, v)| v.clone())
        .collect();
    let identity = ticket_core::Identity::QlikView {
        user_id: user.name,
        groups,
        groups_is_names: true,
    };
    match state
        .core
        .start_session(REALM, identity, qv.session_inactivity_timeout, None)
        .await
    {
        Ok((session, _)) => {
            audit::session_started("qlikview", "", &session.identity, &session.id, conn);
            let mut res = found(&try_);
            session::set_cookie(&mut res, state, conn, &session.id);
            res
        }
        Err(e) => QvError::Unavailable(e).into_response(qv),
    }
}

async fn redeem(
    state: &State,
    ticket: &str,
    conn: &Conn,
) -> Result<Option<Session>, ticket_core::StoreError> {
    let idle = state.settings.qlikview.session_inactivity_timeout;
    let redeemed = state
        .core
        .redeem_into_session(REALM, ticket, idle, None)
        .await?;
    let redeemed_by = |identity| audit::ticket_redeemed("qlikview", "", identity, ticket, conn);
    match redeemed {
        Redemption::Started {
            ticket: spent,
            session,
            ..
        } => {
            redeemed_by(Some(&spent.identity));
            audit::session_started("qlikview", "", &session.identity, &session.id, conn);
            Ok(Some(session))
        }
        // No limit is asked for, so this cannot happen; it would start nothing.
        Redemption::LimitReached(spent) => {
            redeemed_by(Some(&spent.identity));
            Ok(None)
        }
        Redemption::NoTicket | Redemption::WrongRealm(_) => {
            redeemed_by(None);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> AuthParams {
        parse_query(q)
    }

    #[test]
    fn the_documented_raw_form() {
        let a = p("type=html&try=/qvajaxzfc/opendoc.htm?document=Sales.qvw&back=/LoginPage.htm&webticket=ABC");
        assert_eq!(
            a.try_.as_deref(),
            Some("/qvajaxzfc/opendoc.htm?document=Sales.qvw")
        );
        assert_eq!(a.back.as_deref(), Some("/LoginPage.htm"));
        assert_eq!(a.webticket.as_deref(), Some("ABC"));
    }

    #[test]
    fn any_order_and_empty_back() {
        let a = p("webticket=T&back=&try=%2FQlikView%2F&type=html");
        assert_eq!(a.try_.as_deref(), Some("/QlikView/"));
        assert_eq!(a.back.as_deref(), Some(""));
    }

    #[test]
    fn encoded_try_and_trailing_document_params() {
        let a = p("type=html&webticket=T&try=%2FQvAJAXZfc%2FAccessPoint.aspx%3Fopen%3D%26id%3DQVS%40host%257Cdoc.qvw&select=LB39%2CBanana%2CLime&client=Ajax&back=");
        assert_eq!(
            a.try_.as_deref(),
            Some("/QvAJAXZfc/AccessPoint.aspx?open=&id=QVS@host%7Cdoc.qvw&select=LB39%2CBanana%2CLime&client=Ajax")
        );
        let a = p(
            "try=/opendoc.htm?document=D.qvw&bookmark=BM01&back=/x&webticket=T&originsystem=portal",
        );
        assert_eq!(
            a.try_.as_deref(),
            Some("/opendoc.htm?document=D.qvw&bookmark=BM01")
        );
        let a = p("keep=&try=/QlikView/");
        assert!(a.keep);
        assert_eq!(a.webticket, None);
    }

    #[test]
    fn raw_spaces_and_absolute_targets() {
        let a = p("try=/qvajaxzfc/opendoc.htm?document=My%20Doc.qvw&webticket=T");
        assert_eq!(
            a.try_.as_deref(),
            Some("/qvajaxzfc/opendoc.htm?document=My%20Doc.qvw")
        );
        let a = p("try=https://ext/qlikview/?webticket=T");
        assert_eq!(a.try_.as_deref(), Some("https://ext/qlikview/?webticket=T"));
    }
}
