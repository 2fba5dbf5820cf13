//! Where the gateway may send a browser: no open redirects.
//!
//! A target is judged by the URL a browser would resolve it to, read with a WHATWG URL
//! parser (the `url` crate), not by string checks: `http://localhost\@evil.com/` is
//! `http://localhost/@evil.com/` to a browser, and `/\evil.com` is `//evil.com`. Relative
//! targets are resolved against the URL of the request being answered. The result must be
//! http or https, carry no user name or password, and name the gateway's own host or an
//! allowed one ([`Hosts`]).
//!
//! On top of that, a target whose authority, as written, holds `\`, `@`, a control or a
//! whitespace character (raw or percent-encoded) is refused outright: such a target has no
//! honest use, and parsers other than a browser's (curl's, a portal's) may read it
//! differently.
//!
//! The `Location` sent is built from the parsed URL only, never from the text as received:
//! what was judged is what is sent. A relative target stays relative (the path, query and
//! fragment of its resolution), so a browser resolves it to the same place.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use url::{Position, Url};

pub use crate::config::Hosts;

/// The `Location` to send for `target`, resolved against `base` (the URL of the request
/// being answered), or `None` when a browser must not be sent there.
pub fn location(target: &str, base: &Url, hosts: &Hosts) -> Option<String> {
    if target.bytes().any(|b| b < 0x20 || b == 0x7f) || target.trim() != target {
        return None;
    }
    if suspicious_authority(target) {
        return None;
    }
    let url = base.join(target).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || !hosts.admit(&url)
    {
        return None;
    }
    if is_relative(target) {
        return Some(url[Position::BeforePath..].to_owned());
    }
    Some(url.to_string())
}

/// Whether `target` is a relative reference without an authority of its own: no scheme,
/// not scheme-relative (`//host`, or `\\host`, `/\host` as browsers read them).
fn is_relative(target: &str) -> bool {
    let bytes = target.as_bytes();
    let slash = |b: Option<&u8>| matches!(b, Some(b'/' | b'\\'));
    if slash(bytes.first()) && slash(bytes.get(1)) {
        return false;
    }
    let head = target.split(['/', '?', '#']).next().unwrap_or("");
    !head.contains(':')
}

/// Whether the authority of `target`, as written, holds `\`, `@`, a control or whitespace
/// character, raw or percent-encoded. The authority runs from `scheme://` (or `//`) to the
/// first `/`, `?` or `#`: a `\` is deliberately not an end here, since a browser and curl
/// disagree on it.
fn suspicious_authority(target: &str) -> bool {
    let rest = match target.find("://") {
        Some(i) if !target[..i].contains(['/', '?', '#']) => &target[i + 3..],
        _ => match target
            .strip_prefix("//")
            .or_else(|| target.strip_prefix("\\\\"))
        {
            Some(r) => r,
            None => return false,
        },
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let decoded = crate::http::percent_decode(authority);
    [authority, decoded.as_ref()].iter().any(|a| {
        a.chars()
            .any(|c| c == '\\' || c == '@' || c.is_control() || c.is_whitespace())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://localhost:8080/QvAJAXZfc/Authenticate.aspx?x=1").unwrap()
    }

    fn hosts() -> Hosts {
        Hosts::new(
            ["http://localhost:8080"],
            &["portal.example.com".to_owned()],
        )
    }

    fn loc(t: &str) -> Option<String> {
        location(t, &base(), &hosts())
    }

    #[test]
    fn relative_targets_stay_relative_and_on_the_gateway() {
        assert_eq!(loc("/QlikView/").as_deref(), Some("/QlikView/"));
        assert_eq!(
            loc("/qvajaxzfc/opendoc.htm?document=Sales.qvw").as_deref(),
            Some("/qvajaxzfc/opendoc.htm?document=Sales.qvw")
        );
        assert_eq!(
            loc("opendoc.htm?x=a:b").as_deref(),
            Some("/QvAJAXZfc/opendoc.htm?x=a:b")
        );
        assert_eq!(
            loc("/x?document=My Doc.qvw").as_deref(),
            Some("/x?document=My%20Doc.qvw")
        );
    }

    #[test]
    fn absolute_targets_need_a_known_host() {
        assert!(loc("http://localhost:8080/QlikView/").is_some());
        assert!(loc("https://LOCALHOST/x").is_some());
        assert_eq!(
            loc("https://portal.example.com/login").as_deref(),
            Some("https://portal.example.com/login")
        );
        assert!(loc("//portal.example.com/login").is_some());
        for t in [
            "https://evil.example.com/",
            "//evil.example.com",
            "/\\evil.example.com",
            "\\\\evil.example.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "https://portal.example.com@evil.example.com/",
            "https://evil.example.com\\@portal.example.com/",
            "http://localhost\\@evil.com/",
            "http://localhost%5c%40evil.com/",
            "http://portal.example.com\\@evil.com/",
            "http://portal.example.com%5C@evil.com/",
            "http://user:pw@localhost/",
            "http://local host/",
            "http://localhost%20/x",
            " https://evil.example.com",
            "/x\r\nSet-Cookie: a=b",
            "https:///nohost",
            "ftp://localhost/",
        ] {
            assert_eq!(loc(t), None, "{t}");
        }
    }

    #[test]
    fn the_location_sent_is_the_url_judged() {
        // Whatever is sent, parsed again by a browser, lands on an admitted host.
        for t in [
            "/a/../b",
            "/a%2F..%2Fb",
            "http://localhost:8080/a\\b",
            "https://portal.example.com:8443/x?y=\"z\"",
        ] {
            let sent = loc(t).unwrap_or_else(|| panic!("{t}"));
            let again = base().join(&sent).unwrap();
            assert!(hosts().admit(&again), "{t} → {sent}");
            assert!(http::HeaderValue::from_str(&sent).is_ok(), "{sent}");
        }
    }

    #[test]
    fn entries_with_a_port_admit_that_port_only() {
        let h = Hosts::new([], &["localhost:3000".to_owned(), "[::1]".to_owned()]);
        let admit = |u: &str| h.admit(&Url::parse(u).unwrap());
        assert!(admit("http://localhost:3000/"));
        assert!(!admit("http://localhost:3001/"));
        assert!(admit("http://[::1]:9/"));
    }
}
