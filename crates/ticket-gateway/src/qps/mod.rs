//! The Qlik Sense Proxy Service dialect.
//!
//! - [`api`]: the REST API an authentication module calls (`POST /qps/{vp}/ticket`).
//! - [`frontend`]: what a browser meets: the redirect to the authentication module, ticket
//!   redemption with `qlikTicket`, and the session cookie.
//! - [`json`], [`wire`], [`xrf`]: the reader, the documents and the Xrfkey check.
//! - [`error`]: every API failure, rendered in one place.

pub mod api;
pub mod error;
pub mod frontend;
pub mod identity;
pub mod json;
pub mod personal;
pub mod session_api;
pub mod wire;
pub mod xrf;
