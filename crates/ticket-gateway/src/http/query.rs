//! Query strings and percent-encoding, as browsers, .NET clients and IIS spell them.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use std::borrow::Cow;

use crate::text::scan;

/// `s` split at every `sep`, as `str::split` does, with the byte scanner: paths, queries
/// and cookies are short, and the general pattern searcher costs more to set up for each
/// piece than such a piece takes to scan. `sep` must be ASCII.
pub(crate) fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match scan::find(r.as_bytes(), sep) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` split at its first `sep`, as `str::split_once` does, by a plain byte scan. `sep`
/// must be ASCII.
pub(crate) fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = scan::find(s.as_bytes(), sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Query parameters as `(name, value)`, percent-decoded, `+` read as a space: the reading
/// [`query_param`] and [`form_decode`] implement, checked against `form_urlencoded`.
#[cfg(test)]
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    split_ascii(query.unwrap_or(""), b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = split_once_ascii(pair, b'=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
}

/// The first query parameter whose name matches `name` in any casing. Only that
/// parameter's value is decoded: the Xrfkey check and ticket redemption run this on every
/// request.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    split_ascii(query?, b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (k, v) = split_once_ascii(pair, b'=').unwrap_or((pair, ""));
            form_decode(k)
                .eq_ignore_ascii_case(name)
                .then(|| form_decode(v))
        })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding
/// ([`percent_decode`]). Borrowed when there is nothing to decode.
pub(crate) fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(s);
    }
    if !s.contains('+') {
        return percent_decode(s);
    }
    Cow::Owned(percent_decode(&s.replace('+', " ")).into_owned())
}

/// The query without any parameter named `name` (any casing), other parameters kept byte
/// for byte. `None` when nothing is left.
pub fn query_without(query: Option<&str>, name: &str) -> Option<String> {
    let kept: Vec<&str> = split_ascii(query.unwrap_or(""), b'&')
        .filter(|part| {
            let key = split_ascii(part, b'=').next().unwrap_or("");
            !part.is_empty() && !percent_decode(key).eq_ignore_ascii_case(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Percent-encodes everything but ASCII letters, digits and `-_.`, with lowercase hex
/// digits, as .NET's `HttpUtility.UrlEncode` does: auth modules have been seen to compare
/// `proxyRestUri` as a string.
pub(crate) fn percent_encode_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    push_percent_encoded_lower(&mut out, s);
    out
}

/// [`percent_encode_lower`] appended to `out`: runs that need no escape (most user names,
/// whole) are copied at once.
pub(crate) fn push_percent_encoded_lower(out: &mut String, s: &str) {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let mut rest = s;
    // Unreserved bytes are ASCII, so `i` is where a character starts.
    while let Some(i) = rest.bytes().position(|b| !unreserved(b)) {
        out.push_str(&rest[..i]);
        let len = rest[i..].chars().next().map_or(1, char::len_utf8);
        for &b in &rest.as_bytes()[i..i + len] {
            out.push('%');
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        rest = &rest[i + len..];
    }
    out.push_str(rest);
}

/// Percent-decodes `s` (`+` is left alone); invalid escapes stay as they are, invalid UTF-8
/// is replaced.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_matches_dotnet() {
        assert_eq!(
            percent_encode_lower("https://qs.example.com:4243/qps/ext/"),
            "https%3a%2f%2fqs.example.com%3a4243%2fqps%2fext%2f"
        );
    }

    #[test]
    fn percent_encoding_escapes_every_byte_of_a_character() {
        for s in ["", "plain", "j doe/ä", "ä", "€x", "a😀b", "-_.~ +%"] {
            let slow: String = s
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect();
            assert_eq!(percent_encode_lower(s), slow, "{s}");
        }
    }

    #[test]
    fn percent_decoding_survives_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb%2fc"), "a/b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn query_pairs_decode_like_form_urlencoded() {
        for q in [
            "a=1&b=%20x+y&&c&=d&e=%zz&f=%C3%A9&g=a=b&h=%2B+",
            "xrfkey=abc&XRFKEY=def",
            "",
        ] {
            let ours: Vec<(String, String)> = query_pairs(Some(q))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let reference: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, reference, "{q}");
        }
        assert_eq!(
            query_param(Some("x%72fkey=A+B"), "XRFKEY").as_deref(),
            Some("A B")
        );
    }

    #[test]
    fn ascii_splits_match_the_standard_ones() {
        for s in [
            "", "a", "/", "//", "/a/b/", "a&b&&c", "é/ü//x", "=", "a=b=c",
        ] {
            for sep in [b'/', b'&', b'='] {
                let ours: Vec<&str> = split_ascii(s, sep).collect();
                let std: Vec<&str> = s.split(char::from(sep)).collect();
                assert_eq!(ours, std, "{s:?} at {sep}");
                assert_eq!(split_once_ascii(s, sep), s.split_once(char::from(sep)));
            }
        }
    }

    #[test]
    fn query_helpers_ignore_case_and_keep_the_rest() {
        let q = Some("a=1&QlikTicket=ABC&b=%20x");
        assert_eq!(query_param(q, "qlikticket").as_deref(), Some("ABC"));
        assert_eq!(
            query_without(q, "qlikTicket").as_deref(),
            Some("a=1&b=%20x")
        );
        assert_eq!(query_without(Some("qlikTicket=A"), "qlikticket"), None);
    }
}
