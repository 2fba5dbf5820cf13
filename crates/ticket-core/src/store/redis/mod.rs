//! The Redis backend: one store shared by every gateway instance.
//!
//! Several gateways behind a load balancer must agree that a ticket is used once and that
//! a session ends everywhere at the same moment, so the state lives in one Redis server
//! (standalone or a primary with replicas; Redis 6.2 or later for `GETDEL`). Redis Cluster
//! is not supported: the scripts below reach keys they discover while running.
//!
//! # Key layout
//!
//! Every key starts with [`RedisConfig::key_prefix`] (written `P` here), so several
//! gateways or test runs can share one server. `<realm>` has `%` and `:` percent-escaped,
//! so `session:<realm>:<id>` is unambiguous even for ids that hold a `:`.
//!
//! | key                          | type   | value                                        | expiry        |
//! |------------------------------|--------|----------------------------------------------|---------------|
//! | `P ticket:<id>`              | string | JSON of user key, realm, identity, target, tab-separated | `PX` ttl |
//! | `P target:<id>`              | string | the URI                                      | `PX` ttl      |
//! | `P session:<realm>:<id>`     | string | `{"idle_ms", "user_key", "session"}` as JSON | `PX` idle     |
//! | `P user:<realm>:<user_key>`  | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P realm:<realm>`            | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P seq`                      | string | the creation sequence (`INCR`)               | none          |
//!
//! The server owns the clock: lifetimes are measured by Redis, not by tokio.
//!
//! # Why each step is atomic
//!
//! - **Tickets** are inserted with `SET NX PX` (a live id is never overwritten) and taken
//!   with `GETDEL`: of any number of racing redemptions, Redis runs one `GETDEL` first and
//!   every other one finds nothing. A redemption takes the ticket and inserts its session
//!   in one script (`REDEEM_TICKET`), so the same holds for it.
//! - **Target ids** are `SET NX PX` and plain `GET`s: they may be read any number of times.
//! - **Sessions** carry their idle timeout inside the value, so touching one is a script
//!   that reads it and restarts its expiry in the same step; a session about to expire is
//!   either touched or gone, never half of each.
//! - **The indexes** may name sessions that have expired (Redis drops the session key, not
//!   the index entry). Every script that reads an index drops such members as it goes, and
//!   an insert also checks a few members of each index (walking it a few at a time), so
//!   dead entries do not pile up. An index's own expiry is kept at least as far out as any
//!   member's, so the index of a user who never returns disappears by itself.
//! - **Session limits** are one script: clean the user's index, count the live sessions,
//!   refuse or evict, and insert. Redis runs scripts one at a time, so racing logins of
//!   one user cannot pass the limit together.
//! - **Removal** (one session or all of a user's) is a script too, so a session and its
//!   index entries go together.
//!
//! # Layout
//!
//! - `config`: [`RedisConfig`].
//! - `keys`: every key name, from the prefix.
//! - `encoding`: what the keys hold.
//! - `scripts`, with the Lua sources in `lua/`: the multi-key steps.
//! - `store`: the [`Store`](crate::store::Store) implementation.
//!
//! # Failure
//!
//! The connection is a [`ConnectionManager`]: one multiplexed connection whose requests
//! queue in a bounded buffer, replaced by a new one when it breaks. Every operation is
//! bounded by [`RedisConfig::op_timeout`], and a failed reconnect is not retried with
//! back-off while callers wait: while Redis is down requests fail at once with
//! [`StoreError::Backend`], and once it is back the next request reconnects.

mod config;
mod encoding;
mod keys;
mod scripts;
mod store;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;

use self::keys::Keys;
use self::scripts::Scripts;
use super::StoreError;

pub use self::config::RedisConfig;

/// The Redis [`Store`](crate::store::Store). Cheap to share behind an `Arc`; every clone of
/// the underlying connection multiplexes onto one socket.
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    op_timeout: Duration,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// A store operation that Redis did not finish within the operation timeout.
#[derive(Debug, thiserror::Error)]
#[error("redis did not answer {op} within {after:?}")]
struct TimedOut {
    op: &'static str,
    after: Duration,
}

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl RedisStore {
    /// Connects to the server in `cfg.url`, checks that it answers `PING`, and loads the
    /// scripts (so a server that cannot run them fails here, not on the first login).
    pub async fn connect(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(backend)?;
        // No back-off retries: a request waiting on a reconnect would wait out the
        // back-off. One attempt per failure, and the next request tries again. Responses
        // get no timeout of the client's own: every operation is already bounded by
        // `op_timeout` (see `bounded`), and a second timer per command costs as much as
        // the command.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(cfg.op_timeout)
            .set_number_of_retries(0);
        let conn = bounded(
            "connect",
            cfg.op_timeout,
            ConnectionManager::new_with_config(client, manager),
        )
        .await?;
        let store = RedisStore {
            conn,
            keys: Keys {
                prefix: cfg.key_prefix,
            },
            op_timeout: cfg.op_timeout,
            scripts: Scripts::new(),
        };
        let mut pipe = redis::pipe();
        pipe.cmd("PING").ignore();
        for source in Scripts::SOURCES {
            pipe.cmd("SCRIPT").arg("LOAD").arg(source).ignore();
        }
        let mut conn = store.conn.clone();
        store
            .bounded(
                "connect",
                async move { pipe.query_async::<()>(&mut conn).await },
            )
            .await?;
        Ok(store)
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>> + Send,
    ) -> Result<T, StoreError> {
        bounded(op, self.op_timeout, fut).await
    }
}

/// Runs `fut` within `limit`; a timeout or a Redis error becomes [`StoreError::Backend`].
async fn bounded<T>(
    op: &'static str,
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(backend(e)),
        Err(_) => Err(StoreError::Backend(Box::new(TimedOut { op, after: limit }))),
    }
}
