//! The ticket core shared by both Qlik dialects.
//!
//! A Qlik Sense proxy and a QlikView web server both hand out short-lived, single-use
//! tickets to a trusted caller (an authentication module or a portal) and turn a redeemed
//! ticket into a browser session. This crate holds what the two have in common and nothing
//! that speaks HTTP:
//!
//! - [`id`]: the identifiers, all drawn from a CSPRNG: 16-letter QPS tickets, 40-hex-digit
//!   QlikView web tickets, and lowercase GUIDs for target ids and session ids.
//! - [`model`]: who a ticket or session is for ([`Identity`]), the stored [`Ticket`] and
//!   [`Session`].
//! - [`events`]: [`SessionEnded`], which tells every node that a session ended.
//! - [`store`]: the [`Store`] contract (atomic single use, TTL expiry, sliding session
//!   expiry) and its in-memory backend, [`MemoryStore`].
//! - [`Core`]: the policy on top of a store: ticket and target-id lifetimes and the
//!   issue/redeem/session operations both dialects call.
//!
//! Every deadline is measured on tokio's clock, so tests drive expiry with
//! `tokio::time::pause()` and `advance()` instead of sleeping.

pub mod audit;
pub mod defaults;
pub mod events;
pub mod id;
pub mod model;
pub mod store;

mod core;

pub use crate::core::{Core, Lifetimes};
pub use crate::events::{EndReason, SessionEnded};
pub use crate::model::{Identity, Session, Ticket};
#[cfg(feature = "redis")]
pub use crate::store::redis::{RedisConfig, RedisStore};
pub use crate::store::{memory::MemoryStore, Redemption, SessionLimit, Store, StoreError};
