//! The lenient JSON reader and the ticket request binding: never panic, and whatever is
//! read survives a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_gateway::qps::json;
use ticket_gateway::qps::wire::{SessionRequest, TicketRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = json::parse(data) {
        let written = v.to_json();
        let again = json::parse(written.as_bytes()).expect("written JSON reads back");
        assert_eq!(again, v);
        let _ = TicketRequest::from_json(&v);
        let _ = SessionRequest::from_json(&v);
    }
});
