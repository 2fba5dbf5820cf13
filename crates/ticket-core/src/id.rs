//! Identifiers, all drawn from a cryptographically secure generator.
//!
//! `rand::rng()` is a ChaCha-based CSPRNG seeded and periodically reseeded from the
//! operating system, so a ticket cannot be predicted from the ones issued before it.

use rand::Rng;

/// Length of a QPS ticket: real proxies issue 16 characters, and a live-server test suite
/// asserts that length.
pub const QPS_TICKET_LEN: usize = 16;

/// Length of a QlikView web ticket: one widely used client rejects any other length.
pub const WEB_TICKET_LEN: usize = 40;

/// Length of a session's CSRF token: 32 letters and digits, about 190 bits.
pub const CSRF_TOKEN_LEN: usize = 32;

const LETTERS: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LETTERS_AND_DIGITS: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// A new QPS ticket: 16 letters `[A-Za-z]` (both real samples are letters only), about
/// 91 bits of entropy.
pub fn qps_ticket() -> String {
    draw(LETTERS, QPS_TICKET_LEN)
}

/// A new CSRF token for a session: [`CSRF_TOKEN_LEN`] letters and digits `[A-Za-z0-9]`,
/// safe in a header, a cookie, a form field or a URL as they are.
pub fn csrf_token() -> String {
    draw(LETTERS_AND_DIGITS, CSRF_TOKEN_LEN)
}

/// `len` characters of `alphabet` (at most 64 of them), each equally likely.
fn draw<const N: usize>(alphabet: &[u8; N], len: usize) -> String {
    const { assert!(N <= 64) };
    let mut rng = rand::rng();
    let mut out = String::with_capacity(len);
    // Six random bits per character, values past the alphabet rejected, so every character
    // is equally likely; ten draws per 64-bit word, about two words per QPS ticket.
    while out.len() < len {
        let mut word: u64 = rng.random();
        for _ in 0..10 {
            let v = (word & 63) as usize;
            word >>= 6;
            if v < N && out.len() < len {
                out.push(char::from(alphabet[v]));
            }
        }
    }
    out
}

/// A new QlikView web ticket: 40 uppercase hexadecimal characters (160 bits), which every
/// known client parser accepts.
pub fn web_ticket() -> String {
    let bytes: [u8; WEB_TICKET_LEN / 2] = rand::rng().random();
    let mut hex = [0u8; WEB_TICKET_LEN];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_UPPER[usize::from(b >> 4)];
        pair[1] = HEX_UPPER[usize::from(b & 0x0f)];
    }
    // Hex digits only: always ASCII.
    String::from_utf8(hex.to_vec()).unwrap_or_default()
}

/// A new random (version 4) GUID in the lowercase, hyphenated form .NET prints, used for
/// target ids and session cookies. The bytes come from the same CSPRNG as tickets rather
/// than from the operating system per call (`Uuid::new_v4` asks `getrandom` every time:
/// a system call per login).
pub fn guid() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// Whether `s` has the shape of a QPS ticket. Lets the gateway refuse garbage without a
/// store round trip; it says nothing about whether the ticket exists.
pub fn looks_like_qps_ticket(s: &str) -> bool {
    s.len() == QPS_TICKET_LEN && s.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Whether `s` has the shape of a QlikView web ticket (hex digits in either case).
pub fn looks_like_web_ticket(s: &str) -> bool {
    s.len() == WEB_TICKET_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn qps_tickets_are_sixteen_letters_and_distinct() {
        let set: HashSet<String> = (0..10_000).map(|_| qps_ticket()).collect();
        assert_eq!(set.len(), 10_000);
        assert!(set.iter().all(|t| looks_like_qps_ticket(t)));
        // Every letter of both cases turns up: the alphabet is used whole.
        let used: HashSet<char> = set.iter().flat_map(|t| t.chars()).collect();
        assert_eq!(used.len(), 52);
    }

    #[test]
    fn csrf_tokens_are_thirty_two_letters_and_digits_and_distinct() {
        let set: HashSet<String> = (0..10_000).map(|_| csrf_token()).collect();
        assert_eq!(set.len(), 10_000);
        assert!(set
            .iter()
            .all(|t| t.len() == CSRF_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_alphanumeric())));
        let used: HashSet<char> = set.iter().flat_map(|t| t.chars()).collect();
        assert_eq!(used.len(), 62);
    }

    #[test]
    fn web_tickets_are_forty_uppercase_hex() {
        let t = web_ticket();
        assert_eq!(t.len(), 40);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_ne!(t, web_ticket());
    }

    #[test]
    fn guids_are_lowercase_v4() {
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert!(matches!(g.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{g}");
        assert_eq!(g, g.to_lowercase());
        let parsed = uuid::Uuid::parse_str(&g).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(g, guid());
    }
}
