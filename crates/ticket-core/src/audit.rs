//! Audit events the core itself observes (expiry), and the fingerprint every audit event
//! uses in place of a ticket or session id.
//!
//! Events go to the tracing target `audit`, like the gateway's own, so one filter routes
//! the whole trail.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use crate::model::{Identity, Session, Ticket};

/// A short, per-process keyed hash of a secret: enough to follow one ticket or session
/// through the logs, useless for presenting it.
///
/// Eight lowercase hex digits on the stack: written into every audit line, so it must not
/// cost an allocation or a trip through the formatter.
pub fn fingerprint(secret: &str) -> Fingerprint {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let h = (KEY.get_or_init(RandomState::new).hash_one(secret) >> 32) as u32;
    let mut digits = [0u8; 8];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(h >> (28 - 4 * i)) as usize & 0xf];
    }
    Fingerprint(digits)
}

/// What [`fingerprint`] returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    /// The eight hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or("????????")
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(dialect, user directory, user id)` of an identity, for events.
pub fn user_of(identity: &Identity) -> (&'static str, &str, &str) {
    match identity {
        Identity::Qps {
            user_directory,
            user_id,
            ..
        } => ("qps", user_directory, user_id),
        Identity::QlikView { user_id, .. } => ("qlikview", "", user_id),
    }
}

/// The virtual proxy a realm belongs to, as the gateway's events and metrics label it:
/// `qps/<prefix>` → `<prefix>`; the QlikView realm (and anything else) → `""`.
pub fn vp_of(realm: &str) -> &str {
    realm.strip_prefix("qps/").unwrap_or("")
}

/// A ticket expired unredeemed: the audit event, and one on
/// `ticket_gateway_tickets_expired_total{dialect, vp}`.
pub fn ticket_expired(id: &str, ticket: &Ticket) {
    let (dialect, dir, user) = user_of(&ticket.identity);
    let mut tally = ExpiredTickets::default();
    tally.record(fingerprint(id), dialect, &ticket.realm, dir, user);
    tally.flush();
}

/// Expiry events for many tickets, with the counter bumped once per `(dialect, vp)` in
/// [`flush`](ExpiredTickets::flush) rather than once per ticket (a counter with labels is
/// a registry lookup). The purge records a whole sweep, then flushes.
#[derive(Debug, Default)]
pub(crate) struct ExpiredTickets {
    counts: Vec<(&'static str, String, u64)>,
}

impl ExpiredTickets {
    /// Emits the `ticket_expired` event and counts it.
    pub(crate) fn record(
        &mut self,
        ticket: Fingerprint,
        dialect: &'static str,
        realm: &str,
        user_directory: &str,
        user_id: &str,
    ) {
        let vp = vp_of(realm);
        tracing::info!(target: "audit", event = "ticket_expired", dialect, vp, realm,
            user_directory, user_id, ticket = ticket.as_str(), outcome = "expired");
        match self
            .counts
            .iter_mut()
            .find(|(d, v, _)| *d == dialect && v == vp)
        {
            Some((_, _, n)) => *n += 1,
            // Realms are few (one per virtual proxy), so the list stays short.
            None => self.counts.push((dialect, vp.to_owned(), 1)),
        }
    }

    /// Adds the counts to the metric and starts again from zero.
    pub(crate) fn flush(&mut self) {
        for (dialect, vp, n) in self.counts.drain(..) {
            metrics::counter!("ticket_gateway_tickets_expired_total", "dialect" => dialect, "vp" => vp)
                .increment(n);
        }
    }
}

/// A session ended after its inactivity timeout.
pub fn session_timed_out(session: &Session) {
    let (dialect, dir, user) = user_of(&session.identity);
    tracing::info!(target: "audit", event = "session_ended", dialect, vp = vp_of(&session.realm),
        realm = %session.realm, user_directory = dir, user_id = user,
        session = %fingerprint(&session.id), outcome = "ok", reason = "inactivity timeout");
}

#[cfg(test)]
mod tests {
    use super::{fingerprint, vp_of};

    #[test]
    fn realms_name_their_virtual_proxy() {
        assert_eq!(vp_of("qps/ext"), "ext");
        assert_eq!(vp_of("qps/"), "");
        assert_eq!(vp_of("qlikview"), "");
    }

    #[test]
    fn fingerprints_are_eight_hex_digits_stable_within_a_process() {
        let a = fingerprint("ABCDEFGHIJKLMNOP");
        assert_eq!(a.as_str().len(), 8);
        assert!(a
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(a, fingerprint("ABCDEFGHIJKLMNOP"));
        assert_eq!(a.to_string(), a.as_str());
        assert_ne!(a, fingerprint("ABCDEFGHIJKLMNOQ"));
    }
}
