//! Reading request paths the way real clients write them: QPS REST paths with the prefix
//! after `/qps/`, front-end paths with the prefix first, QlikView's in any casing.
//!
//! Endpoint words are matched in any casing, empty segments (`/qps//ticket`,
//! `/qps/ext//ticket`) are skipped, and the request target may be in absolute form: only
//! the path is read. Paths are compared in place (ASCII case-insensitively) rather than
//! lowercased or split into new strings: every request comes through here.

use std::borrow::Cow;

use http::Method;

use super::Route;
use crate::config::{Authentication, Settings, VirtualProxy, OIDC_CALLBACK_PATH};
use crate::http::{percent_decode, split_ascii};
use crate::qps::api::VpRef;
use crate::qps::session_api::SessionOp;

/// QPS REST endpoints, after `/qps/{vp}/`.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Ticket,
    Sessions,
    Session(String),
    User(String, String),
}

/// The word after `/{vp}/qps/` of a personal API path (prefix before `/qps`, unlike the
/// REST API; trailing slash allowed): `user`, `csrftoken`, …
pub(super) fn personal_endpoint<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let mut segments = split_ascii(path, b'/').filter(|s| !s.is_empty());
    let is = |s: Option<&str>, word: &str| s.is_some_and(|s| s.eq_ignore_ascii_case(word));
    let first = segments.next();
    let (second, third, more) = (segments.next(), segments.next(), segments.next());
    match (third, more) {
        (None, _) if prefix.is_empty() && is(first, "qps") => second,
        (Some(word), None) if !prefix.is_empty() && is(first, prefix) && is(second, "qps") => {
            Some(word)
        }
        _ => None,
    }
}

/// Whether `path` is the OpenID Connect callback of `vp` (an OpenID Connect proxy):
/// `/<prefix>/oidcauthn`, or `/oidcauthn` for the default proxy; trailing slash allowed.
pub(super) fn is_oidc_callback(vp: &VirtualProxy, path: &str) -> bool {
    if !matches!(vp.authentication, Authentication::Oidc(_)) {
        return false;
    }
    let word = OIDC_CALLBACK_PATH.trim_start_matches('/');
    let mut segments = split_ascii(path, b'/').filter(|s| !s.is_empty());
    let is = |s: Option<&str>, w: &str| s.is_some_and(|s| s.eq_ignore_ascii_case(w));
    let found = if vp.prefix.is_empty() {
        is(segments.next(), word)
    } else {
        is(segments.next(), &vp.prefix) && is(segments.next(), word)
    };
    found && segments.next().is_none()
}

/// `path` without `prefix`, compared ASCII case-insensitively.
pub(super) fn strip_prefix_ignore_case<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let head = path.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &path[prefix.len()..])
}

/// The QlikView web server's paths, in any casing.
pub(super) fn qlikview_route(
    method: &Method,
    path: &str,
    form_login: bool,
) -> Option<Route<'static>> {
    let is_get = matches!(*method, Method::GET | Method::HEAD);
    let page = if let Some(rest) = strip_prefix_ignore_case(path, "/qvajaxzfc/") {
        rest
    } else if path.eq_ignore_ascii_case("/accesspoint.aspx") {
        "accesspoint.aspx"
    } else if path.eq_ignore_ascii_case("/qlikview")
        || strip_prefix_ignore_case(path, "/qlikview/").is_some()
    {
        return Some(Route::QlikViewPage);
    } else {
        return None;
    };
    let is = |name: &str| page.eq_ignore_ascii_case(name);
    Some(if is("getwebticket.aspx") {
        if *method == Method::POST {
            Route::GetWebTicket
        } else {
            Route::QlikViewMethodNotAllowed("POST")
        }
    } else if is("authenticate.aspx") {
        match *method {
            _ if is_get => Route::Authenticate,
            Method::POST if form_login => Route::AuthenticateForm,
            _ => Route::QlikViewMethodNotAllowed("GET"),
        }
    } else if is("accesspoint.aspx") && *method == Method::POST {
        Route::AccessPoint
    } else {
        Route::QlikViewPage
    })
}

/// The most segments after `/qps` any endpoint has: `{vp}/user/{directory}/{id}`.
const MAX_API_SEGMENTS: usize = 4;

pub(super) fn api_route<'s>(settings: &'s Settings, method: &Method, path: &str) -> Route<'s> {
    let get = matches!(*method, Method::GET | Method::HEAD);
    match path.trim_end_matches('/') {
        "/healthz" if get => return Route::Alive,
        "/readyz" if get => return Route::Ready,
        "/metrics" if get => return Route::Metrics,
        "/healthz" | "/readyz" | "/metrics" => return Route::MethodNotAllowed("GET"),
        _ => {}
    }
    let mut raw = split_ascii(path, b'/').filter(|s| !s.is_empty());
    if !raw.next().is_some_and(|s| s.eq_ignore_ascii_case("qps")) {
        return Route::NotFound;
    }
    // Decoded in place: borrowed unless a segment holds a `%` escape.
    let mut segments: [Cow<'_, str>; MAX_API_SEGMENTS] = Default::default();
    let mut len = 0;
    for segment in raw {
        let Some(slot) = segments.get_mut(len) else {
            return Route::NotFound;
        };
        *slot = percent_decode(segment);
        len += 1;
    }
    let Some((vp, endpoint)) = resolve(settings, &segments[..len]) else {
        return Route::NotFound;
    };
    let op = match (endpoint, method) {
        (Endpoint::Ticket, &Method::POST) => return Route::AddTicket(vp),
        (Endpoint::Ticket, _) => return Route::MethodNotAllowed("POST"),
        (Endpoint::Sessions, &Method::POST) => SessionOp::Create,
        (Endpoint::Sessions, _) if get => SessionOp::List,
        (Endpoint::Sessions, _) => return Route::MethodNotAllowed("GET, POST"),
        (Endpoint::Session(id), _) if get => SessionOp::Get(id),
        (Endpoint::Session(id), &Method::DELETE) => SessionOp::Delete(id),
        (Endpoint::Session(_), _) => return Route::MethodNotAllowed("GET, DELETE"),
        (Endpoint::User(d, u), _) if get => SessionOp::User(d, u),
        (Endpoint::User(d, u), &Method::DELETE) => SessionOp::LogoutUser(d, u),
        (Endpoint::User(..), _) => return Route::MethodNotAllowed("GET, DELETE"),
    };
    Route::Session(vp, op)
}

/// Splits `[vp]/endpoint…` into the virtual proxy and the endpoint. A first segment that is
/// a configured prefix wins (a proxy may well be named `ticket`: `/qps/ticket/ticket`);
/// otherwise the default proxy is meant when the whole path is an endpoint.
fn resolve<'s>(settings: &'s Settings, segments: &[Cow<'_, str>]) -> Option<(VpRef<'s>, Endpoint)> {
    if let Some((first, rest)) = segments.split_first() {
        // Prefixes are lowercase by configuration.
        let named = settings
            .virtual_proxies
            .iter()
            .find(|vp| !vp.prefix.is_empty() && first.eq_ignore_ascii_case(&vp.prefix));
        if let (Some(vp), Some(e)) = (named, endpoint(rest)) {
            return Some((VpRef::Known(vp), e));
        }
        if let Some(e) = endpoint(segments) {
            return Some((VpRef::Known(settings.default_virtual_proxy()), e));
        }
        if let Some(e) = endpoint(rest) {
            return Some((VpRef::Unknown(first.to_string()), e));
        }
    }
    None
}

fn endpoint(segments: &[Cow<'_, str>]) -> Option<Endpoint> {
    let is = |w: &str, word: &str| w.eq_ignore_ascii_case(word);
    match segments {
        [w] if is(w, "ticket") => Some(Endpoint::Ticket),
        [w] if is(w, "session") => Some(Endpoint::Sessions),
        [w, id] if is(w, "session") => Some(Endpoint::Session(id.to_string())),
        [w, dir, id] if is(w, "user") => Some(Endpoint::User(dir.to_string(), id.to_string())),
        _ => None,
    }
}

/// The virtual proxy of a front-end path: the one whose prefix is the first segment, else
/// the default one (which also owns every reserved word: `/hub/`, `/qrs/`, …).
pub(super) fn frontend_vp<'s>(settings: &'s Settings, path: &str) -> &'s VirtualProxy {
    let first = split_ascii(path, b'/')
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let first = percent_decode(first);
    settings
        .virtual_proxies
        .iter()
        .find(|vp| !vp.prefix.is_empty() && first.eq_ignore_ascii_case(&vp.prefix))
        .unwrap_or_else(|| settings.default_virtual_proxy())
}
