//! The escapers: one for JSON strings (log lines, the ticket reply), one for HTML (pages).
//! Both copy runs that need no escape whole; few values ever hold a byte to escape.

use std::borrow::Cow;

use super::scan;

/// What a JSON string must escape, per byte: `u` for `\u00XX`, a letter for `\<letter>`,
/// `0` for none.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `s` as a quoted JSON string, escaped exactly as serde_json escapes it. The text
/// is copied, then tested for anything to escape (rarely): only then is it written again,
/// escaped.
pub(crate) fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let at = out.len();
    out.extend_from_slice(s.as_bytes());
    let to_escape = |w| scan::below(w, 0x20) | scan::equal(w, b'"') | scan::equal(w, b'\\');
    if scan::any(out, at, to_escape) {
        out.truncate(at);
        json_escaped(out, s.as_bytes());
    }
    out.push(b'"');
}

/// Appends `bytes` escaped.
fn json_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[copied..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        copied = i + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html(s: &str) -> Cow<'_, str> {
    if first_html_special(s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    push_html(&mut out, s);
    Cow::Owned(out)
}

/// [`html`] appended to `out`: runs without a special character are copied whole.
pub(crate) fn push_html(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = first_html_special(rest.as_bytes()) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Where the first of `<>&"'` is: five bytes, more than `memchr` searches for at once.
fn first_html_special(b: &[u8]) -> Option<usize> {
    let special = |w| {
        scan::equal(w, b'<')
            | scan::equal(w, b'>')
            | scan::equal(w, b'&')
            | scan::equal(w, b'"')
            | scan::equal(w, b'\'')
    };
    scan::position(b, special, |c| {
        !matches!(c, b'<' | b'>' | b'&' | b'"' | b'\'')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_as_serde_json_escapes_them() {
        let mut all = String::new();
        for c in (0u32..0x80).filter_map(char::from_u32) {
            all.push(c);
        }
        all.push_str("é€😀\u{2028}");
        let mixed = "ab\"cdefgh\\ijklmnopq\u{0}rstuvwxyz0123456789\néèê\tABCDEFGHIJ\u{7f}\u{1f}";
        let mut cases = vec![all.clone(), String::new(), "plain".into(), "\"\\".into()];
        for start in 0..mixed.len() {
            for end in start..=mixed.len() {
                if let Some(s) = mixed.get(start..end) {
                    cases.push(s.to_owned());
                }
            }
        }
        for s in &cases {
            let mut out = Vec::new();
            json_string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn html_escapes_every_special_wherever_it_falls() {
        let plain = "abcdefghijklmnopqrstuvwxyzé01";
        for at in 0..=plain.len() {
            if !plain.is_char_boundary(at) {
                continue;
            }
            for (special, escaped) in [
                ('<', "&lt;"),
                ('>', "&gt;"),
                ('&', "&amp;"),
                ('"', "&quot;"),
                ('\'', "&#39;"),
            ] {
                let s = format!("{}{special}{}", &plain[..at], &plain[at..]);
                let want = format!("{}{escaped}{}", &plain[..at], &plain[at..]);
                assert_eq!(html(&s), want);
            }
        }
        assert!(matches!(html(plain), Cow::Borrowed(_)));
    }
}
