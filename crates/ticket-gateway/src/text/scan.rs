//! The one byte scanner: finding the few bytes of a text that need attention (a separator,
//! a byte to escape or quote).
//!
//! Sets of up to three bytes are found with `memchr` (vectorised, and the set-up is a few
//! instructions). Larger sets, and sets with a range (control characters), are tested eight
//! bytes at a time with bit tricks on a `u64` (SWAR): every log value, JSON string and HTML
//! value is tested, few ever need anything, and a byte-at-a-time loop was the largest cost
//! of formatting a log line. (`memchr` has no searcher for more than three bytes or for a
//! range; this is why the word tests are written by hand.)
//!
//! [`any`] tests a value already copied into its output: a value shorter than eight bytes
//! is tested as the output's last word, the bytes before it masked off, so that no value is
//! tested byte by byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Eight bytes that no test looks for.
const HARMLESS: u64 = ONES * b'a' as u64;

/// Whether `special` finds something in `line[from..]`. `special` takes eight bytes (as a
/// little-endian word) and is non-zero if and only if one of them is special.
pub(crate) fn any(line: &[u8], from: usize, special: impl Fn(u64) -> u64) -> bool {
    let value = &line[from..];
    let len = value.len();
    if len >= 8 {
        let mut words = value.chunks_exact(8);
        if words.any(|w| special(word(w)) != 0) {
            return true;
        }
        // The rest, as the last eight bytes (overlapping the last whole word).
        return len % 8 != 0 && special(word(&line[line.len() - 8..])) != 0;
    }
    if len == 0 {
        return false;
    }
    let mut w = [b'a'; 8];
    let w = if line.len() >= 8 {
        // The last eight bytes of the line; those before the value replaced.
        let last = word(&line[line.len() - 8..]);
        let bits = 8 * len as u32;
        (last >> (64 - bits)) | (HARMLESS << bits)
    } else {
        w[..len].copy_from_slice(value);
        u64::from_le_bytes(w)
    };
    special(w) != 0
}

/// Where the first byte of `s` for which the word test `special` flags is, eight bytes at a
/// time; `plain` decides the bytes of the last, partial word. A word's lowest flagged byte
/// is always a true one.
pub(crate) fn position(
    s: &[u8],
    special: impl Fn(u64) -> u64,
    plain: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut words = s.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let flagged = special(word(w));
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| !plain(b))
        .map(|i| at + i)
}

/// Where the first `b` in `s` is.
pub(crate) fn find(s: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, s)
}

/// Where the first `a` or `b` in `s` is.
pub(crate) fn find2(s: &[u8], a: u8, b: u8) -> Option<usize> {
    memchr::memchr2(a, b, s)
}

/// The first eight bytes of `b` (which has at least eight), as one word.
fn word(b: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Non-zero if and only if a byte of `w` is `b`.
pub(crate) const fn equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Non-zero if and only if a byte of `w` is below `n` (`n` at most 128).
pub(crate) const fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * n as u64) & !w & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tests_find_exactly_the_bytes_asked_for() {
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"abcdefgh";
                bytes[at] = b;
                let w = word(&bytes);
                assert_eq!(equal(w, b'=') != 0, b == b'=', "{bytes:?}");
                assert_eq!(below(w, 0x20) != 0, b < 0x20, "{bytes:?}");
            }
        }
    }

    #[test]
    fn finds_a_special_byte_at_any_place_of_any_length_and_nothing_before_the_value() {
        let eq = |w| equal(w, b'=');
        for before in [0, 3, 8, 20] {
            for len in 0..40 {
                let mut line = vec![b'='; before];
                line.extend((0..len).map(|i| b'b' + (i % 20) as u8));
                assert!(!any(&line, before, eq), "{before} {len}");
                for at in 0..len {
                    let mut line = line.clone();
                    line[before + at] = b'=';
                    assert!(any(&line, before, eq), "{before} {len} {at}");
                }
            }
        }
    }
}
