//! Automerge changes applied to a stored document, as the server merges a push: any bytes
//! are merged or refused with a reason; an accepted merge always holds a valid report.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    app::merge::fuzz_one_push(data);
});
