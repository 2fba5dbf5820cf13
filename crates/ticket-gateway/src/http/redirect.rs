//! Where the gateway may send a browser: no open redirects.
//!
//! A relative target (`/QlikView/`, `opendoc.htm?document=x`) stays on the gateway and is
//! always fine. An absolute one (`https://host/…`, or scheme-relative `//host/…`) must name
//! the gateway's own public host or a configured allowed host. Anything a browser could
//! read as another origin in disguise (`/\evil.com`, `javascript:`, control characters) is
//! refused.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

/// Whether `target` may be used as a redirect. Hosts are compared without case or port;
/// `allowed` holds lowercase host names.
pub fn is_allowed(target: &str, own_urls: &[&str], allowed: &[String]) -> bool {
    if target.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let t = target.trim_start();
    if t.len() != target.len() {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    let rest = if let Some(r) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        r
    } else if let Some(r) = lower.strip_prefix("//") {
        r
    } else if lower.starts_with("/\\") || lower.starts_with('\\') {
        return false;
    } else {
        // No scheme: relative, unless it names one (`javascript:`, `data:`, …) before any
        // path, query or fragment character.
        let head = lower.split(['/', '?', '#']).next().unwrap_or("");
        return !head.contains(':');
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = host_of(authority);
    if host.is_empty() {
        return false;
    }
    own_urls.iter().any(|u| host_of_url(u) == host) || allowed.contains(&host)
}

/// The host of an authority, without port or IPv6 brackets.
fn host_of(authority: &str) -> String {
    let a = authority.to_ascii_lowercase();
    if let Some(v6) = a.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_owned();
    }
    a.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(a.clone(), |(h, _)| h.to_owned())
}

fn host_of_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    host_of(rest.split('/').next().unwrap_or(""))
}

/// Percent-encodes what may not stand in a `Location` header (spaces, controls, non-ASCII,
/// quotes and angle brackets), leaving every other character, `%` escapes included, as is.
pub fn location_safe(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        if b <= 0x20 || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &[&str] = &["http://localhost:8080"];

    fn ok(t: &str) -> bool {
        is_allowed(t, OWN, &["portal.example.com".to_owned()])
    }

    #[test]
    fn relative_targets_are_fine() {
        for t in [
            "/QlikView/",
            "/qvajaxzfc/opendoc.htm?document=Sales.qvw",
            "LoginPage.htm",
            "opendoc.htm?x=a:b",
            "",
        ] {
            assert!(ok(t), "{t}");
        }
    }

    #[test]
    fn absolute_targets_need_a_known_host() {
        assert!(ok("http://localhost:8080/QlikView/"));
        assert!(ok("https://LOCALHOST/x"));
        assert!(ok("https://portal.example.com/login"));
        assert!(ok("//portal.example.com/login"));
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
            " https://evil.example.com",
            "/x\r\nSet-Cookie: a=b",
            "https:///nohost",
        ] {
            assert!(!ok(t), "{t}");
        }
    }

    #[test]
    fn locations_are_made_header_safe() {
        assert_eq!(location_safe("/a b?c=é"), "/a%20b?c=%C3%A9");
        assert_eq!(location_safe("/a%20b"), "/a%20b");
    }
}
