//! Compact forms for the in-memory ticket map, where a million live tickets must cost
//! little more than their user data.
//!
//! - [`TicketKey`]: a ticket id in 24 bytes inline, no allocation. Ids up to 22 bytes are
//!   stored as they are; a 40-digit uppercase hex web ticket is packed into 20 bytes;
//!   anything else (never issued by the gateway, only presented) is reduced to a keyed
//!   128-bit hash, which an attacker cannot steer into a collision.
//! - [`encode`]/[`decode`]: a [`Ticket`] as one length-prefixed byte string, one allocation
//!   instead of one per field.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use crate::model::{Identity, Ticket};

const PACKED_HEX: u8 = 0xFE;
const HASHED: u8 = 0xFF;
const INLINE_MAX: usize = 22;

/// A ticket id as a fixed-size map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TicketKey([u8; 24]);

impl TicketKey {
    pub(crate) fn new(id: &str) -> TicketKey {
        let bytes = id.as_bytes();
        let mut key = [0u8; 24];
        if bytes.len() <= INLINE_MAX {
            key[0] = bytes.len() as u8;
            key[1..1 + bytes.len()].copy_from_slice(bytes);
        } else if bytes.len() == 40
            && bytes
                .iter()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
        {
            key[0] = PACKED_HEX;
            for (i, pair) in bytes.chunks_exact(2).enumerate() {
                key[1 + i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
            }
        } else {
            static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
            let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
            key[0] = HASHED;
            key[1..9].copy_from_slice(&a.hash_one(id).to_le_bytes());
            key[9..17].copy_from_slice(&b.hash_one(id).to_le_bytes());
        }
        TicketKey(key)
    }

    /// The id back, where the key holds it whole (for audit fingerprints).
    pub(crate) fn id(&self) -> Option<String> {
        match self.0[0] {
            PACKED_HEX => Some(self.0[1..21].iter().map(|b| format!("{b:02X}")).collect()),
            HASHED => None,
            len => String::from_utf8(self.0[1..1 + usize::from(len)].to_vec()).ok(),
        }
    }
}

fn nibble(hex: u8) -> u8 {
    match hex {
        b'0'..=b'9' => hex - b'0',
        _ => hex - b'A' + 10,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A ticket as one byte string.
#[cfg(test)]
pub(crate) fn encode(t: &Ticket) -> Box<[u8]> {
    let mut out = Vec::with_capacity(encoded_len(t));
    encode_into(&mut out, t);
    out.into_boxed_slice()
}

/// The exact length [`encode_into`] appends, so the caller allocates once.
pub(crate) fn encoded_len(t: &Ticket) -> usize {
    let s = |s: &str| 4 + s.len();
    let identity = match &t.identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => {
            1 + s(user_directory)
                + s(user_id)
                + 4
                + attributes.iter().map(|(k, v)| s(k) + s(v)).sum::<usize>()
        }
        Identity::QlikView {
            user_id, groups, ..
        } => 1 + s(user_id) + 1 + 4 + groups.iter().map(|g| s(g)).sum::<usize>(),
    };
    s(&t.realm) + identity + 1 + t.target_uri.as_deref().map_or(0, s)
}

/// Appends a ticket as one byte string.
pub(crate) fn encode_into(out: &mut Vec<u8>, t: &Ticket) {
    put_str(out, &t.realm);
    match &t.identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => {
            out.push(0);
            put_str(out, user_directory);
            put_str(out, user_id);
            out.extend_from_slice(&(attributes.len() as u32).to_le_bytes());
            for (k, v) in attributes {
                put_str(out, k);
                put_str(out, v);
            }
        }
        Identity::QlikView {
            user_id,
            groups,
            groups_is_names,
        } => {
            out.push(1);
            put_str(out, user_id);
            out.push(u8::from(*groups_is_names));
            out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
            for g in groups {
                put_str(out, g);
            }
        }
    }
    match &t.target_uri {
        Some(u) => {
            out.push(1);
            put_str(out, u);
        }
        None => out.push(0),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn u32(&mut self) -> Option<usize> {
        let (n, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        usize::try_from(u32::from_le_bytes(*n)).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()?;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

/// The ticket [`encode`] wrote; `None` for bytes it did not write.
pub(crate) fn decode(bytes: &[u8]) -> Option<Ticket> {
    let mut r = Reader(bytes);
    let realm = r.string()?;
    let identity = match r.byte()? {
        0 => {
            let user_directory = r.string()?;
            let user_id = r.string()?;
            let n = r.u32()?;
            let mut attributes = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                attributes.push((r.string()?, r.string()?));
            }
            Identity::Qps {
                user_directory,
                user_id,
                attributes,
            }
        }
        1 => {
            let user_id = r.string()?;
            let groups_is_names = r.byte()? != 0;
            let n = r.u32()?;
            let mut groups = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                groups.push(r.string()?);
            }
            Identity::QlikView {
                user_id,
                groups,
                groups_is_names,
            }
        }
        _ => return None,
    };
    let target_uri = match r.byte()? {
        0 => None,
        _ => Some(r.string()?),
    };
    Some(Ticket {
        realm,
        identity,
        target_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_ids_apart_and_give_them_back() {
        let ids = [
            "QzSPXzBmJKjhucPF",
            "9F0C1A77D2B44E8E9A61C0F3B7D25E4A1C9B0E6F",
            "9f0c1a77d2b44e8e9a61c0f3b7d25e4a1c9b0e6f",
            "a-rather-long-caller-chosen-ticket-id",
            "",
            "t1",
        ];
        let keys: Vec<TicketKey> = ids.iter().map(|i| TicketKey::new(i)).collect();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(i == j, a == b, "{} vs {}", ids[i], ids[j]);
            }
        }
        assert_eq!(keys[0].id().as_deref(), Some(ids[0]));
        assert_eq!(keys[1].id().as_deref(), Some(ids[1]));
        assert_eq!(keys[3].id(), None);
        assert_eq!(TicketKey::new(ids[3]), TicketKey::new(ids[3]));
    }

    #[test]
    fn tickets_round_trip() {
        for t in [
            Ticket {
                realm: "qps/ext".into(),
                identity: Identity::Qps {
                    user_directory: "ACME".into(),
                    user_id: "jdoe ä".into(),
                    attributes: vec![
                        ("Group".into(), "Sales".into()),
                        ("email".into(), String::new()),
                    ],
                },
                target_uri: Some("http://localhost:8080/ext/hub/".into()),
            },
            Ticket {
                realm: "qlikview".into(),
                identity: Identity::QlikView {
                    user_id: "ACME\\jdoe".into(),
                    groups: vec!["Sales".into()],
                    groups_is_names: false,
                },
                target_uri: None,
            },
        ] {
            assert_eq!(encode(&t).len(), encoded_len(&t));
            assert_eq!(decode(&encode(&t)), Some(t));
        }
        assert_eq!(decode(b"\xff\xff"), None);
    }
}
