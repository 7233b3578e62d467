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
        let mut parts = s.split(' ').map(str::parse::<f64>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(latitude)), Some(Ok(longitude)), Some(Ok(accuracy_m)), None) => Ok(Self {
                latitude,
                longitude,
                accuracy_m,
            }),
            _ => Err(format!("not a GPS fix: {s:?}")),
        }
    }
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
    }
}
