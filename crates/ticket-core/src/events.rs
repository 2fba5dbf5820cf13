//! What one gateway node tells the others: a session has ended, so that every node closes
//! that session's WebSockets, not only the node that ended it.
//!
//! Events travel through the store ([`Store::publish`](crate::store::Store::publish) and
//! [`Store::subscribe`](crate::store::Store::subscribe)): within the process for the
//! memory store, over Redis pub/sub between every node sharing a Redis store. They are
//! notices, not records: a node that is not listening when one is sent (its subscription
//! lost while Redis was away) misses it, and the session is gone from the store all the
//! same, so the node's next request for it finds nothing.

use serde::{Deserialize, Serialize};

/// How many events a slow receiver may fall behind before it misses some
/// ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)).
pub const EVENT_BUFFER: usize = 1024;

/// A session that ended before its inactivity timeout, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnded {
    /// The realm of the session (see [`Session::realm`](crate::model::Session::realm)).
    pub realm: String,
    /// The session id.
    pub id: String,
    /// Why it ended.
    pub reason: EndReason,
}

/// Why a session ended. Sessions that time out are not announced: nothing uses them, so
/// no WebSocket of theirs is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndReason {
    /// The user logged out: the personal API's `DELETE`, the user API's `DELETE`, or a
    /// QlikView AccessPoint logout.
    LoggedOut,
    /// The session API deleted it.
    Closed,
    /// A newer session of the same user pushed it out, under a per-user limit that evicts
    /// the oldest.
    Evicted,
}
