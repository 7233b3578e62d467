//! A whole sync request as the server takes it: any bytes give a request or a clear
//! error, never a panic; an accepted request survives a round trip unchanged; and every
//! report in it is walked by the intake caps and merged through the write policy as a new
//! report, where an accepted merge always holds a valid report.
//!
//! Run with an RSS limit (`-rss_limit_mb=512`, as the test command does): a request that
//! makes the merge allocate without bound is a finding, like a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // Automerge panics on some crafted changes and the merge catches them (see the
    // apply_changes target): restore the default hook in place of libFuzzer's
    // abort-on-any-panic one; a panic that escapes still aborts.
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    if let Ok(request) = app::protocol::decode_request(data) {
        let again = serde_json::to_vec(&request).expect("a decoded request encodes");
        assert_eq!(app::protocol::decode_request(&again).as_ref(), Ok(&request));
    }
    app::merge::fuzz_one_request(data);
});
