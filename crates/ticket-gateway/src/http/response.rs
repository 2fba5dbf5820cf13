//! Building the gateway's own responses: a complete body with its type, a redirect, and the
//! one HTML page every dialect's browser-facing errors are written with.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use super::body::{empty, full, Body};
use crate::text::escape;

/// `text/plain; charset=utf-8`
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
/// `application/json; charset=utf-8`
pub(crate) const JSON: &str = "application/json; charset=utf-8";
/// `text/html; charset=utf-8`
pub(crate) const HTML: &str = "text/html; charset=utf-8";

/// A response with a status, a content type and a complete body.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// A `302 Found` to `location`, with an empty body.
pub(crate) fn found(location: &str) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        Err(_) => {
            // Every location is built from configuration and percent-encoded parts; one
            // that is not a valid header value is a bug, not a client error.
            tracing::error!("refusing to send an invalid Location header");
            *res.status_mut() = StatusCode::BAD_GATEWAY;
        }
    }
    res
}

/// A small HTML page: `title` as heading, `text` as the paragraph below it, both escaped.
/// Every HTML error page of the gateway is written with this.
pub(crate) fn page(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    let mut html = String::with_capacity(160 + 2 * title.len() + text.len());
    html.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    escape::push_html(&mut html, title);
    html.push_str("</title></head><body><h1>");
    escape::push_html(&mut html, title);
    html.push_str("</h1><p>");
    escape::push_html(&mut html, text);
    html.push_str("</p></body></html>");
    respond(status, HTML, html)
}

/// `431`: the request head is over `limits.max_header_bytes`. The connection closes after
/// it, as it does when hyper refuses a head.
pub(crate) fn head_too_large() -> Response<Body> {
    let mut res = page(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "Request head too large",
        "The request's headers are larger than this server accepts.",
    );
    res.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    res
}
