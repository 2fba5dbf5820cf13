//! What the gateway knows about the connection a request came on. A leaf: handlers read it,
//! and it depends on nothing but the TLS outcome's type.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use http::HeaderValue;
use ipnet::IpNet;

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The browser-facing listener.
    Frontend,
    /// The QPS REST API listener.
    Api,
}

/// What the TLS handshake established about the client's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate was asked for (plain http, or TLS without `client_ca`).
    NotRequired,
    /// A certificate from the configured CA.
    Verified,
    /// `optional-403`: no certificate, or one the CA did not issue.
    Failed,
}

/// A connection: its listener, its peer, and what TLS established.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Which listener accepted it.
    pub side: Side,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub secure: bool,
    /// What the TLS handshake established about the client's certificate.
    pub client_auth: ClientAuth,
    /// `peer` as text, formatted once per connection: every log line of every request on
    /// the connection carries it.
    peer_text: Arc<str>,
    /// `peer`'s address without the port, likewise.
    peer_ip_text: Arc<str>,
    /// The same as a header value, for `X-Forwarded-For`.
    peer_ip_header: HeaderValue,
    /// The connection's place under `max_connections`, held while it is open; an upgraded
    /// connection (a WebSocket) takes it along.
    slot: Arc<Mutex<Option<Slot>>>,
}

/// A place under `max_connections`: given back when dropped.
pub(crate) type Slot = tokio::sync::OwnedSemaphorePermit;

impl Conn {
    /// A connection from `peer`, accepted on `side`.
    pub fn new(side: Side, peer: SocketAddr, secure: bool, client_auth: ClientAuth) -> Self {
        let ip = peer.ip().to_string();
        Conn {
            side,
            peer,
            secure,
            client_auth,
            peer_text: peer.to_string().into(),
            // An address's text is always a valid header value.
            peer_ip_header: HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            peer_ip_text: ip.into(),
            slot: Arc::default(),
        }
    }

    /// The connection, holding `slot` while it is open.
    pub(crate) fn holding(self, slot: Slot) -> Self {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(slot);
        self
    }

    /// Takes the connection's place under `max_connections`, for what outlives the
    /// connection's requests (a WebSocket).
    pub(crate) fn take_slot(&self) -> Option<Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// A plain-http connection from `peer` (no TLS, no client certificate): what tests and
    /// in-process callers use.
    pub fn plain(side: Side, peer: SocketAddr) -> Self {
        Conn::new(side, peer, false, ClientAuth::NotRequired)
    }

    /// The peer's address as `ip:port`.
    pub fn peer_text(&self) -> &str {
        &self.peer_text
    }

    /// The peer's IP address as text, for `X-Forwarded-For`.
    pub fn peer_ip_text(&self) -> &str {
        &self.peer_ip_text
    }

    /// The peer's IP address as a header value.
    pub fn peer_ip_header(&self) -> &HeaderValue {
        &self.peer_ip_header
    }
}

/// Whether a peer address is in one of `nets` (trusted portals, trusted SSO proxies). IPv4
/// and IPv6 are compared literally (`::1` is not `127.0.0.1`), but an IPv4-mapped IPv6
/// peer (`::ffff:10.0.0.1`, as a dual-stack socket reports IPv4 callers) is matched as the
/// IPv4 address it is.
pub(crate) fn peer_in(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&ip))
}
