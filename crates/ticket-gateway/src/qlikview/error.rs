//! Every failure of the QlikView endpoints, rendered in one place, in QlikView's own form:
//! XML for the `.aspx` calls, a small HTML page for the browser-facing ones.

use http::header::{HeaderValue, ALLOW};
use http::{Response, StatusCode};

use crate::config::QlikView;
use crate::http::{html_escape, respond, Body, BodyError, HTML};

/// `text/xml; charset=utf-8`
pub const XML: &str = "text/xml; charset=utf-8";

/// A QlikView failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QvError {
    /// Untrusted caller, wrong `method`, missing `UserId`: the configured "Invalid call".
    InvalidCall(&'static str),
    /// Malformed XML, a DOCTYPE, a body that cannot be read: `400`.
    BadXml(String),
    /// The body is over the limit: `413`.
    TooLarge,
    /// Wrong method on an endpoint: `405`.
    MethodNotAllowed(&'static str),
    /// A `try` or `back` the gateway will not redirect to: `400` page.
    UnsafeRedirect,
    /// Failed redemption with an empty `back`: `401` page.
    Unauthorized,
    /// The store could not be reached: `503`.
    Unavailable,
}

impl From<BodyError> for QvError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => QvError::TooLarge,
            BodyError::Broken => QvError::BadXml("the request body could not be read".into()),
        }
    }
}

/// The XML envelope of an error: `Invalid call` in `_retval_`, so every known client reads
/// it as a failure, and the reason beside it.
fn xml_error(reason: &str) -> String {
    let reason = html_escape(reason);
    format!("<Global><_retval_>Invalid call</_retval_><_error_>{reason}</_error_></Global>")
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

impl QvError {
    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            QvError::InvalidCall(why) => why,
            QvError::BadXml(_) => "bad_xml",
            QvError::TooLarge => "payload_too_large",
            QvError::MethodNotAllowed(_) => "method_not_allowed",
            QvError::UnsafeRedirect => "unsafe_redirect",
            QvError::Unauthorized => "unauthorized",
            QvError::Unavailable => "store_unavailable",
        }
    }

    /// The response QlikView would give.
    pub fn into_response(self, qv: &QlikView) -> Response<Body> {
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
            QvError::UnsafeRedirect => respond(
                StatusCode::BAD_REQUEST,
                HTML,
                page("Bad request", "The redirect target is not an allowed host."),
            ),
            QvError::Unauthorized => respond(
                StatusCode::UNAUTHORIZED,
                HTML,
                page(
                    "Not signed in",
                    "The ticket is unknown, used or expired. Sign in through your portal again.",
                ),
            ),
            QvError::Unavailable => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                XML,
                xml_error("the ticket store is unavailable; try again later"),
            ),
        }
    }
}
