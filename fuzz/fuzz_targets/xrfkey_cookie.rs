//! The Xrfkey check and the cookie reader over arbitrary query strings and header bytes:
//! never panic, never accept a key that is not 16 alphanumerics.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::{cookies, query_param, query_without};
use ticket_gateway::fuzzing::xrf;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (query, header) = data.split_at(split);
    let Ok(query) = std::str::from_utf8(query) else { return };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header.get(1..).unwrap_or_default()) {
        headers.insert("x-qlik-xrfkey", v.clone());
        headers.insert(http::header::COOKIE, v);
    }
    if xrf::check(Some(query), &headers) {
        let key = query_param(Some(query), "xrfkey").expect("checked");
        assert!(xrf::well_formed(&key));
    }
    let _ = query_without(Some(query), "qlikTicket");
    for name in ["X-Qlik-Session", "AccessPointSession", ""] {
        for value in cookies(&headers, name) {
            assert!(!value.contains(';'));
        }
    }
});
