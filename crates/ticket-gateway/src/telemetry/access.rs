//! The access log and the request metrics: one line and one observation per request,
//! written when its response is ready.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::conn::Conn;
use crate::http::Body;

pin_project_lite::pin_project! {
    /// A request being answered, and what its access log line and metrics need once it is.
    /// A struct rather than an `async` block: a block would hold the handler's future
    /// twice over, as the value it captured and as the one it awaits.
    pub struct Access<'a, F> {
        #[pin]
        inner: F,
        started: tokio::time::Instant,
        method: http::Method,
        route: &'static str,
        conn: &'a Conn,
    }
}

impl<'a, F> Access<'a, F> {
    /// Logs `inner`'s response as an answer to `method` on `route`, from `conn`.
    pub fn new(inner: F, method: http::Method, route: &'static str, conn: &'a Conn) -> Self {
        Access {
            inner,
            started: tokio::time::Instant::now(),
            method,
            route,
            conn,
        }
    }
}

impl<F: Future<Output = Response<Body>>> Future for Access<'_, F> {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        let elapsed = this.started.elapsed();
        let status = res.status().as_u16();
        let route = *this.route;
        super::metrics::request(route, status, elapsed);
        tracing::info!(target: "access", method = this.method.as_str(), route, status,
            latency_us = elapsed.as_micros() as u64, peer = this.conn.peer_text());
        Poll::Ready(res)
    }
}
