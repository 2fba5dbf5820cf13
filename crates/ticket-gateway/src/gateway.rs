//! The gateway as a value: it builds the shared [`State`] (reading the files the settings
//! name: group directory, users files, JWT keys) and answers a request by routing it and
//! dispatching it, callable without a socket.

use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};
use ticket_core::Store;

use crate::config::{ConfigError, Settings};
use crate::conn::Conn;
use crate::http::decorate::Decorated;
use crate::http::{Body, BoxError};
use crate::router;
use crate::state::{Files, State};
use crate::telemetry::{access::Access, metrics};

/// The gateway: cheap to clone, shared by every connection.
#[derive(Debug, Clone)]
pub struct Gateway {
    state: Arc<State>,
}

impl Gateway {
    /// A gateway over `store` with `settings`; fails, naming the key, when a file the
    /// settings name cannot be read.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<Gateway, ConfigError> {
        metrics::install();
        let files = Files::load(&settings)?;
        Ok(Gateway {
            state: Arc::new(State::new(settings, store, files)),
        })
    }

    /// Checks that every file the settings name can be read, as [`Gateway::new`] will.
    pub fn check(settings: &Settings) -> Result<(), ConfigError> {
        Files::load(settings).map(drop)
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// Reads `[qlikview] group_directory` again; see [`State::reload_groups`].
    pub fn reload_groups(&self) -> Result<(), String> {
        self.state.reload_groups()
    }

    /// Closes every bridged WebSocket with a close frame (`1001`, on shutdown) and waits,
    /// at most `grace`, for them to finish.
    pub async fn close_websockets(&self, grace: std::time::Duration) {
        self.state.proxy.shut_down(grace).await;
    }

    /// How many WebSockets are bridged to back ends now.
    pub fn open_websockets(&self) -> usize {
        self.state.proxy.sockets.open_count()
    }

    /// Answers one request. Every failure is rendered in the dialect of the route; this
    /// never panics on client input.
    ///
    /// The route is picked before the returned future is: the future holds the handler's
    /// state and what the access log needs, not the request a second time.
    pub fn handle<'a, B>(
        &'a self,
        req: Request<B>,
        conn: &'a Conn,
    ) -> impl Future<Output = Response<Body>> + Send + 'a
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let state = &*self.state;
        let settings = &state.settings;
        let route = if head_len(&req) > settings.limits.max_header_bytes {
            router::Route::HeadTooLarge
        } else {
            router::route(
                settings,
                conn.side,
                req.method(),
                req.uri().path(),
                req.headers(),
            )
        };
        let (method, name) = (req.method().clone(), route.name());
        let decoration = router::decoration(settings, &route, req.headers());
        let answer = Decorated::new(router::dispatch(state, route, req, conn), decoration);
        Access::new(answer, method, name, conn)
    }
}

/// The size of a request's head as sent over HTTP/1.1: the request line, each header line
/// with its `: ` and line end, and the blank line.
fn head_len<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + 12;
    req.headers().iter().fold(line + 2, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}
