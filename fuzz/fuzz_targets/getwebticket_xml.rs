//! The GetWebTicket XML reader and the AccessPoint envelope reader: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::xml;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = xml::parse(data) {
        let _ = xml::write(&req);
    }
});
