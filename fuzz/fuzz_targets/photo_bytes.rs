//! The photo check: any bytes are accepted as a JPEG within the limits or refused with a
//! reason, never a panic; accepted bytes always verify against the reference made from them.
#![no_main]

use app::domain::photo::{self, MAX_SIDE};
use app::domain::{PhotoRef, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((width, height)) = photo::inspect(data) {
        assert!((1..=MAX_SIDE).contains(&width) && (1..=MAX_SIDE).contains(&height));
        let named = PhotoRef::of(data, Timestamp(0)).expect("inspected bytes make a reference");
        assert_eq!(photo::verify(data, &named), Ok(()));
    }
});
