//! The accept loop: both listeners, TLS where configured, one hyper-util connection
//! builder, bounded resources, graceful shutdown.
//!
//! Every connection is bounded: a cap on how many are open (`max_connections`), a time for
//! the TLS handshake and for request headers (`header_read_timeout`, against slowloris),
//! a limit on head size and header lines (`431` beyond), and an idle timeout that closes
//! keep-alive connections with no request in flight and no bytes moving.

pub mod certs;
mod linger;
pub(crate) mod tls;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::Settings;
use crate::conn::{ClientAuth, Conn, Side};
use crate::gateway::Gateway;
use watch::{Activity, Deadlines, IdleWatch, Tracked, Verdict};

/// The number of header lines hyper accepts when no limit is named.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
/// The most a connection reads at once (hyper's read buffer): request bodies stream in
/// chunks of up to this. 64 KiB, as nginx's `client_body_buffer_size` in the benchmark:
/// with 16 KiB a proxied 1 MiB upload took four times the reads and writes, and the back
/// end four times the wake-ups (about 40% more CPU per upload). A complete head is held to
/// `max_header_bytes` by the gateway itself (see `Gateway::handle`); one still arriving is
/// bounded by this buffer and by the header timeout.
const READ_BUFFER: usize = 64 * 1024;

/// The two bound listeners. Binding happens outside, so tests bind `127.0.0.1:0` and read
/// the port back.
#[derive(Debug)]
pub struct Listeners {
    /// The browser-facing listener.
    pub frontend: TcpListener,
    /// The QPS REST API listener.
    pub api: TcpListener,
}

/// A listener that could not be bound: which one, on which address, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({key}): {source}")]
pub struct BindError {
    /// The setting that names the address (`frontend.listen`, `api.listen`).
    pub key: &'static str,
    /// The address.
    pub addr: std::net::SocketAddr,
    /// Why (address already in use, permission denied, …).
    #[source]
    pub source: io::Error,
}

impl Listeners {
    /// Binds both addresses of the settings; an error names the address and its key.
    pub async fn bind(settings: &Settings) -> Result<Listeners, BindError> {
        let bind = |key, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| BindError { key, addr, source })
        };
        Ok(Listeners {
            frontend: bind("frontend.listen", settings.frontend.listen).await?,
            api: bind("api.listen", settings.api.listen).await?,
        })
    }
}

/// Serves `gateway` on both listeners until `shutdown` resolves, then stops accepting and
/// gives in-flight requests the configured grace period to finish.
///
/// The TLS files the settings name are read here; [`tls::Acceptors::load`] reads them the
/// same way beforehand, so the binary reports a bad file as a configuration error. If they
/// cannot be read by now, nothing is served.
pub async fn run(listeners: Listeners, gateway: Gateway, shutdown: impl Future<Output = ()>) {
    let settings = gateway.settings().clone();
    let limits = settings.limits;
    let acceptors = match tls::Acceptors::load(&settings) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            tracing::error!(error = %e, "cannot serve: a TLS file could not be read");
            return;
        }
    };
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
        .max_buf_size(limits.max_header_bytes.max(READ_BUFFER))
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
        let tls = acceptors.get(side).cloned();
        let (builder, watcher, gateway) = (builder.clone(), graceful.watcher(), gateway.clone());
        tokio::spawn(async move {
            let Some(tls) = tls else {
                let conn = Conn::new(side, peer, false, ClientAuth::NotRequired).holding(permit);
                return serve(&builder, watcher, gateway, stream, conn).await;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let client_auth = tls::client_auth(&tls, stream.get_ref().1);
                    let conn = Conn::new(side, peer, true, client_auth).holding(permit);
                    serve(&builder, watcher, gateway, stream, conn).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listeners);
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    let websockets = gateway.close_websockets(settings.shutdown_grace);
    let requests = tokio::time::timeout(settings.shutdown_grace, graceful.shutdown());
    match tokio::join!(requests, websockets).0 {
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
    let (linger, lingering) = tokio::sync::oneshot::channel();
    let io = Tracked::new(io, activity.clone(), linger);
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
    let mut connection = Box::pin(watcher.watch(connection));
    let mut watch = IdleWatch::new(&activity);
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                // hyper is done with it: the IO comes back for a lingering close (none
                // after an upgrade, which keeps it).
                drop(connection);
                if let Ok(io) = lingering.await {
                    linger::close(io).await;
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
