//! The route table: every path both listeners answer, on one screen.
//!
//! ```text
//! listener  method      path                                   handler
//! api       POST        /qps[/{vp}]/ticket                     qps::api::add_ticket
//! frontend  GET | POST  /demo/login      (when [demo] enabled)  demo::login_form | demo::login
//! frontend  any         /[{vp}/]…        (anything else)        qps::frontend::serve
//! ```
//!
//! QPS REST paths put the prefix after `/qps/`; front-end paths put it first. Endpoint
//! words are matched in any casing, empty segments (`/qps//ticket`, `/qps/ext//ticket`)
//! are skipped, and the request target may be in absolute form: only the path is read.

use http::Method;

use crate::config::{Settings, VirtualProxy, DEMO_LOGIN_PATH};
use crate::http::percent_decode;

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
    /// The demo authentication module's form.
    DemoLoginForm,
    /// The demo authentication module's form, submitted.
    DemoLogin,
    /// Anything behind a virtual proxy on the front end.
    Frontend(&'s VirtualProxy),
    /// An API path that exists, called with another method.
    MethodNotAllowed(&'static str),
    /// Nothing here.
    NotFound,
}

/// The virtual proxy an API path names.
#[derive(Debug, PartialEq)]
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
}

/// Picks the route for a request.
pub(crate) fn route<'s>(
    settings: &'s Settings,
    side: Side,
    method: &Method,
    path: &str,
) -> Route<'s> {
    match side {
        Side::Api => api_route(settings, method, path),
        Side::Frontend => {
            if settings.demo
                && path
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(DEMO_LOGIN_PATH)
            {
                return match *method {
                    Method::GET | Method::HEAD => Route::DemoLoginForm,
                    Method::POST => Route::DemoLogin,
                    _ => Route::MethodNotAllowed("GET, POST"),
                };
            }
            Route::Frontend(frontend_vp(settings, path))
        }
    }
}

fn api_route<'s>(settings: &'s Settings, method: &Method, path: &str) -> Route<'s> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if !segments
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("qps"))
    {
        return Route::NotFound;
    }
    let segments: Vec<String> = segments.map(|s| percent_decode(s).into_owned()).collect();
    let Some((vp, endpoint)) = resolve(settings, &segments) else {
        return Route::NotFound;
    };
    match (endpoint, method) {
        (Endpoint::Ticket, &Method::POST) => Route::AddTicket(vp),
        (Endpoint::Ticket, _) => Route::MethodNotAllowed("POST"),
    }
}

/// Splits `[vp]/endpoint…` into the virtual proxy and the endpoint. A first segment that is
/// a configured prefix wins (a proxy may well be named `ticket`: `/qps/ticket/ticket`);
/// otherwise the default proxy is meant when the whole path is an endpoint.
fn resolve<'s>(settings: &'s Settings, segments: &[String]) -> Option<(VpRef<'s>, Endpoint)> {
    if let Some((first, rest)) = segments.split_first() {
        let prefix = first.to_ascii_lowercase();
        let named = settings
            .virtual_proxy(&prefix)
            .filter(|vp| !vp.prefix.is_empty());
        if let (Some(vp), Some(e)) = (named, endpoint(rest)) {
            return Some((VpRef::Known(vp), e));
        }
        if let Some(e) = endpoint(segments) {
            return Some((VpRef::Known(settings.default_virtual_proxy()), e));
        }
        if let Some(e) = endpoint(rest) {
            return Some((VpRef::Unknown(first.clone()), e));
        }
    }
    None
}

fn endpoint(segments: &[String]) -> Option<Endpoint> {
    match segments {
        [word] if word.eq_ignore_ascii_case("ticket") => Some(Endpoint::Ticket),
        _ => None,
    }
}

/// The virtual proxy of a front-end path: the one whose prefix is the first segment, else
/// the default one (which also owns every reserved word: `/hub/`, `/qrs/`, …).
fn frontend_vp<'s>(settings: &'s Settings, path: &str) -> &'s VirtualProxy {
    let first = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    let first = percent_decode(first).to_ascii_lowercase();
    settings
        .virtual_proxies
        .iter()
        .find(|vp| !vp.prefix.is_empty() && vp.prefix == first)
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
}
