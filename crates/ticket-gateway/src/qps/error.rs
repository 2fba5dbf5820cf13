//! Every failure the QPS REST API can answer, rendered in one place in the proxy's own
//! format: short `text/plain` bodies. A store failure is logged and counted here, once.

use http::header::{HeaderValue, ALLOW};
use http::{Response, StatusCode};

use ticket_core::StoreError;

use crate::http::{respond, Body, BodyError, TEXT};
use crate::telemetry;

/// The exact body a real proxy sends when the Xrfkey check fails.
pub(crate) const XSRF_BODY: &str = "XSRF prevention check failed. Possible XSRF discovered.";

/// A QPS REST API failure.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Missing, malformed or mismatched Xrfkey: `403`.
    Xsrf,
    /// `client_auth = "optional-403"` and no valid client certificate: `403`.
    ClientCertificate,
    /// The body or a field is wrong: `400` with a short reason.
    BadRequest(String),
    /// No virtual proxy with this prefix: `404`.
    UnknownVirtualProxy(String),
    /// No such endpoint: `404`.
    NotFound,
    /// The endpoint exists for other methods: `405`.
    MethodNotAllowed(&'static str),
    /// The body is over the configured limit: `413`.
    PayloadTooLarge,
    /// The body did not arrive in time: `408`.
    BodyTimeout,
    /// No live session with this id: `404 No session with id <id>`.
    NoSession(String),
    /// A session with this id exists already: `400 … already exists`.
    SessionExists(String),
    /// The user holds the most sessions allowed: `403`.
    TooManySessions(String),
    /// The store could not be reached: `503`, logged and counted where it is rendered.
    Unavailable(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e)
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::TimedOut => ApiError::BodyTimeout,
            BodyError::Broken => ApiError::BadRequest("The request body could not be read.".into()),
        }
    }
}

impl ApiError {
    /// A short label for logs and metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            ApiError::Xsrf => "xsrf",
            ApiError::ClientCertificate => "client_certificate",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnknownVirtualProxy(_) => "unknown_virtual_proxy",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::NoSession(_) => "no_session",
            ApiError::SessionExists(_) => "session_exists",
            ApiError::TooManySessions(_) => "too_many_sessions",
            ApiError::Unavailable(_) => "store_unavailable",
        }
    }

    /// The response a real proxy would give.
    pub(crate) fn into_response(self) -> Response<Body> {
        let (status, body) = match self {
            ApiError::Xsrf => (StatusCode::FORBIDDEN, XSRF_BODY.to_owned()),
            ApiError::ClientCertificate => (
                StatusCode::FORBIDDEN,
                "A client certificate issued by the trusted CA is required.".to_owned(),
            ),
            ApiError::BadRequest(reason) => (StatusCode::BAD_REQUEST, reason),
            ApiError::UnknownVirtualProxy(prefix) => (
                StatusCode::NOT_FOUND,
                format!("No virtual proxy with prefix '{prefix}'."),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Not found.".to_owned()),
            ApiError::MethodNotAllowed(allow) => {
                let mut res = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "Method not allowed.");
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                return res;
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large.".to_owned(),
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.".to_owned(),
            ),
            ApiError::NoSession(id) => (StatusCode::NOT_FOUND, format!("No session with id {id}")),
            ApiError::SessionExists(id) => (
                StatusCode::BAD_REQUEST,
                format!("Session with id {id} already exists."),
            ),
            ApiError::TooManySessions(user) => (
                StatusCode::FORBIDDEN,
                format!("UsageDenied: {user} already has the maximum number of sessions."),
            ),
            ApiError::Unavailable(e) => {
                telemetry::store_failed(&e);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The ticket store is unavailable. Try again later.".to_owned(),
                )
            }
        };
        respond(status, TEXT, body)
    }
}

/// A failure a browser meets behind a virtual proxy: an HTML page (the personal API answers
/// in JSON instead, see [`PageError::into_json`]).
#[derive(Debug)]
pub(crate) enum PageError {
    /// The user already holds the most sessions allowed: `403`.
    TooManySessions,
    /// Header or JWT authentication refused the request: `401`, never a redirect.
    Unauthorized(&'static str),
    /// The store could not be reached: `503`, logged and counted here.
    Unavailable(StoreError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Unavailable(e)
    }
}

impl PageError {
    /// The page.
    pub(crate) fn into_response(self) -> Response<Body> {
        match self {
            PageError::TooManySessions => crate::http::page(
                StatusCode::FORBIDDEN,
                "Too many sessions",
                "You already have the maximum number of sessions open. Log out of another session, or wait for one to time out, and try again.",
            ),
            PageError::Unauthorized(why) => {
                crate::http::page(StatusCode::UNAUTHORIZED, "Not signed in", why)
            }
            PageError::Unavailable(e) => {
                telemetry::store_failed(&e);
                crate::http::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    "The session store cannot be reached. Try again in a moment.",
                )
            }
        }
    }

    /// The same failure as the personal API's JSON.
    pub(crate) fn into_json(self) -> Response<Body> {
        match self {
            PageError::TooManySessions => respond(
                StatusCode::FORBIDDEN,
                crate::http::JSON,
                "{\"error\":\"too many sessions\"}",
            ),
            PageError::Unauthorized(why) => respond(
                StatusCode::UNAUTHORIZED,
                crate::http::JSON,
                serde_json::json!({ "error": why }).to_string(),
            ),
            PageError::Unavailable(e) => {
                telemetry::store_failed(&e);
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    crate::http::JSON,
                    "{\"error\":\"the session store is unavailable\"}",
                )
            }
        }
    }
}
