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
pub(crate) fn security_header(attributes: &[(String, String)]) -> String {
    const HEAD: &str = "SecureRequest=true; Context=AppAccess;";
    let len = attributes.iter().map(|(k, v)| k.len() + v.len() + 3);
    let mut out = String::with_capacity(HEAD.len() + len.sum::<usize>());
    out.push_str(HEAD);
    for (k, v) in attributes {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push(';');
    }
    out
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
}
