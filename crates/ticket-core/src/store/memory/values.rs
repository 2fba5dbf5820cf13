//! Short-lived values under a key, expiring at a fixed time: target ids (a URL, read any
//! number of times while it lives) and single-use state (read, or taken once). Expiry is
//! checked on every read; the purge reclaims what expired.

use std::time::Duration;

use hashbrown::hash_table::Entry;
use tokio::time::Instant;

use super::deadline;
use super::sharded::Sharded;
use crate::store::StoreError;

#[derive(Debug)]
pub(super) struct ValueEntry {
    key: Box<str>,
    value: String,
    pub(super) expires: Instant,
}

impl Sharded<ValueEntry> {
    /// Stores `value` under `key` until `ttl` has passed; `Conflict` if the key is live.
    /// An expired entry not yet purged is replaced.
    pub(super) fn insert_value(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let entry = ValueEntry {
            key: key.into(),
            value: value.to_owned(),
            expires: deadline(now, ttl),
        };
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        let rehash = |v: &ValueEntry| self.hash(&*v.key);
        match shard.entry(hash, |v| *v.key == *key, rehash) {
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

    /// The live value under `key`, left in place.
    pub(super) fn value(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        let hash = self.hash(key);
        let shard = self.shard(hash);
        shard
            .find(hash, |v| *v.key == *key)
            .filter(|v| v.expires > now)
            .map(|v| v.value.clone())
    }

    /// Removes the entry under `key` and returns its value if it was live. One shard
    /// operation under the lock: of racing takes, one removes the entry and the others
    /// find nothing.
    pub(super) fn take_value(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        let hash = self.hash(key);
        let removed = self
            .shard(hash)
            .find_entry(hash, |v| *v.key == *key)
            .ok()?
            .remove()
            .0;
        (removed.expires > now).then_some(removed.value)
    }
}
