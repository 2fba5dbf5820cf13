//! The purge: a background sweep that reclaims expired entries and reports them.
//!
//! Readers check expiry themselves, so correctness never depends on the purge; it only
//! frees memory and emits the audit events and counters for what expired unused.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::sharded::{lock, SHARDS};
use super::tickets::report_expired;
use super::{Maps, MemoryStore};
use crate::audit::ExpiredTickets;
use crate::store::OwnedTask;

/// How often the purge task sweeps expired entries by default.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// What one purge sweep removed, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Tickets that expired unredeemed.
    pub tickets: usize,
    /// Target ids that expired.
    pub targets: usize,
    /// Sessions that timed out.
    pub sessions: usize,
    /// Single-use values that expired unused.
    pub values: usize,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.tickets += other.tickets;
        self.targets += other.targets;
        self.sessions += other.sessions;
        self.values += other.values;
    }
}

impl MemoryStore {
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
    /// - Under a shard's lock it only removes what expired,
    ///   [`SWEEP_SLOTS`](super::sharded::SWEEP_SLOTS) slots per hold of the lock: a request
    ///   waits at most for that, whatever the shard's size. Decoding a ticket's user, the
    ///   audit event, dropping a session from its user's index and freeing the memory all
    ///   happen after the lock is released; the expiry counter is bumped once per
    ///   `(dialect, vp)` at the end of the sweep.
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
                            values = purged.values,
                            "purged expired entries"
                        );
                    }
                    Ok(_) => {}
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => tracing::error!(error = %e, "a purge sweep panicked"),
                }
            }
        });
        MemoryStore::with_maps(maps, OwnedTask::new(task))
    }

    /// Sweeps expired entries now rather than at the next tick, on the calling thread, and
    /// returns what it removed. It first waits for a background sweep in flight to finish,
    /// so when it returns, whatever that sweep took has been audited too; and, unless
    /// inserts grew a shard while it swept (see
    /// [`SWEEP_SLOTS`](super::sharded::SWEEP_SLOTS)), every entry that had expired when it
    /// was called is gone and audited.
    pub fn purge_now(&self) -> Purged {
        self.maps.purge(Instant::now(), || false)
    }
}

impl Maps {
    /// One pass over every map, shard by shard, until `stop` says so; see
    /// [`MemoryStore::with_purge_interval`].
    pub(super) fn purge(&self, now: Instant, stop: impl Fn() -> bool) -> Purged {
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
                values: self.values.sweep_shard(index, |v| v.expires <= now, |_| {}),
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
}
