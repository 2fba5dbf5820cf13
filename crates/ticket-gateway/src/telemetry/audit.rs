//! The audit trail: one structured event per ticket issued, redeemed or refused and per
//! session started, under the tracing target `audit` so it can be routed on its own.
//!
//! Ticket and session ids are secrets while they live; events carry a short keyed hash
//! instead, enough to follow one ticket from issue to redemption in the logs and useless
//! for presenting it.

use ticket_core::Identity;

use crate::conn::Conn;

pub use ticket_core::audit::fingerprint;

/// A ticket was issued.
pub fn ticket_issued(
    dialect: &'static str,
    vp: &str,
    identity: &Identity,
    ticket: &str,
    conn: &Conn,
) {
    super::metrics::ticket_issued(dialect, vp);
    let (dir, id) = identity.user();
    let ticket = fingerprint(ticket);
    tracing::info!(target: "audit", event = "ticket_issued", dialect, vp, user_directory = dir,
        user_id = id, ticket = ticket.as_str(), peer = conn.peer_text(), outcome = "ok");
}

/// A ticket request was refused; `reason` is a short label, also used as the metric's.
pub fn ticket_refused(dialect: &'static str, vp: &str, conn: &Conn, reason: &'static str) {
    super::metrics::ticket_refused(dialect, vp, reason);
    tracing::info!(target: "audit", event = "ticket_refused", dialect, vp, peer = conn.peer_text(),
        outcome = "refused", reason);
}

/// A ticket was presented: redeemed, or not (unknown, used, expired or another realm's).
pub fn ticket_redeemed(
    dialect: &'static str,
    vp: &str,
    identity: Option<&Identity>,
    ticket: &str,
    conn: &Conn,
) {
    match identity {
        Some(_) => super::metrics::ticket_redeemed(dialect, vp),
        None => super::metrics::ticket_refused(dialect, vp, "unknown_used_or_expired"),
    }
    let (dir, id) = identity.map(Identity::user).unwrap_or(("", ""));
    let outcome = if identity.is_some() { "ok" } else { "refused" };
    let ticket = fingerprint(ticket);
    tracing::info!(target: "audit", event = "ticket_redeemed", dialect, vp, user_directory = dir,
        user_id = id, ticket = ticket.as_str(), peer = conn.peer_text(), outcome,
        reason = if identity.is_some() { "" } else { "unknown, used or expired" });
}

/// A session started.
pub fn session_started(dialect: &str, vp: &str, identity: &Identity, session: &str, conn: &Conn) {
    let (dir, id) = identity.user();
    let session = fingerprint(session);
    tracing::info!(target: "audit", event = "session_started", dialect, vp, user_directory = dir,
        user_id = id, session = session.as_str(), peer = conn.peer_text(), outcome = "ok");
}

/// A session ended: logout, timeout, eviction.
pub fn session_ended(
    dialect: &str,
    vp: &str,
    identity: &Identity,
    session: &str,
    conn: &Conn,
    reason: &str,
) {
    let (dir, id) = identity.user();
    let session = fingerprint(session);
    tracing::info!(target: "audit", event = "session_ended", dialect, vp, user_directory = dir,
        user_id = id, session = session.as_str(), peer = conn.peer_text(), outcome = "ok", reason);
}
