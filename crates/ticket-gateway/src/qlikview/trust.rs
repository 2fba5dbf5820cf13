//! Who may ask for web tickets (QVWS `<TrustedIP>`, or Windows authentication of the
//! "QlikView Administrators" group, here HTTP Basic credentials).

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::QlikView;
use crate::conn::peer_in;

/// Whether the caller is trusted by address or by credentials.
pub(crate) fn is_trusted(qv: &QlikView, peer: SocketAddr, headers: &HeaderMap) -> bool {
    trusted_ip(qv, peer.ip()) || trusted_account(qv, headers)
}

/// Address trust (see [`peer_in`]).
pub(crate) fn trusted_ip(qv: &QlikView, ip: IpAddr) -> bool {
    peer_in(&qv.trusted_ips, ip)
}

/// Credential trust: `Authorization: Basic` naming a configured account whose password
/// hashes to the configured SHA-256. Every account is compared, in constant time, so the
/// time taken says nothing about which part was wrong.
pub(crate) fn trusted_account(qv: &QlikView, headers: &HeaderMap) -> bool {
    if qv.trusted_accounts.is_empty() {
        return false;
    }
    let Some((user, password)) = basic_credentials(headers) else {
        return false;
    };
    let hash: [u8; 32] = Sha256::digest(password.as_bytes()).into();
    let mut ok = subtle::Choice::from(0);
    for account in &qv.trusted_accounts {
        let same_user = account.user.eq_ignore_ascii_case(&user);
        let same_password = account.password_sha256.ct_eq(&hash);
        ok |= subtle::Choice::from(u8::from(same_user)) & same_password;
    }
    ok.into()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn qv(extra: &str) -> QlikView {
        Settings::from_toml(&format!("[qlikview]\n{extra}"))
            .unwrap()
            .qlikview
    }

    #[test]
    fn addresses_and_ranges_are_compared_literally() {
        let q = qv("trusted_ips = [\"127.0.0.1\", \"10.0.0.0/8\"]\n");
        assert!(trusted_ip(&q, "127.0.0.1".parse().unwrap()));
        assert!(trusted_ip(&q, "10.20.30.40".parse().unwrap()));
        assert!(
            !trusted_ip(&q, "::1".parse().unwrap()),
            "::1 is not 127.0.0.1"
        );
        assert!(
            trusted_ip(&q, "::ffff:10.1.1.1".parse().unwrap()),
            "mapped IPv4"
        );
        assert!(!trusted_ip(&q, "11.0.0.1".parse().unwrap()));
        let q = qv("trusted_ips = [\"::1\"]\n");
        assert!(trusted_ip(&q, "::1".parse().unwrap()));
        assert!(!trusted_ip(&q, "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_default_trusts_loopback_only() {
        let q = qv("");
        assert!(trusted_ip(&q, "127.0.0.1".parse().unwrap()));
        assert!(trusted_ip(&q, "::1".parse().unwrap()));
        assert!(!trusted_ip(&q, "192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn basic_credentials_must_match_a_configured_account() {
        // sha256("s3cret")
        let q = qv("trusted_ips = []\ntrusted_accounts = [{ user = 'ACME\\portal', password_sha256 = \"0a4e6a4d5f7b0b3a5c7a3d5e48b1d7b1c2b6d1e8f5e6a9b4c3d2e1f0a9b8c7d6\" }]\n");
        let mut h = HeaderMap::new();
        assert!(!trusted_account(&q, &h));
        let q = {
            let hash: [u8; 32] = Sha256::digest(b"s3cret").into();
            let mut q = q;
            q.trusted_accounts[0].password_sha256 = hash;
            q
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        h.insert(
            "authorization",
            format!("Basic {}", b64("ACME\\portal:s3cret"))
                .parse()
                .unwrap(),
        );
        assert!(trusted_account(&q, &h));
        h.insert(
            "authorization",
            format!("basic {}", b64("acme\\PORTAL:s3cret"))
                .parse()
                .unwrap(),
        );
        assert!(trusted_account(&q, &h));
        h.insert(
            "authorization",
            format!("Basic {}", b64("ACME\\portal:wrong"))
                .parse()
                .unwrap(),
        );
        assert!(!trusted_account(&q, &h));
        h.insert("authorization", "Basic !!!".parse().unwrap());
        assert!(!trusted_account(&q, &h));
        h.insert(
            "authorization",
            format!("Bearer {}", b64("ACME\\portal:s3cret"))
                .parse()
                .unwrap(),
        );
        assert!(!trusted_account(&q, &h));
    }
}
