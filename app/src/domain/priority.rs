//! Prioritisation: a priority P1–P5 from impact × urgency, and the regulatory clocks that
//! make a report P1 whatever the matrix says.
//!
//! The one place these rules live: the device's form, the server's projection and the
//! desk all ask here.
//!
//! | impact \ urgency | high | medium | low |
//! | --- | --- | --- | --- |
//! | high | P1 | P2 | P3 |
//! | medium | P2 | P3 | P4 |
//! | low | P3 | P4 | P5 |
//!
//! "Not sure" counts as high: when unsure, the worse value.
//!
//! Regulatory clocks (US OSHA, 29 CFR 1904.39): a work-related fatality must be reported
//! within 8 hours, an in-patient hospitalisation, an amputation or the loss of an eye within
//! 24 hours. The clock is counted from when the incident occurred (the law counts from when
//! the employer learns of it, which is never earlier), and such a report is P1.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

use super::Timestamp;

/// How widely or badly an incident affects people, operations or the environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// Many people, a whole site or serious harm.
    #[autosurgeon(rename = "high")]
    High,
    /// A team, an area or harm that needs treatment.
    #[autosurgeon(rename = "medium")]
    Medium,
    /// One person or item, little or no harm.
    #[autosurgeon(rename = "low")]
    Low,
    /// The reporter could not judge it (or no one has yet): counted as high.
    #[default]
    #[autosurgeon(rename = "unsure")]
    Unsure,
}

/// How soon something must be done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Harm is ongoing or could happen again any moment.
    #[autosurgeon(rename = "high")]
    High,
    /// It must be dealt with today.
    #[autosurgeon(rename = "medium")]
    Medium,
    /// It can wait for planned work.
    #[autosurgeon(rename = "low")]
    Low,
    /// The reporter could not judge it (or no one has yet): counted as high.
    #[default]
    #[autosurgeon(rename = "unsure")]
    Unsure,
}

macro_rules! keyed_levels {
    ($t:ident) => {
        impl $t {
            /// Every value, in the order a form lists them.
            pub const ALL: [$t; 4] = [Self::High, Self::Medium, Self::Low, Self::Unsure];

            /// The stored key.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::High => "high",
                    Self::Medium => "medium",
                    Self::Low => "low",
                    Self::Unsure => "unsure",
                }
            }

            /// A value from its stored key.
            #[must_use]
            pub fn from_key(key: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == key)
            }

            /// How grave a value is, for picking the worst of concurrent ones: high, then
            /// unsure (counted as high, but a judgement beats none), then medium, then low.
            #[must_use]
            pub fn gravity(self) -> u8 {
                match self {
                    Self::High => 4,
                    Self::Unsure => 3,
                    Self::Medium => 2,
                    Self::Low => 1,
                }
            }

            /// 0 (high) to 2 (low), unsure counting as high: the row or column of the matrix.
            fn index(self) -> usize {
                match self {
                    Self::High | Self::Unsure => 0,
                    Self::Medium => 1,
                    Self::Low => 2,
                }
            }
        }
    };
}
keyed_levels!(Impact);
keyed_levels!(Urgency);

impl Impact {
    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::High => "High: many people, a whole site, or serious harm",
            Self::Medium => "Medium: a team or area, or harm needing treatment",
            Self::Low => "Low: one person or item, little or no harm",
            Self::Unsure => "Not sure (treated as high)",
        }
    }
}

impl Urgency {
    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::High => "High: ongoing, or could happen again any moment",
            Self::Medium => "Medium: must be dealt with today",
            Self::Low => "Low: can wait for planned work",
            Self::Unsure => "Not sure (treated as high)",
        }
    }
}

/// The response priority, P1 (drop everything) to P5 (planned work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    /// Respond now; supervisors are notified.
    P1,
    /// Respond within the hour; supervisors are notified.
    P2,
    /// Respond today.
    P3,
    /// Respond this week.
    P4,
    /// Planned work.
    P5,
}

/// Impact (rows) × urgency (columns), as in the module table.
const MATRIX: [[Priority; 3]; 3] = [
    [Priority::P1, Priority::P2, Priority::P3],
    [Priority::P2, Priority::P3, Priority::P4],
    [Priority::P3, Priority::P4, Priority::P5],
];

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [Self::P1, Self::P2, Self::P3, Self::P4, Self::P5];

    /// The priority of an incident with this impact and urgency, and no regulatory clock.
    #[must_use]
    pub fn of(impact: Impact, urgency: Urgency) -> Self {
        MATRIX[impact.index()][urgency.index()]
    }

    /// 1 to 5, for sorting (also in SQL) and display.
    #[must_use]
    pub fn rank(self) -> i64 {
        match self {
            Self::P1 => 1,
            Self::P2 => 2,
            Self::P3 => 3,
            Self::P4 => 4,
            Self::P5 => 5,
        }
    }

    /// `P1` … `P5`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
            Self::P5 => "P5",
        }
    }

    /// The priority of a rank (1 to 5), as [`Priority::rank`] gives it.
    #[must_use]
    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == rank)
    }

    /// Whether the team's supervisors are told at once (P1 and P2).
    #[must_use]
    pub fn escalates(self) -> bool {
        self <= Self::P2
    }
}

/// The gravest outcome for a person, as far as the law's reporting duties go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// None of the below (or not an injury).
    #[default]
    #[autosurgeon(rename = "none")]
    None,
    /// Admitted to hospital as an in-patient.
    #[autosurgeon(rename = "hospitalised")]
    Hospitalised,
    /// An amputation.
    #[autosurgeon(rename = "amputation")]
    Amputation,
    /// The loss of an eye.
    #[autosurgeon(rename = "eye_loss")]
    EyeLoss,
    /// Someone died.
    #[autosurgeon(rename = "fatality")]
    Fatality,
}

impl Outcome {
    /// Every outcome, in the order a form lists them.
    pub const ALL: [Outcome; 5] = [
        Self::None,
        Self::Hospitalised,
        Self::Amputation,
        Self::EyeLoss,
        Self::Fatality,
    ];

    /// The stored key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Hospitalised => "hospitalised",
            Self::Amputation => "amputation",
            Self::EyeLoss => "eye_loss",
            Self::Fatality => "fatality",
        }
    }

    /// An outcome from its stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == key)
    }

    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "None of these",
            Self::Hospitalised => "Admitted to hospital (in-patient)",
            Self::Amputation => "Amputation",
            Self::EyeLoss => "Loss of an eye",
            Self::Fatality => "Fatality",
        }
    }

    /// How grave an outcome is, for picking the worst of concurrent ones.
    #[must_use]
    pub fn gravity(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Hospitalised => 1,
            Self::Amputation => 2,
            Self::EyeLoss => 3,
            Self::Fatality => 4,
        }
    }

    /// How long the law allows before this must be reported to the authority, if at all.
    #[must_use]
    pub fn reporting_window_ms(self) -> Option<i64> {
        const HOUR: i64 = 3_600_000;
        match self {
            Self::None => None,
            Self::Fatality => Some(8 * HOUR),
            Self::Hospitalised | Self::Amputation | Self::EyeLoss => Some(24 * HOUR),
        }
    }
}

/// A legal deadline for reporting an incident to the authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// What triggered it.
    pub outcome: Outcome,
    /// When the report to the authority is due.
    pub due: Timestamp,
}

impl Clock {
    /// The clock an incident with `outcome` that occurred at `occurred_at` runs, if any.
    #[must_use]
    pub fn of(outcome: Outcome, occurred_at: Timestamp) -> Option<Self> {
        outcome.reporting_window_ms().map(|window| Self {
            outcome,
            due: Timestamp(occurred_at.0.saturating_add(window)),
        })
    }

    /// Milliseconds left at `now` (negative once overdue).
    #[must_use]
    pub fn remaining_ms(self, now: Timestamp) -> i64 {
        self.due.0.saturating_sub(now.0)
    }

    /// "3 h 12 min left", or "overdue by 40 min", at `now`.
    #[must_use]
    pub fn describe(self, now: Timestamp) -> String {
        let left = self.remaining_ms(now);
        let minutes = left.unsigned_abs().div_ceil(60_000);
        let (h, m) = (minutes / 60, minutes % 60);
        let span = match (h, m) {
            (0, m) => format!("{m} min"),
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        };
        if left >= 0 {
            format!("{span} left")
        } else {
            format!("overdue by {span}")
        }
    }
}

/// An incident's priority: P1 whenever a regulatory clock runs, otherwise the matrix.
#[must_use]
pub fn priority(impact: Impact, urgency: Urgency, outcome: Outcome) -> Priority {
    if outcome.reporting_window_ms().is_some() {
        Priority::P1
    } else {
        Priority::of(impact, urgency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_cell_by_cell() {
        use Impact as I;
        use Priority::*;
        use Urgency as U;
        let table = [
            (I::High, U::High, P1),
            (I::High, U::Medium, P2),
            (I::High, U::Low, P3),
            (I::Medium, U::High, P2),
            (I::Medium, U::Medium, P3),
            (I::Medium, U::Low, P4),
            (I::Low, U::High, P3),
            (I::Low, U::Medium, P4),
            (I::Low, U::Low, P5),
            // When unsure, the worse value.
            (I::Unsure, U::High, P1),
            (I::Unsure, U::Medium, P2),
            (I::Unsure, U::Low, P3),
            (I::High, U::Unsure, P1),
            (I::Medium, U::Unsure, P2),
            (I::Low, U::Unsure, P3),
            (I::Unsure, U::Unsure, P1),
        ];
        for (impact, urgency, expected) in table {
            assert_eq!(
                Priority::of(impact, urgency),
                expected,
                "{impact:?} × {urgency:?}"
            );
            assert_eq!(priority(impact, urgency, Outcome::None), expected);
        }
        assert_eq!(table.len(), Impact::ALL.len() * Urgency::ALL.len(), "every cell");
    }

    #[test]
    fn a_regulatory_outcome_makes_any_report_p1_with_its_deadline() {
        let occurred = Timestamp(1_764_000_000_000);
        for (outcome, hours) in [
            (Outcome::Fatality, 8),
            (Outcome::Hospitalised, 24),
            (Outcome::Amputation, 24),
            (Outcome::EyeLoss, 24),
        ] {
            assert_eq!(priority(Impact::Low, Urgency::Low, outcome), Priority::P1);
            let clock = Clock::of(outcome, occurred).unwrap();
            assert_eq!(clock.due.0 - occurred.0, hours * 3_600_000, "{outcome:?}");
        }
        assert_eq!(Clock::of(Outcome::None, occurred), None);
        assert_eq!(priority(Impact::Low, Urgency::Low, Outcome::None), Priority::P5);
    }

    #[test]
    fn a_clock_counts_down_then_shows_how_overdue() {
        let clock = Clock::of(Outcome::Fatality, Timestamp(0)).unwrap();
        assert_eq!(clock.describe(Timestamp(0)), "8 h left");
        assert_eq!(
            clock.describe(Timestamp(4 * 3_600_000 + 48 * 60_000)),
            "3 h 12 min left"
        );
        assert_eq!(clock.describe(Timestamp(8 * 3_600_000 - 30_000)), "1 min left");
        assert_eq!(
            clock.describe(Timestamp(8 * 3_600_000 + 40 * 60_000)),
            "overdue by 40 min"
        );
        assert!(clock.remaining_ms(Timestamp(9 * 3_600_000)) < 0);
    }

    #[test]
    fn keys_round_trip_and_p1_p2_escalate() {
        for i in Impact::ALL {
            assert_eq!(Impact::from_key(i.as_str()), Some(i));
        }
        for u in Urgency::ALL {
            assert_eq!(Urgency::from_key(u.as_str()), Some(u));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_key(o.as_str()), Some(o));
        }
        let escalating: Vec<_> = Priority::ALL.into_iter().filter(|p| p.escalates()).collect();
        assert_eq!(escalating, [Priority::P1, Priority::P2]);
        assert_eq!(Impact::from_key("HIGH"), None);
    }
}
