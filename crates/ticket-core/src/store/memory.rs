//! The in-memory backend: sharded maps, lazy expiry, and a background purge.
//!
//! Each map is split into shards behind their own `std::sync::Mutex`, so concurrent
//! requests rarely contend, and no lock is ever held across an `.await`. Expiry is checked
//! on every read, so correctness never depends on the purge; the purge only reclaims
//! memory, one shard at a time, so a sweep never stalls more than one shard's worth of
//! requests. The purge task is owned by the store: dropping the last handle stops it.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::compact::{decode, encode_into, encoded_len, TicketKey};
use super::{SessionLimit, Store, StoreError};
use crate::model::{Session, Ticket};

const SHARDS: usize = 64;

/// How often the purge task sweeps expired entries by default.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// The in-memory [`Store`]. Cheap to share behind an `Arc`; must be created inside a tokio
/// runtime, which runs its purge task.
#[derive(Debug)]
pub struct MemoryStore {
    maps: Arc<Maps>,
    _purge: PurgeGuard,
}

/// Lock order, wherever two locks are held at once: a `users` shard, then a `sessions`
/// shard. Nothing takes them the other way round.
#[derive(Debug, Default)]
struct Maps {
    /// Tickets in their compact form: an inline key and one allocation each.
    tickets: Sharded<TicketKey, TicketBlob>,
    targets: Sharded<String, Expiring<String>>,
    sessions: Sharded<SessionKey, SessionEntry>,
    /// `(realm, user key)` → the user's session ids with their creation sequence. May name
    /// sessions that have ended; readers check each against `sessions`, and the purge
    /// drops dead ones.
    users: Sharded<SessionKey, UserEntry>,
    /// Creation order of sessions, for "oldest first" (instants tie on a paused clock).
    seq: AtomicU64,
}

#[derive(Debug, Default)]
struct UserEntry {
    sessions: Vec<(u64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    realm: String,
    id: String,
}

impl SessionKey {
    fn new(realm: &str, id: &str) -> Self {
        SessionKey {
            realm: realm.to_owned(),
            id: id.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Expiring<V> {
    value: V,
    expires: Instant,
}

#[derive(Debug)]
struct SessionEntry {
    session: Session,
    /// [`Session::user_key`], computed once: the per-user index compares it often.
    user_key: Box<str>,
    idle: Duration,
    expires: Instant,
    seq: u64,
}

trait Deadline {
    fn expires(&self) -> Instant;
}

/// A stored ticket: its expiry (milliseconds after [`epoch`], little-endian) followed by
/// its [`encode`]d form, all in one allocation, so a map slot is a key and one pointer.
#[derive(Debug)]
struct TicketBlob(Box<[u8]>);

/// The instant ticket expiries count from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    Instant::from_std(*EPOCH.get_or_init(std::time::Instant::now))
}

impl TicketBlob {
    fn new(ticket: &Ticket, expires: Instant) -> TicketBlob {
        let ms = u64::try_from(expires.saturating_duration_since(epoch()).as_millis())
            .unwrap_or(u64::MAX);
        let mut bytes = Vec::with_capacity(8 + encoded_len(ticket));
        bytes.extend_from_slice(&ms.to_le_bytes());
        encode_into(&mut bytes, ticket);
        TicketBlob(bytes.into_boxed_slice())
    }

    fn ticket(&self) -> Option<Ticket> {
        decode(self.0.get(8..)?)
    }
}

impl Deadline for TicketBlob {
    fn expires(&self) -> Instant {
        let ms = self
            .0
            .first_chunk::<8>()
            .map_or(0, |b| u64::from_le_bytes(*b));
        epoch() + Duration::from_millis(ms)
    }
}

impl<V> Deadline for Expiring<V> {
    fn expires(&self) -> Instant {
        self.expires
    }
}

impl Deadline for SessionEntry {
    fn expires(&self) -> Instant {
        self.expires
    }
}

/// Keys are hashed with foldhash, randomly seeded per map: several times cheaper than
/// SipHash on every insert and lookup, and still keyed, so a client cannot aim keys at one
/// bucket. The shard picker has a seed of its own, so a shard's keys still spread over its
/// map.
type Hasher = foldhash::fast::RandomState;

#[derive(Debug)]
struct Sharded<K, V> {
    hasher: Hasher,
    shards: Box<[Mutex<HashMap<K, V, Hasher>>]>,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            hasher: Hasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, HashMap<K, V, Hasher>> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        lock(&self.shards[index])
    }
}

impl<K: Hash + Eq, V: Deadline> Sharded<K, V> {
    /// Removes expired entries, one shard at a time; returns how many went.
    /// Removes expired entries, one shard at a time, calling `expired` for each; returns
    /// how many went.
    fn purge(&self, now: Instant, mut expired: impl FnMut(&K, &V)) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut map = lock(shard);
                let before = map.len();
                map.retain(|k, v| {
                    let live = v.expires() > now;
                    if !live {
                        expired(k, v);
                    }
                    live
                });
                before - map.len()
            })
            .sum()
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Locks a shard. A panic while a shard was held cannot leave a map half-updated (every
/// critical section is a single `HashMap` call), so a poisoned lock is simply taken over.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Aborts the purge task when the store is dropped.
#[derive(Debug)]
struct PurgeGuard(JoinHandle<()>);

impl Drop for PurgeGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one purge sweep removed, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Tickets that expired unredeemed.
    pub tickets: usize,
    /// Target ids that expired.
    pub targets: usize,
    /// Sessions that timed out.
    pub sessions: usize,
}

impl MemoryStore {
    /// A new, empty store whose purge task sweeps every [`DEFAULT_PURGE_INTERVAL`].
    pub fn new() -> Self {
        Self::with_purge_interval(DEFAULT_PURGE_INTERVAL)
    }

    /// A new, empty store whose purge task sweeps every `every`.
    ///
    /// # Panics
    /// Outside a tokio runtime, which must run the purge task.
    pub fn with_purge_interval(every: Duration) -> Self {
        let maps = Arc::new(Maps::default());
        let weak = Arc::downgrade(&maps);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(maps) = weak.upgrade() else { break };
                let purged = maps.purge(Instant::now());
                if purged != Purged::default() {
                    tracing::debug!(
                        tickets = purged.tickets,
                        targets = purged.targets,
                        sessions = purged.sessions,
                        "purged expired entries"
                    );
                }
            }
        });
        MemoryStore {
            maps,
            _purge: PurgeGuard(task),
        }
    }

    /// Sweeps expired entries now rather than at the next tick.
    pub fn purge_now(&self) -> Purged {
        self.maps.purge(Instant::now())
    }

    /// Entries held, expired or not: `(tickets, targets, sessions)`.
    pub fn len(&self) -> (usize, usize, usize) {
        (
            self.maps.tickets.len(),
            self.maps.targets.len(),
            self.maps.sessions.len(),
        )
    }

    /// Whether the store holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Maps {
    fn purge(&self, now: Instant) -> Purged {
        let purged = Purged {
            tickets: self.tickets.purge(now, |key, t| {
                if let Some(ticket) = t.ticket() {
                    crate::audit::ticket_expired(
                        key.id().as_deref().unwrap_or("(long id)"),
                        &ticket,
                    );
                }
            }),
            targets: self.targets.purge(now, |_, _| {}),
            sessions: self
                .sessions
                .purge(now, |_, e| crate::audit::session_timed_out(&e.session)),
        };
        for shard in self.users.shards.iter() {
            let mut users = lock(shard);
            users.retain(|key, entry| {
                entry
                    .sessions
                    .retain(|(_, id)| self.is_live(&key.realm, id, now));
                !entry.sessions.is_empty()
            });
        }
        purged
    }

    /// Called with a `users` shard held (the documented lock order).
    fn is_live(&self, realm: &str, id: &str, now: Instant) -> bool {
        let key = SessionKey::new(realm, id);
        self.sessions
            .shard(&key)
            .get(&key)
            .is_some_and(|e| e.expires > now)
    }

    /// Drops dead ids from a user's index (and ids another user's session has reused
    /// since), keeping it oldest first; returns how many live sessions it names.
    fn prune_user_index(
        &self,
        entry: &mut UserEntry,
        realm: &str,
        user_key: &str,
        now: Instant,
    ) -> usize {
        entry.sessions.retain(|(seq, id)| {
            let key = SessionKey::new(realm, id);
            let shard = self.sessions.shard(&key);
            shard
                .get(&key)
                .is_some_and(|e| e.expires > now && e.seq == *seq && &*e.user_key == user_key)
        });
        entry.sessions.len()
    }

    /// The user's live sessions, oldest first, dropping dead ids from the index, and ids
    /// that a caller-chosen session of another user has reused since.
    fn live_user_sessions(
        &self,
        entry: &mut UserEntry,
        realm: &str,
        user_key: &str,
        now: Instant,
    ) -> Vec<Session> {
        let mut live: Vec<Session> = Vec::new();
        entry.sessions.retain(|(seq, id)| {
            let key = SessionKey::new(realm, id);
            let shard = self.sessions.shard(&key);
            match shard.get(&key) {
                // The entry must be this very session (same creation sequence), not an
                // older index entry of a reused id.
                Some(e) if e.expires > now && e.seq == *seq && &*e.user_key == user_key => {
                    live.push(e.session.clone());
                    true
                }
                _ => false,
            }
        });
        live
    }
}

/// Inserts unless a live entry holds the key; an expired one is replaced.
fn insert_new<K: Hash + Eq, V: Deadline>(
    map: &Sharded<K, V>,
    key: K,
    value: V,
    now: Instant,
) -> Result<(), StoreError> {
    let mut shard = map.shard(&key);
    match shard.get(&key) {
        Some(old) if old.expires() > now => Err(StoreError::Conflict),
        _ => {
            shard.insert(key, value);
            Ok(())
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_ticket(
        &self,
        id: &str,
        ticket: &Ticket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let entry = TicketBlob::new(ticket, now + ttl);
        insert_new(&self.maps.tickets, TicketKey::new(id), entry, now)
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let key = TicketKey::new(id);
        let removed = self.maps.tickets.shard(&key).remove(&key);
        Ok(removed
            .filter(|e| e.expires() > Instant::now())
            .and_then(|e| e.ticket()))
    }

    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let entry = Expiring {
            value: uri.to_owned(),
            expires: now + ttl,
        };
        insert_new(&self.maps.targets, id.to_owned(), entry, now)
    }

    async fn target(&self, id: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let shard = self.maps.targets.shard(id);
        Ok(shard
            .get(id)
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone()))
    }

    async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let maps = &self.maps;
        let user_key = session.user_key();
        let user = SessionKey::new(&session.realm, &user_key);
        let mut users = maps.users.shard(&user);
        let entry = users.entry(user.clone()).or_default();
        let mut evicted = Vec::new();
        if let Some(limit) = limit {
            let live = maps.prune_user_index(entry, &session.realm, &user.id, now);
            let excess = (live + 1).saturating_sub(limit.max.max(1));
            if excess > 0 && !limit.evict_oldest {
                return Err(StoreError::LimitReached);
            }
            // An insert that will fail with `Conflict` must not end sessions first.
            if excess > 0 && maps.is_live(&session.realm, &session.id, now) {
                return Err(StoreError::Conflict);
            }
            // The index is oldest first and now holds live sessions only.
            for (_, id) in entry.sessions.drain(..excess) {
                let key = SessionKey::new(&session.realm, &id);
                if let Some(old) = maps.sessions.shard(&key).remove(&key) {
                    evicted.push(old.session);
                }
            }
        }
        let seq = maps.seq.fetch_add(1, Ordering::Relaxed);
        let key = SessionKey::new(&session.realm, &session.id);
        let value = SessionEntry {
            session: session.clone(),
            user_key: user_key.into_boxed_str(),
            idle,
            expires: now + idle,
            seq,
        };
        insert_new(&maps.sessions, key, value, now)?;
        // With a limit the list is short (live sessions plus a few dead ones), so dropping a
        // stale entry of a reused id is cheap; without one, readers skip duplicates instead,
        // so a login never scans a user's whole history.
        if limit.is_some() {
            entry.sessions.retain(|(_, id)| *id != session.id);
        }
        entry.sessions.push((seq, session.id.clone()));
        Ok(evicted)
    }

    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let key = SessionKey::new(realm, id);
        let mut shard = self.maps.sessions.shard(&key);
        match shard.get_mut(&key) {
            Some(e) if e.expires > now => {
                e.expires = now + e.idle;
                Ok(Some(e.session.clone()))
            }
            Some(_) => {
                shard.remove(&key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let key = SessionKey::new(realm, id);
        let shard = self.maps.sessions.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.session.clone()))
    }

    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let key = SessionKey::new(realm, id);
        let removed = self.maps.sessions.shard(&key).remove(&key);
        Ok(removed.filter(|e| e.expires > now).map(|e| e.session))
    }

    async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let mut out = Vec::new();
        for shard in self.maps.sessions.shards.iter() {
            let map = lock(shard);
            out.extend(
                map.iter()
                    .filter(|(k, e)| k.realm == realm && e.expires > now)
                    .map(|(_, e)| (e.seq, e.session.clone())),
            );
        }
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    async fn user_sessions(&self, realm: &str, user_key: &str) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let user = SessionKey::new(realm, user_key);
        let mut users = self.maps.users.shard(&user);
        Ok(match users.get_mut(&user) {
            Some(entry) => self.maps.live_user_sessions(entry, realm, user_key, now),
            None => Vec::new(),
        })
    }

    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let user = SessionKey::new(realm, user_key);
        let mut users = self.maps.users.shard(&user);
        let Some(entry) = users.remove(&user) else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for (_, id) in entry.sessions {
            let key = SessionKey::new(realm, &id);
            let mut sessions = self.maps.sessions.shard(&key);
            // The id may since have been reused by another user's session: leave that one.
            if sessions.get(&key).is_some_and(|e| &*e.user_key != user_key) {
                continue;
            }
            if let Some(e) = sessions.remove(&key) {
                if e.expires > now {
                    removed.push(e.session);
                }
            }
        }
        Ok(removed)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
