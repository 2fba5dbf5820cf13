//! ticket-gateway: the Qlik Sense proxy (QPS) and QlikView web-ticket dialects, byte for
//! byte, in front of any back end.
//!
//! # Request flow
//!
//! ```text
//! cli::main     Settings (TOML or embedded defaults; exit 64 on error)
//!               → Listeners::bind → server::run(listeners, Gateway, shutdown)
//! server::run   accept on both listeners → hyper-util auto::Builder → Gateway::handle
//! Gateway       router::route(side, method, path) → one handler per route
//! qps::api      Xrfkey → virtual proxy → lenient JSON → Core::issue_ticket → 201 JSON
//! qps::frontend qlikTicket → Core::redeem → session + Set-Cookie → resource
//!               cookie → Store::touch_session → resource
//!               otherwise → Core::new_target → 302 to the authentication module
//! ```
//!
//! The ticket core (`ticket-core`) owns tickets, target ids and sessions; this crate only
//! speaks HTTP.

pub mod audit;
pub mod certs;
pub mod cli;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod health;
pub mod http;
pub mod identity_page;
pub mod logclock;
pub mod logjson;
pub mod logline;
pub mod logscan;
pub mod logsink;
pub mod metrics;
pub mod proxy;
pub mod qlikview;
pub mod qps;
pub mod redirect;
pub mod router;
pub mod server;
pub mod sockets;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use config::Settings;
pub use gateway::{Conn, Gateway};
pub use router::Side;
pub use server::{run, Listeners};
