//! The handback framer (`conn::handback`) on arbitrary bytes: no panic, the same request ends
//! however the bytes were split into reads, and every request it follows whole is the one hyper
//! reads at the same place (method, target, body), checked against a real hyper connection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ssecast::fuzzing::check_framer(data));
