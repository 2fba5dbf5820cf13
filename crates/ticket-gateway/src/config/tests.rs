//! The configuration's own tests: defaults, the documented example, errors naming keys.

use std::time::Duration;

use super::*;

#[test]
fn the_defaults_serve_loopback_with_the_demo_module() {
    let s = Settings::defaults();
    assert_eq!(s.frontend.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.api.listen.to_string(), "127.0.0.1:4243");
    assert_eq!(s.ticket_ttl, Duration::from_secs(60));
    let vp = s.default_virtual_proxy();
    assert_eq!(vp.prefix, "");
    assert_eq!(vp.session_cookie_name, "X-Qlik-Session");
    assert_eq!(
        vp.auth_module_redirect_uri,
        "http://localhost:8080/demo/login"
    );
}

#[test]
fn the_documented_example_parses() {
    let s = Settings::from_toml(
        r#"
        [frontend]
        listen = "127.0.0.1:8080"
        public_url = "http://localhost:8080"
        [api]
        listen = "127.0.0.1:4243"
        public_url = "http://localhost:4243"
        [tickets]
        ttl_seconds = 60
        [[virtual_proxy]]
        prefix = "ext"
        session_cookie_name = "X-Qlik-Session-ext"
        auth_module_redirect_uri = "https://auth.example.com/login"
        session_inactivity_timeout_minutes = 30
        "#,
    )
    .unwrap();
    assert_eq!(s.virtual_proxies.len(), 2);
    assert_eq!(s.virtual_proxy("ext").unwrap().realm, "qps/ext");
}

fn err(text: &str) -> ConfigError {
    Settings::from_toml(text).unwrap_err()
}

#[test]
fn errors_name_the_key() {
    let e = err("[frontend]\nlisten = \"nowhere\"\n");
    assert_eq!(e.key, "frontend.listen");
    let e = err("[frontend]\nlisen = \"127.0.0.1:1\"\n");
    assert_eq!(e.key, "frontend.lisen");
    assert!(e.message.contains("unknown field `lisen`"), "{e}");
    let e = err("[tickets]\nttl_seconds = \"soon\"\n");
    assert_eq!(e.key, "tickets.ttl_seconds");
    let e = err("[[virtual_proxy]]\nprefix = \"a\"\n[[virtual_proxy]]\nprefix = \"a\"\n");
    assert_eq!(e.key, "virtual_proxy[1].prefix");
    let e = err(
        "[[virtual_proxy]]\nprefix = \"a\"\nsession_cookie_name = \"C\"\n[[virtual_proxy]]\nprefix = \"b\"\nsession_cookie_name = \"C\"\n",
    );
    assert_eq!(e.key, "virtual_proxy[1].session_cookie_name");
    let e = err("[[virtual_proxy]]\nprefix = \"Ext\"\n");
    assert_eq!(e.key, "virtual_proxy[0].prefix");
    let e = err("[[virtual_proxy]]\nprefix = \"hub\"\n");
    assert!(e.message.contains("reserved"));
    let e = err("[api]\npublic_url = \"localhost:4243\"\n");
    assert_eq!(e.key, "api.public_url");
    let e = err("[nonsense]\n");
    assert!(e.to_string().contains("nonsense"), "{e}");
    assert!(!e.to_string().contains('\n'));
}
