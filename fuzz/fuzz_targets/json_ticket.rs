//! The lenient JSON reader and the ticket request binding: never panic, whatever is read
//! survives a write/read round trip, and the one-pass request readers decide exactly as
//! parsing then binding does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::json;
use ticket_gateway::fuzzing::{SessionRequest, TicketRequest};

fuzz_target!(|data: &[u8]| {
    let tree = json::parse(data).map_err(|e| format!("Invalid JSON: {e}."));
    let ticket = tree.clone().and_then(|v| TicketRequest::from_json(&v));
    assert_eq!(TicketRequest::read(data), ticket);
    let session = tree.and_then(|v| SessionRequest::from_json(&v));
    assert_eq!(SessionRequest::read(data), session);
    if let Ok(v) = json::parse(data) {
        let written = v.to_json();
        let again = json::parse(written.as_bytes()).expect("written JSON reads back");
        assert_eq!(again, v);
        let _ = TicketRequest::from_json(&v);
        let _ = SessionRequest::from_json(&v);
    }
});
