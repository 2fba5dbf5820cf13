//! Integration tests over real sockets on `127.0.0.1:0`, plus in-process tests on tokio's
//! paused clock for everything that depends on time.

mod browser;
mod clients;
mod faults;
mod forward_auth;
mod gateway_proxy;
mod limits;
mod mashup;
mod methods;
mod multinode;
mod oidc;
mod operations;
mod qlikview;
mod qps_frontend;
mod qps_lifetimes;
mod qps_ticket_api;
mod races;
mod session_api;
mod store_contract;
mod tls;
mod websocket;
