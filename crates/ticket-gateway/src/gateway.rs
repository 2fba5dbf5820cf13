//! The gateway as a value: settings plus the ticket core, callable without a socket.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use http::{Request, Response};
use ticket_core::{Core, Lifetimes, Store};

use crate::config::Settings;
use crate::http::{Body, BoxError};
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
    /// The same as a header value, for `X-Forwarded-For`.
    peer_ip_header: http::HeaderValue,
}

impl Conn {
    /// The peer's IP address as text, for `X-Forwarded-For`.
    pub fn peer_ip_text(&self) -> &str {
        &self.peer_ip_text
    }

    /// The peer's IP address as a header value.
    pub fn peer_ip_header(&self) -> &http::HeaderValue {
        &self.peer_ip_header
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
        let ip = peer.ip().to_string();
        Conn {
            side,
            peer,
            secure,
            client_auth,
            peer_text: peer.to_string().into(),
            // An address's text is always a valid header value.
            peer_ip_header: http::HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| http::HeaderValue::from_static("")),
            peer_ip_text: ip.into(),
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
    /// Keep-alive connections to the back ends.
    upstreams: crate::upstream::Pools,
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
                upstreams: crate::upstream::Pools::new(&settings),
                sockets: Arc::default(),
                settings,
            }),
        }
    }

    /// Keep-alive connections to the back ends.
    pub(crate) fn upstreams(&self) -> &crate::upstream::Pools {
        &self.inner.upstreams
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
        reason: ticket_core::EndReason,
    ) -> Result<Option<ticket_core::Session>, ticket_core::StoreError> {
        let ended = self.core().end_session(realm, id, reason).await?;
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
        let started = tokio::time::Instant::now();
        let method = req.method().clone();
        let route = router::route(self.settings(), conn.side, req.method(), req.uri().path());
        let name = route.name();
        let refused = conn.client_auth == crate::tls::ClientAuth::Failed;
        Handling {
            inner: self.dispatch(route, req, conn, refused),
            started,
            method,
            name,
            conn,
        }
    }

    /// The route's handler. The handlers of the hot paths (ticket requests, redemption,
    /// the pages behind a session) are returned unboxed, one variant each; the others are
    /// boxed, so that the state of every request, which is as large as its largest
    /// variant, stays the size of a hot one.
    /// A client whose certificate the API listener `refused` gets `403` whatever it asked.
    fn dispatch<'a, B>(
        &'a self,
        route: Route<'a>,
        req: Request<B>,
        conn: &'a Conn,
        refused: bool,
    ) -> impl Future<Output = Response<Body>> + Send + 'a
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        use futures_util::future::Either::{Left, Right};
        if refused {
            let refusal: Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>> = Box::pin(
                std::future::ready(ApiError::ClientCertificate.into_response()),
            );
            return Right(Right(refusal));
        }
        match route {
            Route::AddTicket(vp) => Left(Left(Left(qps::api::add_ticket(self, req, vp, conn)))),
            Route::Frontend(vp) => Left(Left(Right(qps::frontend::serve(self, req, vp, conn)))),
            Route::GetWebTicket => Left(Right(Left(qlikview::webticket::get_web_ticket(
                self, req, conn,
            )))),
            Route::Authenticate => Left(Right(Right(qlikview::authenticate::authenticate(
                self, req, conn,
            )))),
            Route::QlikViewPage => Right(Left(qlikview::pages::serve(self, req, conn))),
            other => Right(Right(self.dispatch_other(other, req, conn))),
        }
    }

    /// Every route but the hot ones, boxed.
    fn dispatch_other<'a, B>(
        &'a self,
        route: Route<'a>,
        req: Request<B>,
        conn: &'a Conn,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Box::pin(async move {
            let settings = self.settings();
            match route {
                Route::AddTicket(vp) => qps::api::add_ticket(self, req, vp, conn).await,
                Route::Frontend(vp) => qps::frontend::serve(self, req, vp, conn).await,
                Route::GetWebTicket => qlikview::webticket::get_web_ticket(self, req, conn).await,
                Route::Authenticate => qlikview::authenticate::authenticate(self, req, conn).await,
                Route::QlikViewPage => qlikview::pages::serve(self, req, conn).await,
                Route::Session(vp, op) => qps::session_api::handle(self, req, vp, op, conn).await,
                Route::PersonalUser(vp) => qps::personal::handle(self, req, vp, conn).await,
                Route::Alive => health::alive(),
                Route::Ready => health::ready(self).await,
                Route::Metrics => crate::metrics::render(self).await,
                Route::DemoLoginForm => demo::login_form(&req),
                Route::DemoLogin => demo::login(self, req, conn).await,
                Route::DemoPortalForm => demo::portal_form(&req),
                Route::DemoPortal => demo::portal(self, req, conn).await,
                Route::AccessPoint => qlikview::accesspoint::command(self, req, conn).await,
                Route::QlikViewMethodNotAllowed(allow) => {
                    QvError::MethodNotAllowed(allow).into_response(&settings.qlikview)
                }
                Route::MethodNotAllowed(allow) => ApiError::MethodNotAllowed(allow).into_response(),
                Route::NotFound => ApiError::NotFound.into_response(),
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A request being answered, and what its access log line and metrics need once it is.
    /// A struct rather than an `async` block: a block would hold the handler's future
    /// twice over, as the value it captured and as the one it awaits.
    struct Handling<'a, F> {
        #[pin]
        inner: F,
        started: tokio::time::Instant,
        method: http::Method,
        name: &'static str,
        conn: &'a Conn,
    }
}

impl<F: Future<Output = Response<Body>>> Future for Handling<'_, F> {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        let elapsed = this.started.elapsed();
        let status = res.status().as_u16();
        let name = *this.name;
        crate::metrics::request(name, status, elapsed);
        tracing::info!(target: "access", method = this.method.as_str(), route = name, status,
            latency_us = elapsed.as_micros() as u64, peer = this.conn.peer_text());
        Poll::Ready(res)
    }
}
