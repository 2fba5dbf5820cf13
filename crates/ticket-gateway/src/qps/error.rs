//! Every failure the QPS REST API can answer, rendered in one place in the proxy's own
//! format: short `text/plain` bodies.

use http::header::{HeaderValue, ALLOW};
use http::{Response, StatusCode};

use crate::http::{respond, Body, BodyError, TEXT};

/// The exact body a real proxy sends when the Xrfkey check fails.
pub const XSRF_BODY: &str = "XSRF prevention check failed. Possible XSRF discovered.";

/// A QPS REST API failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
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
    /// No live session with this id: `404 No session with id <id>`.
    NoSession(String),
    /// A session with this id exists already: `400 … already exists`.
    SessionExists(String),
    /// The user holds the most sessions allowed: `403`.
    TooManySessions(String),
    /// The store could not be reached: `503`.
    Unavailable,
}

impl From<ticket_core::StoreError> for ApiError {
    fn from(e: ticket_core::StoreError) -> Self {
        tracing::error!(error = %e, "store failed");
        crate::metrics::store_error();
        ApiError::Unavailable
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::Broken => ApiError::BadRequest("The request body could not be read.".into()),
        }
    }
}

impl ApiError {
    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ApiError::Xsrf => "xsrf",
            ApiError::ClientCertificate => "client_certificate",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnknownVirtualProxy(_) => "unknown_virtual_proxy",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::NoSession(_) => "no_session",
            ApiError::SessionExists(_) => "session_exists",
            ApiError::TooManySessions(_) => "too_many_sessions",
            ApiError::Unavailable => "store_unavailable",
        }
    }

    /// The response a real proxy would give.
    pub fn into_response(self) -> Response<Body> {
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
            ApiError::NoSession(id) => (StatusCode::NOT_FOUND, format!("No session with id {id}")),
            ApiError::SessionExists(id) => (
                StatusCode::BAD_REQUEST,
                format!("Session with id {id} already exists."),
            ),
            ApiError::TooManySessions(user) => (
                StatusCode::FORBIDDEN,
                format!("UsageDenied: {user} already has the maximum number of sessions."),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The ticket store is unavailable. Try again later.".to_owned(),
            ),
        };
        respond(status, TEXT, body)
    }
}
