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
pub fn fingerprint(secret: &str) -> String {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let h = KEY.get_or_init(RandomState::new).hash_one(secret);
    format!("{:08x}", h >> 32)
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

/// A ticket expired unredeemed.
pub fn ticket_expired(id: &str, ticket: &Ticket) {
    let (dialect, dir, user) = user_of(&ticket.identity);
    metrics::counter!("ticket_gateway_tickets_expired_total", "dialect" => dialect).increment(1);
    tracing::info!(target: "audit", event = "ticket_expired", dialect, realm = %ticket.realm,
        user_directory = dir, user_id = user, ticket = %fingerprint(id), outcome = "expired");
}

/// A session ended after its inactivity timeout.
pub fn session_timed_out(session: &Session) {
    let (dialect, dir, user) = user_of(&session.identity);
    tracing::info!(target: "audit", event = "session_ended", dialect, realm = %session.realm,
        user_directory = dir, user_id = user, session = %fingerprint(&session.id),
        outcome = "ok", reason = "inactivity timeout");
}
