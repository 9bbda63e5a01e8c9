//! The request-head parser (`conn::head`) on arbitrary bytes: no panic, a head within the
//! input, and one answer however the bytes were split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ssecast::fuzzing::check_head(data));
