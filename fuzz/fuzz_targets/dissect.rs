//! Fuzz target: the dissector and the per-frame renderers, for any link type and any
//! bytes. Input format: tests/support/fuzz_dissect.rs (a link-type selector byte, then
//! length-prefixed frames; several frames exercise IPv4 reassembly state).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_dissect.rs"]
mod fuzz_dissect;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzz_dissect::run(data) {
        panic!("a renderer failed: {e}");
    }
});
