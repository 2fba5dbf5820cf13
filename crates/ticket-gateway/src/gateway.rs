//! The gateway as a value: settings plus the ticket core, callable without a socket.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use http::{Request, Response};
use ticket_core::{Core, Lifetimes, Store};

use crate::config::Settings;
use crate::http::{Body, BoxError};
use crate::proxy::UpstreamClient;
use crate::qlikview::error::QvError;
use crate::qlikview::groups::GroupDirectory;
use crate::qps::error::ApiError;
use crate::router::{self, Route, Side};
use crate::sockets::Sockets;
use crate::{demo, health, qlikview, qps};

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Which listener accepted it.
    pub side: Side,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub secure: bool,
    /// What the TLS handshake established about the client's certificate.
    pub client_auth: crate::tls::ClientAuth,
    /// `peer` as text, formatted once per connection: every log line of every request on
    /// the connection carries it.
    peer_text: Arc<str>,
    /// `peer`'s address without the port, likewise.
    peer_ip_text: Arc<str>,
}

impl Conn {
    /// The peer's IP address as text, for `X-Forwarded-For`.
    pub fn peer_ip_text(&self) -> &str {
        &self.peer_ip_text
    }
}

impl Conn {
    /// A connection from `peer`, accepted on `side`.
    pub fn new(
        side: Side,
        peer: SocketAddr,
        secure: bool,
        client_auth: crate::tls::ClientAuth,
    ) -> Self {
        Conn {
            side,
            peer,
            secure,
            client_auth,
            peer_text: peer.to_string().into(),
            peer_ip_text: peer.ip().to_string().into(),
        }
    }

    /// The peer's address as `ip:port`.
    pub fn peer_text(&self) -> &str {
        &self.peer_text
    }
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
    /// The QlikView group directory; replaced whole on reload.
    groups: RwLock<Arc<GroupDirectory>>,
    /// The pooled client for back ends.
    upstream: UpstreamClient,
    /// Open WebSockets per session, closed on logout.
    sockets: Arc<Sockets>,
}

impl Gateway {
    /// A gateway over `store` with `settings`.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Gateway {
        crate::metrics::install();
        let lifetimes = Lifetimes {
            ticket: settings.ticket_ttl,
            target: settings.target_id_ttl,
        };
        Gateway {
            inner: Arc::new(Inner {
                core: Core::new(store, lifetimes),
                groups: RwLock::new(settings.qlikview.groups.clone()),
                upstream: crate::proxy::client(&settings.proxy),
                sockets: Arc::default(),
                settings,
            }),
        }
    }

    /// The pooled client for back ends.
    pub(crate) fn upstream_client(&self) -> &UpstreamClient {
        &self.inner.upstream
    }

    /// Open WebSockets per session.
    pub fn sockets(&self) -> &Arc<Sockets> {
        &self.inner.sockets
    }

    /// Ends a session by any route: removes it from the store and closes its sockets.
    pub async fn end_session(
        &self,
        realm: &str,
        id: &str,
    ) -> Result<Option<ticket_core::Session>, ticket_core::StoreError> {
        let ended = self.core().store().remove_session(realm, id).await?;
        self.sockets().close(realm, id);
        Ok(ended)
    }

    /// The current QlikView group directory.
    pub fn groups(&self) -> Arc<GroupDirectory> {
        match self.inner.groups.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads `[qlikview] group_directory` again (on SIGHUP). A file that fails to parse is
    /// reported and the last good directory stays in force.
    pub fn reload_groups(&self) -> Result<(), String> {
        let Some(path) = &self.settings().qlikview.group_directory else {
            return Ok(());
        };
        let fresh = GroupDirectory::load(path)?;
        let mut slot = match self.inner.groups.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(fresh);
        Ok(())
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
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = tokio::time::Instant::now();
        let method = req.method().clone();
        let route = router::route(self.settings(), conn.side, req.method(), req.uri().path());
        let name = route.name();
        let res = if conn.client_auth == crate::tls::ClientAuth::Failed {
            ApiError::ClientCertificate.into_response()
        } else {
            self.dispatch(route, req, conn).await
        };
        let elapsed = started.elapsed();
        let status = res.status().as_u16();
        crate::metrics::request(name, status, elapsed);
        tracing::info!(target: "access", method = method.as_str(), route = name, status,
            latency_us = elapsed.as_micros() as u64, peer = conn.peer_text());
        res
    }

    async fn dispatch<B>(&self, route: Route<'_>, req: Request<B>, conn: &Conn) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let settings = self.settings();
        match route {
            Route::AddTicket(vp) => qps::api::add_ticket(self, req, vp, conn).await,
            Route::Session(vp, op) => qps::session_api::handle(self, req, vp, op, conn).await,
            Route::PersonalUser(vp) => qps::personal::handle(self, req, vp, conn).await,
            Route::Alive => health::alive(),
            Route::Ready => health::ready(self).await,
            Route::Metrics => crate::metrics::render(self).await,
            Route::DemoLoginForm => demo::login_form(&req),
            Route::DemoLogin => demo::login(self, req, conn).await,
            Route::DemoPortalForm => demo::portal_form(&req),
            Route::DemoPortal => demo::portal(self, req, conn).await,
            Route::GetWebTicket => qlikview::webticket::get_web_ticket(self, req, conn).await,
            Route::Authenticate => qlikview::authenticate::authenticate(self, req, conn).await,
            Route::AccessPoint => qlikview::accesspoint::command(self, req, conn).await,
            Route::QlikViewPage => qlikview::pages::serve(self, req, conn).await,
            Route::QlikViewMethodNotAllowed(allow) => {
                QvError::MethodNotAllowed(allow).into_response(&settings.qlikview)
            }
            Route::Frontend(vp) => qps::frontend::serve(self, req, vp, conn).await,
            Route::MethodNotAllowed(allow) => ApiError::MethodNotAllowed(allow).into_response(),
            Route::NotFound => ApiError::NotFound.into_response(),
        }
    }
}
