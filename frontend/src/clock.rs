//! The browser's clock.

use app::domain::Timestamp;

/// Milliseconds since the epoch, from the browser clock.
#[must_use]
pub fn now() -> Timestamp {
    #[allow(clippy::cast_possible_truncation)]
    Timestamp(js_sys::Date::now() as i64)
}
