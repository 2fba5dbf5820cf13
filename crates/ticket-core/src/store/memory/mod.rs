//! The in-memory backend: sharded maps, lazy expiry, and a background purge.
//!
//! Each map is split into shards behind their own `std::sync::Mutex`, so concurrent
//! requests rarely contend, and no lock is ever held across an `.await`. Expiry is checked
//! on every read, so correctness never depends on the purge; the purge only reclaims
//! memory and reports what expired (see [`MemoryStore::with_purge_interval`]). The purge
//! task is owned by the store: dropping the last handle stops it.
//!
//! Lookups borrow: every map is a [`HashTable`](hashbrown::hash_table::HashTable) whose
//! entries are found by a hash the store computes from the caller's `&str`s and an equality
//! test on the stored entry, so reading a session or taking a ticket builds no owned key.
//! One hash per operation picks the shard (from bits the table itself does not use) and
//! the slot within it.
//!
//! # Layout
//!
//! - `sharded`: the sharded hash table every map is built on, and its sweep.
//! - `compact`: tickets and sessions as one byte string each.
//! - `tickets`, `sessions`, `users`: one map each, with the operations on it.
//! - `values`: short-lived values under a key, for the target ids' map and the
//!   single-use values' map.
//! - `purge`: the background sweep and what it reports.
//! - `store`: the [`Store`](crate::store::Store) implementation, which only delegates.

mod compact;
mod purge;
mod sessions;
mod sharded;
mod store;
mod tickets;
mod users;
mod values;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use self::compact::TicketKey;
use self::sessions::SessionSlot;
use self::sharded::Sharded;
use self::tickets::TicketBlob;
use self::users::UserEntry;
use self::values::ValueEntry;
use crate::events::{SessionEnded, EVENT_BUFFER};
use crate::store::OwnedTask;

pub use self::purge::{Purged, DEFAULT_PURGE_INTERVAL};

/// The in-memory [`Store`](crate::store::Store). Cheap to share behind an `Arc`; must be
/// created inside a tokio runtime, which runs its purge task.
#[derive(Debug)]
pub struct MemoryStore {
    maps: Arc<Maps>,
    /// Session-end events: within this process only, which is all a memory store serves.
    events: broadcast::Sender<SessionEnded>,
    _purge: OwnedTask,
}

/// Lock order, wherever two locks are held at once: a `users` shard, then a `sessions`
/// shard. Nothing takes them the other way round, and nothing holds two shards of one map.
/// `sweeping` is taken before any shard, and only by a sweep.
#[derive(Debug)]
struct Maps {
    /// Tickets in their compact form: an inline key and one allocation each.
    tickets: Sharded<(TicketKey, TicketBlob)>,
    /// Target ids: a realm and a URL each (the store only sees a string).
    targets: Sharded<ValueEntry>,
    /// Single-use values ([`Store::insert_value`](crate::store::Store::insert_value)), in a
    /// map of their own: a caller's key never meets a target id.
    values: Sharded<ValueEntry>,
    /// Keyed by `(session.realm, session.id)`, which the entry itself holds.
    sessions: Sharded<SessionSlot>,
    /// `(realm, user key)` → the user's sessions, oldest first, each named by its creation
    /// sequence and the hash it is stored under in `sessions`. Whatever removes a session
    /// also removes it here (at once, or right after releasing the `sessions` shard), so
    /// the index holds no more than the live sessions and those about to be dropped.
    users: Sharded<UserEntry>,
    /// Creation order of sessions, for "oldest first" (instants tie on a paused clock), and
    /// the identity of one session: an id reused after expiry gets a new sequence.
    seq: AtomicU64,
    /// The instant ticket expiries count from: the store's creation, on tokio's clock.
    epoch: Instant,
    /// Held by a sweep from start to end, audits included: sweeps never overlap, and
    /// [`MemoryStore::purge_now`] returns only once a background sweep in flight has
    /// reported everything it removed.
    sweeping: Mutex<()>,
}

impl MemoryStore {
    /// A new, empty store whose purge task sweeps every [`DEFAULT_PURGE_INTERVAL`].
    pub fn new() -> Self {
        Self::with_purge_interval(DEFAULT_PURGE_INTERVAL)
    }

    fn with_maps(maps: Arc<Maps>, purge: OwnedTask) -> Self {
        MemoryStore {
            maps,
            events: broadcast::channel(EVENT_BUFFER).0,
            _purge: purge,
        }
    }

    /// Entries held, expired or not: `(tickets, targets, sessions, values)`.
    pub fn len(&self) -> (usize, usize, usize, usize) {
        (
            self.maps.tickets.len(),
            self.maps.targets.len(),
            self.maps.sessions.len(),
            self.maps.values.len(),
        )
    }

    /// Whether the store holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0, 0)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Maps {
    fn new() -> Maps {
        Maps {
            tickets: Sharded::default(),
            targets: Sharded::default(),
            values: Sharded::default(),
            sessions: Sharded::default(),
            users: Sharded::default(),
            seq: AtomicU64::new(0),
            epoch: Instant::now(),
            sweeping: Mutex::new(()),
        }
    }
}

/// `now + d`, or a deadline a century away where that would overflow.
fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}
