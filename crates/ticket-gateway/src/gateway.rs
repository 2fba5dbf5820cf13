//! The gateway as a value: settings plus the ticket core, callable without a socket.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use ticket_core::{Core, Lifetimes, Store};

use crate::config::Settings;
use crate::http::{Body, BoxError};
use crate::qps::error::ApiError;
use crate::router::{self, Route, Side};
use crate::{demo, qps};

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Which listener accepted it.
    pub side: Side,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub secure: bool,
}

/// The gateway: cheap to clone, shared by every connection.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    core: Core,
}

impl Gateway {
    /// A gateway over `store` with `settings`.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Gateway {
        let lifetimes = Lifetimes {
            ticket: settings.ticket_ttl,
            target: settings.target_id_ttl,
        };
        Gateway {
            inner: Arc::new(Inner {
                core: Core::new(store, lifetimes),
                settings,
            }),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The ticket core.
    pub fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Answers one request. Every failure is rendered in the dialect of the route; this
    /// never panics on client input.
    pub async fn handle<B>(&self, req: Request<B>, conn: &Conn) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let settings = self.settings();
        match router::route(settings, conn.side, req.method(), req.uri().path()) {
            Route::AddTicket(vp) => qps::api::add_ticket(self, req, vp, conn).await,
            Route::DemoLoginForm => demo::login_form(&req),
            Route::DemoLogin => demo::login(self, req, conn).await,
            Route::Frontend(vp) => qps::frontend::serve(self, req, vp, conn).await,
            Route::MethodNotAllowed(allow) => ApiError::MethodNotAllowed(allow).into_response(),
            Route::NotFound => ApiError::NotFound.into_response(),
        }
    }
}
