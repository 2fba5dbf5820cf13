//! ticket-gateway: the Qlik Sense proxy (QPS) and QlikView web-ticket dialects, byte for
//! byte, in front of any back end.
//!
//! # Request flow
//!
//! ```text
//! cli::main        Settings (TOML or embedded defaults; exit 64 on error)
//!                  → Gateway::new (State: settings, Core, Proxy, groups, users, JWT keys,
//!                    OpenID providers; TLS files read)
//!                  → Listeners::bind → server::run(listeners, gateway, shutdown)
//! server::run      accept on both listeners, TLS where configured, a watch per connection
//!                  (idle, slow heads) → hyper-util auto::Builder → Gateway::handle
//! Gateway::handle  router::route(settings, side, method, path) → router::dispatch(&State, …)
//!                  wrapped in telemetry::access (access log and request metrics)
//! qps::api         Xrfkey → virtual proxy → lenient JSON → Core::issue_ticket → 201 JSON
//! qps::frontend    qlikTicket → Core::redeem_into_session → Set-Cookie → the resource
//!                  cookie → Core::touch_session → the resource
//!                  otherwise → Core::new_target → 302 to the authentication module
//!                  the resource: proxy::Proxy::forward to the back end, or the identity page
//! qlikview::*      GetWebTicket.aspx → Core::issue_ticket; Authenticate.aspx → session;
//!                  pages behind the session → proxy or identity page
//! ```
//!
//! # Layout
//!
//! ```text
//! conn, state      leaves: the connection a request came on; what every handler shares
//! gateway, router  building the state; the route table and its dispatch
//! server/          run, listeners, the connection watch, TLS loading, development certs
//! config/          the serde schema, validation into Settings, every default (no file I/O)
//! http/            bodies, queries, cookies, header values, the redirect guard, error pages
//! text/            the byte scanner and the JSON and HTML escapers
//! telemetry/       log formats and their writer, audit events, access log, metrics
//! proxy/           forwarding, the per-back-end pools, the WebSocket registry
//! qps/, qlikview/  the two dialects, each with its errors rendered in one place
//! ops, demo        /healthz, /readyz, /metrics; the demo authentication module and portal
//! signin/          JWT verification, the OpenID Connect relying party, password users
//! forward_auth     /forward-auth: the answer for a reverse proxy that keeps the data path
//! groups, datafile the group directory QlikView looks users' groups up in; reading the
//!                  TOML data files the settings name (errors naming file and line)
//! ```
//!
//! The ticket core (`ticket-core`) owns tickets, target ids and sessions, behind one door
//! ([`ticket_core::Core`]); this crate only speaks HTTP.

pub mod cli;
pub mod config;
mod conn;
mod datafile;
mod demo;
mod forward_auth;
mod gateway;
mod groups;
mod http;
mod identity_page;
mod ops;
mod proxy;
mod qlikview;
mod qps;
mod router;
mod server;
mod signin;
mod state;
pub mod telemetry;
mod text;

pub use config::Settings;
pub use conn::{ClientAuth, Conn, Side};
pub use gateway::Gateway;
pub use server::{certs, run, BindError, Listeners};

/// The readers and guards the fuzz targets, property tests and benchmarks drive directly.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::http::cookie::cookies;
    pub use crate::http::query::{percent_decode, query_param, query_without};
    pub use crate::http::redirect::{location, Hosts};
    pub use crate::qlikview::{authenticate::parse_query, xml};
    pub use crate::qps::wire::{SessionRequest, TicketRequest};
    pub use crate::qps::{json, xrf};
    pub use crate::router::describe;
}
