//! Sessions: kept in their compact form, found by `(realm, id)` without decoding, their
//! inactivity timeout restarted on every touch.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hashbrown::hash_table::Entry;
use smallvec::SmallVec;
use tokio::time::Instant;

use super::compact::{decode_session, encode_session, session_in, session_is};
use super::sharded::lock;
use super::users::{user_index_key, UserEntry};
use super::{deadline, Maps};
use crate::model::Session;
use crate::store::{SessionLimit, StoreError};

#[derive(Debug)]
pub(super) struct SessionEntry {
    /// The session in its compact form ([`encode_session`]): one allocation, where the
    /// session itself holds six.
    blob: Box<[u8]>,
    idle: Duration,
    pub(super) expires: Instant,
    pub(super) seq: u64,
    /// The hash its user's entry in `users` is stored under.
    pub(super) user: u64,
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
    pub(super) fn session(&self) -> Option<Session> {
        decode_session(&self.blob)
    }
}

/// A slot of the sessions table: the entry and its hash, kept so that growing the table
/// rehashes nothing. A login storm grows this table by doubling; with the session inline
/// (some 180 bytes of strings and vectors) each doubling moved every session, rehashing it
/// from its heap strings.
#[derive(Debug)]
pub(super) struct SessionSlot {
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

impl Maps {
    fn session_hash(&self, realm: &str, id: &str) -> u64 {
        self.sessions.hash_pair(realm, id)
    }

    /// Starts `session` for the user whose index is `entry`, within `limit`; see
    /// [`Store::insert_session`](crate::store::Store::insert_session). Called with the
    /// user's `users` shard held; `user` is the hash that entry is (or will be) stored
    /// under. It never replaces a live session (that is a `Conflict`); an expired one not
    /// yet purged it does replace, and hands it back in `replaced`, for the caller to
    /// unindex and audit once it has released the `users` shard.
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

    /// See [`Store::insert_session`](crate::store::Store::insert_session).
    pub(super) fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let realm = session.realm.as_str();
        let (key, realm_len) = user_index_key(realm, &session.identity);
        let user_key = key.get(realm_len..).unwrap_or_default();
        let user = self.users.hash_pair(realm, user_key);
        let mut evicted = Vec::new();
        let mut replaced = None;
        let mut users = self.users.shard(user);
        let rehash = |u: &UserEntry| u.hash;
        let result = match users.entry(user, |u| u.is(realm, user_key), rehash) {
            Entry::Occupied(mut entry) => {
                let r = self.admit(
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
                let r = self.admit(
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
            self.unindex(old.user, old.seq);
            if let Some(session) = old.session() {
                crate::audit::session_timed_out(&session);
            }
        }
        result.map(|()| evicted)
    }

    /// See [`Store::touch_session`](crate::store::Store::touch_session).
    pub(super) fn touch_session(&self, realm: &str, id: &str) -> Option<Session> {
        let now = Instant::now();
        let hash = self.session_hash(realm, id);
        let mut shard = self.sessions.shard(hash);
        match shard.find_mut(hash, |e| e.is(realm, id)) {
            Some(e) if e.expires > now => {
                e.expires = deadline(now, e.idle);
                e.session()
            }
            // An expired one is left to the purge, which reports it.
            _ => None,
        }
    }

    /// See [`Store::session`](crate::store::Store::session).
    pub(super) fn session(&self, realm: &str, id: &str) -> Option<Session> {
        let now = Instant::now();
        let hash = self.session_hash(realm, id);
        let shard = self.sessions.shard(hash);
        shard
            .find(hash, |e| e.is(realm, id))
            .filter(|e| e.expires > now)
            .and_then(|e| e.session())
    }

    /// See [`Store::remove_session`](crate::store::Store::remove_session).
    pub(super) fn remove_session(&self, realm: &str, id: &str) -> Option<Session> {
        let now = Instant::now();
        let hash = self.session_hash(realm, id);
        let removed = match self
            .sessions
            .shard(hash)
            .find_entry(hash, |e| e.is(realm, id))
        {
            Ok(entry) => entry.remove().0,
            Err(_) => return None,
        };
        self.unindex(removed.user, removed.seq);
        if removed.expires > now {
            removed.session()
        } else {
            if let Some(session) = removed.session() {
                crate::audit::session_timed_out(&session);
            }
            None
        }
    }

    /// See [`Store::sessions`](crate::store::Store::sessions).
    pub(super) fn sessions(&self, realm: &str) -> Vec<Session> {
        let now = Instant::now();
        let mut out = Vec::new();
        for shard in self.sessions.shards.iter() {
            let map = lock(shard);
            out.extend(
                map.iter()
                    .filter(|e| e.expires > now && e.in_realm(realm))
                    .filter_map(|e| Some((e.seq, e.session()?))),
            );
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// See [`Store::count_sessions`](crate::store::Store::count_sessions): the live
    /// entries of the realm, compared in their compact form, none decoded.
    pub(super) fn count_sessions(&self, realm: &str) -> usize {
        let now = Instant::now();
        self.sessions
            .shards
            .iter()
            .map(|shard| {
                lock(shard)
                    .iter()
                    .filter(|e| e.expires > now && e.in_realm(realm))
                    .count()
            })
            .sum()
    }
}
