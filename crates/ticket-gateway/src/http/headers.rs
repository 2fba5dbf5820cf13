//! Header values made from user data (names, session ids): never a header split by a
//! control character a client slipped into them.

use http::HeaderValue;

use super::redirect::location_safe;

/// A header value from user data: as UTF-8 bytes when valid, percent-encoded otherwise
/// (a control character must never split a header).
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| {
        let encoded = location_safe(s);
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
