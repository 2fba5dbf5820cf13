//! Every default the core and the gateway share, in one place: the gateway's configuration
//! falls back to these, and the core's own constructors use them.

use std::time::Duration;

/// A ticket not redeemed within this is gone: Qlik documents one minute.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// How long a target id remembers the URL first asked for. Qlik documents nothing; at
/// least ten minutes lets a slow login page still get the user where they were going.
pub const TARGET_ID_TTL: Duration = Duration::from_secs(30 * 60);

/// The prefix of every Redis key, so several sites can share one server.
pub const REDIS_KEY_PREFIX: &str = "ticket-gateway:";

/// The Redis server a store connects to when none is named.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long one Redis operation may take, reconnecting included, before it fails.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);
