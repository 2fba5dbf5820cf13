//! The Authenticate.aspx query parser and the redirect guard: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::parse_query;
use ticket_gateway::fuzzing::{location, Hosts};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let p = parse_query(q);
    let base = url::Url::parse("http://localhost:8080/QvAJAXZfc/Authenticate.aspx").unwrap();
    let hosts = Hosts::new(["http://localhost:8080"], &["portal.example.com".to_owned()]);
    for target in [p.try_.as_deref(), p.back.as_deref()].into_iter().flatten() {
        if let Some(sent) = location(target, &base, &hosts) {
            assert!(http::HeaderValue::from_str(&sent).is_ok(), "unsafe Location: {sent:?}");
            let again = base.join(&sent).unwrap();
            assert!(hosts.admit(&again) && again.username().is_empty(), "escaped: {sent:?}");
        }
    }
});
