//! The sharded table every map of the memory store is built on.
//!
//! Each map is split into [`SHARDS`] hash tables behind their own `std::sync::Mutex`, so
//! concurrent requests rarely contend. Entries are found by a hash the caller computes
//! from borrowed `&str`s and an equality test on the stored entry, so a lookup builds no
//! owned key. One hash per operation picks the shard (from bits the table itself does not
//! use) and the slot within it.

use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};

use hashbrown::hash_table::HashTable;

pub(super) const SHARDS: usize = 64;

/// How many slots of one shard a sweep examines per hold of its lock. Removing what expired
/// among them is all it does under the lock; a shard of a million entries is swept in many
/// short holds, not one long one.
pub(super) const SWEEP_SLOTS: usize = 1024;

/// Keys are hashed with foldhash, randomly seeded per map: several times cheaper than
/// SipHash on every insert and lookup, and still keyed, so a client cannot aim keys at one
/// bucket.
type Hasher = foldhash::fast::RandomState;

pub(super) struct Sharded<T> {
    hasher: Hasher,
    pub(super) shards: Box<[Mutex<HashTable<T>>]>,
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
    pub(super) fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hash of a two-part key. Owned and borrowed keys both hash through here, as two
    /// `&str`s, so they always agree.
    pub(super) fn hash_pair(&self, a: &str, b: &str) -> u64 {
        self.hasher.hash_one((a, b))
    }

    /// The shard a hash lives in. hashbrown takes a slot from the low bits and a tag from
    /// the top seven; the shard comes from bits 32 and up, so the keys of one shard still
    /// spread over all its slots and tags.
    pub(super) fn shard(&self, hash: u64) -> MutexGuard<'_, HashTable<T>> {
        lock(&self.shards[(hash >> 32) as usize % SHARDS])
    }

    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Removes the entries of shard `index` that `dead` picks, [`SWEEP_SLOTS`] slots per
    /// hold of the lock, and hands each batch to `report` once the lock is released.
    /// Returns how many went.
    ///
    /// Between two holds the shard may have grown and rehashed: then some entries are
    /// looked at twice and some not at all until the next sweep, which only delays
    /// reclaiming them (readers check expiry themselves).
    pub(super) fn sweep_shard(
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
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
