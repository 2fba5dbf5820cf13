//! The Authenticate.aspx query parser and the redirect guard: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::parse_query;
use ticket_gateway::fuzzing::{is_allowed, location_safe};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let p = parse_query(q);
    for target in [p.try_.as_deref(), p.back.as_deref()].into_iter().flatten() {
        let _ = is_allowed(target, &["http://localhost:8080"], &["portal.example.com".to_owned()]);
        let safe = location_safe(target);
        assert!(http::HeaderValue::from_str(&safe).is_ok(), "unsafe Location: {safe:?}");
    }
});
