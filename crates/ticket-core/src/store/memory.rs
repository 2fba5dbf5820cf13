//! The in-memory backend: sharded maps, lazy expiry, and a background purge.
//!
//! Each map is split into shards behind their own `std::sync::Mutex`, so concurrent
//! requests rarely contend, and no lock is ever held across an `.await`. Expiry is checked
//! on every read, so correctness never depends on the purge; the purge only reclaims
//! memory and reports what expired (see [`MemoryStore::with_purge_interval`]). The purge
//! task is owned by the store: dropping the last handle stops it.
//!
//! Lookups borrow: every map is a [`HashTable`] whose entries are found by a hash the store
//! computes from the caller's `&str`s and an equality test on the stored entry, so reading
//! a session or taking a ticket builds no owned key. One hash per operation picks the shard
//! (from bits the table itself does not use) and the slot within it.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use hashbrown::hash_table::{Entry, HashTable};
use smallvec::SmallVec;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::compact::{
    decode, decode_session, encode_after, encode_session, peek, session_in, session_is, TicketKey,
};
use super::{SessionLimit, Store, StoreError};
use crate::audit::{fingerprint, ExpiredTickets};
use crate::model::{Identity, Session, Ticket};

const SHARDS: usize = 64;

/// How many slots of one shard a sweep examines per hold of its lock. Removing what expired
/// among them is all it does under the lock; a shard of a million entries is swept in many
/// short holds, not one long one.
const SWEEP_SLOTS: usize = 1024;

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
/// shard. Nothing takes them the other way round, and nothing holds two shards of one map.
/// `sweeping` is taken before any shard, and only by a sweep.
#[derive(Debug)]
struct Maps {
    /// Tickets in their compact form: an inline key and one allocation each.
    tickets: Sharded<(TicketKey, TicketBlob)>,
    targets: Sharded<TargetEntry>,
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

#[derive(Debug)]
struct UserEntry {
    /// The hash it is stored under, kept so that growing the table never reads the key.
    hash: u64,
    /// The realm followed by the user key, in one allocation.
    key: Box<str>,
    realm_len: usize,
    /// `(sequence, hash in sessions)`, oldest first. Inline while there is one: a user's
    /// first login allocates nothing for it.
    sessions: SmallVec<[(u64, u64); 1]>,
}

impl UserEntry {
    fn realm(&self) -> &str {
        self.key.get(..self.realm_len).unwrap_or_default()
    }

    fn user_key(&self) -> &str {
        self.key.get(self.realm_len..).unwrap_or_default()
    }

    fn is(&self, realm: &str, user_key: &str) -> bool {
        self.key.len() == realm.len() + user_key.len()
            && self.user_key() == user_key
            && self.realm() == realm
    }
}

#[derive(Debug)]
struct TargetEntry {
    id: Box<str>,
    uri: String,
    expires: Instant,
}

#[derive(Debug)]
struct SessionEntry {
    /// The session in its compact form ([`encode_session`]): one allocation, where the
    /// session itself holds six.
    blob: Box<[u8]>,
    idle: Duration,
    expires: Instant,
    seq: u64,
    /// The hash its user's entry in `users` is stored under.
    user: u64,
}

impl SessionEntry {
    fn is(&self, realm: &str, id: &str) -> bool {
        session_is(&self.blob, realm, id)
    }

    fn in_realm(&self, realm: &str) -> bool {
        session_in(&self.blob, realm)
    }

    /// The session. Only bytes [`encode_session`] wrote are ever stored, so this is
    /// `None` only for a bug, which callers treat as a session that is gone.
    fn session(&self) -> Option<Session> {
        decode_session(&self.blob)
    }
}

/// A slot of the sessions table: the entry and its hash, kept so that growing the table
/// rehashes nothing. A login storm grows this table by doubling; with the session inline
/// (some 180 bytes of strings and vectors) each doubling moved every session, rehashing it
/// from its heap strings.
#[derive(Debug)]
struct SessionSlot {
    hash: u64,
    entry: SessionEntry,
}

impl std::ops::Deref for SessionSlot {
    type Target = SessionEntry;

    fn deref(&self) -> &SessionEntry {
        &self.entry
    }
}

impl std::ops::DerefMut for SessionSlot {
    fn deref_mut(&mut self) -> &mut SessionEntry {
        &mut self.entry
    }
}

/// A stored ticket: its expiry (milliseconds after [`Maps::epoch`], little-endian)
/// followed by its [`encode_after`]d form, all in one allocation, so a map slot is a key and
/// one pointer.
#[derive(Debug)]
struct TicketBlob(Box<[u8]>);

impl TicketBlob {
    fn new(ticket: &Ticket, expires_ms: u64) -> TicketBlob {
        TicketBlob(encode_after(&expires_ms.to_le_bytes(), ticket))
    }

    fn expires_ms(&self) -> u64 {
        self.0
            .first_chunk::<8>()
            .map_or(0, |b| u64::from_le_bytes(*b))
    }

    fn body(&self) -> &[u8] {
        self.0.get(8..).unwrap_or_default()
    }

    fn ticket(&self) -> Option<Ticket> {
        decode(self.body())
    }
}

/// Keys are hashed with foldhash, randomly seeded per map: several times cheaper than
/// SipHash on every insert and lookup, and still keyed, so a client cannot aim keys at one
/// bucket.
type Hasher = foldhash::fast::RandomState;

struct Sharded<T> {
    hasher: Hasher,
    shards: Box<[Mutex<HashTable<T>>]>,
}

/// Names no entry: they hold live tickets and session ids, and a store may hold millions.
impl<T> std::fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Sharded<T> {
    fn default() -> Self {
        Sharded {
            hasher: Hasher::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
        }
    }
}

impl<T> Sharded<T> {
    fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hash of a two-part key. Owned and borrowed keys both hash through here, as two
    /// `&str`s, so they always agree.
    fn hash_pair(&self, a: &str, b: &str) -> u64 {
        self.hasher.hash_one((a, b))
    }

    /// The shard a hash lives in. hashbrown takes a slot from the low bits and a tag from
    /// the top seven; the shard comes from bits 32 and up, so the keys of one shard still
    /// spread over all its slots and tags.
    fn shard(&self, hash: u64) -> MutexGuard<'_, HashTable<T>> {
        lock(&self.shards[(hash >> 32) as usize % SHARDS])
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Removes the entries of shard `index` that `dead` picks, [`SWEEP_SLOTS`] slots per
    /// hold of the lock, and hands each batch to `report` once the lock is released.
    /// Returns how many went.
    ///
    /// Between two holds the shard may have grown and rehashed: then some entries are
    /// looked at twice and some not at all until the next sweep, which only delays
    /// reclaiming them (readers check expiry themselves).
    fn sweep_shard(
        &self,
        index: usize,
        mut dead: impl FnMut(&T) -> bool,
        mut report: impl FnMut(&mut Vec<T>),
    ) -> usize {
        let shard = &self.shards[index];
        let mut batch = Vec::new();
        let (mut removed, mut next) = (0, 0usize);
        loop {
            let more = {
                let mut table = lock(shard);
                let end = next.saturating_add(SWEEP_SLOTS).min(table.num_buckets());
                for slot in next..end {
                    if let Ok(entry) = table.get_bucket_entry(slot) {
                        if dead(entry.get()) {
                            batch.push(entry.remove().0);
                        }
                    }
                }
                next = end;
                end < table.num_buckets()
            };
            removed += batch.len();
            if !batch.is_empty() {
                report(&mut batch);
                batch.clear();
            }
            if !more {
                return removed;
            }
        }
    }
}

/// Locks a shard. A panic while a shard was held cannot leave a map half-updated (every
/// critical section is a single table operation), so a poisoned lock is simply taken over.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `now + d`, or a deadline a century away where that would overflow.
fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Lowercases `s` onto `out` exactly as `str::to_lowercase` does, without the allocation
/// when `s` is ASCII (nearly always).
fn push_lowercase(out: &mut String, s: &str) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        if let Some(tail) = out.get_mut(start..) {
            tail.make_ascii_lowercase();
        }
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// The `users` key: the realm, then [`Identity::user_key`], built in one allocation of
/// the exact size (for ASCII names) instead of two lowercased copies and a `format!`.
/// Returns the key and the realm's length within it.
fn user_index_key(realm: &str, identity: &Identity) -> (Box<str>, usize) {
    let mut key;
    match identity {
        Identity::Qps {
            user_directory,
            user_id,
            ..
        } => {
            key = String::with_capacity(realm.len() + user_directory.len() + 1 + user_id.len());
            key.push_str(realm);
            push_lowercase(&mut key, user_directory);
            key.push('\\');
            push_lowercase(&mut key, user_id);
        }
        Identity::QlikView { user_id, .. } => {
            key = String::with_capacity(realm.len() + user_id.len());
            key.push_str(realm);
            push_lowercase(&mut key, user_id);
        }
    }
    (key.into_boxed_str(), realm.len())
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

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.tickets += other.tickets;
        self.targets += other.targets;
        self.sessions += other.sessions;
    }
}

impl MemoryStore {
    /// A new, empty store whose purge task sweeps every [`DEFAULT_PURGE_INTERVAL`].
    pub fn new() -> Self {
        Self::with_purge_interval(DEFAULT_PURGE_INTERVAL)
    }

    /// A new, empty store whose purge task sweeps every `every`.
    ///
    /// **The sweep never stalls requests.** With 60-second tickets issued by the ten
    /// thousand per second, one sweep may find hundreds of thousands of expired tickets,
    /// and each costs an audit event. So:
    ///
    /// - The sweep runs on tokio's blocking pool (`spawn_blocking`), never on a runtime
    ///   worker: however long its audit trail takes, no request task waits behind it in a
    ///   worker's queue; the OS shares the CPU between them. The async task only ticks,
    ///   starts one sweep at a time and waits for it, holding no lock.
    /// - Under a shard's lock it only removes what expired, [`SWEEP_SLOTS`] slots per hold
    ///   of the lock: a request waits at most for that, whatever the shard's size. Decoding
    ///   a ticket's user, the audit event, dropping a session from its user's index and
    ///   freeing the memory all happen after the lock is released; the expiry counter is
    ///   bumped once per `(dialect, vp)` at the end of the sweep.
    /// - The events go to the subscriber that was current where the purge task ran (the
    ///   global one in a server; a test's scoped one in a test), as if emitted there.
    ///
    /// Dropping the store aborts the task; a sweep in flight stops at its next shard.
    ///
    /// # Panics
    /// Outside a tokio runtime, which must run the purge task.
    pub fn with_purge_interval(every: Duration) -> Self {
        let maps = Arc::new(Maps::new());
        let weak = Arc::downgrade(&maps);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(maps) = weak.upgrade() else { break };
                let now = Instant::now();
                let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
                let sweep = tokio::task::spawn_blocking(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        // The store holds the other handle: once it is the only one left,
                        // the store is gone and the rest of the sweep is moot.
                        maps.purge(now, || Arc::strong_count(&maps) == 1)
                    })
                });
                match sweep.await {
                    Ok(purged) if purged != Purged::default() => {
                        tracing::debug!(
                            tickets = purged.tickets,
                            targets = purged.targets,
                            sessions = purged.sessions,
                            "purged expired entries"
                        );
                    }
                    Ok(_) => {}
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => tracing::error!(error = %e, "a purge sweep panicked"),
                }
            }
        });
        MemoryStore {
            maps,
            _purge: PurgeGuard(task),
        }
    }

    /// Sweeps expired entries now rather than at the next tick, on the calling thread, and
    /// returns what it removed. It first waits for a background sweep in flight to finish,
    /// so when it returns, whatever that sweep took has been audited too; and, unless
    /// inserts grew a shard while it swept (see [`SWEEP_SLOTS`]), every entry that had
    /// expired when it was called is gone and audited.
    pub fn purge_now(&self) -> Purged {
        self.maps.purge(Instant::now(), || false)
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
    fn new() -> Maps {
        Maps {
            tickets: Sharded::default(),
            targets: Sharded::default(),
            sessions: Sharded::default(),
            users: Sharded::default(),
            seq: AtomicU64::new(0),
            epoch: Instant::now(),
            sweeping: Mutex::new(()),
        }
    }

    /// `t` in whole milliseconds after the epoch, as ticket expiries are stored.
    fn ms(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    }

    fn ticket_hash(&self, key: &TicketKey) -> u64 {
        self.tickets.hash(key)
    }

    fn session_hash(&self, realm: &str, id: &str) -> u64 {
        self.sessions.hash_pair(realm, id)
    }

    /// One pass over every map, shard by shard, until `stop` says so; see
    /// [`MemoryStore::with_purge_interval`].
    fn purge(&self, now: Instant, stop: impl Fn() -> bool) -> Purged {
        let _sweeping = lock(&self.sweeping);
        let now_ms = self.ms(now);
        let mut purged = Purged::default();
        let mut expired = ExpiredTickets::default();
        for index in 0..SHARDS {
            if stop() {
                break;
            }
            purged += Purged {
                tickets: self.tickets.sweep_shard(
                    index,
                    |(_, t)| t.expires_ms() <= now_ms,
                    |batch| {
                        for (key, blob) in batch.drain(..) {
                            report_expired(&mut expired, &key, &blob);
                        }
                    },
                ),
                targets: self
                    .targets
                    .sweep_shard(index, |t| t.expires <= now, |_| {}),
                sessions: self.sessions.sweep_shard(
                    index,
                    |e| e.expires <= now,
                    |batch| {
                        for e in batch.drain(..) {
                            self.unindex(e.user, e.seq);
                            if let Some(session) = e.session() {
                                crate::audit::session_timed_out(&session);
                            }
                        }
                    },
                ),
            };
        }
        expired.flush();
        purged
    }

    /// Drops session `seq` from the index of the user stored under `user`. Takes a `users`
    /// shard: never call it with a `sessions` shard held.
    fn unindex(&self, user: u64, seq: u64) {
        let mut users = self.users.shard(user);
        if let Ok(mut entry) = users.find_entry(user, |u| u.sessions.iter().any(|s| s.0 == seq)) {
            let sessions = &mut entry.get_mut().sessions;
            sessions.retain(|s| s.0 != seq);
            if sessions.is_empty() {
                entry.remove();
            }
        }
    }

    /// Whether `(seq, hash)` from a user's index names a live session. Called with a
    /// `users` shard held (the documented lock order).
    fn is_live_seq(&self, seq: u64, hash: u64, now: Instant) -> bool {
        self.sessions
            .shard(hash)
            .find(hash, |e| e.seq == seq)
            .is_some_and(|e| e.expires > now)
    }

    /// Starts `session` for the user whose index is `entry`, within `limit`; see
    /// [`Store::insert_session`]. Called with the user's `users` shard held; `user` is the
    /// hash that entry is (or will be) stored under. It never replaces a live session
    /// (that is a `Conflict`); an expired one not yet purged it does replace, and hands it
    /// back in `replaced`, for the caller to unindex and audit once it has released the
    /// `users` shard.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        entry: &mut UserEntry,
        user: u64,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
        now: Instant,
        evicted: &mut Vec<Session>,
        replaced: &mut Option<SessionSlot>,
    ) -> Result<(), StoreError> {
        let (realm, id) = (session.realm.as_str(), session.id.as_str());
        let hash = self.session_hash(realm, id);
        if let Some(limit) = limit {
            // Dead entries go first, so the index is oldest first and live only.
            entry
                .sessions
                .retain(|&mut (seq, h)| self.is_live_seq(seq, h, now));
            let excess = (entry.sessions.len() + 1).saturating_sub(limit.max.max(1));
            if excess > 0 {
                if !limit.evict_oldest {
                    return Err(StoreError::LimitReached);
                }
                // An insert that will fail with `Conflict` must not end sessions first.
                let taken = self
                    .sessions
                    .shard(hash)
                    .find(hash, |e| e.is(realm, id))
                    .is_some_and(|e| e.expires > now);
                if taken {
                    return Err(StoreError::Conflict);
                }
                for (seq, h) in entry.sessions.drain(..excess) {
                    if let Ok(old) = self.sessions.shard(h).find_entry(h, |e| e.seq == seq) {
                        evicted.extend(old.remove().0.session());
                    }
                }
            }
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let value = SessionSlot {
            hash,
            entry: SessionEntry {
                blob: encode_session(session),
                idle,
                expires: deadline(now, idle),
                seq,
                user,
            },
        };
        {
            let mut sessions = self.sessions.shard(hash);
            let rehash = |e: &SessionSlot| e.hash;
            match sessions.entry(hash, |e| e.is(realm, id), rehash) {
                Entry::Occupied(mut old) => {
                    if old.get().expires > now {
                        return Err(StoreError::Conflict);
                    }
                    *replaced = Some(std::mem::replace(old.get_mut(), value));
                }
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        entry.sessions.push((seq, hash));
        Ok(())
    }
}

/// The audit event and count for an expired ticket; called with no lock held.
fn report_expired(expired: &mut ExpiredTickets, key: &TicketKey, blob: &TicketBlob) {
    if let Some(t) = peek(blob.body()) {
        let mut buf = [0u8; 40];
        let id = key.id(&mut buf).unwrap_or("(long id)");
        expired.record(
            fingerprint(id),
            t.dialect,
            t.realm,
            t.user_directory,
            t.user_id,
        );
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
        let maps = &*self.maps;
        let now_ms = maps.ms(Instant::now());
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let blob = TicketBlob::new(ticket, now_ms.saturating_add(ttl_ms));
        let key = TicketKey::new(id);
        let hash = maps.ticket_hash(&key);
        let replaced = {
            let mut shard = maps.tickets.shard(hash);
            let rehash = |(k, _): &(TicketKey, TicketBlob)| maps.ticket_hash(k);
            match shard.entry(hash, |(k, _)| *k == key, rehash) {
                Entry::Occupied(mut old) => {
                    if old.get().1.expires_ms() > now_ms {
                        return Err(StoreError::Conflict);
                    }
                    std::mem::replace(&mut old.get_mut().1, blob)
                }
                Entry::Vacant(slot) => {
                    slot.insert((key, blob));
                    return Ok(());
                }
            }
        };
        // An expired ticket under the same id, not yet purged: it is reported like one.
        let mut expired = ExpiredTickets::default();
        report_expired(&mut expired, &key, &replaced);
        expired.flush();
        Ok(())
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let maps = &*self.maps;
        let key = TicketKey::new(id);
        let hash = maps.ticket_hash(&key);
        let removed = match maps
            .tickets
            .shard(hash)
            .find_entry(hash, |(k, _)| *k == key)
        {
            Ok(entry) => entry.remove().0 .1,
            Err(_) => return Ok(None),
        };
        if removed.expires_ms() > maps.ms(Instant::now()) {
            return Ok(removed.ticket());
        }
        // Presented after its lifetime and before the purge got to it: it expired.
        let mut expired = ExpiredTickets::default();
        report_expired(&mut expired, &key, &removed);
        expired.flush();
        Ok(None)
    }

    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let entry = TargetEntry {
            id: id.into(),
            uri: uri.to_owned(),
            expires: deadline(now, ttl),
        };
        let hash = maps.targets.hash(id);
        let mut shard = maps.targets.shard(hash);
        let rehash = |t: &TargetEntry| maps.targets.hash(&*t.id);
        match shard.entry(hash, |t| *t.id == *id, rehash) {
            Entry::Occupied(old) if old.get().expires > now => Err(StoreError::Conflict),
            Entry::Occupied(mut old) => {
                *old.get_mut() = entry;
                Ok(())
            }
            Entry::Vacant(slot) => {
                slot.insert(entry);
                Ok(())
            }
        }
    }

    async fn target(&self, id: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let hash = maps.targets.hash(id);
        let shard = maps.targets.shard(hash);
        Ok(shard
            .find(hash, |t| *t.id == *id)
            .filter(|t| t.expires > now)
            .map(|t| t.uri.clone()))
    }

    async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let realm = session.realm.as_str();
        let (key, realm_len) = user_index_key(realm, &session.identity);
        let user_key = key.get(realm_len..).unwrap_or_default();
        let user = maps.users.hash_pair(realm, user_key);
        let mut evicted = Vec::new();
        let mut replaced = None;
        let mut users = maps.users.shard(user);
        let rehash = |u: &UserEntry| u.hash;
        let result = match users.entry(user, |u| u.is(realm, user_key), rehash) {
            Entry::Occupied(mut entry) => {
                let r = maps.admit(
                    entry.get_mut(),
                    user,
                    session,
                    idle,
                    limit,
                    now,
                    &mut evicted,
                    &mut replaced,
                );
                // A refused insert may have pruned the index to nothing.
                if entry.get().sessions.is_empty() {
                    entry.remove();
                }
                r
            }
            Entry::Vacant(slot) => {
                let mut entry = UserEntry {
                    hash: user,
                    key,
                    realm_len,
                    sessions: SmallVec::new(),
                };
                let r = maps.admit(
                    &mut entry,
                    user,
                    session,
                    idle,
                    limit,
                    now,
                    &mut evicted,
                    &mut replaced,
                );
                if r.is_ok() {
                    slot.insert(entry);
                }
                r
            }
        };
        drop(users);
        if let Some(old) = replaced {
            maps.unindex(old.user, old.seq);
            if let Some(session) = old.session() {
                crate::audit::session_timed_out(&session);
            }
        }
        result.map(|()| evicted)
    }

    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let hash = maps.session_hash(realm, id);
        let mut shard = maps.sessions.shard(hash);
        Ok(match shard.find_mut(hash, |e| e.is(realm, id)) {
            Some(e) if e.expires > now => {
                e.expires = deadline(now, e.idle);
                e.session()
            }
            // An expired one is left to the purge, which reports it.
            _ => None,
        })
    }

    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let hash = maps.session_hash(realm, id);
        let shard = maps.sessions.shard(hash);
        Ok(shard
            .find(hash, |e| e.is(realm, id))
            .filter(|e| e.expires > now)
            .and_then(|e| e.session()))
    }

    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let hash = maps.session_hash(realm, id);
        let removed = match maps
            .sessions
            .shard(hash)
            .find_entry(hash, |e| e.is(realm, id))
        {
            Ok(entry) => entry.remove().0,
            Err(_) => return Ok(None),
        };
        maps.unindex(removed.user, removed.seq);
        if removed.expires > now {
            Ok(removed.session())
        } else {
            if let Some(session) = removed.session() {
                crate::audit::session_timed_out(&session);
            }
            Ok(None)
        }
    }

    async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let mut out = Vec::new();
        for shard in self.maps.sessions.shards.iter() {
            let map = lock(shard);
            out.extend(
                map.iter()
                    .filter(|e| e.expires > now && e.in_realm(realm))
                    .filter_map(|e| Some((e.seq, e.session()?))),
            );
        }
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    async fn user_sessions(&self, realm: &str, user_key: &str) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let user = maps.users.hash_pair(realm, user_key);
        let mut users = maps.users.shard(user);
        let Ok(mut entry) = users.find_entry(user, |u| u.is(realm, user_key)) else {
            return Ok(Vec::new());
        };
        let mut live = Vec::new();
        entry.get_mut().sessions.retain(|&mut (seq, hash)| {
            let shard = maps.sessions.shard(hash);
            match shard.find(hash, |e| e.seq == seq) {
                Some(e) if e.expires > now => {
                    live.extend(e.session());
                    true
                }
                _ => false,
            }
        });
        if entry.get().sessions.is_empty() {
            entry.remove();
        }
        Ok(live)
    }

    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let maps = &*self.maps;
        let user = maps.users.hash_pair(realm, user_key);
        let mut removed = Vec::new();
        let mut timed_out = Vec::new();
        {
            let mut users = maps.users.shard(user);
            let Ok(entry) = users.find_entry(user, |u| u.is(realm, user_key)) else {
                return Ok(Vec::new());
            };
            // The user's shard stays held while their sessions go, so no login of theirs
            // slips in between.
            for (seq, hash) in entry.remove().0.sessions {
                // By sequence: an id another user's session has reused since is not theirs.
                let gone = maps
                    .sessions
                    .shard(hash)
                    .find_entry(hash, |e| e.seq == seq)
                    .ok()
                    .map(|e| e.remove().0);
                match gone {
                    Some(e) if e.expires > now => removed.extend(e.session()),
                    Some(e) => timed_out.extend(e.session()),
                    None => {}
                }
            }
        }
        for s in &timed_out {
            crate::audit::session_timed_out(s);
        }
        Ok(removed)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicU64;
    use std::thread::ThreadId;

    use super::*;

    const REALM: &str = "qps/ext";
    const LONG: Duration = Duration::from_secs(3600);

    fn qps(dir: &str, user: &str) -> Identity {
        Identity::Qps {
            user_directory: dir.into(),
            user_id: user.into(),
            attributes: vec![("Group".into(), "Sales".into())],
        }
    }

    fn session(realm: &str, id: &str, identity: Identity) -> Session {
        Session {
            realm: realm.into(),
            id: id.into(),
            identity,
        }
    }

    fn limit(max: usize, evict_oldest: bool) -> Option<SessionLimit> {
        Some(SessionLimit { max, evict_oldest })
    }

    /// A store whose own purge task stays out of the way of a test's `purge_now`.
    fn quiet_store() -> MemoryStore {
        MemoryStore::with_purge_interval(Duration::from_secs(24 * 3600))
    }

    #[test]
    fn the_user_index_key_is_realm_then_user_key() {
        for identity in [
            qps("ACME", "JDoe"),
            qps("", ""),
            qps("Ünïcode", "ΟΔΟΣ"),
            qps("a\\b", "C"),
            Identity::QlikView {
                user_id: "ACME\\JDoe".into(),
                groups: vec![],
                groups_is_names: true,
            },
            Identity::QlikView {
                user_id: "İSTANBUL ΣΑΣ".into(),
                groups: vec![],
                groups_is_names: false,
            },
        ] {
            let (key, realm_len) = user_index_key(REALM, &identity);
            assert_eq!(&key[..realm_len], REALM);
            assert_eq!(&key[realm_len..], identity.user_key(), "{identity:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn borrowed_lookups_find_what_owned_inserts_stored() {
        let store = quiet_store();
        let s = session(
            REALM,
            "0b1c6f7e-aaaa-bbbb-cccc-1234567890ab",
            qps("ACME", "JDoe"),
        );
        store
            .insert_session(&s, LONG, limit(5, false))
            .await
            .unwrap();
        store
            .insert_ticket("QzSPXzBmJKjhucPF", &ticket(REALM, qps("ACME", "x")), LONG)
            .await
            .unwrap();
        store
            .insert_target("g-1", "http://localhost/hub/", LONG)
            .await
            .unwrap();
        // Keys rebuilt from other buffers than the ones inserted.
        let realm = format!("qps/{}", "ext");
        let id = s.id.to_uppercase().to_lowercase();
        assert_eq!(store.session(&realm, &id).await.unwrap().as_ref(), Some(&s));
        assert_eq!(
            store.touch_session(&realm, &id).await.unwrap().as_ref(),
            Some(&s)
        );
        assert_eq!(store.session("qps/", &id).await.unwrap(), None);
        assert_eq!(store.session(&realm, &id[1..]).await.unwrap(), None);
        let user_key = qps("acme", "jdoe").user_key();
        assert_eq!(
            store.user_sessions(&realm, &user_key).await.unwrap(),
            std::slice::from_ref(&s)
        );
        assert!(store
            .user_sessions("qps/", &user_key)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .take_ticket(String::from("QzSPXzBmJKjhucPF").as_str())
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            store.target(&format!("g-{}", 1)).await.unwrap().as_deref(),
            Some("http://localhost/hub/")
        );
        assert_eq!(store.remove_session(&realm, &id).await.unwrap(), Some(s));
        assert_eq!(store.len(), (0, 1, 0));
        assert_eq!(store.maps.users.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_user_index_forgets_every_ended_session() {
        let store = quiet_store();
        let users = || store.maps.users.len();
        // Ended by logout, with and without a limit.
        for (id, l) in [("a", None), ("b", limit(2, false))] {
            let s = session(REALM, id, qps("ACME", "jdoe"));
            store.insert_session(&s, LONG, l).await.unwrap();
        }
        assert_eq!(users(), 1);
        store.remove_session(REALM, "a").await.unwrap().unwrap();
        store.remove_session(REALM, "b").await.unwrap().unwrap();
        assert_eq!(users(), 0);
        // Evicted.
        for id in ["c", "d"] {
            let s = session(REALM, id, qps("ACME", "jdoe"));
            store
                .insert_session(&s, LONG, limit(1, true))
                .await
                .unwrap();
        }
        assert_eq!(users(), 1, "d");
        // Timed out and purged.
        let short = Duration::from_secs(60);
        store
            .insert_session(&session(REALM, "e", qps("ACME", "other")), short, None)
            .await
            .unwrap();
        // Timed out, and its id reused by another user before the purge came.
        store
            .insert_session(&session(REALM, "f", qps("ACME", "third")), short, None)
            .await
            .unwrap();
        tokio::time::advance(short).await;
        store
            .insert_session(&session(REALM, "f", qps("ACME", "fourth")), LONG, None)
            .await
            .unwrap();
        assert_eq!(store.purge_now().sessions, 1, "e");
        let user = |name: &str| qps("ACME", name).user_key();
        assert!(store
            .user_sessions(REALM, &user("third"))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .remove_user_sessions(REALM, &user("jdoe"))
                .await
                .unwrap()
                .len(),
            1,
            "d"
        );
        assert_eq!(
            store
                .remove_user_sessions(REALM, &user("fourth"))
                .await
                .unwrap()
                .len(),
            1,
            "f"
        );
        assert_eq!(users(), 0);
        assert!(store.is_empty());
    }

    fn ticket(realm: &str, identity: Identity) -> Ticket {
        Ticket {
            realm: realm.into(),
            identity,
            target_uri: None,
        }
    }

    /// An audit event as a test sees it: its fields, the thread it was emitted on, and how
    /// many of the store's shards were locked at that moment.
    #[derive(Debug)]
    struct Seen {
        fields: BTreeMap<String, String>,
        thread: ThreadId,
        locked_shards: usize,
    }

    /// A subscriber that records `audit` events, checking the store's locks as each one
    /// is emitted.
    struct Capture {
        maps: Arc<Maps>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl tracing::field::Visit for Fields<'_> {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().into(), format!("{value:?}"));
        }
    }

    fn locked<T>(shards: &[Mutex<T>]) -> usize {
        shards.iter().filter(|s| s.try_lock().is_err()).count()
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if event.metadata().target() != "audit" {
                return;
            }
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            let m = &self.maps;
            let locked_shards = locked(&m.tickets.shards)
                + locked(&m.targets.shards)
                + locked(&m.sessions.shards)
                + locked(&m.users.shards);
            lock(&self.seen).push(Seen {
                fields,
                thread: std::thread::current().id(),
                locked_shards,
            });
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// A global subscriber that wants no event but keeps every call site's interest at
    /// "sometimes". tracing caches per call site whether anyone listens; a call site first
    /// reached on a thread of another test, with no subscriber of its own, would otherwise
    /// be cached as "never" and hide its events from the scoped subscribers of these tests.
    struct Undecided;

    impl tracing::Subscriber for Undecided {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::TRACE)
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Makes events reach the scoped subscribers of these tests, whatever the other tests
    /// of this binary do; see [`Undecided`].
    fn capture_reliably() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = tracing::subscriber::set_global_default(Undecided);
            tracing::callsite::rebuild_interest_cache();
        });
    }

    /// A metrics recorder that keeps counter totals by name and labels.
    #[derive(Default)]
    struct Counters(Mutex<Vec<(String, Arc<AtomicU64>)>>);

    impl Counters {
        fn get(&self, key: &str) -> u64 {
            lock(&self.0)
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, n)| n.load(Ordering::Relaxed))
                .sum()
        }
    }

    struct Total(Arc<AtomicU64>);

    impl metrics::CounterFn for Total {
        fn increment(&self, value: u64) {
            self.0.fetch_add(value, Ordering::Relaxed);
        }
        fn absolute(&self, value: u64) {
            self.0.fetch_max(value, Ordering::Relaxed);
        }
    }

    impl metrics::Recorder for Counters {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={:?}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let total = Arc::new(AtomicU64::new(0));
            lock(&self.0).push((name, total.clone()));
            metrics::Counter::from_arc(Arc::new(Total(total)))
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_purge_reports_expiry_with_every_lock_released() {
        let store = quiet_store();
        let ttl = Duration::from_secs(60);
        let web = "9F0C1A77D2B44E8E9A61C0F3B7D25E4A1C9B0E6F";
        let long = "a-rather-long-caller-chosen-ticket-id";
        store
            .insert_ticket("QzSPXzBmJKjhucPF", &ticket(REALM, qps("ACME", "jdoe")), ttl)
            .await
            .unwrap();
        store
            .insert_ticket(long, &ticket(REALM, qps("ACME", "mdoe")), ttl)
            .await
            .unwrap();
        let qv = Identity::QlikView {
            user_id: "ACME\\qv".into(),
            groups: vec!["Sales".into()],
            groups_is_names: true,
        };
        store
            .insert_ticket(web, &ticket("qlikview", qv), ttl)
            .await
            .unwrap();
        store
            .insert_ticket("StillLiveTicketX", &ticket(REALM, qps("ACME", "x")), LONG)
            .await
            .unwrap();
        let s = session(REALM, "s1", qps("ACME", "jdoe"));
        store
            .insert_session(&s, ttl, limit(5, false))
            .await
            .unwrap();
        store
            .insert_target("g1", "http://localhost/", ttl)
            .await
            .unwrap();
        tokio::time::advance(ttl).await;

        capture_reliably();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let capture = Capture {
            maps: store.maps.clone(),
            seen: seen.clone(),
        };
        let counters = Counters::default();
        let purged = metrics::with_local_recorder(&counters, || {
            tracing::subscriber::with_default(capture, || store.purge_now())
        });
        assert_eq!(
            purged,
            Purged {
                tickets: 3,
                targets: 1,
                sessions: 1
            }
        );
        let seen = std::mem::take(&mut *lock(&seen));
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.iter().all(|e| e.locked_shards == 0), "{seen:?}");
        let field = |e: &Seen, f: &str| e.fields.get(f).cloned().unwrap_or_default();
        let expired = |user: &str| {
            seen.iter()
                .find(|e| field(e, "event") == "ticket_expired" && field(e, "user_id") == user)
                .unwrap_or_else(|| panic!("no ticket_expired for {user}: {seen:?}"))
        };
        let jdoe = expired("jdoe");
        assert_eq!(field(jdoe, "vp"), "ext");
        assert_eq!(field(jdoe, "dialect"), "qps");
        assert_eq!(field(jdoe, "user_directory"), "ACME");
        assert_eq!(
            field(jdoe, "ticket"),
            fingerprint("QzSPXzBmJKjhucPF").as_str()
        );
        assert_eq!(
            field(expired("mdoe"), "ticket"),
            fingerprint("(long id)").as_str()
        );
        let web_event = expired("ACME\\qv");
        assert_eq!(field(web_event, "vp"), "");
        assert_eq!(field(web_event, "dialect"), "qlikview");
        assert_eq!(field(web_event, "ticket"), fingerprint(web).as_str());
        let ended = seen
            .iter()
            .find(|e| field(e, "event") == "session_ended")
            .expect("session_ended");
        assert_eq!(field(ended, "reason"), "inactivity timeout");
        assert_eq!(field(ended, "vp"), "ext");
        assert_eq!(field(ended, "session"), fingerprint("s1").as_str());

        let metric = "ticket_gateway_tickets_expired_total";
        assert_eq!(
            counters.get(&format!(r#"{metric}{{dialect="qps",vp="ext"}}"#)),
            2
        );
        assert_eq!(
            counters.get(&format!(r#"{metric}{{dialect="qlikview",vp=""}}"#)),
            1
        );

        assert_eq!(store.len(), (1, 0, 0));
        assert_eq!(store.maps.users.len(), 0);
        assert!(store
            .take_ticket("StillLiveTicketX")
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.purge_now(), Purged::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_takes_large_shards_in_many_short_holds() {
        let store = quiet_store();
        // Enough that every shard has several times SWEEP_SLOTS slots.
        let n = SHARDS * SWEEP_SLOTS * 2;
        let t = ticket(REALM, qps("ACME", "jdoe"));
        let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let ttl = if i % 2 == 0 {
                Duration::from_secs(10)
            } else {
                LONG
            };
            store.insert_ticket(id, &t, ttl).await.unwrap();
        }
        assert!(lock(&store.maps.tickets.shards[0]).num_buckets() > 2 * SWEEP_SLOTS);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.purge_now().tickets, n / 2);
        assert_eq!(store.len().0, n / 2);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                store.take_ticket(id).await.unwrap().is_some(),
                i % 2 == 1,
                "{id}"
            );
        }
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_sweep_runs_off_the_runtime_thread_and_reports_to_its_subscriber() {
        capture_reliably();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let store = MemoryStore::with_purge_interval(Duration::from_secs(5));
        let capture = Capture {
            maps: store.maps.clone(),
            seen: seen.clone(),
        };
        let _scoped = tracing::subscriber::set_default(capture);
        store
            .insert_ticket(
                "QzSPXzBmJKjhucPF",
                &ticket(REALM, qps("ACME", "jdoe")),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        // Paused time stands still while a blocking task runs, so each sleep ends only
        // after any sweep in flight has finished.
        for _ in 0..100 {
            if store.len().0 == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(store.len().0, 0, "the purge task never swept");
        // Once the ticket is gone, its report may still be in flight: purge_now waits for it.
        assert_eq!(store.purge_now(), Purged::default());
        let seen = std::mem::take(&mut *lock(&seen));
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].fields.get("event").map(String::as_str),
            Some("ticket_expired")
        );
        assert_ne!(seen[0].thread, std::thread::current().id());
        assert_eq!(seen[0].locked_shards, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_store_ends_its_purge_task() {
        let store = MemoryStore::with_purge_interval(Duration::from_secs(5));
        let maps = Arc::downgrade(&store.maps);
        tokio::task::yield_now().await;
        drop(store);
        // The task holds the maps only while a sweep runs, and none was due.
        assert_eq!(maps.strong_count(), 0);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(maps.strong_count(), 0);
    }
}
