//! Target ids: a URL under a GUID, read any number of times until it expires.

use std::time::Duration;

use hashbrown::hash_table::Entry;
use tokio::time::Instant;

use super::{deadline, Maps};
use crate::store::StoreError;

#[derive(Debug)]
pub(super) struct TargetEntry {
    id: Box<str>,
    uri: String,
    pub(super) expires: Instant,
}

impl Maps {
    /// See [`Store::insert_target`](crate::store::Store::insert_target).
    pub(super) fn insert_target(
        &self,
        id: &str,
        uri: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let entry = TargetEntry {
            id: id.into(),
            uri: uri.to_owned(),
            expires: deadline(now, ttl),
        };
        let hash = self.targets.hash(id);
        let mut shard = self.targets.shard(hash);
        let rehash = |t: &TargetEntry| self.targets.hash(&*t.id);
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

    /// See [`Store::target`](crate::store::Store::target).
    pub(super) fn target(&self, id: &str) -> Option<String> {
        let now = Instant::now();
        let hash = self.targets.hash(id);
        let shard = self.targets.shard(hash);
        shard
            .find(hash, |t| *t.id == *id)
            .filter(|t| t.expires > now)
            .map(|t| t.uri.clone())
    }
}
