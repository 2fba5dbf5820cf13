//! Finding the bytes of a log value that need quoting or escaping, eight bytes at a time
//! (SWAR: bit tricks on a `u64`): every value of every line is tested, few ever need it,
//! and a byte-at-a-time loop was the largest cost of formatting a line.
//!
//! The formatters copy a value into the line first and test it there: a value shorter than
//! eight bytes is tested as the line's last word, the bytes before it masked off, so that
//! no value is tested byte by byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Eight bytes that no test looks for.
const HARMLESS: u64 = ONES * b'a' as u64;

/// Whether `special` finds something in `line[from..]`. `special` takes eight bytes (as a
/// little-endian word) and is non-zero if and only if one of them is special.
pub fn any(line: &[u8], from: usize, special: impl Fn(u64) -> u64) -> bool {
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

/// The first eight bytes of `b` (which has at least eight), as one word.
fn word(b: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Non-zero if and only if a byte of `w` is `b`.
pub const fn equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Non-zero if and only if a byte of `w` is below `n` (`n` at most 128).
pub const fn below(w: u64, n: u8) -> u64 {
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
