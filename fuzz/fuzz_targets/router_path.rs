//! The route table over arbitrary methods and paths, on both listeners: never panic.
#![no_main]

use std::sync::OnceLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use ticket_gateway::fuzzing::describe;
use ticket_gateway::Side;
use ticket_gateway::Settings;

fuzz_target!(|data: &[u8]| {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    let settings = SETTINGS.get_or_init(|| {
        Settings::from_toml("[[virtual_proxy]]\nprefix = \"ext\"\n[[virtual_proxy]]\nprefix = \"ticket\"\n")
            .expect("valid")
    });
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (method, path) = text.split_once(' ').unwrap_or(("GET", text));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    for side in [Side::Frontend, Side::Api] {
        let _ = describe(settings, side, &method, path);
    }
});
