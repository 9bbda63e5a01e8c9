//! A form publish body: parsed, validated and encoded without a panic, into one well-formed
//! frame whose fields read back as published.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ssecast::fuzzing::check_publish_form(data);
});
