//! What a device knows about reaching the server, and when it tries again. Pure: the
//! browser crate feeds it events (the browser's hints, the outcome of each request) and a
//! random number, and shows what it says.
//!
//! `navigator.onLine` only says whether a network interface is up. On a captive portal, a
//! dead Wi-Fi or one bar in a yard it says "online" while nothing gets through, and some
//! browsers say so even with the network switched off. So the browser's word is a hint
//! that triggers a check; only a request tells whether the server can be reached:
//!
//! * [`Connectivity`] is what the sync bar shows, moved by [`Signal`]s in the order they
//!   happen ([`Connectivity::after`]).
//! * [`Backoff`] spaces the retries after a failure: jittered, doubling from
//!   [`FIRST_RETRY_MS`] up to [`MAX_RETRY_MS`], reset by a success.

/// The first retry after a failure comes within this many milliseconds.
pub const FIRST_RETRY_MS: u32 = 2_000;
/// Retries are never further apart than this.
pub const MAX_RETRY_MS: u32 = 60_000;
/// A small request that has not been answered within this many milliseconds is abandoned
/// and counts as the server not being reached; larger ones get longer
/// ([`request_deadline_ms`]).
pub const REQUEST_TIMEOUT_MS: u32 = 30_000;
/// The slowest uplink a request is given time for, in bytes per millisecond (4 KB/s,
/// about a GPRS uplink): on one bar a large first sync is slow, not hung.
pub const SLOWEST_LINK_BYTES_PER_MS: usize = 4;
/// No request is given longer than this (ten minutes).
pub const MAX_REQUEST_DEADLINE_MS: u32 = 600_000;

/// How long a request whose body is `body_bytes` long may take before it is abandoned:
/// [`REQUEST_TIMEOUT_MS`] for the answer, plus the time the body takes to send at
/// [`SLOWEST_LINK_BYTES_PER_MS`], at most [`MAX_REQUEST_DEADLINE_MS`].
#[must_use]
pub fn request_deadline_ms(body_bytes: usize) -> u32 {
    let sending = u32::try_from(body_bytes / SLOWEST_LINK_BYTES_PER_MS).unwrap_or(u32::MAX);
    REQUEST_TIMEOUT_MS
        .saturating_add(sending)
        .min(MAX_REQUEST_DEADLINE_MS)
}

/// Whether the server can be reached, as far as the device knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    /// Nothing tried yet since the page opened (and the browser does not say offline).
    Checking,
    /// The last request reached the server.
    Online,
    /// The last request failed at the network level or timed out, although the browser
    /// claims a connection (captive portal, dead Wi-Fi, server down).
    Unreachable,
    /// The browser says it has no network.
    Offline,
}

/// Something that tells the device about its connection, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The browser says the network went away (`offline` event).
    BrowserOffline,
    /// The browser says the network is back (`online` event): worth a check, no proof.
    BrowserOnline,
    /// A request got an answer from the server (any HTTP status: it was reached).
    Reached,
    /// A request failed at the network level or timed out; `browser_online` is what
    /// `navigator.onLine` said at that moment.
    NotReached {
        /// Whether the browser claimed a connection when the request failed.
        browser_online: bool,
    },
}

impl Connectivity {
    /// Where a page starts: offline if the browser says so, else not known yet.
    #[must_use]
    pub fn initial(browser_online: bool) -> Self {
        if browser_online {
            Self::Checking
        } else {
            Self::Offline
        }
    }

    /// What the device knows after `signal`.
    #[must_use]
    pub fn after(self, signal: Signal) -> Self {
        match signal {
            Signal::BrowserOffline => Self::Offline,
            // The browser's word alone never makes the device "online": check first.
            Signal::BrowserOnline if self == Self::Offline => Self::Checking,
            Signal::BrowserOnline => self,
            Signal::Reached => Self::Online,
            Signal::NotReached { browser_online: true } => Self::Unreachable,
            Signal::NotReached {
                browser_online: false,
            } => Self::Offline,
        }
    }

    /// The words on the sync bar's badge.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Checking => "Checking…",
            Self::Online => "Online",
            Self::Unreachable => "Can't reach the server",
            Self::Offline => "Offline",
        }
    }

    /// The badge's CSS classes.
    #[must_use]
    pub fn class(self) -> &'static str {
        match self {
            Self::Checking => "pill pill-checking",
            Self::Online => "pill pill-online",
            Self::Unreachable => "pill pill-unreachable",
            Self::Offline => "pill pill-offline",
        }
    }
}

/// How long to wait before the next try, after consecutive failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// No failures yet.
    #[must_use]
    pub const fn new() -> Self {
        Self { failures: 0 }
    }

    /// How many tries in a row have failed.
    #[must_use]
    pub fn failures(self) -> u32 {
        self.failures
    }

    /// Counts a failure and returns the milliseconds to wait before the next try.
    /// `jitter` (in `0.0..1.0`, from the device's random source) places the wait in the
    /// upper half of the current step, so devices that lost the network together do not
    /// all come back at the same instant: the n-th failure in a row waits between half
    /// and all of `FIRST_RETRY_MS · 2ⁿ⁻¹`, capped at [`MAX_RETRY_MS`].
    #[must_use]
    pub fn failed(&mut self, jitter: f64) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(16);
        let step = FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS);
        let half = step / 2;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "jitter is in 0..=1, so the product is in 0..=half"
        )]
        let extra = (f64::from(half) * jitter) as u32;
        half + extra.min(half)
    }

    /// A try succeeded: the next failure starts from the first step again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// "Next try in 12 s": when the next try is, `ms` from now, rounded up to a second.
#[must_use]
pub fn next_try_label(ms: i64) -> String {
    match (ms.max(0) + 999) / 1_000 {
        0 => "Trying again now".to_owned(),
        seconds => format!("Next try in {seconds} s"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_a_request_makes_the_device_online() {
        use Connectivity::*;
        // The browser claims a connection: not known until a request says.
        assert_eq!(Connectivity::initial(true), Checking);
        assert_eq!(Connectivity::initial(false), Offline);
        assert_eq!(Checking.after(Signal::Reached), Online);
        // Lie-fi: the browser says online, the request fails.
        let lie = Checking.after(Signal::NotReached { browser_online: true });
        assert_eq!(lie, Unreachable);
        assert_eq!(lie.label(), "Can't reach the server");
        // An `online` event is a hint: it does not undo what a failed request showed...
        assert_eq!(Unreachable.after(Signal::BrowserOnline), Unreachable);
        // ...and after "offline" it means "check", not "online".
        assert_eq!(Offline.after(Signal::BrowserOnline), Checking);
        assert_eq!(Online.after(Signal::BrowserOnline), Online);
        // The browser saying offline is believed at once, whatever came before.
        for from in [Checking, Online, Unreachable, Offline] {
            assert_eq!(from.after(Signal::BrowserOffline), Offline);
            assert_eq!(from.after(Signal::Reached), Online);
            assert_eq!(
                from.after(Signal::NotReached {
                    browser_online: false
                }),
                Offline
            );
        }
        assert_eq!(
            Online.after(Signal::NotReached { browser_online: true }),
            Unreachable
        );
    }

    #[test]
    fn retries_double_from_two_seconds_to_a_minute_and_reset_on_success() {
        let mut top = Backoff::new();
        let uppers: Vec<u32> = (0..8).map(|_| top.failed(1.0)).collect();
        assert_eq!(
            uppers,
            [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        let mut bottom = Backoff::new();
        let lowers: Vec<u32> = (0..7).map(|_| bottom.failed(0.0)).collect();
        assert_eq!(lowers, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(bottom.failures(), 7);
        bottom.succeeded();
        assert_eq!(bottom.failures(), 0);
        assert_eq!(bottom.failed(1.0), FIRST_RETRY_MS);
        // A broken random source still gives a sane wait.
        assert_eq!(Backoff::new().failed(f64::NAN), 1_000);
    }

    #[test]
    fn a_large_request_on_a_slow_link_is_slow_not_hung() {
        assert_eq!(request_deadline_ms(0), REQUEST_TIMEOUT_MS);
        assert_eq!(request_deadline_ms(3_000), 30_750);
        // A first sync of 200 reports (about 540 KB of JSON) gets 165 s.
        assert_eq!(request_deadline_ms(540_000), 165_000);
        assert_eq!(request_deadline_ms(usize::MAX), MAX_REQUEST_DEADLINE_MS);
    }

    #[test]
    fn the_bar_says_when_the_next_try_is() {
        assert_eq!(next_try_label(12_000), "Next try in 12 s");
        assert_eq!(next_try_label(11_001), "Next try in 12 s");
        assert_eq!(next_try_label(59_500), "Next try in 60 s");
        assert_eq!(next_try_label(0), "Trying again now");
        assert_eq!(next_try_label(-5), "Trying again now");
    }

    proptest! {
        /// Whatever the failures and the random numbers, each wait lies in the upper half
        /// of its step, never exceeds the cap, and never shrinks before a success.
        #[test]
        fn waits_stay_within_their_step(jitters in proptest::collection::vec(0.0f64..1.0, 1..40)) {
            let mut backoff = Backoff::new();
            let mut floor = 0;
            for (n, jitter) in jitters.into_iter().enumerate() {
                let wait = backoff.failed(jitter);
                let step = FIRST_RETRY_MS.saturating_mul(1 << n.min(16)).min(MAX_RETRY_MS);
                prop_assert!(wait >= step / 2 && wait <= step, "wait {wait} for step {step}");
                prop_assert!(wait <= MAX_RETRY_MS);
                prop_assert!(step / 2 >= floor);
                floor = step / 2;
            }
        }
    }
}
