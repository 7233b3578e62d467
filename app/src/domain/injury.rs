//! What an injury or illness report adds: the OSHA Form 301 ("Injury and Illness Incident
//! Report") details, which are privacy-sensitive, and the witnesses of any incident.
//!
//! Form 301's date and time of the event are the report's `occurred_at`, and its
//! "what happened" narrative is the report's own; the rest is [`Injury`]. Who may read the
//! injury details is [`super::access::Viewer::can_read_private`].

use serde::{Deserialize, Serialize};

use super::validation::{MAX_SHORT, MAX_TEXT};
use super::{FieldError, Outcome, Timestamp};

/// The most witnesses a report lists.
pub const MAX_WITNESSES: usize = 50;

/// The gravest treatment the employee received (Form 301, items 16 and 17).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// Not said yet.
    #[default]
    #[serde(rename = "")]
    NotSaid,
    /// First aid only.
    FirstAid,
    /// Treated in an emergency room.
    EmergencyRoom,
    /// Hospitalised overnight as an in-patient.
    HospitalisedOvernight,
}

keyed!(Treatment {
    NotSaid = "", "Not known yet";
    FirstAid = "first_aid", "First aid only";
    EmergencyRoom = "emergency_room", "Treated in an emergency room";
    HospitalisedOvernight = "hospitalised_overnight", "Hospitalised overnight as an in-patient";
});

/// The OSHA Form 301 details of an injury or illness. Privacy-sensitive: shown only to the
/// reporter, the team's supervisors and administrators, and never exported or sent out.
/// Every part may be empty while it is not known yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injury {
    /// The injured or ill employee's full name.
    pub employee: String,
    /// Their job title.
    pub job_title: String,
    /// When they began work that day, `HH:MM` on a 24-hour clock.
    pub work_began: String,
    /// What they were doing just before the incident.
    pub activity: String,
    /// How the injury or illness occurred.
    pub how: String,
    /// The injury or illness, and how it affected them.
    pub injury: String,
    /// The part of the body affected.
    pub body_part: String,
    /// The object or substance that directly harmed them.
    pub object: String,
    /// The gravest treatment received.
    pub treatment: Treatment,
    /// The date of death (`YYYY-MM-DD`), if they died.
    pub died_on: String,
}

impl Injury {
    /// The free-text parts as (stored key, label, text), in form order.
    #[must_use]
    pub fn texts(&self) -> [(&'static str, &'static str, &str); 9] {
        [
            ("employee", "Employee's full name", &self.employee),
            ("job_title", "Job title", &self.job_title),
            ("work_began", "Time the employee began work", &self.work_began),
            (
                "activity",
                "What was the employee doing just before?",
                &self.activity,
            ),
            ("how", "How did the injury or illness occur?", &self.how),
            ("injury", "What was the injury or illness?", &self.injury),
            ("body_part", "Part of the body affected", &self.body_part),
            (
                "object",
                "Object or substance that harmed the employee",
                &self.object,
            ),
            ("died_on", "Date of death, if the employee died", &self.died_on),
        ]
    }

    /// The free-text part stored under `key`, to write.
    pub fn text_mut(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "employee" => &mut self.employee,
            "job_title" => &mut self.job_title,
            "work_began" => &mut self.work_began,
            "activity" => &mut self.activity,
            "how" => &mut self.how,
            "injury" => &mut self.injury,
            "body_part" => &mut self.body_part,
            "object" => &mut self.object,
            "died_on" => &mut self.died_on,
            _ => return None,
        })
    }

    /// Whether nothing is filled in.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Every rule the details must satisfy given the report's `outcome`, as field errors
    /// named `injury.<key>` (appended to `errors`). A death or an overnight stay must be
    /// the outcome too, so the regulatory clock runs.
    pub(crate) fn check(&self, outcome: Outcome, now: Timestamp, errors: &mut Vec<FieldError>) {
        let mut fail = |key: &str, message: String| {
            errors.push(FieldError {
                field: format!("injury.{key}"),
                message,
            });
        };
        for (key, _, text) in self.texts() {
            let limit = if matches!(key, "activity" | "how" | "injury") {
                MAX_TEXT
            } else {
                MAX_SHORT
            };
            if text.chars().count() > limit {
                fail(key, format!("Keep this under {limit} characters."));
            }
        }
        if !self.work_began.is_empty() && !is_clock_time(&self.work_began) {
            fail(
                "work_began",
                "Give the time as hours and minutes, like 07:30.".into(),
            );
        }
        if !self.died_on.is_empty() {
            match Timestamp::end_of_day(&self.died_on) {
                None => fail("died_on", "Give the date of death as a real date.".into()),
                Some(day) if day.0 - 86_399_999 > now.0.saturating_add(86_400_000) => {
                    fail("died_on", "The date of death cannot be in the future.".into());
                }
                Some(_) if outcome != Outcome::Fatality => fail(
                    "died_on",
                    "A date of death is given: set the outcome to \"Someone died\" so the 8-hour clock runs."
                        .into(),
                ),
                Some(_) => {}
            }
        }
        if self.treatment == Treatment::HospitalisedOvernight && outcome == Outcome::None {
            fail(
                "treatment",
                "Hospitalised overnight: set the outcome to at least an in-patient stay so the 24-hour clock runs."
                    .into(),
            );
        }
    }
}

/// Whether `text` is `HH:MM` on a 24-hour clock.
fn is_clock_time(text: &str) -> bool {
    let Some((h, m)) = text.split_once(':') else {
        return false;
    };
    h.len() == 2
        && m.len() == 2
        && h.parse::<u8>().is_ok_and(|h| h < 24)
        && m.parse::<u8>().is_ok_and(|m| m < 60)
        && text.bytes().filter(u8::is_ascii_digit).count() == 4
}

/// Someone who saw the incident. In the document each witness is one scalar string, and
/// the list merges as a set: changing a witness replaces the entry, so concurrent changes
/// keep both versions rather than losing one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Witness {
    /// Their name.
    pub name: String,
    /// How to reach them (phone, email, where they work).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// What they saw, in their words or as told.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub statement: String,
}

/// Every rule the witnesses must satisfy (appended to `errors` as `witnesses`).
pub(crate) fn check_witnesses(witnesses: &[Witness], errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| {
        errors.push(FieldError {
            field: "witnesses".to_owned(),
            message,
        });
    };
    if witnesses.len() > MAX_WITNESSES {
        fail(format!("List at most {MAX_WITNESSES} witnesses."));
    }
    if witnesses.iter().any(|w| w.name.trim().is_empty()) {
        fail("Give each witness's name, or remove the witness.".into());
    }
    if witnesses.iter().any(|w| {
        w.name.chars().count() > MAX_SHORT
            || w.contact.chars().count() > MAX_SHORT
            || w.statement.chars().count() > MAX_TEXT
    }) {
        fail(format!(
            "Keep each witness's name and contact under {MAX_SHORT} characters and what they saw under {MAX_TEXT}."
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_709_210_096_000); // 2024-02-29 12:34 UTC

    fn errors(injury: &Injury, outcome: Outcome) -> Vec<String> {
        let mut found = Vec::new();
        injury.check(outcome, NOW, &mut found);
        found.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn an_empty_injury_record_is_fine_while_details_are_gathered() {
        assert!(errors(&Injury::default(), Outcome::None).is_empty());
    }

    #[test]
    fn the_time_work_began_is_a_24_hour_clock_time() {
        for ok in ["00:00", "07:30", "23:59"] {
            let injury = Injury {
                work_began: ok.into(),
                ..Injury::default()
            };
            assert!(errors(&injury, Outcome::None).is_empty(), "{ok}");
        }
        for bad in ["24:00", "7:30", "07:60", "0730", "+7:30", "ab:cd", "07:3 "] {
            let injury = Injury {
                work_began: bad.into(),
                ..Injury::default()
            };
            assert_eq!(errors(&injury, Outcome::None), ["injury.work_began"], "{bad}");
        }
    }

    #[test]
    fn a_death_or_an_overnight_stay_must_start_the_regulatory_clock() {
        let died = Injury {
            died_on: "2024-02-28".into(),
            ..Injury::default()
        };
        assert_eq!(errors(&died, Outcome::Hospitalised), ["injury.died_on"]);
        assert!(errors(&died, Outcome::Fatality).is_empty());
        let stayed = Injury {
            treatment: Treatment::HospitalisedOvernight,
            ..Injury::default()
        };
        assert_eq!(errors(&stayed, Outcome::None), ["injury.treatment"]);
        for outcome in [
            Outcome::Hospitalised,
            Outcome::Amputation,
            Outcome::EyeLoss,
            Outcome::Fatality,
        ] {
            assert!(errors(&stayed, outcome).is_empty(), "{outcome:?}");
        }
    }

    #[test]
    fn a_date_of_death_is_a_real_day_not_in_the_future() {
        for (date, ok) in [
            ("2024-02-29", true),
            ("2024-03-01", true),
            ("2024-03-02", false),
            ("2023-02-29", false),
            ("yesterday", false),
        ] {
            let injury = Injury {
                died_on: date.into(),
                ..Injury::default()
            };
            assert_eq!(errors(&injury, Outcome::Fatality).is_empty(), ok, "{date}");
        }
    }

    #[test]
    fn long_texts_are_refused_by_field() {
        let injury = Injury {
            body_part: "x".repeat(MAX_SHORT + 1),
            how: "x".repeat(MAX_TEXT),
            ..Injury::default()
        };
        assert_eq!(errors(&injury, Outcome::None), ["injury.body_part"]);
    }

    #[test]
    fn treatments_round_trip_through_their_keys() {
        for t in Treatment::ALL {
            assert_eq!(Treatment::from_key(t.as_str()), Some(*t));
        }
    }

    #[test]
    fn witnesses_need_a_name_and_bounded_text() {
        let check = |w: &[Witness]| {
            let mut found = Vec::new();
            check_witnesses(w, &mut found);
            found.len()
        };
        let ok = Witness {
            name: "Bo".into(),
            ..Witness::default()
        };
        assert_eq!(check(std::slice::from_ref(&ok)), 0);
        assert_eq!(check(&[Witness::default()]), 1);
        assert_eq!(check(&vec![ok.clone(); MAX_WITNESSES + 1]), 1);
        let long = Witness {
            statement: "x".repeat(MAX_TEXT + 1),
            ..ok
        };
        assert_eq!(check(&[long]), 1);
    }
}
