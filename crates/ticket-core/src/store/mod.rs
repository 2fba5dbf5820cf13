//! The storage contract both dialects rely on, and its backends.
//!
//! A store keeps three kinds of entry, each with its own lifetime rule:
//!
//! | entry     | key                  | lifetime                                   | read        |
//! |-----------|----------------------|--------------------------------------------|-------------|
//! | ticket    | ticket id            | fixed TTL from insertion                   | taken once  |
//! | target id | GUID                 | fixed TTL from insertion                   | read often  |
//! | session   | `(realm, session id)`| sliding: every touch restarts the timeout  | read often  |
//!
//! Backends are used as `Arc<dyn Store>` because the backend is chosen from configuration
//! at start-up.

mod compact;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

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
///   for one live ticket, exactly one returns `Some`; every later call returns `None`.
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

    /// Whether the backend answers (readiness). The in-memory store always does.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// How many live sessions one user may hold in a realm, and what happens past that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// The most live sessions per user and realm.
    pub max: usize,
    /// `true`: end the oldest to make room; `false`: refuse the new one.
    pub evict_oldest: bool,
}
