//! Session cookies: reading them from requests, setting and expiring them.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use http::header::HeaderValue;
use http::HeaderMap;

use super::query::{split_ascii, split_once_ascii};

/// `<name>=<value>; Path=/; HttpOnly[; Secure]<attributes>` as a `Set-Cookie` value, built
/// in one allocation (a login sets one). `None` if it would not be a valid header value.
pub(crate) fn session_cookie(
    name: &str,
    value: &str,
    secure: bool,
    attributes: &str,
) -> Option<HeaderValue> {
    let mut cookie = String::with_capacity(name.len() + value.len() + attributes.len() + 32);
    cookie.push_str(name);
    cookie.push('=');
    cookie.push_str(value);
    cookie.push_str("; Path=/; HttpOnly");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie.push_str(attributes);
    HeaderValue::try_from(cookie).ok()
}

/// Cookie values named `name` (exact, case-sensitive as browsers send them), in order.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| split_ascii(v, b';'))
        .filter_map(move |pair| {
            let (k, v) = split_once_ascii(pair, b'=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// `<name>=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly[; Secure]<attributes>`:
/// the cookie expired, with the same attributes it was set with (a browser clears only a
/// cookie whose `Domain` matches).
pub(crate) fn expired_cookie(name: &str, secure: bool, attributes: &str) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}{attributes}"
    );
    HeaderValue::try_from(cookie).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; X-Qlik-Session-HTTP=abc".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "X-Qlik-Session=def".parse().unwrap());
        assert_eq!(cookies(&h, "X-Qlik-Session").collect::<Vec<_>>(), ["def"]);
        assert_eq!(
            cookies(&h, "X-Qlik-Session-HTTP").collect::<Vec<_>>(),
            ["abc"]
        );
    }
}
