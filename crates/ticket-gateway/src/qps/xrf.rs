//! The Xrfkey check every QPS REST call must pass.
//!
//! The caller sends the same 16-character key as the `xrfkey` query parameter (name in any
//! casing) and as the `X-Qlik-Xrfkey` header. A cross-site request cannot set the header,
//! so a matching pair shows the caller is not a browser tricked into the call.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use http::{HeaderMap, HeaderName};

use crate::http::query_param;

/// Length of an Xrfkey.
pub const KEY_LEN: usize = 16;

/// The header that must repeat the key (a constant name: looking a header up by a `&str`
/// parses the name on every call).
pub const HEADER: HeaderName = HeaderName::from_static("x-qlik-xrfkey");

/// Whether the request carries a well-formed key, identical in query and header.
pub fn check(query: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(param) = query_param(query, "xrfkey") else {
        return false;
    };
    let Some(header) = headers.get(HEADER).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    well_formed(&param) && param == header
}

/// 16 characters from `[0-9A-Za-z]`.
pub fn well_formed(key: &str) -> bool {
    key.len() == KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Qlik-XrfKey", v.parse().unwrap());
        h
    }

    #[test]
    fn matching_keys_pass_in_any_casing() {
        assert!(check(
            Some("xrfkey=abcdefghijklmnop"),
            &headers("abcdefghijklmnop")
        ));
        assert!(check(
            Some("a=b&Xrfkey=0123456789abcdef"),
            &headers("0123456789abcdef")
        ));
        assert!(check(
            Some("XRFKEY=AAAAAAAAAAAAAAAA"),
            &headers("AAAAAAAAAAAAAAAA")
        ));
    }

    #[test]
    fn anything_else_fails() {
        let h = headers("abcdefghijklmnop");
        assert!(!check(None, &h));
        assert!(!check(Some("xrfkey=abcdefghijklmnoq"), &h));
        assert!(!check(Some("xrfkey=abcdefghijklmnop"), &HeaderMap::new()));
        assert!(!check(
            Some("xrfkey=abcdefghijklmno"),
            &headers("abcdefghijklmno")
        ));
        assert!(!check(
            Some("xrfkey=abcdefghijklmn-p"),
            &headers("abcdefghijklmn-p")
        ));
        assert!(
            !check(Some("xrfkey=ABCDEFGHIJKLMNOP"), &h),
            "values compare exactly"
        );
    }
}
