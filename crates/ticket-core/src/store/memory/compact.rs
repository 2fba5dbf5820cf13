//! Compact forms for the in-memory ticket map, where a million live tickets must cost
//! little more than their user data.
//!
//! - [`TicketKey`]: a ticket id in 24 bytes inline, no allocation. Ids up to 22 bytes are
//!   stored as they are; a 40-digit uppercase hex web ticket is packed into 20 bytes;
//!   anything else (never issued by the gateway, only presented) is reduced to a keyed
//!   128-bit hash, which an attacker cannot steer into a collision.
//! - [`encode_after`]/[`decode`]: a [`Ticket`] as one byte string, one allocation instead of
//!   one per field. The layout is a header, then the text of every string field back to
//!   back:
//!
//!   ```text
//!   tag: u8            bit 0: QlikView identity; bit 1: groups_is_names; bit 2: target_uri
//!   n: varint          attribute pairs (QPS) or groups (QlikView)
//!   text: varint       the length of the text at the end
//!   len: varint, ...   the length of each string, in field order
//!   text               the strings, concatenated
//!   ```
//!
//!   Lengths are LEB128 varints, one byte each for anything under 128 bytes, so the header
//!   costs a few bytes rather than four per string; and the text is checked as UTF-8 in one
//!   pass on decode, not once per field.
//! - [`peek`]: the fields an expiry audit names, borrowed from the encoded form without
//!   decoding (allocating) the whole ticket.
//! - [`encode_session`]/[`decode_session`]: a [`Session`] the same way, its id first, its
//!   CSRF token in the place of a ticket's target URI.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::OnceLock;

use crate::model::{Identity, Session, Ticket};

const PACKED_HEX: u8 = 0xFE;
const HASHED: u8 = 0xFF;
const INLINE_MAX: usize = 22;

/// A ticket id as a fixed-size map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TicketKey([u8; 24]);

/// Three words into the hasher: cheaper than a byte slice with its length prefix, and the
/// key is fixed-size, so nothing is lost.
impl Hash for TicketKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for word in self.0.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            state.write_u64(u64::from_le_bytes(w));
        }
    }
}

impl TicketKey {
    pub(crate) fn new(id: &str) -> TicketKey {
        let bytes = id.as_bytes();
        let mut key = [0u8; 24];
        if bytes.len() <= INLINE_MAX {
            key[0] = bytes.len() as u8;
            key[1..1 + bytes.len()].copy_from_slice(bytes);
        } else if let Some(packed) = <&[u8; 40]>::try_from(bytes).ok().and_then(pack_hex) {
            key[0] = PACKED_HEX;
            key[1..21].copy_from_slice(&packed);
        } else {
            static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
            let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
            key[0] = HASHED;
            key[1..9].copy_from_slice(&a.hash_one(id).to_le_bytes());
            key[9..17].copy_from_slice(&b.hash_one(id).to_le_bytes());
        }
        TicketKey(key)
    }

    /// The id back, written into `buf`, where the key holds it whole (for audit
    /// fingerprints); no allocation.
    pub(crate) fn id<'a>(&'a self, buf: &'a mut [u8; 40]) -> Option<&'a str> {
        match self.0[0] {
            PACKED_HEX => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                for (i, b) in self.0[1..21].iter().enumerate() {
                    buf[2 * i] = HEX[usize::from(b >> 4)];
                    buf[2 * i + 1] = HEX[usize::from(b & 0x0f)];
                }
                std::str::from_utf8(&buf[..]).ok()
            }
            HASHED => None,
            len => std::str::from_utf8(self.0.get(1..1 + usize::from(len))?).ok(),
        }
    }
}

/// Forty uppercase hex digits (a web ticket) as twenty bytes; `None` if any is not one.
/// Over a fixed-size array and without an early exit, so it compiles to straight-line
/// code: every web ticket is packed twice, when issued and when redeemed.
fn pack_hex(hex: &[u8; 40]) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut bad = false;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, bad_high) = nibble(pair[0]);
        let (low, bad_low) = nibble(pair[1]);
        bad |= bad_high | bad_low;
        *byte = (high << 4) | low;
    }
    (!bad).then_some(out)
}

/// The value of an uppercase hex digit, and whether `hex` was not one.
fn nibble(hex: u8) -> (u8, bool) {
    let digit = hex.wrapping_sub(b'0');
    let letter = hex.wrapping_sub(b'A');
    if digit < 10 {
        (digit, false)
    } else if letter < 6 {
        (letter + 10, false)
    } else {
        (0, true)
    }
}

const TAG_QLIKVIEW: u8 = 1;
const TAG_GROUPS_ARE_NAMES: u8 = 2;
const TAG_TARGET: u8 = 4;

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// What is encoded: a realm, an identity, and one more string at the end (a ticket's
/// target URI; a session's CSRF token).
#[derive(Clone, Copy)]
struct Parts<'a> {
    realm: &'a str,
    identity: &'a Identity,
    last: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn of_ticket(t: &'a Ticket) -> Parts<'a> {
        Parts {
            realm: &t.realm,
            identity: &t.identity,
            last: t.target_uri.as_deref(),
        }
    }
}

/// Calls `f` with every string field of `t`, in encoding order.
fn each_string<'a>(t: Parts<'a>, mut f: impl FnMut(&'a str)) {
    f(t.realm);
    match t.identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => {
            f(user_directory);
            f(user_id);
            for (k, v) in attributes {
                f(k);
                f(v);
            }
        }
        Identity::QlikView {
            user_id, groups, ..
        } => {
            f(user_id);
            for g in groups {
                f(g);
            }
        }
    }
    if let Some(u) = t.last {
        f(u);
    }
}

fn tag_and_count(t: Parts<'_>) -> (u8, usize) {
    let target = if t.last.is_some() { TAG_TARGET } else { 0 };
    match t.identity {
        Identity::Qps { attributes, .. } => (target, attributes.len()),
        Identity::QlikView {
            groups,
            groups_is_names,
            ..
        } => {
            let names = if *groups_is_names {
                TAG_GROUPS_ARE_NAMES
            } else {
                0
            };
            (TAG_QLIKVIEW | names | target, groups.len())
        }
    }
}

/// A ticket as one byte string.
#[cfg(test)]
pub(crate) fn encode(t: &Ticket) -> Box<[u8]> {
    encode_after(&[], t)
}

/// `prefix`, then `t` encoded, in one allocation of the exact size.
pub(crate) fn encode_after(prefix: &[u8], t: &Ticket) -> Box<[u8]> {
    encode_parts(prefix, Parts::of_ticket(t))
}

fn encode_parts(prefix: &[u8], t: Parts<'_>) -> Box<[u8]> {
    let (tag, n) = tag_and_count(t);
    let (mut text, mut lengths) = (0, 0);
    each_string(t, |s| {
        text += s.len();
        lengths += varint_len(s.len());
    });
    let len = prefix.len() + 1 + varint_len(n) + varint_len(text) + lengths + text;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(prefix);
    out.push(tag);
    put_varint(&mut out, n);
    put_varint(&mut out, text);
    each_string(t, |s| put_varint(&mut out, s.len()));
    each_string(t, |s| out.extend_from_slice(s.as_bytes()));
    debug_assert_eq!(out.len(), len);
    out.into_boxed_slice()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn varint(&mut self) -> Option<usize> {
        let first = self.byte()?;
        if first < 0x80 {
            return Some(usize::from(first));
        }
        let mut v = usize::from(first & 0x7f);
        let mut shift = 7;
        while shift < usize::BITS {
            let b = self.byte()?;
            v |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
        None
    }
}

/// The string fields of an encoded ticket, one after another.
struct Fields<'a> {
    lengths: Reader<'a>,
    text: &'a str,
    at: usize,
}

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let end = self.at.checked_add(self.lengths.varint()?)?;
        let s = self.text.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn string(&mut self) -> Option<String> {
        self.next().map(str::to_owned)
    }

    /// Whether every length was read and the text used up exactly.
    fn done(&self) -> bool {
        self.lengths.0.is_empty() && self.at == self.text.len()
    }
}

/// The header of an encoded ticket: `(tag, n, fields)`, with the text already checked to
/// be UTF-8.
fn open(bytes: &[u8]) -> Option<(u8, usize, Fields<'_>)> {
    let mut r = Reader(bytes);
    let tag = r.byte()?;
    if tag & !(TAG_QLIKVIEW | TAG_GROUPS_ARE_NAMES | TAG_TARGET) != 0 {
        return None;
    }
    let n = r.varint()?;
    let text_len = r.varint()?;
    let (lengths, text) = r.0.split_at_checked(r.0.len().checked_sub(text_len)?)?;
    let (per_item, fixed) = if tag & TAG_QLIKVIEW != 0 {
        (1, 2)
    } else {
        (2, 3)
    };
    let count = n
        .checked_mul(per_item)?
        .checked_add(fixed + usize::from(tag & TAG_TARGET != 0))?;
    // Each length takes at least one byte: a count beyond them is garbage, and is refused
    // before anything is allocated for it.
    if count > lengths.len() {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    Some((
        tag,
        n,
        Fields {
            lengths: Reader(lengths),
            text,
            at: 0,
        },
    ))
}

/// The ticket [`encode_after`] wrote; `None` for bytes it did not write.
pub(crate) fn decode(bytes: &[u8]) -> Option<Ticket> {
    let (realm, identity, target_uri) = decode_parts(bytes)?;
    Some(Ticket {
        realm,
        identity,
        target_uri,
    })
}

fn decode_parts(bytes: &[u8]) -> Option<(String, Identity, Option<String>)> {
    let (tag, n, mut f) = open(bytes)?;
    let realm = f.string()?;
    let identity = if tag & TAG_QLIKVIEW == 0 {
        let user_directory = f.string()?;
        let user_id = f.string()?;
        let mut attributes = Vec::with_capacity(n);
        for _ in 0..n {
            attributes.push((f.string()?, f.string()?));
        }
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        }
    } else {
        let user_id = f.string()?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            groups.push(f.string()?);
        }
        Identity::QlikView {
            user_id,
            groups,
            groups_is_names: tag & TAG_GROUPS_ARE_NAMES != 0,
        }
    };
    let target_uri = if tag & TAG_TARGET != 0 {
        Some(f.string()?)
    } else {
        None
    };
    f.done().then_some((realm, identity, target_uri))
}

/// A session as one byte string: its id (a varint length, then the text), then its realm,
/// identity and CSRF token encoded as a ticket's realm, identity and target are. The id
/// and the realm come first, so that a lookup compares them without decoding anything.
pub(crate) fn encode_session(s: &Session) -> Box<[u8]> {
    let mut head = Vec::with_capacity(varint_len(s.id.len()) + s.id.len());
    put_varint(&mut head, s.id.len());
    head.extend_from_slice(s.id.as_bytes());
    encode_parts(
        &head,
        Parts {
            realm: &s.realm,
            identity: &s.identity,
            last: Some(&s.csrf_token),
        },
    )
}

/// The id and the encoded record of a session [`encode_session`] wrote.
fn split_session(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Reader(bytes);
    let len = r.varint()?;
    r.0.split_at_checked(len)
}

/// The realm's bytes in an encoded record: the first string field. Not checked as UTF-8:
/// for comparing only.
fn realm_bytes(record: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(record);
    let _tag = r.byte()?;
    let _n = r.varint()?;
    let text_len = r.varint()?;
    let realm_len = r.varint()?;
    let text = record.get(record.len().checked_sub(text_len)?..)?;
    text.get(..realm_len)
}

/// Whether `bytes` is the session `(realm, id)`, without decoding it.
pub(crate) fn session_is(bytes: &[u8], realm: &str, id: &str) -> bool {
    split_session(bytes).is_some_and(|(stored, record)| {
        stored == id.as_bytes() && realm_bytes(record) == Some(realm.as_bytes())
    })
}

/// Whether `bytes` is a session of `realm`, without decoding it.
pub(crate) fn session_in(bytes: &[u8], realm: &str) -> bool {
    split_session(bytes).is_some_and(|(_, record)| realm_bytes(record) == Some(realm.as_bytes()))
}

/// The session [`encode_session`] wrote; `None` for bytes it did not write.
pub(crate) fn decode_session(bytes: &[u8]) -> Option<Session> {
    let (id, record) = split_session(bytes)?;
    let (realm, identity, csrf_token) = decode_parts(record)?;
    Some(Session {
        realm,
        id: String::from_utf8(id.to_vec()).ok()?,
        identity,
        csrf_token: csrf_token?,
    })
}

/// What an expiry audit event names of a ticket, borrowed from its encoded form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TicketView<'a> {
    /// `"qps"` or `"qlikview"`, as [`crate::audit::user_of`] names the dialect.
    pub(crate) dialect: &'static str,
    pub(crate) realm: &'a str,
    /// Empty for QlikView.
    pub(crate) user_directory: &'a str,
    pub(crate) user_id: &'a str,
}

/// The audit fields of an encoded ticket, without allocating; `None` for bytes
/// [`encode_after`] did not write.
pub(crate) fn peek(bytes: &[u8]) -> Option<TicketView<'_>> {
    let (tag, _, mut f) = open(bytes)?;
    let realm = f.next()?;
    Some(if tag & TAG_QLIKVIEW == 0 {
        TicketView {
            dialect: "qps",
            realm,
            user_directory: f.next()?,
            user_id: f.next()?,
        }
    } else {
        TicketView {
            dialect: "qlikview",
            realm,
            user_directory: "",
            user_id: f.next()?,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_id(key: &TicketKey) -> Option<String> {
        key.id(&mut [0u8; 40]).map(str::to_owned)
    }

    #[test]
    fn keys_keep_ids_apart_and_give_them_back() {
        let ids = [
            "QzSPXzBmJKjhucPF",
            "9F0C1A77D2B44E8E9A61C0F3B7D25E4A1C9B0E6F",
            "9f0c1a77d2b44e8e9a61c0f3b7d25e4a1c9b0e6f",
            "a-rather-long-caller-chosen-ticket-id",
            "",
            "t1",
            "exactly-22-bytes-long!",
        ];
        let keys: Vec<TicketKey> = ids.iter().map(|i| TicketKey::new(i)).collect();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(i == j, a == b, "{} vs {}", ids[i], ids[j]);
            }
        }
        assert_eq!(key_id(&keys[0]).as_deref(), Some(ids[0]));
        assert_eq!(key_id(&keys[1]).as_deref(), Some(ids[1]));
        assert_eq!(key_id(&keys[2]), None, "lowercase hex is hashed");
        assert_eq!(key_id(&keys[3]), None);
        assert_eq!(key_id(&keys[4]).as_deref(), Some(""));
        assert_eq!(key_id(&keys[6]).as_deref(), Some(ids[6]));
        assert_eq!(TicketKey::new(ids[3]), TicketKey::new(ids[3]));
        // Forty characters that are not all uppercase hex digits are hashed, whichever one
        // is off and by however little.
        for off in ['G', '@', ':', '/', 'f', ' '] {
            for at in [0, 17, 39] {
                let mut id = ids[1].to_owned();
                id.replace_range(at..=at, &off.to_string());
                assert_eq!(key_id(&TicketKey::new(&id)), None, "{id}");
            }
        }
    }

    fn samples() -> Vec<Ticket> {
        vec![
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
            Ticket {
                realm: "qlikview".into(),
                identity: Identity::QlikView {
                    user_id: String::new(),
                    groups: Vec::new(),
                    groups_is_names: true,
                },
                target_uri: Some(String::new()),
            },
            Ticket {
                realm: "qps/".into(),
                identity: Identity::Qps {
                    user_directory: "D".repeat(300),
                    user_id: "ü".repeat(100),
                    attributes: (0..200).map(|i| (format!("k{i}"), "v".repeat(i))).collect(),
                },
                target_uri: None,
            },
        ]
    }

    #[test]
    fn sessions_round_trip_and_are_found_without_decoding() {
        for t in samples() {
            for id in [
                "",
                "4475971f-279a-41f7-a0a0-d6ee45ec2b06",
                "a caller's ä id",
            ] {
                let s = Session::new(t.realm.clone(), id, t.identity.clone());
                let bytes = encode_session(&s);
                assert_eq!(decode_session(&bytes), Some(s.clone()));
                assert_eq!(
                    decode_session(&encode_session(&Session {
                        csrf_token: String::new(),
                        ..s.clone()
                    }))
                    .map(|s| s.csrf_token),
                    Some(String::new())
                );
                assert!(session_is(&bytes, &s.realm, id));
                assert!(session_in(&bytes, &s.realm));
                assert!(!session_is(&bytes, &s.realm, "other"));
                assert!(!session_is(&bytes, "qps/other", id));
                assert!(!session_in(&bytes, "qps/other"));
                assert!(!session_is(&bytes, &s.realm, &format!("{id}x")));
            }
        }
        assert_eq!(decode_session(b""), None);
        assert!(!session_is(b"\x05ab", "", "ab"));
    }

    #[test]
    fn tickets_round_trip() {
        for t in samples() {
            let bytes = encode(&t);
            assert_eq!(decode(&bytes), Some(t));
        }
    }

    #[test]
    fn foreign_bytes_decode_to_none() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"\xff\xff"), None);
        // A well-formed one, to vary below: realm "a", directory "b", user "c".
        assert!(decode(b"\x00\x00\x03\x01\x01\x01abc").is_some());
        // A huge count with nothing behind it allocates nothing and fails.
        assert_eq!(decode(b"\x00\xff\xff\xff\xff\x0f\x00"), None);
        // Lengths that do not add up to the text.
        assert_eq!(decode(b"\x00\x00\x03\x01\x01\x02abc"), None);
        assert_eq!(decode(b"\x00\x00\x03\x01\x01\x00abc"), None);
        // A length too many.
        assert_eq!(decode(b"\x00\x00\x03\x01\x01\x01\x00abc"), None);
        // Text that is not UTF-8.
        assert_eq!(decode(b"\x00\x00\x03\x01\x01\x01\xff\xfe\xfd"), None);
        // A length that cuts a character in two: "ä" is two bytes.
        assert_eq!(decode("\x00\x00\x04\x01\x01\x02äab".as_bytes()), None);
        for t in samples() {
            let bytes = encode(&t);
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
            }
        }
    }

    #[test]
    fn peek_names_the_user_without_decoding() {
        let samples = samples();
        let (qps, qv) = (&samples[0], &samples[1]);
        assert_eq!(
            peek(&encode(qps)),
            Some(TicketView {
                dialect: "qps",
                realm: "qps/ext",
                user_directory: "ACME",
                user_id: "jdoe ä",
            })
        );
        assert_eq!(
            peek(&encode(qv)),
            Some(TicketView {
                dialect: "qlikview",
                realm: "qlikview",
                user_directory: "",
                user_id: "ACME\\jdoe",
            })
        );
        assert_eq!(peek(b"\x07"), None);
    }

    #[test]
    fn the_encoding_is_small() {
        let t = Ticket {
            realm: "qps/ext".into(),
            identity: Identity::Qps {
                user_directory: "ACME".into(),
                user_id: "jdoe".into(),
                attributes: vec![("Group".into(), "Sales".into())],
            },
            target_uri: None,
        };
        let text = "qps/ext".len() + "ACMEjdoeGroupSales".len();
        // Tag, count, text length, and one byte per string.
        assert_eq!(encode(&t).len(), text + 3 + 5);
        assert_eq!(&encode_after(b"pre", &t)[..3], b"pre");
        assert_eq!(decode(&encode_after(b"pre", &t)[3..]), Some(t));
    }
}
