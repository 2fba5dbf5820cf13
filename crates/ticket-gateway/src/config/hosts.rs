//! Lists of hosts a setting names: where redirects may go, which origins may open a
//! WebSocket. Read with the same WHATWG URL parser that judges the URLs they are held
//! against.

use url::Url;

/// The hosts a redirect may name: the gateway's own (from its public URL) and the
/// configured ones. An entry with a port (`localhost:3000`) admits that port only; one
/// without admits any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(String, Option<u16>)>,
}

impl Hosts {
    /// The hosts of `own_urls` (any port) and the entries of `allowed` (`host` or
    /// `host:port`, any casing).
    pub fn new<'a>(own_urls: impl IntoIterator<Item = &'a str>, allowed: &[String]) -> Hosts {
        let mut entries = Vec::new();
        for url in own_urls {
            if let Some(host) = Url::parse(url).ok().and_then(|u| host_of(&u)) {
                entries.push((host, None));
            }
        }
        for entry in allowed {
            let entry = entry.trim().to_ascii_lowercase();
            let parsed = Url::parse(&format!("http://{entry}/")).ok();
            let Some(url) = parsed.filter(|u| u.username().is_empty() && u.path() == "/") else {
                continue;
            };
            if let Some(host) = host_of(&url) {
                let port = entry
                    .rsplit_once(':')
                    .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
                    .and_then(|(_, p)| p.parse().ok());
                entries.push((host, port));
            }
        }
        Hosts { entries }
    }

    /// These hosts and those of `more`.
    pub fn and(mut self, more: &Hosts) -> Hosts {
        self.entries.extend(more.entries.iter().cloned());
        self
    }

    /// Whether `url` names an admitted host (and port).
    pub fn admit(&self, url: &Url) -> bool {
        let Some(host) = host_of(url) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.entries
            .iter()
            .any(|(h, p)| *h == host && p.map_or(true, |p| Some(p) == port))
    }
}

/// A host as the parser normalises it (lowercase, IDNA), IPv6 without brackets.
fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| host.to_owned())
}
