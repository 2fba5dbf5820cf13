//! Forwarding authenticated requests to a back end, with the identity the gateway vouches
//! for and nothing the client claimed.
//!
//! Bodies stream both ways (nothing is buffered), connections to the back end are pooled
//! and kept alive ([`upstream`]), hop-by-hop headers stop here and `X-Forwarded-*` are
//! added ([`headers`]), and WebSocket upgrades (the Qlik engine socket `/{vp}/app/…`) are
//! bridged until either side closes or the session ends ([`sockets`]).
//!
//! The proxy knows nothing of either dialect: a caller says where to forward and as whom
//! ([`Forward`]), having already taken out of the request what only it understands.

mod forward;
pub(crate) mod headers;
pub(crate) mod sockets;
pub(crate) mod upstream;
pub(crate) mod websocket;

use std::sync::Arc;

use bytes::Bytes;
use http::Request;

pub(crate) use forward::{Forward, Forwarding, WebSocketTerms};

use crate::config::{ProxySettings, Settings};
use crate::conn::Conn;
use crate::http::BoxError;
use sockets::Sockets;
use upstream::Pools;

/// The proxy: one connection pool per back end, its time limits, and the open WebSockets.
#[derive(Debug)]
pub(crate) struct Proxy {
    pools: Pools,
    settings: ProxySettings,
    /// The pace a client's body must keep while it streams to a back end.
    pace: crate::http::pace::Pace,
    /// Open WebSockets per session, closed when it ends.
    pub sockets: Arc<Sockets>,
    /// Closes them as the core announces the end of their sessions.
    _follow: sockets::Follow,
    /// The bridged WebSockets' tasks, waited for on shutdown.
    tasks: tokio_util::task::TaskTracker,
    /// A WebSocket silent this long is closed.
    websocket_idle_timeout: std::time::Duration,
}

impl Proxy {
    /// A proxy to every back end `settings` names, whose WebSockets close as `events`
    /// announce the end of their sessions.
    pub(crate) fn new(
        settings: &Settings,
        events: tokio::sync::broadcast::Receiver<ticket_core::SessionEnded>,
    ) -> Proxy {
        let sockets: Arc<Sockets> = Arc::default();
        Proxy {
            pools: Pools::new(settings),
            settings: settings.proxy,
            pace: crate::http::pace::Pace::of(&settings.limits),
            _follow: sockets.follow(events),
            sockets,
            tasks: tokio_util::task::TaskTracker::new(),
            websocket_idle_timeout: settings.limits.websocket_idle_timeout,
        }
    }

    /// Closes every bridged WebSocket with a close frame (`1001`) and waits, at most
    /// `grace`, for them to finish.
    pub(crate) async fn shut_down(&self, grace: std::time::Duration) {
        self.sockets.close_all(sockets::Ending::Shutdown);
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("WebSockets still open after the grace period");
        }
    }

    /// Forwards `req` as `to` says and returns the back end's response (or a `502`/`504`
    /// page).
    pub(crate) fn forward<'a, B>(
        &'a self,
        req: Request<B>,
        to: Forward<'a>,
        conn: &'a Conn,
    ) -> Forwarding<'a>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        forward::forward(self, req, to, conn)
    }
}
