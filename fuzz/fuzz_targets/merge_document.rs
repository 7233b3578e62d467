//! A whole Automerge document sent for a report the server has not acknowledged (how a
//! device sends a new report): any bytes are merged or refused with a reason, to a new
//! report and onto a stored one; an accepted merge always holds a valid report.
//!
//! As in `apply_changes`, panics inside Automerge are `merge_push`'s to catch, so the
//! default panic hook replaces libFuzzer's; a panic that escapes still aborts.
#![no_main]

use libfuzzer_sys::fuzz_target;

static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    app::merge::fuzz_one_document(data);
});
