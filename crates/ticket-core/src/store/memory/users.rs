//! The user index: every user's live sessions in a realm, oldest first, for session limits
//! and for listing or ending one user's sessions.

use smallvec::SmallVec;
use tokio::time::Instant;

use super::Maps;
use crate::model::{Identity, Session};

#[derive(Debug)]
pub(super) struct UserEntry {
    /// The hash it is stored under, kept so that growing the table never reads the key.
    pub(super) hash: u64,
    /// The realm followed by the user key, in one allocation.
    pub(super) key: Box<str>,
    pub(super) realm_len: usize,
    /// `(sequence, hash in sessions)`, oldest first. Inline while there is one: a user's
    /// first login allocates nothing for it.
    pub(super) sessions: SmallVec<[(u64, u64); 1]>,
}

impl UserEntry {
    fn realm(&self) -> &str {
        self.key.get(..self.realm_len).unwrap_or_default()
    }

    fn user_key(&self) -> &str {
        self.key.get(self.realm_len..).unwrap_or_default()
    }

    pub(super) fn is(&self, realm: &str, user_key: &str) -> bool {
        self.key.len() == realm.len() + user_key.len()
            && self.user_key() == user_key
            && self.realm() == realm
    }
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
pub(super) fn user_index_key(realm: &str, identity: &Identity) -> (Box<str>, usize) {
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

impl Maps {
    /// Drops session `seq` from the index of the user stored under `user`. Takes a `users`
    /// shard: never call it with a `sessions` shard held.
    pub(super) fn unindex(&self, user: u64, seq: u64) {
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
    pub(super) fn is_live_seq(&self, seq: u64, hash: u64, now: Instant) -> bool {
        self.sessions
            .shard(hash)
            .find(hash, |e| e.seq == seq)
            .is_some_and(|e| e.expires > now)
    }

    /// See [`Store::user_sessions`](crate::store::Store::user_sessions).
    pub(super) fn user_sessions(&self, realm: &str, user_key: &str) -> Vec<Session> {
        let now = Instant::now();
        let user = self.users.hash_pair(realm, user_key);
        let mut users = self.users.shard(user);
        let Ok(mut entry) = users.find_entry(user, |u| u.is(realm, user_key)) else {
            return Vec::new();
        };
        let mut live = Vec::new();
        entry.get_mut().sessions.retain(|&mut (seq, hash)| {
            let shard = self.sessions.shard(hash);
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
        live
    }

    /// See [`Store::remove_user_sessions`](crate::store::Store::remove_user_sessions).
    pub(super) fn remove_user_sessions(&self, realm: &str, user_key: &str) -> Vec<Session> {
        let now = Instant::now();
        let user = self.users.hash_pair(realm, user_key);
        let mut removed = Vec::new();
        let mut timed_out = Vec::new();
        {
            let mut users = self.users.shard(user);
            let Ok(entry) = users.find_entry(user, |u| u.is(realm, user_key)) else {
                return Vec::new();
            };
            // The user's shard stays held while their sessions go, so no login of theirs
            // slips in between.
            for (seq, hash) in entry.remove().0.sessions {
                // By sequence: an id another user's session has reused since is not theirs.
                let gone = self
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
        removed
    }
}
