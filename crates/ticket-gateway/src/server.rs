//! The accept loop: both listeners, TLS where configured, one hyper-util connection
//! builder, bounded resources, graceful shutdown.
//!
//! Every connection is bounded: a cap on how many are open (`max_connections`), a time for
//! the TLS handshake and for request headers (`header_read_timeout`, against slowloris),
//! a limit on head size and header lines (`431` beyond), and an idle timeout that closes
//! keep-alive connections with no request in flight and no bytes moving.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::Settings;
use crate::gateway::{Conn, Gateway};
use crate::router::Side;
use crate::tls::{self, ClientAuth};

/// The number of header lines hyper accepts when no limit is named.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// The two bound listeners. Binding happens outside, so tests bind `127.0.0.1:0` and read
/// the port back.
#[derive(Debug)]
pub struct Listeners {
    /// The browser-facing listener.
    pub frontend: TcpListener,
    /// The QPS REST API listener.
    pub api: TcpListener,
}

impl Listeners {
    /// Binds both addresses of the settings.
    pub async fn bind(settings: &Settings) -> io::Result<Listeners> {
        Ok(Listeners {
            frontend: TcpListener::bind(settings.frontend.listen).await?,
            api: TcpListener::bind(settings.api.listen).await?,
        })
    }
}

/// Serves `gateway` on both listeners until `shutdown` resolves, then stops accepting and
/// gives in-flight requests the configured grace period to finish.
pub async fn run(listeners: Listeners, gateway: Gateway, shutdown: impl Future<Output = ()>) {
    let settings = gateway.settings().clone();
    let limits = settings.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    // hyper's own default is the same 100 header lines on the stack; naming a limit, even
    // that one, makes it initialise a limit-sized array per request.
    if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        // One write per response: some clients read only the first chunk they receive.
        .writev(false)
        // `Content-Type`, not `content-type`: what the Windows servers being replaced send.
        .title_case_headers(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));

    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (accepted, side) = tokio::select! {
            a = listeners.frontend.accept() => (a, Side::Frontend),
            a = listeners.api.accept() => (a, Side::Api),
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = match side {
            Side::Frontend => settings.frontend.tls.clone(),
            Side::Api => settings.api.tls.clone(),
        };
        let (builder, watcher, gateway) = (builder.clone(), graceful.watcher(), gateway.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                let conn = Conn::new(side, peer, false, ClientAuth::NotRequired);
                return serve(&builder, watcher, gateway, stream, conn).await;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let client_auth = tls::client_auth(&tls, stream.get_ref().1);
                    let conn = Conn::new(side, peer, true, client_auth);
                    serve(&builder, watcher, gateway, stream, conn).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listeners);
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    match tokio::time::timeout(settings.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => {
            tracing::warn!(grace = ?settings.shutdown_grace, "grace period over; closing remaining connections")
        }
    }
}

/// Serves one connection until it ends, is idle too long, or shutdown drains it.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    gateway: Gateway,
    io: I,
    conn: Conn,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = gateway.settings().limits.idle_timeout;
    let peer = conn.peer;
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: io,
        activity: activity.clone(),
    };
    let in_service = activity.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let (gateway, conn, activity) = (gateway.clone(), conn.clone(), in_service.clone());
        async move {
            let _busy = activity.busy();
            Ok::<_, Infallible>(gateway.handle(req, &conn).await)
        }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    let connection = watcher.watch(connection);
    tokio::pin!(connection);
    let mut watch = IdleWatch::new(&activity);
    let tick = (idle / IDLE_TICKS_PER_TIMEOUT).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep(tick) => {
                if watch.is_idle(&activity, Instant::now(), idle) {
                    tracing::debug!(%peer, "closing an idle connection");
                    return;
                }
            }
        }
    }
}

/// How often, per idle timeout, a connection's activity is looked at: an idle connection
/// closes between one and one and a quarter idle timeouts after it went quiet.
const IDLE_TICKS_PER_TIMEOUT: u32 = 4;

/// What a connection has done: a count of events (bytes moved, requests ended) and the
/// requests in flight. Reads and writes only bump the count, on the connection's own task;
/// the clock is read by [`IdleWatch`] a few times per timeout, not on every read and write.
#[derive(Debug, Default)]
struct Activity {
    events: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity::default()
    }

    fn touch(&self) {
        // Only the connection's own task writes: a load and a store, no atomic
        // read-modify-write. (A lost bump would only delay closing by a tick.)
        let n = self.events.load(Ordering::Relaxed);
        self.events.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// Decides idleness from [`Activity`] snapshots taken at each tick.
#[derive(Debug)]
struct IdleWatch {
    seen: u64,
    quiet_since: Instant,
}

impl IdleWatch {
    fn new(activity: &Activity) -> Self {
        IdleWatch {
            seen: activity.events.load(Ordering::Relaxed),
            quiet_since: Instant::now(),
        }
    }

    /// Whether the connection has had no request in flight and no traffic for `idle`.
    fn is_idle(&mut self, activity: &Activity, now: Instant, idle: Duration) -> bool {
        let events = activity.events.load(Ordering::Relaxed);
        if events != self.seen || activity.in_flight.load(Ordering::Relaxed) > 0 {
            self.seen = events;
            self.quiet_since = now;
            return false;
        }
        now.duration_since(self.quiet_since) >= idle
    }
}

/// A request in flight; dropping it marks the request done.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An IO that counts when bytes move.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.activity.touch();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(_))) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(_))) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_or_traffic() {
        let a = Arc::new(Activity::new());
        let idle = Duration::from_secs(10);
        let mut watch = IdleWatch::new(&a);
        let tick = idle / IDLE_TICKS_PER_TIMEOUT;
        let at = |watch: &mut IdleWatch, a: &Activity| watch.is_idle(a, Instant::now(), idle);
        assert!(!at(&mut watch, &a));
        tokio::time::advance(idle).await;
        assert!(at(&mut watch, &a), "quiet for the whole timeout");

        // Traffic restarts the count.
        a.touch();
        assert!(!at(&mut watch, &a));
        tokio::time::advance(idle - tick).await;
        assert!(!at(&mut watch, &a));
        tokio::time::advance(tick).await;
        assert!(at(&mut watch, &a));

        // A slow request in flight is not idleness, however long it takes.
        let busy = a.busy();
        tokio::time::advance(idle * 6).await;
        assert!(
            !at(&mut watch, &a),
            "a slow request in flight is not idleness"
        );
        drop(busy);
        assert!(!at(&mut watch, &a), "the request just ended");
        tokio::time::advance(idle).await;
        assert!(at(&mut watch, &a));
    }
}
