//! Every failure of the QlikView endpoints, rendered in one place, in QlikView's own form:
//! XML for the `.aspx` calls, a small HTML page for the browser-facing ones.

use http::header::{HeaderValue, ALLOW};
use http::{Response, StatusCode};

use ticket_core::StoreError;

use crate::config::QlikView;
use crate::http::{page, respond, Body, BodyError};
use crate::telemetry;
use crate::text::escape;

/// `text/xml; charset=utf-8`
pub(crate) const XML: &str = "text/xml; charset=utf-8";

/// A QlikView failure.
#[derive(Debug)]
pub(crate) enum QvError {
    /// Untrusted caller, wrong `method`, missing `UserId`: the configured "Invalid call".
    InvalidCall(&'static str),
    /// Malformed XML, a DOCTYPE, a body that cannot be read: `400`.
    BadXml(String),
    /// The body is over the limit: `413`.
    TooLarge,
    /// The body did not arrive in time: `408`.
    BodyTimeout,
    /// Wrong method on an endpoint: `405`.
    MethodNotAllowed(&'static str),
    /// A `try` or `back` the gateway will not redirect to: `400` page.
    UnsafeRedirect,
    /// Failed redemption with an empty `back`: `401` page.
    Unauthorized,
    /// A page behind the session, no session, and no login page configured: `401` page.
    NotSignedIn,
    /// The store could not be reached: `503`, logged and counted where it is rendered.
    Unavailable(StoreError),
}

impl From<StoreError> for QvError {
    fn from(e: StoreError) -> Self {
        QvError::Unavailable(e)
    }
}

impl From<BodyError> for QvError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => QvError::TooLarge,
            BodyError::TimedOut => QvError::BodyTimeout,
            BodyError::Broken => QvError::BadXml("the request body could not be read".into()),
        }
    }
}

/// AccessPoint's reply envelope for an error: `<result>` with an `ErrorMessage` value.
fn accesspoint_error(reason: &str) -> String {
    format!(
        "<result><object><value name=\"ErrorMessage\" text=\"{}\"/></object></result>",
        escape::html(reason)
    )
}

/// The XML envelope of an error: `Invalid call` in `_retval_`, so every known client reads
/// it as a failure, and the reason beside it.
fn xml_error(reason: &str) -> String {
    let reason = escape::html(reason);
    format!("<Global><_retval_>Invalid call</_retval_><_error_>{reason}</_error_></Global>")
}

impl QvError {
    /// A short label for logs and metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            QvError::InvalidCall(why) => why,
            QvError::BadXml(_) => "bad_xml",
            QvError::TooLarge => "payload_too_large",
            QvError::BodyTimeout => "body_timeout",
            QvError::MethodNotAllowed(_) => "method_not_allowed",
            QvError::UnsafeRedirect => "unsafe_redirect",
            QvError::Unauthorized | QvError::NotSignedIn => "unauthorized",
            QvError::Unavailable(_) => "store_unavailable",
        }
    }

    /// The response QlikView would give.
    pub(crate) fn into_response(self, qv: &QlikView) -> Response<Body> {
        match self {
            QvError::InvalidCall(_) => {
                respond(qv.invalid_call_status, XML, qv.invalid_call_body.clone())
            }
            QvError::BadXml(reason) => respond(StatusCode::BAD_REQUEST, XML, xml_error(&reason)),
            QvError::TooLarge => respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                XML,
                xml_error("request body too large"),
            ),
            QvError::BodyTimeout => respond(
                StatusCode::REQUEST_TIMEOUT,
                XML,
                xml_error("request body did not arrive in time"),
            ),
            QvError::MethodNotAllowed(allow) => {
                let mut res = respond(
                    StatusCode::METHOD_NOT_ALLOWED,
                    XML,
                    xml_error("method not allowed"),
                );
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                res
            }
            QvError::UnsafeRedirect => page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The redirect target is not an allowed host.",
            ),
            QvError::Unauthorized => page(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "The ticket is unknown, used or expired. Sign in through your portal again.",
            ),
            QvError::NotSignedIn => page(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "Sign in through your portal.",
            ),
            QvError::Unavailable(e) => {
                telemetry::store_failed(&e);
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    XML,
                    xml_error("the ticket store is unavailable; try again later"),
                )
            }
        }
    }

    /// The failure of an AccessPoint command, in AccessPoint's own `<result>` envelope.
    pub(crate) fn into_accesspoint_response(self) -> Response<Body> {
        let (status, reason) = match self {
            QvError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".to_owned(),
            ),
            QvError::BadXml(reason) => (StatusCode::BAD_REQUEST, reason),
            QvError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request body did not arrive in time".to_owned(),
            ),
            QvError::Unavailable(e) => {
                telemetry::store_failed(&e);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the session store is unavailable".to_owned(),
                )
            }
            other => (StatusCode::BAD_REQUEST, other.label().to_owned()),
        };
        respond(status, XML, accesspoint_error(&reason))
    }
}
