//! Tickets: inserted once, taken once, in their compact form.

use std::time::Duration;

use hashbrown::hash_table::Entry;
use tokio::time::Instant;

use super::compact::{decode, encode_after, peek, TicketKey};
use super::Maps;
use crate::audit::{fingerprint, ExpiredTickets};
use crate::model::Ticket;
use crate::store::StoreError;

/// A stored ticket: its expiry (milliseconds after [`Maps::epoch`], little-endian)
/// followed by its [`encode_after`]d form, all in one allocation, so a map slot is a key and
/// one pointer.
#[derive(Debug)]
pub(super) struct TicketBlob(Box<[u8]>);

impl TicketBlob {
    fn new(ticket: &Ticket, expires_ms: u64) -> TicketBlob {
        TicketBlob(encode_after(&expires_ms.to_le_bytes(), ticket))
    }

    pub(super) fn expires_ms(&self) -> u64 {
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

/// The audit event and count for an expired ticket; called with no lock held.
pub(super) fn report_expired(expired: &mut ExpiredTickets, key: &TicketKey, blob: &TicketBlob) {
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

impl Maps {
    /// `t` in whole milliseconds after the epoch, as ticket expiries are stored.
    pub(super) fn ms(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    }

    fn ticket_hash(&self, key: &TicketKey) -> u64 {
        self.tickets.hash(key)
    }

    /// See [`Store::insert_ticket`](crate::store::Store::insert_ticket).
    pub(super) fn insert_ticket(
        &self,
        id: &str,
        ticket: &Ticket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now_ms = self.ms(Instant::now());
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let blob = TicketBlob::new(ticket, now_ms.saturating_add(ttl_ms));
        let key = TicketKey::new(id);
        let hash = self.ticket_hash(&key);
        let replaced = {
            let mut shard = self.tickets.shard(hash);
            let rehash = |(k, _): &(TicketKey, TicketBlob)| self.ticket_hash(k);
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

    /// See [`Store::take_ticket`](crate::store::Store::take_ticket).
    pub(super) fn take_ticket(&self, id: &str) -> Option<Ticket> {
        let key = TicketKey::new(id);
        let hash = self.ticket_hash(&key);
        let removed = match self
            .tickets
            .shard(hash)
            .find_entry(hash, |(k, _)| *k == key)
        {
            Ok(entry) => entry.remove().0 .1,
            Err(_) => return None,
        };
        if removed.expires_ms() > self.ms(Instant::now()) {
            return removed.ticket();
        }
        // Presented after its lifetime and before the purge got to it: it expired.
        let mut expired = ExpiredTickets::default();
        report_expired(&mut expired, &key, &removed);
        expired.flush();
        None
    }
}
