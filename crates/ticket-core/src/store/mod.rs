//! The storage contract both dialects rely on, and its backends.
//!
//! A store keeps four kinds of entry, each with its own lifetime rule:
//!
//! | entry     | key                  | lifetime                                   | read                |
//! |-----------|----------------------|--------------------------------------------|---------------------|
//! | ticket    | ticket id            | fixed TTL from insertion                   | taken once          |
//! | target id | GUID                 | fixed TTL from insertion                   | read often          |
//! | session   | `(realm, session id)`| sliding: every touch restarts the timeout  | read often          |
//! | value     | the caller's key     | fixed TTL from insertion                   | read, or taken once |
//!
//! Stores also carry the session-end events of [`crate::events`] between the nodes that
//! share them.
//!
//! Backends are used as `Arc<dyn Store>` because the backend is chosen from configuration
//! at start-up.

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::events::SessionEnded;
use crate::model::{Session, Ticket};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is already present; nothing was overwritten.
    #[error("an entry with this key already exists")]
    Conflict,
    /// The user already holds the most sessions the limit allows.
    #[error("the user already has the maximum number of sessions")]
    LimitReached,
    /// The backend could not be reached or answered with an error. The operation may or
    /// may not have taken effect; callers answer "service unavailable" and retry nothing.
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Persistence for tickets, target ids and sessions.
///
/// Contract every backend keeps (and `tests/store_contract.rs` checks for each):
/// - **Single use.** Of any number of concurrent [`take_ticket`](Store::take_ticket) calls
///   for one live ticket, exactly one returns `Some`; every later call returns `None`. The
///   same holds for [`take_value`](Store::take_value).
/// - **Expiry.** An entry whose lifetime has passed is never returned, whether or not it has
///   been purged yet. Unknown, used and expired tickets all read as `None`: callers cannot
///   and need not tell them apart.
/// - **No overwrite.** Inserting a key that is live fails with [`StoreError::Conflict`].
/// - **Clock.** Lifetimes are measured on tokio's clock.
#[async_trait]
pub trait Store: std::fmt::Debug + Send + Sync + 'static {
    /// Stores `ticket` under `id` until `ttl` has passed.
    async fn insert_ticket(
        &self,
        id: &str,
        ticket: &Ticket,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Removes and returns the ticket under `id`, atomically.
    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError>;

    /// Remembers the absolute URL a user first asked for under a target id, for `ttl`.
    /// A target id may be read any number of times while it lives (a user pressing "back"
    /// on a slow login page still gets where they wanted to go).
    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError>;

    /// The URL stored under a target id, if it is still live.
    async fn target(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Keeps `value` under `key` for `ttl`: short-lived state that whichever node gets the
    /// next request must find (an OpenID Connect login in progress; the session a JWT
    /// started). Values live apart from target ids: the same key may name one of each.
    async fn insert_value(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;

    /// The value under `key`, if it is still live; reading does not use it up.
    async fn value(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Removes and returns the value under `key`, atomically, as
    /// [`take_ticket`](Store::take_ticket) does: of any number of concurrent takes of one
    /// live value, exactly one returns it.
    async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Starts a session that ends after `idle` without a [`touch_session`](Store::touch_session).
    ///
    /// With a `limit`, at most `limit.max` live sessions of the same user
    /// ([`Session::user_key`]) may exist in the realm. When the new one would pass it, the
    /// store either fails with [`StoreError::LimitReached`] and changes nothing, or (with
    /// `evict_oldest`) ends the user's oldest sessions first and returns them. Checking and
    /// inserting is one atomic step: racing logins cannot pass the limit together.
    async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Returns the live session `(realm, id)` and restarts its inactivity timeout.
    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError>;

    /// Returns the live session `(realm, id)` without touching it.
    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError>;

    /// Ends the session `(realm, id)` at once and returns it, if it was live.
    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError>;

    /// Every live session of a realm, oldest first.
    async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError>;

    /// Every live session of one user ([`Session::user_key`]) in a realm, oldest first.
    async fn user_sessions(&self, realm: &str, user_key: &str) -> Result<Vec<Session>, StoreError>;

    /// Ends every live session of one user in a realm at once and returns them, oldest first.
    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError>;

    /// How many live sessions a realm holds (for `/metrics`, on every scrape). The default
    /// lists them; both backends count without reading or decoding any.
    async fn count_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        Ok(self.sessions(realm).await?.len())
    }

    /// Whether the backend answers (readiness). The in-memory store always does.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Tells every holder of a [`subscribe`](Store::subscribe) receiver on every node
    /// sharing this store, this node included, that a session ended. Delivery is best
    /// effort: a node not listening at that moment misses it (see [`crate::events`]).
    async fn publish(&self, event: &SessionEnded) -> Result<(), StoreError>;

    /// The session-end events published from now on by any node sharing this store, each
    /// once, in the order each node published them.
    fn subscribe(&self) -> broadcast::Receiver<SessionEnded>;

    /// Redeems ticket `id` into a session, in one step where the backend can: takes the
    /// ticket (see [`take_ticket`](Store::take_ticket)) and, if it was issued for `realm`,
    /// starts a session for its user under an id from `new_id`, ending after `idle`
    /// without use, within `limit` (see [`insert_session`](Store::insert_session)).
    ///
    /// A ticket of another realm is consumed all the same; so is a ticket whose user
    /// already holds the most sessions allowed. An id that a live session already has is
    /// replaced by a fresh one, a few times, before the call fails with
    /// [`StoreError::Conflict`].
    ///
    /// The default takes the ticket, then inserts the session: two steps, which a shared
    /// backend, where each is a round trip, does in one.
    async fn redeem_ticket(
        &self,
        id: &str,
        realm: &str,
        idle: Duration,
        limit: Option<SessionLimit>,
        new_id: fn() -> String,
    ) -> Result<Redemption, StoreError> {
        let Some(ticket) = self.take_ticket(id).await? else {
            return Ok(Redemption::NoTicket);
        };
        start_for_ticket(self, ticket, realm, idle, limit, new_id).await
    }
}

/// The second step of a redemption in two steps: `ticket` has been taken; starts its
/// session if it belongs to `realm` (see [`Store::redeem_ticket`]).
pub(crate) async fn start_for_ticket<S: Store + ?Sized>(
    store: &S,
    ticket: Ticket,
    realm: &str,
    idle: Duration,
    limit: Option<SessionLimit>,
    new_id: fn() -> String,
) -> Result<Redemption, StoreError> {
    if ticket.realm != realm {
        return Ok(Redemption::WrongRealm(ticket));
    }
    let mut session = Session::new(ticket.realm.clone(), String::new(), ticket.identity.clone());
    for _ in 0..SESSION_ID_ATTEMPTS {
        session.id = new_id();
        match store.insert_session(&session, idle, limit).await {
            Ok(evicted) => {
                return Ok(Redemption::Started {
                    ticket,
                    session,
                    evicted,
                })
            }
            Err(StoreError::Conflict) => continue,
            Err(StoreError::LimitReached) => return Ok(Redemption::LimitReached(ticket)),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// How many fresh session ids a redemption tries when one is taken. A GUID drawn from a
/// CSPRNG colliding with a live one is beyond belief; the retry only keeps the contract
/// (never overwrite) from becoming an error a user could see.
pub const SESSION_ID_ATTEMPTS: usize = 4;

/// What [`Store::redeem_ticket`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// No live ticket under the id: unknown, used or expired.
    NoTicket,
    /// A live ticket issued for another realm, consumed all the same.
    WrongRealm(Ticket),
    /// The ticket was consumed, but its user already holds the most sessions allowed.
    LimitReached(Ticket),
    /// The ticket was consumed into a new session; `evicted` made room for it.
    Started {
        /// The ticket redeemed.
        ticket: Ticket,
        /// The new session.
        session: Session,
        /// Sessions of the same user ended to make room, oldest first.
        evicted: Vec<Session>,
    },
}

/// How many live sessions one user may hold in a realm, and what happens past that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// The most live sessions per user and realm.
    pub max: usize,
    /// `true`: end the oldest to make room; `false`: refuse the new one.
    pub evict_oldest: bool,
}

/// A background task a store owns (the memory store's purge; the Redis store's connection
/// keeper and subscriber): aborted when the store, its only holder, is dropped, so no task
/// outlives the store it works for.
#[derive(Debug)]
pub(crate) struct OwnedTask(JoinHandle<()>);

impl OwnedTask {
    pub(crate) fn new(task: JoinHandle<()>) -> OwnedTask {
        OwnedTask(task)
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
