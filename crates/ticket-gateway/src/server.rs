//! The accept loop: both listeners, one hyper-util connection builder, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};

use crate::gateway::{Conn, Gateway};
use crate::router::Side;

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
    pub async fn bind(settings: &crate::config::Settings) -> std::io::Result<Listeners> {
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.limits.header_read_timeout)
        // One write per response: some clients read only the first chunk they receive.
        .writev(false)
        // `Content-Type`, not `content-type`: what the Windows servers being replaced send.
        .title_case_headers(true)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());

    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (accepted, side) = tokio::select! {
            a = listeners.frontend.accept() => (a, Side::Frontend),
            a = listeners.api.accept() => (a, Side::Api),
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => serve(&builder, &graceful, &gateway, stream, peer, side),
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
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

fn serve(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    gateway: &Gateway,
    stream: TcpStream,
    peer: SocketAddr,
    side: Side,
) {
    let _ = stream.set_nodelay(true);
    let conn = Conn {
        side,
        peer,
        secure: false,
    };
    let gateway = gateway.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let gateway = gateway.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(gateway.handle(req, &conn).await) }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
    });
}
