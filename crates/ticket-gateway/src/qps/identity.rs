//! The headers that tell a back end who the user is (Qlik's "injected request headers").

use http::header::{HeaderName, HeaderValue};
use ticket_core::{Identity, Session};

use crate::config::VirtualProxy;
use crate::http::headers::{header_value, header_value_owned};
use crate::http::push_percent_encoded_lower;

/// `X-Qlik-User: UserDirectory=<url-encoded>; UserId=<url-encoded>`
pub(crate) fn user_header(user_directory: &str, user_id: &str) -> String {
    let mut out = String::with_capacity(24 + 3 * (user_directory.len() + user_id.len()));
    out.push_str("UserDirectory=");
    push_percent_encoded_lower(&mut out, user_directory);
    out.push_str("; UserId=");
    push_percent_encoded_lower(&mut out, user_id);
    out
}

/// `X-Qlik-Security: SecureRequest=true; Context=AppAccess; k=v; k2=;` — attributes in
/// order, repeats kept, empty values as `k=;`, each item closed by `;` as Qlik documents.
/// Values pass through as given (Qlik documents no escaping).
///
/// Each key and value stays one part: `%`, `;` and control characters are percent-encoded
/// (`%25`, `%3B`, `%0A`), and so is `=` in a key and at the start of a value, so that no
/// attribute (a JWT or OpenID claim among them) can add a part (`v; Group=Admins`) or split
/// the header. Anything else, UTF-8 included, passes as given.
pub(crate) fn security_header(attributes: &[(String, String)]) -> String {
    const HEAD: &str = "SecureRequest=true; Context=AppAccess;";
    let len = attributes.iter().map(|(k, v)| k.len() + v.len() + 3);
    let mut out = String::with_capacity(HEAD.len() + len.sum::<usize>());
    out.push_str(HEAD);
    for (k, v) in attributes {
        out.push(' ');
        push_part(&mut out, k, |b, _| b == b'=');
        out.push('=');
        push_part(&mut out, v, |b, at| b == b'=' && at == 0);
        out.push(';');
    }
    out
}

/// Appends `text` with `%`, `;`, control characters and whatever `also` names encoded.
fn push_part(out: &mut String, text: &str, also: impl Fn(u8, usize) -> bool) {
    let special = |b: u8, at: usize| b == b'%' || b == b';' || b < 0x20 || b == 0x7f || also(b, at);
    if !text.bytes().enumerate().any(|(at, b)| special(b, at)) {
        out.push_str(text);
        return;
    }
    for (at, c) in text.char_indices() {
        match u8::try_from(c) {
            Ok(b) if special(b, at) => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            }
            _ => out.push(c),
        }
    }
}

/// Every identity header a Qlik Sense session sends to its back end.
pub(crate) fn headers(vp: &VirtualProxy, session: &Session) -> Vec<(HeaderName, HeaderValue)> {
    let Identity::Qps {
        user_directory,
        user_id,
        attributes,
    } = &session.identity
    else {
        return Vec::new();
    };
    vec![
        (
            HeaderName::from_static("x-qlik-user"),
            // Percent-encoded: always a valid header value.
            HeaderValue::try_from(user_header(user_directory, user_id))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        ),
        (
            HeaderName::from_static("x-qlik-security"),
            header_value_owned(security_header(attributes)),
        ),
        (
            HeaderName::from_static("x-qlik-proxysession"),
            header_value(&session.id),
        ),
        (
            HeaderName::from_static("x-qlik-virtual-proxy-prefix"),
            vp.prefix_header.clone(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_formats() {
        assert_eq!(
            user_header("ACME", "j doe/ä"),
            "UserDirectory=ACME; UserId=j%20doe%2f%c3%a4"
        );
        let attrs = vec![
            ("Group".to_owned(), "Sales".to_owned()),
            ("Group".to_owned(), "EU".to_owned()),
            ("email".to_owned(), String::new()),
        ];
        assert_eq!(
            security_header(&attrs),
            "SecureRequest=true; Context=AppAccess; Group=Sales; Group=EU; email=;"
        );
        assert_eq!(
            security_header(&[]),
            "SecureRequest=true; Context=AppAccess;"
        );
    }

    #[test]
    fn an_attribute_cannot_forge_a_part_or_split_the_header() {
        let attrs = vec![
            ("Group".to_owned(), "Sales; Group=Admins".to_owned()),
            ("a=b".to_owned(), "=c".to_owned()),
            ("x".to_owned(), "line\nbreak 100% é".to_owned()),
        ];
        let h = security_header(&attrs);
        assert_eq!(
            h,
            "SecureRequest=true; Context=AppAccess; Group=Sales%3B Group=Admins; a%3Db=%3Dc; x=line%0Abreak 100%25 é;"
        );
        // Split as a back end splits it, every attribute is one part.
        let parts: Vec<&str> = h
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(parts.len(), 2 + attrs.len(), "{parts:?}");
        assert!(http::HeaderValue::from_str(&h).is_ok());
    }
}
