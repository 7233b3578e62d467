//! The sync request decoder: any bytes give a request or a clear error, never a panic,
//! and an accepted request survives a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = app::protocol::decode_request(data) {
        let again = serde_json::to_vec(&request).expect("a decoded request encodes");
        assert_eq!(app::protocol::decode_request(&again).as_ref(), Ok(&request));
    }
});
