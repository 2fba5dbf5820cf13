//! The Qlik Sense Proxy Service dialect.
//!
//! - [`api`]: the REST API an authentication module calls (`POST /qps/{vp}/ticket`).
//! - [`session_api`]: the session and user APIs on the REST listener.
//! - [`frontend`]: what a browser meets: the redirect to the authentication module
//!   ([`login`]), ticket redemption with `qlikTicket`, and the session cookie
//!   ([`session`]).
//! - [`methods`], [`oidc`]: signing in by a header, a JWT or an OpenID provider.
//! - [`personal`]: the personal API a browser calls with its cookie.
//! - [`identity`]: the headers that tell a back end who the user is.
//! - [`json`], [`wire`], [`xrf`]: the reader, the documents and the Xrfkey check.
//! - [`error`]: every failure, rendered in one place.

pub(crate) mod anonymous;
pub(crate) mod api;
pub(crate) mod error;
pub(crate) mod frontend;
pub(crate) mod identity;
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub mod json;
pub(crate) mod login;
pub(crate) mod methods;
pub(crate) mod notify;
pub(crate) mod oidc;
pub(crate) mod personal;
pub(crate) mod session;
pub(crate) mod session_api;
pub(crate) mod signed_in;
pub(crate) mod socket;
pub(crate) mod wire;
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub mod xrf;
