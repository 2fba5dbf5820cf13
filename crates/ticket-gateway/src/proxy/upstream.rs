//! Keep-alive HTTP/1.1 connections to the back ends: one small pool per upstream.
//!
//! The gateway knows every back end at start-up, so each gets a pool of its own, built
//! with the gateway: taking a connection is a lock and a pop, and a connection goes back
//! when the response it carried has been read to the end (see [`PooledBody`]). hyper-util's
//! general client did more per request: it hashed scheme and authority to find the pool,
//! checked connections out and in through futures, and spawned a task per request to wait
//! for the connection to become idle again.
//!
//! Each connection is a `hyper::client::conn::http1` connection driven by a task of its
//! own, with upgrades enabled for the WebSockets the proxy bridges.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::{ProxySettings, Settings};
use crate::http::BoxError;

/// The body of a request sent to a back end.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

type Sender = http1::SendRequest<RequestBody>;

/// Connections idle longer than this are closed rather than reused: a back end may have
/// dropped them without the gateway noticing yet.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per back end; more are closed when their response ends.
const MAX_IDLE: usize = 1024;

/// Why a request did not reach a back end or got no response head.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection within `[proxy] connect_timeout_seconds`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The connection was refused or failed.
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    /// The connection broke, or the back end answered with something that is not HTTP.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The pools of every back end the settings name.
#[derive(Debug)]
pub(crate) struct Pools {
    pools: Vec<Arc<Pool>>,
}

impl Pools {
    /// One pool per distinct upstream of `settings` (virtual proxies and QlikView).
    pub(crate) fn new(settings: &Settings) -> Pools {
        let mut pools: Vec<Arc<Pool>> = Vec::new();
        let upstreams = settings
            .virtual_proxies
            .iter()
            .filter_map(|vp| vp.upstream.as_ref())
            .chain(settings.qlikview.upstream.as_ref());
        for upstream in upstreams {
            if !pools.iter().any(|p| p.authority == upstream.authority) {
                pools.push(Arc::new(Pool::new(
                    upstream.authority.clone(),
                    &settings.proxy,
                )));
            }
        }
        Pools { pools }
    }

    /// The pool of the back end at `authority`; `None` if the settings do not name it.
    pub(crate) fn get(&self, authority: &Authority) -> Option<&Arc<Pool>> {
        self.pools
            .iter()
            .find(|p| p.authority.as_str() == authority.as_str())
    }
}

/// The idle connections to one back end.
#[derive(Debug)]
pub(crate) struct Pool {
    authority: Authority,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
}

impl Pool {
    fn new(authority: Authority, settings: &ProxySettings) -> Pool {
        Pool {
            authority,
            connect_timeout: settings.connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` on an idle connection, or on a new one, and returns the response head;
    /// the connection goes back to the pool once its body has been read.
    ///
    /// A back end may close an idle connection just as a request is sent on it. hyper
    /// hands back a request it could not start to send; that request is sent once more on
    /// a new connection, as hyper-util's client does.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        loop {
            let (mut sender, reused) = match self.take_idle() {
                Some(sender) if sender.is_ready() => (sender, true),
                // Waiting for a connection, or making one, is boxed: this future is part
                // of every proxied request's, and the common case needs neither.
                busy => Box::pin(self.checkout(busy)).await?,
            };
            match sender.try_send_request(req).await {
                Ok(res) => return Ok(self.pooled(res, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open; connections the back
    /// end closed, or idle too long, are dropped on the way.
    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.lock();
        while let Some(Idle { sender, since }) = idle.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    /// A connection that can take a request: `busy` once it is ready (it went back to the
    /// pool as its last body ended, and its task may not have turned round yet), another
    /// idle one, or a new one (`false`).
    async fn checkout(&self, mut busy: Option<Sender>) -> Result<(Sender, bool), UpstreamError> {
        loop {
            let Some(mut sender) = busy.take().or_else(|| self.take_idle()) else {
                return self.connect().await.map(|s| (s, false));
            };
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let host = self.authority.host();
        // `[::1]` in a URL, `::1` to connect.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = self.authority.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)?
            .map_err(UpstreamError::Connect)?;
        // Small requests must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "back end connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // Pushes and pops only: a panic elsewhere cannot leave the list inconsistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a connection back after its response ended.
    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn pooled(self: &Arc<Self>, res: Response<Incoming>, sender: Sender) -> Response<PooledBody> {
        // An upgraded connection (`101`, a WebSocket) belongs to the upgrade from now on.
        let sender = (res.status() != http::StatusCode::SWITCHING_PROTOCOLS).then_some(sender);
        res.map(|body| {
            let mut body = PooledBody {
                body,
                sender,
                pool: self.clone(),
            };
            // A response without a body (204, 304, a reply to HEAD) frees its connection now.
            if http_body::Body::is_end_stream(&body.body) {
                body.release();
            }
            body
        })
    }

    /// How many idle connections the pool holds.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().len()
    }
}

/// A back end's response body; its connection returns to the pool when the body ends.
/// Dropped before its end, the connection is closed instead: what is left of the response
/// would still be in it.
#[derive(Debug)]
pub(crate) struct PooledBody {
    body: Incoming,
    sender: Option<Sender>,
    pool: Arc<Pool>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.checkin(sender);
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            // The last frame: hyper's server may not ask again once a sized body is done.
            None => self.release(),
            Some(Ok(_)) if self.body.is_end_stream() => self.release(),
            Some(Err(_)) => self.sender = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.sender.is_some() && http_body::Body::is_end_stream(&self.body) {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A back end answering `ok`, counting the connections it accepts; without
    /// `keep_alive` it closes each connection after one response.
    async fn back_end_with(keep_alive: bool) -> (Authority, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(http1_server(keep_alive).serve_connection(
                    TokioIo::new(stream),
                    service_fn(|req: Request<Incoming>| async move {
                        let body = if req.method() == http::Method::HEAD {
                            Full::new(Bytes::new())
                        } else {
                            Full::new(Bytes::from_static(b"ok"))
                        };
                        Ok::<_, Infallible>(Response::new(body))
                    }),
                ));
            }
        });
        (authority, accepted)
    }

    fn http1_server(keep_alive: bool) -> hyper::server::conn::http1::Builder {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.keep_alive(keep_alive);
        b
    }

    async fn back_end() -> (Authority, Arc<AtomicUsize>) {
        back_end_with(true).await
    }

    fn pool(authority: Authority) -> Arc<Pool> {
        Arc::new(Pool::new(
            authority,
            &ProxySettings {
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(5),
            },
        ))
    }

    fn get(authority: &Authority) -> Request<RequestBody> {
        Request::get("/")
            .header(http::header::HOST, authority.as_str())
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let (authority, accepted) = back_end().await;
        let pool = pool(authority.clone());
        for _ in 0..5 {
            let res = pool.send(get(&authority)).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn an_unfinished_body_closes_its_connection() {
        let (authority, accepted) = back_end().await;
        let pool = pool(authority.clone());
        let first = pool.send(get(&authority)).await.unwrap();
        // A second request while the first body is unread needs a second connection.
        let second = pool.send(get(&authority)).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        drop(first);
        assert_eq!(pool.idle_count(), 0, "dropped unread: not reusable");
        let _ = second.into_body().collect().await.unwrap();
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn connections_the_back_end_closes_are_replaced() {
        let (authority, accepted) = back_end_with(false).await;
        let pool = pool(authority.clone());
        for _ in 0..3 {
            let res = pool.send(get(&authority)).await.unwrap();
            assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_body_less_response_frees_its_connection_at_once() {
        let (authority, accepted) = back_end().await;
        let pool = pool(authority.clone());
        for _ in 0..3 {
            let mut req = get(&authority);
            *req.method_mut() = http::Method::HEAD;
            let res = pool.send(req).await.unwrap();
            assert!(http_body::Body::is_end_stream(res.body()));
            drop(res);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let closed: Authority = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string().parse().unwrap()
        };
        let pool = pool(closed.clone());
        assert!(matches!(
            pool.send(get(&closed)).await,
            Err(UpstreamError::Connect(_))
        ));
    }
}
