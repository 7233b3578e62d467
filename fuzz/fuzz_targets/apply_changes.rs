//! Automerge changes applied to a stored document, as the server merges a push: any bytes
//! are merged or refused with a reason; an accepted merge always holds a valid report.
//!
//! The property is the server's: `merge_push` never lets a panic out. Automerge 0.12 itself
//! panics on some crafted changes (see `corpus/apply_changes/regression-*`), which
//! `merge_push` catches and turns into a refusal, so this target restores the default panic
//! hook in place of libFuzzer's abort-on-any-panic hook; a panic that escapes `merge_push`
//! still aborts and is reported as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    app::merge::fuzz_one_push(data);
});
