//! Headers a setting adds to every response of a virtual proxy or of the QlikView pages:
//! the QMC's "Additional response headers", and the CORS headers a listed `Origin` gets.
//! Applied once the response is ready, whatever produced it (a page, a redirect, an error,
//! a back end's answer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Response;

use super::Body;

const ACCESS_CONTROL_EXPOSE_HEADERS_VALUE: HeaderValue =
    HeaderValue::from_static("qlik-csrf-token");

/// What to add to a response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decoration<'a> {
    /// Added, replacing any of the same name.
    pub(crate) headers: &'a HeaderMap,
    /// The request's `Origin`, when it is a listed CORS origin.
    pub(crate) cors: Option<&'a HeaderValue>,
}

impl Decoration<'_> {
    /// Adds the headers to `res`.
    pub(crate) fn apply(&self, res: &mut Response<Body>) {
        let headers = res.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value.clone());
        }
        if let Some(origin) = self.cors {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                ACCESS_CONTROL_EXPOSE_HEADERS_VALUE,
            );
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// The listed origin the request comes from, if any.
pub(crate) fn cors_origin<'a>(
    request: &HeaderMap,
    allowed: &'a [HeaderValue],
) -> Option<&'a HeaderValue> {
    let origin = request.get(header::ORIGIN)?;
    allowed.iter().find(|a| *a == origin)
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight(method: &http::Method, request: &HeaderMap) -> bool {
    method == http::Method::OPTIONS
        && request.contains_key(header::ORIGIN)
        && request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from a listed origin (`204`, the method and headers asked
/// for, ten minutes to remember them), or from another (`403`, no CORS headers).
pub(crate) fn preflight(request: &HeaderMap, listed: bool) -> Response<Body> {
    let mut res = Response::new(super::empty());
    if !listed {
        *res.status_mut() = http::StatusCode::FORBIDDEN;
        return res;
    }
    *res.status_mut() = http::StatusCode::NO_CONTENT;
    let echo = |asked: HeaderName, answer: HeaderName, res: &mut Response<Body>| {
        if let Some(v) = request.get(asked) {
            res.headers_mut().insert(answer, v.clone());
        }
    };
    echo(
        header::ACCESS_CONTROL_REQUEST_METHOD,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        &mut res,
    );
    echo(
        header::ACCESS_CONTROL_REQUEST_HEADERS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        &mut res,
    );
    res.headers_mut().insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

pin_project_lite::pin_project! {
    /// A response being produced, decorated once it is.
    pub(crate) struct Decorated<'a, F> {
        #[pin]
        inner: F,
        decoration: Option<Decoration<'a>>,
    }
}

impl<'a, F> Decorated<'a, F> {
    /// `inner`'s response with `decoration` applied (nothing to do without one).
    pub(crate) fn new(inner: F, decoration: Option<Decoration<'a>>) -> Self {
        Decorated { inner, decoration }
    }
}

impl<F: Future<Output = Response<Body>>> Future for Decorated<'_, F> {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx));
        if let Some(d) = this.decoration {
            d.apply(&mut res);
        }
        Poll::Ready(res)
    }
}
