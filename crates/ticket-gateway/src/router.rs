//! The route table: every path both listeners answer, on one screen.
//!
//! ```text
//! listener  method      path                                   handler
//! api       GET         /healthz, /readyz                      health::alive | health::ready
//! api       GET         /metrics                               metrics::render
//! api       POST        /qps[/{vp}]/ticket                     qps::api::add_ticket
//! api       POST | GET  /qps[/{vp}]/session                    qps::session_api::{create, list}
//! api       GET | DEL   /qps[/{vp}]/session/{id}               qps::session_api::{get, delete}
//! api       GET | DEL   /qps[/{vp}]/user/{directory}/{id}      qps::session_api::{user, logout_user}
//! frontend  GET | DEL   /[{vp}/]qps/user                       qps::personal::{user, logout}
//! frontend  POST        /QvAJAXZfc/GetWebTicket.aspx           qlikview::webticket::get_web_ticket
//! frontend  GET         /QvAJAXZfc/Authenticate.aspx           qlikview::authenticate::authenticate
//! frontend  POST        /QvAJAXZfc/AccessPoint.aspx, /AccessPoint.aspx
//!                                                              qlikview::accesspoint::command
//! frontend  any         /QvAJAXZfc/…, /QlikView/…, GET AccessPoint.aspx
//!                                                              qlikview::pages::serve
//! frontend  GET | POST  /demo/login      (when [demo] enabled)  demo::login_form | demo::login
//! frontend  GET | POST  /demo/qlikview/  (when [demo] enabled)  demo::portal_form | demo::portal
//! frontend  any         /[{vp}/]…        (anything else)        qps::frontend::serve
//! ```
//!
//! QlikView paths are matched in any casing, as IIS does.
//!
//! QPS REST paths put the prefix after `/qps/`; front-end paths put it first. Endpoint
//! words are matched in any casing, empty segments (`/qps//ticket`, `/qps/ext//ticket`)
//! are skipped, and the request target may be in absolute form: only the path is read.

use std::borrow::Cow;

use http::Method;

use crate::config::{Settings, VirtualProxy, DEMO_LOGIN_PATH, DEMO_PORTAL_PATH};
use crate::http::{percent_decode, split_ascii};

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The browser-facing listener.
    Frontend,
    /// The QPS REST API listener.
    Api,
}

/// Where a request goes.
#[derive(Debug, PartialEq)]
pub(crate) enum Route<'s> {
    /// `POST /qps/{vp}/ticket`.
    AddTicket(VpRef<'s>),
    /// The session and user APIs.
    Session(VpRef<'s>, SessionOp),
    /// `GET /healthz`.
    Alive,
    /// `GET /readyz`.
    Ready,
    /// `GET /metrics`.
    Metrics,
    /// The personal API, `/{vp}/qps/user`.
    PersonalUser(&'s VirtualProxy),
    /// The demo authentication module's form.
    DemoLoginForm,
    /// The demo authentication module's form, submitted.
    DemoLogin,
    /// The demo QlikView portal's form.
    DemoPortalForm,
    /// The demo QlikView portal's form, submitted.
    DemoPortal,
    /// `POST GetWebTicket.aspx`.
    GetWebTicket,
    /// `GET Authenticate.aspx`.
    Authenticate,
    /// `POST AccessPoint.aspx`.
    AccessPoint,
    /// A page behind the QlikView session.
    QlikViewPage,
    /// A QlikView endpoint called with the wrong method.
    QlikViewMethodNotAllowed(&'static str),
    /// Anything behind a virtual proxy on the front end.
    Frontend(&'s VirtualProxy),
    /// An API path that exists, called with another method.
    MethodNotAllowed(&'static str),
    /// Nothing here.
    NotFound,
}

impl Route<'_> {
    /// The route's name, for the access log and metrics (never the path: it may hold a
    /// ticket).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::AddTicket(_) => "qps_ticket",
            Route::Session(_, op) => match op {
                SessionOp::Create => "qps_session_create",
                SessionOp::List => "qps_session_list",
                SessionOp::Get(_) => "qps_session_get",
                SessionOp::Delete(_) => "qps_session_delete",
                SessionOp::User(..) => "qps_user_get",
                SessionOp::LogoutUser(..) => "qps_user_delete",
            },
            Route::Alive => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::PersonalUser(_) => "qps_personal_user",
            Route::DemoLoginForm | Route::DemoLogin => "demo_login",
            Route::DemoPortalForm | Route::DemoPortal => "demo_portal",
            Route::GetWebTicket => "qv_getwebticket",
            Route::Authenticate => "qv_authenticate",
            Route::AccessPoint => "qv_accesspoint",
            Route::QlikViewPage => "qv_page",
            Route::QlikViewMethodNotAllowed(_) => "qv_method_not_allowed",
            Route::Frontend(_) => "frontend",
            Route::MethodNotAllowed(_) => "method_not_allowed",
            Route::NotFound => "not_found",
        }
    }
}

/// The virtual proxy an API path names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VpRef<'s> {
    /// A configured virtual proxy.
    Known(&'s VirtualProxy),
    /// A prefix no virtual proxy has.
    Unknown(String),
}

/// QPS REST endpoints, after `/qps/{vp}/`.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Ticket,
    Sessions,
    Session(String),
    User(String, String),
}

/// A session API operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionOp {
    /// `POST /qps/{vp}/session`.
    Create,
    /// `GET /qps/{vp}/session`.
    List,
    /// `GET /qps/{vp}/session/{id}`.
    Get(String),
    /// `DELETE /qps/{vp}/session/{id}`.
    Delete(String),
    /// `GET /qps/{vp}/user/{directory}/{id}`.
    User(String, String),
    /// `DELETE /qps/{vp}/user/{directory}/{id}`.
    LogoutUser(String, String),
}

/// Picks the route for a request. Every request comes through here, so paths are compared
/// in place (ASCII case-insensitively) rather than lowercased or split into new strings.
pub(crate) fn route<'s>(
    settings: &'s Settings,
    side: Side,
    method: &Method,
    path: &str,
) -> Route<'s> {
    match side {
        Side::Api => api_route(settings, method, path),
        Side::Frontend => {
            if let Some(r) = qlikview_route(method, path) {
                return r;
            }
            if settings.demo {
                let demo = |form, submit| match *method {
                    Method::GET | Method::HEAD => form,
                    Method::POST => submit,
                    _ => Route::MethodNotAllowed("GET, POST"),
                };
                let trimmed = path.trim_end_matches('/');
                if trimmed.eq_ignore_ascii_case(DEMO_LOGIN_PATH) {
                    return demo(Route::DemoLoginForm, Route::DemoLogin);
                }
                if trimmed.eq_ignore_ascii_case(DEMO_PORTAL_PATH.trim_end_matches('/')) {
                    return demo(Route::DemoPortalForm, Route::DemoPortal);
                }
            }
            let vp = frontend_vp(settings, path);
            if is_personal_user(path, &vp.prefix) {
                return match *method {
                    Method::GET | Method::HEAD | Method::DELETE => Route::PersonalUser(vp),
                    _ => Route::MethodNotAllowed("GET, DELETE"),
                };
            }
            Route::Frontend(vp)
        }
    }
}

/// `/{vp}/qps/user` (prefix before `/qps`, unlike the REST API), trailing slash allowed.
fn is_personal_user(path: &str, prefix: &str) -> bool {
    let mut segments = split_ascii(path, b'/').filter(|s| !s.is_empty());
    let is = |s: Option<&str>, word: &str| s.is_some_and(|s| s.eq_ignore_ascii_case(word));
    let first = segments.next();
    let (second, third, more) = (segments.next(), segments.next(), segments.next());
    match (third, more) {
        (None, _) => prefix.is_empty() && is(first, "qps") && is(second, "user"),
        (Some(_), None) => {
            !prefix.is_empty() && is(first, prefix) && is(second, "qps") && is(third, "user")
        }
        _ => false,
    }
}

/// `path` without `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ignore_case<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let head = path.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &path[prefix.len()..])
}

/// The route a request would take, as text: for fuzzing and diagnostics, so the route
/// table can be exercised without exposing its types.
pub fn describe(settings: &Settings, side: Side, method: &Method, path: &str) -> String {
    format!("{:?}", route(settings, side, method, path))
}

/// The QlikView web server's paths, in any casing.
fn qlikview_route(method: &Method, path: &str) -> Option<Route<'static>> {
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
        if is_get {
            Route::Authenticate
        } else {
            Route::QlikViewMethodNotAllowed("GET")
        }
    } else if is("accesspoint.aspx") && *method == Method::POST {
        Route::AccessPoint
    } else {
        Route::QlikViewPage
    })
}

/// The most segments after `/qps` any endpoint has: `{vp}/user/{directory}/{id}`.
const MAX_API_SEGMENTS: usize = 4;

fn api_route<'s>(settings: &'s Settings, method: &Method, path: &str) -> Route<'s> {
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
fn frontend_vp<'s>(settings: &'s Settings, path: &str) -> &'s VirtualProxy {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_toml(
            "[[virtual_proxy]]\nprefix = \"ext\"\n[[virtual_proxy]]\nprefix = \"ticket\"\n",
        )
        .unwrap()
    }

    fn api(path: &str) -> String {
        let s = settings();
        match route(&s, Side::Api, &Method::POST, path) {
            Route::AddTicket(VpRef::Known(vp)) => format!("ticket@{}", vp.prefix),
            Route::AddTicket(VpRef::Unknown(p)) => format!("unknown@{p}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn api_paths_tolerate_what_clients_send() {
        assert_eq!(api("/qps/ticket"), "ticket@");
        assert_eq!(api("/QPS/Ticket/"), "ticket@");
        assert_eq!(api("/qps//ticket"), "ticket@");
        assert_eq!(api("/qps/ext/ticket"), "ticket@ext");
        assert_eq!(api("/qps/EXT//TICKET"), "ticket@ext");
        assert_eq!(api("/qps/ticket/ticket"), "ticket@ticket");
        assert_eq!(api("/qps/nope/ticket"), "unknown@nope");
        assert_eq!(api("/qps/ext/tickets"), "NotFound");
        assert_eq!(api("/other/ticket"), "NotFound");
        let s = settings();
        assert_eq!(
            route(&s, Side::Api, &Method::GET, "/qps/ext/ticket"),
            Route::MethodNotAllowed("POST")
        );
    }

    #[test]
    fn frontend_paths_pick_the_virtual_proxy() {
        let s = settings();
        let vp = |p: &str| match route(&s, Side::Frontend, &Method::GET, p) {
            Route::Frontend(vp) => vp.prefix.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(vp("/ext/hub/"), "ext");
        assert_eq!(vp("/EXT/hub/"), "ext");
        assert_eq!(vp("/hub/"), "");
        assert_eq!(vp("/extra/hub"), "");
        assert_eq!(vp("/"), "");
        assert_eq!(vp("/demo/login"), "DemoLoginForm");
    }

    #[test]
    fn qlikview_paths_in_any_casing() {
        let s = settings();
        let r = |m: Method, p: &str| format!("{:?}", route(&s, Side::Frontend, &m, p));
        assert_eq!(
            r(Method::POST, "/QvAJAXZfc/GetWebTicket.aspx"),
            "GetWebTicket"
        );
        assert_eq!(
            r(Method::POST, "/qvajaxzfc/getwebticket.aspx"),
            "GetWebTicket"
        );
        assert_eq!(
            r(Method::POST, "/QVAJAXZFC/getwebticket.aspx"),
            "GetWebTicket"
        );
        assert_eq!(
            r(Method::GET, "/QvAJAXZfc/GetWebTicket.aspx"),
            "QlikViewMethodNotAllowed(\"POST\")"
        );
        assert_eq!(
            r(Method::GET, "/qvajaxzfc/Authenticate.aspx"),
            "Authenticate"
        );
        assert_eq!(
            r(Method::POST, "/QvAJAXZfc/AccessPoint.aspx"),
            "AccessPoint"
        );
        assert_eq!(r(Method::POST, "/Accesspoint.aspx"), "AccessPoint");
        assert_eq!(r(Method::GET, "/QvAJAXZfc/opendoc.htm"), "QlikViewPage");
        assert_eq!(r(Method::GET, "/QlikView/"), "QlikViewPage");
        assert_eq!(r(Method::GET, "/qlikviewx/"), r(Method::GET, "/hub/"));
        assert_eq!(r(Method::GET, "/demo/qlikview/"), "DemoPortalForm");
    }
}
