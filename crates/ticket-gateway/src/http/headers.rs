//! Header values made from user data (names, session ids): never a header split by a
//! control character a client slipped into them.

use http::HeaderValue;

/// A header value from user data: as UTF-8 bytes when valid, percent-encoded otherwise
/// (a control character must never split a header).
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| {
        let encoded = percent_encode_unsafe(s);
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// [`header_value`] of a string built for the purpose: its buffer becomes the value, with
/// no copy.
pub(crate) fn header_value_owned(s: String) -> HeaderValue {
    // `http`'s own rule for the bytes of a header value, over every byte without an early
    // exit, so that it runs on whole vectors.
    let invalid = s
        .bytes()
        .fold(false, |bad, b| bad | (b < 32 && b != b'\t') | (b == 127));
    if invalid {
        return header_value(&s);
    }
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Percent-encodes what may not stand in a header value (spaces, controls, non-ASCII,
/// quotes and angle brackets), leaving every other character, `%` escapes included, as is.
fn percent_encode_unsafe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b <= 0x20 || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_controls_are_encoded_not_split() {
        assert_eq!(header_value("a b"), "a b");
        assert_eq!(header_value("a\r\nX-Evil: 1"), "a%0D%0AX-Evil:%201");
        assert_eq!(header_value_owned("é".to_owned()), "é".as_bytes());
    }
}
