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
//! | `P target:<id>`              | string | the realm and the URI, a line break between  | `PX` ttl      |
//! | `P value:<key>`              | string | the value                                    | `PX` ttl      |
//! | `P session:<realm>:<id>`     | string | `{"idle_ms", "user_key", "session"}` as JSON | `PX` idle     |
//! | `P user:<realm>:<user_key>`  | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P realm:<realm>`            | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P seq`                      | string | the creation sequence (`INCR`)               | none          |
//!
//! One pub/sub channel, `P session-ended`, carries [`SessionEnded`] events as JSON.
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
//! - **Values** are `SET NX PX`, read with `GET` and taken with `GETDEL`, as tickets are.
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
//! - `connection`: the command connection and the task that keeps it.
//! - `events`: session-end events, published and heard.
//! - `keys`: every key name, from the prefix.
//! - `encoding`: what the keys hold.
//! - `scripts`, with the Lua sources in `lua/`: the multi-key steps.
//! - `store`: the [`Store`](crate::store::Store) implementation.
//!
//! # Failure and recovery
//!
//! One multiplexed connection carries every operation, and a task the store owns keeps it
//! (`connection`). What the store promises: every operation ends within
//! [`RedisConfig::op_timeout`], waiting for a connection included; while Redis is away,
//! operations fail at once with [`StoreError::Backend`]; once it is back, none fails
//! because it was away.
//!
//! - **Noticing.** The keeper runs the connection's driver (the future that reads and
//!   writes the socket) itself, so when Redis closes the socket (a restart, a crash,
//!   `CLIENT KILL`) the keeper sees it at once and marks the link down before anything
//!   else can be sent on it. A server that vanishes without closing anything (its host
//!   lost, its address moved) is noticed by a `PING` that goes unanswered within the
//!   timeout: every five seconds, and after any operation that timed out; the keeper then
//!   drops the connection.
//! - **Reconnecting.** The keeper reconnects at once, then after pauses growing from 50 ms
//!   to one second while Redis stays away, without waiting for a request: an idle node is
//!   connected again about a second after Redis is back, and its first request (a
//!   readiness probe as much as a login) finds the connection there. A new connection must
//!   answer `PING` and load every script before anything is sent on it.
//! - **Operations that find the link down** are not sent on the dead connection, nor failed
//!   because of it: each asks the keeper for an attempt that begins after it arrived, and
//!   waits for it. While Redis is down that attempt is refused at once and the operation
//!   fails; once Redis is back the attempt succeeds and the operation goes out on the new
//!   connection. An operation is thus never retried: it is sent once, on a connection that
//!   was live when it was sent.
//! - **What fails, and is not tried again:** an operation whose command went out and got no
//!   answer in time, or whose connection broke while it waited for one. The command may
//!   have been applied (a second try could, say, evict a second session), so the caller
//!   gets [`StoreError::Backend`], which means "may or may not have taken effect".
//! - **Scripts** are called by `EVALSHA`. A server that has forgotten them (`SCRIPT FLUSH`;
//!   after a restart every new connection loads them first) answers `NOSCRIPT` without
//!   running anything, and the `redis` crate's [`Script`](redis::Script) then loads the
//!   script and calls it again: the one retry that is always safe.

mod config;
mod connection;
mod encoding;
mod events;
mod keys;
mod scripts;
mod store;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult};
use tokio::sync::{broadcast, Notify};

use self::connection::Link;
use self::events::Listener;
use self::keys::Keys;
use self::scripts::Scripts;
use super::{OwnedTask, StoreError};
use crate::events::{SessionEnded, EVENT_BUFFER};

pub use self::config::RedisConfig;

/// The Redis [`Store`](crate::store::Store). Cheap to share behind an `Arc`; every clone of
/// the underlying connection multiplexes onto one socket.
pub struct RedisStore {
    link: Link,
    keys: Keys,
    op_timeout: Duration,
    scripts: Scripts,
    /// Session-end events heard on the channel, for this node's receivers.
    events: broadcast::Sender<SessionEnded>,
    /// The task that holds the subscription.
    _listener: OwnedTask,
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
    /// scripts (so a server that cannot run them fails here, not on the first login). The
    /// store then keeps its connection by itself: see "Failure and recovery" above.
    pub async fn connect(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(backend)?;
        let redis_back = Arc::new(Notify::new());
        let link = Link::open(client.clone(), cfg.op_timeout, redis_back.clone()).await?;
        let keys = Keys {
            prefix: cfg.key_prefix,
        };
        // Subscribed before the store is handed out, so that no event published after
        // `connect` returns is missed.
        let channel = keys.session_events();
        let subscribed = match tokio::time::timeout(
            cfg.op_timeout,
            events::subscribe(&client, &channel),
        )
        .await
        {
            Ok(subscribed) => subscribed.map_err(backend)?,
            Err(_) => {
                return Err(StoreError::Backend(Box::new(TimedOut {
                    op: "subscribe",
                    after: cfg.op_timeout,
                })))
            }
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let listener = Listener {
            client,
            channel,
            events: events.clone(),
            op_timeout: cfg.op_timeout,
            redis_back,
        };
        Ok(RedisStore {
            link,
            keys,
            op_timeout: cfg.op_timeout,
            scripts: Scripts::new(),
            events,
            _listener: OwnedTask::new(tokio::spawn(listener.run(subscribed))),
        })
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// Runs one operation, `send`, on a connection, within the operation timeout; a
    /// timeout or a Redis error becomes [`StoreError::Backend`].
    async fn run<T, F, Fut>(&self, op: &'static str, send: F) -> Result<T, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_raw(op, send).await?.map_err(backend)
    }

    /// [`run`](Self::run), with Redis's own answer left for the caller to read: the outer
    /// error is a connection that could not be had or an answer that did not come in time.
    ///
    /// The live connection is taken as it is, with no timer of its own: nearly every
    /// operation finds one. Without one (Redis went away), the operation waits for the
    /// keeper's next attempt, which it asks for, and sends on the connection that attempt
    /// makes; both steps share the one deadline. An answer that does not come in time is
    /// not retried (the command may have been applied); the keeper is asked to check the
    /// connection instead.
    async fn run_raw<T, F, Fut>(
        &self,
        op: &'static str,
        send: F,
    ) -> Result<RedisResult<T>, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let timed_out = || {
            StoreError::Backend(Box::new(TimedOut {
                op,
                after: self.op_timeout,
            }))
        };
        let answer = match self.link.current() {
            Some(conn) => tokio::time::timeout(self.op_timeout, send(conn)).await,
            None => {
                let deadline = tokio::time::Instant::now() + self.op_timeout;
                let conn = tokio::time::timeout_at(deadline, self.link.reconnected())
                    .await
                    .map_err(|_| timed_out())??;
                tokio::time::timeout_at(deadline, send(conn)).await
            }
        };
        answer.map_err(|_| {
            self.link.suspect();
            timed_out()
        })
    }
}
