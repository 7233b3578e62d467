//! Where an incident happened: a GPS fix, a typed place, or both.

use std::fmt;
use std::str::FromStr;

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

/// A satellite position fix, as the device's Geolocation API gave it.
///
/// Stored in the document as one scalar (`"lat lon accuracy"`), so that two concurrent
/// fixes conflict as a whole instead of mixing one fix's latitude with another's longitude.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    /// Degrees north, -90..=90.
    pub latitude: f64,
    /// Degrees east, -180..=180.
    pub longitude: f64,
    /// Radius of the 68% confidence circle, in metres.
    pub accuracy_m: f64,
}

impl fmt::Display for GpsFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.latitude, self.longitude, self.accuracy_m)
    }
}

impl FromStr for GpsFix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(' ').map(number);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(latitude)), Some(Some(longitude)), Some(Some(accuracy_m)), None) => Ok(Self {
                latitude,
                longitude,
                accuracy_m,
            }),
            _ => Err(format!("not a GPS fix: `{s}`")),
        }
    }
}

/// One number of a fix, as `Display` for `f64` writes it. Read by serde_json (built with
/// `float_roundtrip`, so correctly rounded, and already in the phone's bundle) rather than
/// `str::parse`, whose tables add kilobytes to the phone's download; JSON's whitespace is
/// refused here as `str::parse` refuses it.
fn number(text: &str) -> Option<f64> {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        .then(|| serde_json::from_str(text).ok())
        .flatten()
}

impl Reconcile for GpsFix {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

/// Where the incident happened: a GPS fix, a place typed by the reporter, or both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Reconcile)]
pub struct Location {
    /// The device's position fix, if the reporter used it.
    pub gps: Option<GpsFix>,
    /// A place as people name it ("Loading bay 3, north gate"). May be empty if `gps` is set.
    pub place: String,
}

impl Location {
    /// One line for lists: the place, else the coordinates.
    #[must_use]
    pub fn summary(&self) -> String {
        match (&self.gps, self.place.trim()) {
            (_, place) if !place.is_empty() => place.to_owned(),
            (Some(fix), _) => format!(
                "{:.5}, {:.5} (±{:.0} m)",
                fix.latitude, fix.longitude, fix.accuracy_m
            ),
            (None, _) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_fix_text_round_trips() {
        let fix = GpsFix {
            latitude: -33.868_82,
            longitude: 151.209_29,
            accuracy_m: 12.5,
        };
        assert_eq!(fix.to_string().parse::<GpsFix>(), Ok(fix));
        assert!("1 2".parse::<GpsFix>().is_err());
        assert!("1 2 3 4".parse::<GpsFix>().is_err());
        assert!("1 2\t 3".parse::<GpsFix>().is_err());
        assert!("1 2 3\n".parse::<GpsFix>().is_err());
        assert!("NaN 2 3".parse::<GpsFix>().is_err());
    }

    proptest::proptest! {
        /// Every fix reads back bit for bit, so a device that reads a report and writes it
        /// back never changes its location by a rounding step.
        #[test]
        fn any_fix_reads_back_exactly(
            latitude in -90.0f64..=90.0,
            longitude in -180.0f64..=180.0,
            accuracy_m in proptest::num::f64::POSITIVE | proptest::num::f64::ZERO,
        ) {
            let fix = GpsFix { latitude, longitude, accuracy_m };
            let read: GpsFix = fix.to_string().parse().map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!(read.latitude.to_bits(), latitude.to_bits());
            proptest::prop_assert_eq!(read.longitude.to_bits(), longitude.to_bits());
            proptest::prop_assert_eq!(read.accuracy_m.to_bits(), accuracy_m.to_bits());
        }
    }
}
