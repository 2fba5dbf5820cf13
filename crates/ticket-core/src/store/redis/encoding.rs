//! What the keys hold: sessions and tickets as the scripts read and splice them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Session, Ticket};
use crate::store::{SessionLimit, StoreError};

/// A value under one of our keys that does not decode: written by something else, or by
/// an incompatible version.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what} in redis: {source}")]
struct Corrupt {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

/// A lifetime in whole milliseconds for `PX`, which refuses zero.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What a session key holds. The idle timeout travels with the session so a touch can
/// restart the expiry without the caller knowing it; the user key lets the scripts find
/// the user's index and check that an index member still belongs to that user (a
/// caller-chosen id may be reused by someone else once the first session has ended).
#[derive(Serialize)]
struct StoredSessionRef<'a> {
    idle_ms: u64,
    user_key: &'a str,
    session: &'a Session,
}

#[derive(Deserialize)]
struct StoredSession {
    session: Session,
}

pub(super) fn encode_session(
    session: &Session,
    user_key: &str,
    idle: Duration,
) -> Result<String, StoreError> {
    serde_json::to_string(&StoredSessionRef {
        idle_ms: millis(idle),
        user_key,
        session,
    })
    .map_err(|e| StoreError::Backend(Box::new(e)))
}

pub(super) fn decode_session(raw: &str) -> Result<Session, StoreError> {
    serde_json::from_str::<StoredSession>(raw)
        .map(|s| s.session)
        .map_err(|source| {
            StoreError::Backend(Box::new(Corrupt {
                what: "session",
                source,
            }))
        })
}

pub(super) fn decode_sessions(raw: Vec<String>) -> Result<Vec<Session>, StoreError> {
    raw.iter().map(|v| decode_session(v)).collect()
}

/// The limit and eviction arguments of the session scripts. As in the memory store, a
/// limit of zero still admits one session.
pub(super) fn limit_args(limit: Option<SessionLimit>) -> (usize, bool) {
    match limit {
        Some(l) => (l.max.max(1), l.evict_oldest),
        None => (0, false),
    }
}

/// What a ticket key holds: the JSON texts of the user key, the realm, the identity and
/// the target URI, separated by tabs (which JSON text never holds raw). A redemption
/// script compares the realm's text and splices the others into the session's value
/// without decoding them (see `REDEEM_TICKET` in [`scripts`](super::scripts)).
pub(super) fn encode_ticket(ticket: &Ticket) -> Result<String, StoreError> {
    let json = |r: serde_json::Result<String>| r.map_err(|e| StoreError::Backend(Box::new(e)));
    let user_key = json(serde_json::to_string(&ticket.identity.user_key()))?;
    let realm = json(serde_json::to_string(&ticket.realm))?;
    let identity = json(serde_json::to_string(&ticket.identity))?;
    let target = json(serde_json::to_string(&ticket.target_uri))?;
    Ok([user_key, realm, identity, target].join("\t"))
}

/// A ticket as [`encode_ticket`] stores it, or as earlier versions did (the [`Ticket`] as
/// one JSON object).
pub(super) fn decode_ticket(raw: &str) -> Result<Ticket, StoreError> {
    let corrupt = |source| {
        StoreError::Backend(Box::new(Corrupt {
            what: "ticket",
            source,
        }))
    };
    let mut parts = raw.split('\t');
    let (Some(_user_key), Some(realm), Some(identity), Some(target), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return serde_json::from_str(raw).map_err(corrupt);
    };
    Ok(Ticket {
        realm: serde_json::from_str(realm).map_err(corrupt)?,
        identity: serde_json::from_str(identity).map_err(corrupt)?,
        target_uri: serde_json::from_str(target).map_err(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identity;

    #[test]
    fn lifetimes_are_whole_positive_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(60)), 60_000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_stored_session_round_trips_and_carries_what_the_scripts_read() {
        let session = Session::new(
            "qps/ext",
            "s:1",
            Identity::Qps {
                user_directory: "ACME".into(),
                user_id: "Jdoe".into(),
                attributes: vec![("Group".into(), "Ventes é".into())],
            },
        );
        let raw = encode_session(&session, &session.user_key(), Duration::from_secs(1800))
            .expect("encodes");
        let json: serde_json::Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(json["idle_ms"], 1_800_000);
        assert_eq!(json["user_key"], "acme\\jdoe");
        assert_eq!(json["session"]["csrf_token"], session.csrf_token.as_str());
        assert_eq!(decode_session(&raw).expect("decodes"), session);
        assert!(matches!(
            decode_session("not json"),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn a_session_stored_before_csrf_tokens_decodes_with_an_empty_one() {
        let raw = r#"{"idle_ms":1800000,"user_key":"acme\\jdoe","session":{"realm":"qps/ext","id":"s1","identity":{"Qps":{"user_directory":"ACME","user_id":"jdoe","attributes":[]}}}}"#;
        let session = decode_session(raw).expect("decodes");
        assert_eq!(session.id, "s1");
        assert_eq!(session.csrf_token, "");
    }
}
