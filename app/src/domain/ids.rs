//! Ids and time: a report's id (a UUIDv7 made on the device) and a point in time
//! (milliseconds since the Unix epoch, UTC), with the calendar arithmetic they need.

use std::fmt;
use std::str::FromStr;

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a report: a UUIDv7 made on the device that first saved it, so retries and
/// replays can never create a second copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile)]
#[serde(transparent)]
pub struct ReportId(pub Uuid);

impl ReportId {
    /// A new id for a report first saved at `at`, with `random` as its random bits.
    ///
    /// The caller supplies the randomness so that this module stays deterministic.
    #[must_use]
    pub fn new_v7(at: Timestamp, random: [u8; 10]) -> Self {
        let millis = u64::try_from(at.0).unwrap_or(0);
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ReportId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Whole seconds since the epoch (Automerge change times are in seconds).
    #[must_use]
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `YYYY-MM-DD HH:MM UTC`, for display.
    #[must_use]
    pub fn display_utc(self) -> String {
        let secs = self.as_secs();
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
            rem / 3600,
            (rem % 3600) / 60
        )
    }
}

impl Timestamp {
    /// The last millisecond (UTC) of a `YYYY-MM-DD` day: a due date means "by the end of
    /// that day".
    #[must_use]
    pub fn end_of_day(date: &str) -> Option<Self> {
        let mut parts = date.trim().splitn(3, '-');
        let y: i64 = parts.next()?.parse().ok()?;
        let m: u32 = parts.next()?.parse().ok()?;
        let d: u32 = parts.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
            return None;
        }
        let days = days_from_civil(y, m, d);
        // Refuse days that do not exist (31 April): they do not round-trip.
        (civil_from_days(days) == (y, m, d)).then(|| Self((days + 1) * 86_400_000 - 1))
    }

    /// The same time of day `months` calendar months later (UTC), on the month's last day
    /// when it is shorter.
    #[must_use]
    pub fn add_months(self, months: u32) -> Self {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let index = i64::from(m - 1) + i64::from(months);
        let (y, m) = (
            y + index.div_euclid(12),
            u32::try_from(index.rem_euclid(12)).unwrap_or(0) + 1,
        );
        let last = (28..=31)
            .rev()
            .find(|d| civil_from_days(days_from_civil(y, m, *d)) == (y, m, *d))
            .unwrap_or(28);
        Self(days_from_civil(y, m, d.min(last)) * 86_400_000 + ms_of_day)
    }

    /// The UTC day as `YYYY-MM-DD` (for `<input type="date">`).
    #[must_use]
    pub fn date(self) -> String {
        let (y, m, d) = civil_from_days(self.as_secs().div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Converts a proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12 by construction.
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_the_end_of_their_day() {
        let due = Timestamp::end_of_day("2024-02-29").unwrap();
        assert_eq!(due.display_utc(), "2024-02-29 23:59 UTC");
        assert_eq!(due.date(), "2024-02-29");
        assert_eq!(Timestamp(due.0 + 1).date(), "2024-03-01");
        assert_eq!(Timestamp::end_of_day("2023-02-29"), None, "not a leap year");
        assert_eq!(Timestamp::end_of_day("2024-13-01"), None);
        assert_eq!(Timestamp::end_of_day("soon"), None);
    }

    #[test]
    fn timestamps_display_in_utc() {
        assert_eq!(Timestamp(0).display_utc(), "1970-01-01 00:00 UTC");
        assert_eq!(Timestamp(1_709_210_096_000).display_utc(), "2024-02-29 12:34 UTC");
    }

    #[test]
    fn report_ids_are_v7_and_ordered_by_time() {
        let a = ReportId::new_v7(Timestamp(1_000), [1; 10]);
        let b = ReportId::new_v7(Timestamp(2_000), [0; 10]);
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().parse::<ReportId>().unwrap(), a);
    }
}
