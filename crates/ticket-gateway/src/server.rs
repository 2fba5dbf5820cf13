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
        // The header deadline is kept by each connection's watch (see `serve`), which
        // looks a few times per timeout; hyper's own would arm and drop a timer for every
        // request.
        .header_read_timeout(None)
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

/// Serves one connection until it ends, is idle too long, takes too long to send a request
/// head, or shutdown drains it.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    gateway: Gateway,
    io: I,
    conn: Conn,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = Deadlines::from(&gateway.settings().limits);
    let peer = conn.peer;
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: io,
        activity: activity.clone(),
    };
    let in_service = activity.clone();
    let conn = Arc::new(conn);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let busy = in_service.busy();
        let (gateway, conn) = (gateway.clone(), conn.clone());
        async move {
            let _busy = busy;
            // Boxed: hyper moves this future into its connection's state for every
            // request, and the request's own state runs to kilobytes; in the box it is
            // written once rather than copied at each move.
            let handling = Box::pin(gateway.handle(req, &conn));
            Ok::<_, Infallible>(handling.await)
        }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    let connection = watcher.watch(connection);
    tokio::pin!(connection);
    let mut watch = IdleWatch::new(&activity);
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep(limits.tick()) => {
                match watch.check(&activity, Instant::now(), limits) {
                    Verdict::Open => {}
                    Verdict::Idle => {
                        tracing::debug!(%peer, "closing an idle connection");
                        return;
                    }
                    Verdict::SlowHead => {
                        tracing::debug!(%peer, "closing a connection that sent no request head in time");
                        return;
                    }
                }
            }
        }
    }
}

/// How often, per timeout, a connection's activity is looked at: a connection is closed
/// between one and one and a quarter timeouts after it went quiet.
const TICKS_PER_TIMEOUT: u32 = 4;

/// The two limits a connection's watch keeps.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// No request in flight and no bytes moving this long: idle.
    idle: Duration,
    /// No request in flight and nothing written this long: the client has had that long
    /// since the last response (or since it connected) to send a whole request head, as
    /// hyper's own header timeout counts it. Trickling header bytes (slowloris) does not
    /// restart it; a response still streaming out does.
    head: Duration,
}

impl From<&crate::config::Limits> for Deadlines {
    fn from(limits: &crate::config::Limits) -> Self {
        Deadlines {
            idle: limits.idle_timeout,
            head: limits.header_read_timeout,
        }
    }
}

impl Deadlines {
    fn tick(self) -> Duration {
        (self.idle.min(self.head) / TICKS_PER_TIMEOUT).max(Duration::from_millis(10))
    }
}

/// What a connection has done: counts of events (any bytes moving, requests ending) and of
/// writes, and the requests in flight. Reads and writes only bump counts, on the
/// connection's own task; the clock is read by [`IdleWatch`] a few times per timeout, not
/// on every read and write.
#[derive(Debug, Default)]
struct Activity {
    events: AtomicU64,
    writes: AtomicU64,
    in_flight: AtomicUsize,
}

/// Only the connection's own task bumps a count: a load and a store, no atomic
/// read-modify-write. (A lost bump would only delay closing by a tick.)
fn bump(count: &AtomicU64) {
    let n = count.load(Ordering::Relaxed);
    count.store(n.wrapping_add(1), Ordering::Relaxed);
}

impl Activity {
    fn new() -> Self {
        Activity::default()
    }

    fn touch(&self) {
        bump(&self.events);
    }

    fn wrote(&self) {
        bump(&self.events);
        bump(&self.writes);
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// What a look at a connection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Open,
    Idle,
    SlowHead,
}

/// Decides from [`Activity`] snapshots taken at each tick.
#[derive(Debug)]
struct IdleWatch {
    events: (u64, Instant),
    writes: (u64, Instant),
}

impl IdleWatch {
    fn new(activity: &Activity) -> Self {
        let now = Instant::now();
        IdleWatch {
            events: (activity.events.load(Ordering::Relaxed), now),
            writes: (activity.writes.load(Ordering::Relaxed), now),
        }
    }

    fn check(&mut self, activity: &Activity, now: Instant, limits: Deadlines) -> Verdict {
        let busy = activity.in_flight.load(Ordering::Relaxed) > 0;
        let quiet_for = |seen: &mut (u64, Instant), count: &AtomicU64| {
            let n = count.load(Ordering::Relaxed);
            if busy || n != seen.0 {
                *seen = (n, now);
            }
            now.duration_since(seen.1)
        };
        let idle = quiet_for(&mut self.events, &activity.events);
        let unanswered = quiet_for(&mut self.writes, &activity.writes);
        if idle >= limits.idle {
            Verdict::Idle
        } else if unanswered >= limits.head {
            Verdict::SlowHead
        } else {
            Verdict::Open
        }
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
            self.activity.wrote();
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
            self.activity.wrote();
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

    const LIMITS: Deadlines = Deadlines {
        idle: Duration::from_secs(10),
        head: Duration::from_secs(30),
    };

    fn at(watch: &mut IdleWatch, a: &Activity) -> Verdict {
        watch.check(a, Instant::now(), LIMITS)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_or_traffic() {
        let a = Arc::new(Activity::new());
        let (idle, tick) = (LIMITS.idle, LIMITS.tick());
        let mut watch = IdleWatch::new(&a);
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(idle).await;
        assert_eq!(
            at(&mut watch, &a),
            Verdict::Idle,
            "quiet for the whole timeout"
        );

        // Traffic restarts the count.
        a.touch();
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(idle - tick).await;
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(tick).await;
        assert_eq!(at(&mut watch, &a), Verdict::Idle);

        // A slow request in flight is not idleness, however long it takes.
        let busy = a.busy();
        tokio::time::advance(idle * 6).await;
        assert_eq!(
            at(&mut watch, &a),
            Verdict::Open,
            "a slow request in flight"
        );
        drop(busy);
        assert_eq!(at(&mut watch, &a), Verdict::Open, "the request just ended");
        tokio::time::advance(idle).await;
        assert_eq!(at(&mut watch, &a), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_head_must_follow_the_last_response_in_time() {
        let a = Arc::new(Activity::new());
        let mut watch = IdleWatch::new(&a);
        let step = LIMITS.idle / 2;
        // A client trickling header bytes is never idle, but writes nothing back.
        let mut waited = Duration::ZERO;
        while waited < LIMITS.head {
            a.touch();
            assert_eq!(at(&mut watch, &a), Verdict::Open, "after {waited:?}");
            tokio::time::advance(step).await;
            waited += step;
        }
        a.touch();
        assert_eq!(at(&mut watch, &a), Verdict::SlowHead);

        // A response streaming out keeps the clock from running, request over or not.
        let mut watch = IdleWatch::new(&a);
        for _ in 0..10 {
            a.wrote();
            tokio::time::advance(step).await;
            assert_eq!(at(&mut watch, &a), Verdict::Open);
        }
    }
}
