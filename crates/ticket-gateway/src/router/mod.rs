//! The route table: every path both listeners answer, parsed in [`route`] and answered in
//! [`dispatch`], on one screen.
//!
//! ```text
//! listener  method      path                                   handler
//! both      any         (a head over limits.max_header_bytes)  431, connection closed
//! frontend  GET         /forward-auth                          forward_auth (then this table)
//! api       GET         /healthz, /readyz, /metrics            ops::{alive, ready, metrics}
//! api       POST        /qps[/{vp}]/ticket                     qps::api::add_ticket
//! api       POST | GET  /qps[/{vp}]/session                    qps::session_api (create, list)
//! api       GET | DEL   /qps[/{vp}]/session/{id}               qps::session_api (get, delete)
//! api       GET | DEL   /qps[/{vp}]/user/{directory}/{id}      qps::session_api (user, logout)
//! frontend  POST        /QvAJAXZfc/GetWebTicket.aspx           qlikview::webticket
//! frontend  GET         /QvAJAXZfc/Authenticate.aspx           qlikview::authenticate
//! frontend  POST        /QvAJAXZfc/Authenticate.aspx ([qlikview] users_file)  form_login
//! frontend  POST        /QvAJAXZfc/AccessPoint.aspx, /AccessPoint.aspx   qlikview::accesspoint
//! frontend  any         /QvAJAXZfc/…, /QlikView/…, GET AccessPoint.aspx  qlikview::pages
//! frontend  GET | POST  /demo/login, /demo/qlikview/ ([demo] enabled)    demo
//! frontend  GET | DEL   /[{vp}/]qps/user                       qps::personal
//! frontend  GET         /[{vp}/]qps/csrftoken                  qps::frontend (the token)
//! frontend  GET         /[{vp}/]oidcauthn (OpenID Connect vp)  qps::oidc::callback
//! frontend  OPTIONS     (a CORS preflight, any path of a vp)   http::decorate::preflight
//! frontend  any         /[{vp}/]…  (anything else)             qps::frontend
//! ```
//!
//! QlikView paths are matched in any casing, as IIS does; see [`paths`] for how paths are
//! read.

mod paths;

use std::future::Future;
use std::pin::Pin;

use futures_util::future::Either::{Left as L, Right as R};
use http::{HeaderMap, Method, Request, Response};

use crate::config::{Settings, VirtualProxy, DEMO_LOGIN_PATH, DEMO_PORTAL_PATH, FORWARD_AUTH_PATH};
use crate::conn::{ClientAuth, Conn, Side};
use crate::http::decorate::{cors_origin, is_preflight, preflight, Decoration};
use crate::http::{Body, BoxError};
use crate::qlikview::error::QvError;
use crate::qps::api::VpRef;
use crate::qps::error::ApiError;
use crate::qps::frontend::Target::{CsrfToken, Resource};
use crate::qps::session_api::SessionOp;
use crate::state::State;
use crate::{demo, forward_auth, ops, qlikview, qps};

/// Where a request goes.
#[derive(Debug, PartialEq)]
pub(crate) enum Route<'s> {
    AddTicket(VpRef<'s>),
    Session(VpRef<'s>, SessionOp),
    Alive,
    Ready,
    Metrics,
    HeadTooLarge,
    ForwardAuth,
    PersonalUser(&'s VirtualProxy),
    CsrfToken(&'s VirtualProxy),
    OidcCallback(&'s VirtualProxy),
    Preflight(&'s VirtualProxy),
    DemoLoginForm,
    DemoLogin,
    DemoPortalForm,
    DemoPortal,
    GetWebTicket,
    Authenticate,
    AuthenticateForm,
    AccessPoint,
    QlikViewPage,
    QlikViewMethodNotAllowed(&'static str),
    Frontend(&'s VirtualProxy),
    MethodNotAllowed(&'static str),
    NotFound,
}

/// Picks the route for a request.
pub(crate) fn route<'s>(
    settings: &'s Settings,
    side: Side,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Route<'s> {
    if side == Side::Api {
        return paths::api_route(settings, method, path);
    }
    if path.eq_ignore_ascii_case(FORWARD_AUTH_PATH) {
        return match *method {
            Method::GET | Method::HEAD => Route::ForwardAuth,
            _ => Route::MethodNotAllowed("GET"),
        };
    }
    if let Some(r) = paths::qlikview_route(method, path, settings.qlikview.users_file.is_some()) {
        return r;
    }
    if is_preflight(method, headers) {
        return Route::Preflight(paths::frontend_vp(settings, path));
    }
    let trimmed = path.trim_end_matches('/');
    let demo = |form, submit| match *method {
        Method::GET | Method::HEAD => form,
        Method::POST => submit,
        _ => Route::MethodNotAllowed("GET, POST"),
    };
    if settings.demo && trimmed.eq_ignore_ascii_case(DEMO_LOGIN_PATH) {
        return demo(Route::DemoLoginForm, Route::DemoLogin);
    }
    if settings.demo && trimmed.eq_ignore_ascii_case(DEMO_PORTAL_PATH.trim_end_matches('/')) {
        return demo(Route::DemoPortalForm, Route::DemoPortal);
    }
    let vp = paths::frontend_vp(settings, path);
    let personal = paths::personal_endpoint(path, &vp.prefix).map(str::to_ascii_lowercase);
    match (personal.as_deref(), method) {
        (Some("user"), &Method::GET | &Method::HEAD | &Method::DELETE) => Route::PersonalUser(vp),
        (Some("user"), _) => Route::MethodNotAllowed("GET, DELETE"),
        (Some("csrftoken"), &Method::GET | &Method::HEAD) => Route::CsrfToken(vp),
        (Some("csrftoken"), _) => Route::MethodNotAllowed("GET"),
        _ if paths::is_oidc_callback(vp, path) => match *method {
            Method::GET | Method::HEAD => Route::OidcCallback(vp),
            _ => Route::MethodNotAllowed("GET"),
        },
        _ => Route::Frontend(vp),
    }
}

/// The route's handler. The hot ones (ticket requests, redemption, the pages behind a
/// session) are returned unboxed, one variant each; the others are boxed, so that the
/// state of every request, as large as its largest variant, stays the size of a hot one.
/// A client whose certificate the API listener refused gets `403` whatever it asked.
pub(crate) fn dispatch<'a, B>(
    state: &'a State,
    route: Route<'a>,
    req: Request<B>,
    conn: &'a Conn,
) -> impl Future<Output = Response<Body>> + Send + 'a
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let done = |res: Response<Body>| R(R(boxed(std::future::ready(res))));
    if conn.client_auth == ClientAuth::Failed {
        return done(ApiError::ClientCertificate.into_response());
    }
    match route {
        Route::AddTicket(vp) => L(L(L(qps::api::add_ticket(state, req, vp, conn)))),
        Route::Frontend(vp) => L(L(R(qps::frontend::serve(state, req, vp, conn, Resource)))),
        Route::GetWebTicket => L(R(L(qlikview::webticket::get_web_ticket(state, req, conn)))),
        Route::Authenticate => L(R(R(qlikview::authenticate::authenticate(state, req, conn)))),
        Route::QlikViewPage => R(L(qlikview::pages::serve(state, req, conn))),
        Route::Session(vp, op) => R(R(boxed(qps::session_api::handle(state, req, vp, op, conn)))),
        Route::PersonalUser(vp) => R(R(boxed(qps::personal::handle(state, req, vp, conn)))),
        Route::CsrfToken(vp) => R(R(boxed(qps::frontend::serve(
            state, req, vp, conn, CsrfToken,
        )))),
        Route::AccessPoint => R(R(boxed(qlikview::accesspoint::command(state, req, conn)))),
        Route::OidcCallback(vp) => R(R(boxed(qps::oidc::callback(state, req, vp, conn)))),
        Route::AuthenticateForm => R(R(boxed(qlikview::authenticate::form_login(
            state, req, conn,
        )))),
        Route::DemoLogin => R(R(boxed(demo::qps::login(state, req, conn)))),
        Route::DemoPortal => R(R(boxed(demo::qlikview::portal(state, req, conn)))),
        Route::Ready => R(R(boxed(ops::ready(state)))),
        Route::ForwardAuth => R(R(boxed(forward_auth_check(state, req, conn)))),
        Route::Metrics => R(R(boxed(ops::metrics(state)))),
        Route::Preflight(vp) => done(preflight(
            req.headers(),
            cors_origin(req.headers(), &vp.cors_allowed_origins).is_some(),
        )),
        Route::Alive => done(ops::alive()),
        Route::HeadTooLarge => done(crate::http::head_too_large()),
        Route::DemoLoginForm => done(demo::qps::login_form(state, &req)),
        Route::DemoPortalForm => done(demo::qlikview::portal_form(state, &req)),
        Route::QlikViewMethodNotAllowed(allow) => {
            done(QvError::MethodNotAllowed(allow).into_response(&state.settings.qlikview))
        }
        Route::MethodNotAllowed(allow) => done(ApiError::MethodNotAllowed(allow).into_response()),
        Route::NotFound => done(ApiError::NotFound.into_response()),
    }
}

/// `GET /forward-auth`: the original request a reverse proxy describes, routed as if it had
/// come itself, and the answer shaped for the proxy (see [`forward_auth`]).
async fn forward_auth_check<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body> {
    let original = match forward_auth::original(&state.settings, &req, conn) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let (req, conn) = (original.req, original.conn);
    let settings = &state.settings;
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let target = req.uri().to_string();
    let res = match route(settings, Side::Frontend, &method, &path, req.headers()) {
        Route::Frontend(vp) => {
            if original.websocket && !qps::socket::admit(vp, &req, false) {
                return forward_auth::origin_refused();
            }
            qps::frontend::serve(state, req, vp, &conn, Resource).await
        }
        Route::QlikViewPage => qlikview::pages::serve(state, req, &conn).await,
        _ => return forward_auth::not_protected(),
    };
    let meta = forward_auth::Meta {
        target: &target,
        redirect: original.redirect,
        signin: original.signin,
    };
    forward_auth::answer(res, meta, &settings.qlikview.upstream_user_header)
}

/// What the settings add to every response of the route: a virtual proxy's additional
/// headers and CORS headers, the QlikView pages' additional headers; `None` when nothing.
pub(crate) fn decoration<'a>(
    settings: &'a Settings,
    route: &Route<'a>,
    request: &HeaderMap,
) -> Option<Decoration<'a>> {
    let headers = match route {
        Route::Frontend(vp)
        | Route::PersonalUser(vp)
        | Route::CsrfToken(vp)
        | Route::OidcCallback(vp)
        | Route::Preflight(vp) => {
            if vp.additional_response_headers.is_empty() && vp.cors_allowed_origins.is_empty() {
                return None;
            }
            let cors = cors_origin(request, &vp.cors_allowed_origins);
            return Some(Decoration {
                headers: &vp.additional_response_headers,
                cors,
            });
        }
        Route::GetWebTicket
        | Route::Authenticate
        | Route::AuthenticateForm
        | Route::AccessPoint
        | Route::QlikViewPage
        | Route::QlikViewMethodNotAllowed(_) => &settings.qlikview.additional_response_headers,
        _ => return None,
    };
    (!headers.is_empty()).then_some(Decoration {
        headers,
        cors: None,
    })
}

type Boxed<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

fn boxed<'a>(f: impl Future<Output = Response<Body>> + Send + 'a) -> Boxed<'a> {
    Box::pin(f)
}

impl Route<'_> {
    /// The route's name, for the access log and metrics (never the path: it may hold a
    /// ticket).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::AddTicket(_) => "qps_ticket",
            Route::Session(_, op) => op.name(),
            Route::Alive => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::ForwardAuth => "forward_auth",
            Route::HeadTooLarge => "head_too_large",
            Route::PersonalUser(_) => "qps_personal_user",
            Route::CsrfToken(_) => "qps_csrf_token",
            Route::OidcCallback(_) => "qps_oidc_callback",
            Route::Preflight(_) => "cors_preflight",
            Route::DemoLoginForm | Route::DemoLogin => "demo_login",
            Route::DemoPortalForm | Route::DemoPortal => "demo_portal",
            Route::GetWebTicket => "qv_getwebticket",
            Route::Authenticate => "qv_authenticate",
            Route::AuthenticateForm => "qv_form_login",
            Route::AccessPoint => "qv_accesspoint",
            Route::QlikViewPage => "qv_page",
            Route::QlikViewMethodNotAllowed(_) => "qv_method_not_allowed",
            Route::Frontend(_) => "frontend",
            Route::MethodNotAllowed(_) => "method_not_allowed",
            Route::NotFound => "not_found",
        }
    }
}

/// The route a request would take, as text: for fuzzing, so the route table can be
/// exercised without exposing its types.
#[cfg(any(test, feature = "fuzzing"))]
pub fn describe(settings: &Settings, side: Side, method: &Method, path: &str) -> String {
    format!(
        "{:?}",
        route(settings, side, method, path, &HeaderMap::new())
    )
}

#[cfg(test)]
mod tests;
