//! The incident report as a field employee files it, and the rules a report must satisfy.
//!
//! Everything here is plain data: no clock, no randomness, no IO. Callers pass the current
//! time and fresh ids in, so the rules are deterministic and testable.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

use super::priority::{Clock, Impact, Outcome, Priority, Urgency};
use super::response::Response;
use super::validation::{MAX_PEOPLE, MAX_SHORT, MAX_TEXT, MAX_TIMELINE, MAX_TITLE};
use super::workflow::Status;
use super::{Audience, Category, FieldError, INJURY_CATEGORY, Location, ReportId, TimelineEntry, Timestamp};

/// How bad the reporter judges the incident to be. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[autosurgeon(rename = "minor")]
    Minor,
    #[autosurgeon(rename = "moderate")]
    Moderate,
    #[autosurgeon(rename = "major")]
    Major,
    #[autosurgeon(rename = "critical")]
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 4] = [Self::Minor, Self::Moderate, Self::Major, Self::Critical];

    /// The stored key (also used in forms and the SQL projection).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minor => "minor",
            Self::Moderate => "moderate",
            Self::Major => "major",
            Self::Critical => "critical",
        }
    }

    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Minor => "Minor",
            Self::Moderate => "Moderate",
            Self::Major => "Major",
            Self::Critical => "Critical",
        }
    }

    /// 1 (minor) to 4 (critical), for sorting in SQL.
    #[must_use]
    pub fn rank(self) -> i64 {
        match self {
            Self::Minor => 1,
            Self::Moderate => 2,
            Self::Major => 3,
            Self::Critical => 4,
        }
    }

    /// Parses a stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == key)
    }
}

/// An incident report, version 1 of the document shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Reconcile)]
pub struct Report {
    /// Made on the device, never changed.
    pub id: ReportId,
    /// A short headline.
    pub title: String,
    /// What happened, in the reporter's words.
    pub what_happened: String,
    /// The kind of incident.
    pub category: Category,
    /// How bad the reporter judges it.
    pub severity: Severity,
    /// How widely it affects people, operations or the environment (absent from documents
    /// written before it existed: not judged, so counted as high).
    #[serde(default)]
    pub impact: Impact,
    /// How soon something must be done (absent as for `impact`).
    #[serde(default)]
    pub urgency: Urgency,
    /// The gravest outcome for a person that the law requires reporting (injuries).
    #[serde(default)]
    pub outcome: Outcome,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// When the report was first saved on the device.
    pub reported_at: Timestamp,
    /// Where it happened.
    pub location: Location,
    /// Who filed it (a name, until accounts exist).
    pub reporter: String,
    /// People involved: the injured, witnesses, others present.
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub people_involved: Vec<String>,
    /// What was done straight away.
    pub immediate_actions: String,
    /// Where the report is in the response workflow.
    pub status: Status,
    /// Dated updates, oldest first (absent from documents written before it existed).
    #[serde(default)]
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub timeline: Vec<TimelineEntry>,
    /// The response: assignment, investigation, actions and review (absent from
    /// documents written before it existed, and from new documents until someone starts
    /// the response: nothing yet).
    #[serde(default)]
    #[autosurgeon(reconcile = "super::response::reconcile_if_started")]
    pub response: Response,
    /// Steps of the category's response plan ticked done while reporting, in the order
    /// they were ticked (absent from documents written before plans: none).
    #[serde(default)]
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub plan_ticks: Vec<super::plan::PlanTick>,
    /// The OSHA Form 301 details of an injury or illness: privacy-sensitive (empty for
    /// other categories, and absent from documents written before them).
    #[serde(default)]
    pub injury: super::Injury,
    /// Who saw it (absent from documents written before witnesses: none).
    #[serde(default)]
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub witnesses: Vec<super::Witness>,
    /// The photos taken of it, in the order they were added; never removed (absent from
    /// documents written before photos: none). The bytes travel separately.
    #[serde(default)]
    #[autosurgeon(reconcile = "super::photo::reconcile_if_any")]
    pub photos: Vec<super::PhotoRef>,
    /// The drill it was filed in, for a drill report; none for a real incident. Written
    /// only when the report is created (the write policy's `drill` row), so a report's kind
    /// never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[autosurgeon(reconcile = "super::drill::reconcile_drill")]
    pub drill: Option<uuid::Uuid>,
}

impl Report {
    /// A blank report that a form starts from.
    #[must_use]
    pub fn blank(id: ReportId, now: Timestamp, reporter: &str) -> Self {
        Self {
            id,
            title: String::new(),
            what_happened: String::new(),
            category: Category::new("other"),
            severity: Severity::Minor,
            impact: Impact::Unsure,
            urgency: Urgency::Unsure,
            outcome: Outcome::None,
            occurred_at: now,
            reported_at: now,
            location: Location::default(),
            reporter: reporter.to_owned(),
            people_involved: Vec::new(),
            immediate_actions: String::new(),
            status: Status::Reported,
            timeline: Vec::new(),
            response: Response::default(),
            plan_ticks: Vec::new(),
            injury: super::Injury::default(),
            witnesses: Vec::new(),
            photos: Vec::new(),
            drill: None,
        }
    }

    /// Real, or filed during a drill.
    #[must_use]
    pub fn kind(&self) -> super::ReportKind {
        if self.drill.is_some() {
            super::ReportKind::Drill
        } else {
            super::ReportKind::Real
        }
    }

    /// Leaves out the privacy-sensitive parts, for someone who may read the report but not
    /// those: the OSHA 301 injury details, and the photos of a `sensitive` report (one
    /// that is or ever was an injury report: they may show the injury). Returns whether
    /// there were any.
    pub fn withhold_private(&mut self, sensitive: bool) -> bool {
        let photos = sensitive && !self.photos.is_empty();
        let had = !self.injury.is_empty() || photos;
        self.injury = super::Injury::default();
        if photos {
            self.photos.clear();
        }
        had
    }

    /// Whether a field path (as conflicts name fields) is privacy-sensitive.
    #[must_use]
    pub fn is_private_field(path: &str) -> bool {
        path == "injury" || path.starts_with("injury.")
    }

    /// The updates addressed to the reporter (also shown on their phone), oldest first.
    pub fn updates_for_reporter(&self) -> impl Iterator<Item = &TimelineEntry> {
        self.timeline.iter().filter(|u| u.audience == Audience::Reporter)
    }

    /// The post-incident review, once the incident has been reviewed (the reporter is
    /// shown its outcome and lessons from then on).
    #[must_use]
    pub fn reviewed(&self) -> Option<&super::Review> {
        matches!(self.status, Status::Reviewed | Status::Closed).then_some(&self.response.review)
    }

    /// The root cause: where the "5 whys" chain ended, else what the review agreed.
    #[must_use]
    pub fn root_cause(&self) -> Option<&str> {
        self.response.root_cause().or_else(|| {
            let agreed = self.response.review.root_cause.trim();
            (!agreed.is_empty()).then_some(agreed)
        })
    }

    /// Its priority: P1 while a regulatory clock runs, otherwise impact × urgency.
    #[must_use]
    pub fn priority(&self) -> Priority {
        super::priority::priority(self.impact, self.urgency, self.outcome)
    }

    /// Whether it raises an alert (P1 or P2): a drill report never does.
    #[must_use]
    pub fn escalates(&self) -> bool {
        self.drill.is_none() && self.priority().escalates()
    }

    /// The legal deadline for reporting it to the authority, if its outcome has one (none
    /// for a drill report: nothing is reported to the authority for practice).
    #[must_use]
    pub fn clock(&self) -> Option<Clock> {
        if self.drill.is_some() {
            return None;
        }
        Clock::of(self.outcome, self.occurred_at)
    }

    /// Checks every rule a report must satisfy, returning all failures at once.
    ///
    /// `now` bounds `occurred_at`: an incident cannot be reported more than a day ahead
    /// (a day of slack covers device clocks that are off).
    pub fn validate(&self, now: Timestamp) -> Result<(), Vec<FieldError>> {
        // Also checks the response (`Response::check`).
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
        };
        let title = self.title.trim();
        if title.is_empty() {
            fail("title", "Give the report a short title.".into());
        }
        if self.title.chars().count() > MAX_TITLE {
            fail("title", format!("Keep the title under {MAX_TITLE} characters."));
        }
        for (field, text) in [
            ("what_happened", &self.what_happened),
            ("immediate_actions", &self.immediate_actions),
        ] {
            if text.chars().count() > MAX_TEXT {
                fail(field, format!("Keep this under {MAX_TEXT} characters."));
            }
        }
        if !self.category.is_well_formed() {
            fail("category", "Choose a category from the list.".into());
        }
        if self.outcome != Outcome::None && self.category.0 != INJURY_CATEGORY {
            fail(
                "outcome",
                "Only an injury or illness has this outcome: choose that category, or \"None of these\"."
                    .into(),
            );
        }
        if self.category.0 != INJURY_CATEGORY && !self.injury.is_empty() {
            fail(
                "injury",
                "Injury details belong to an injury or illness report: choose that category, or clear them."
                    .into(),
            );
        }
        if self.reporter.trim().is_empty() {
            fail("reporter", "Say who is reporting.".into());
        }
        if self.reporter.chars().count() > MAX_SHORT {
            fail("reporter", format!("Keep the name under {MAX_SHORT} characters."));
        }
        if self.occurred_at.0 > now.0.saturating_add(86_400_000) {
            fail("occurred_at", "The incident cannot be in the future.".into());
        }
        if self.occurred_at.0 < 0 {
            fail("occurred_at", "Give a real date and time.".into());
        }
        if let Some(fix) = self.location.gps {
            let ok = fix.latitude.is_finite()
                && fix.longitude.is_finite()
                && fix.accuracy_m.is_finite()
                && (-90.0..=90.0).contains(&fix.latitude)
                && (-180.0..=180.0).contains(&fix.longitude)
                && fix.accuracy_m >= 0.0;
            if !ok {
                fail(
                    "location",
                    "The GPS position is not valid; try again or type the place.".into(),
                );
            }
        } else if self.location.place.trim().is_empty() {
            fail("location", "Use your location or type where it happened.".into());
        }
        if self.location.place.chars().count() > MAX_SHORT {
            fail(
                "location",
                format!("Keep the place under {MAX_SHORT} characters."),
            );
        }
        if self.people_involved.len() > MAX_PEOPLE {
            fail("people_involved", format!("List at most {MAX_PEOPLE} people."));
        }
        if self
            .people_involved
            .iter()
            .any(|p| p.trim().is_empty() || p.chars().count() > MAX_SHORT)
        {
            fail(
                "people_involved",
                format!("Each name must be 1 to {MAX_SHORT} characters."),
            );
        }
        if self.timeline.len() > MAX_TIMELINE {
            fail(
                "timeline",
                format!("A report holds at most {MAX_TIMELINE} updates."),
            );
        }
        let bad_entry = self.timeline.iter().any(|e| {
            e.text.trim().is_empty()
                || e.text.chars().count() > MAX_TEXT
                || e.author.trim().is_empty()
                || e.author.chars().count() > MAX_SHORT
                || e.at.0 < 0
                || e.at.0 > now.0.saturating_add(86_400_000)
        });
        if bad_entry {
            fail(
                "timeline",
                format!(
                    "Each update needs its author and 1 to {MAX_TEXT} characters of text, and a real date."
                ),
            );
        }
        let bad_tick = self.plan_ticks.len() > super::plan::MAX_TICKS
            || self.plan_ticks.iter().any(|t| {
                t.step.is_empty()
                    || t.step.len() > 64
                    || t.role.chars().count() > MAX_SHORT
                    || t.text.chars().count() > MAX_TEXT
                    || t.by.chars().count() > MAX_SHORT
                    || t.at.0 < 0
                    || t.at.0 > now.0.saturating_add(86_400_000)
            });
        if bad_tick {
            errors.push(FieldError {
                field: "plan_ticks".to_owned(),
                message: format!(
                    "At most {} ticked steps, each naming its step and a real time.",
                    super::plan::MAX_TICKS
                ),
            });
        }
        self.injury.check(self.outcome, now, &mut errors);
        super::injury::check_witnesses(&self.witnesses, &mut errors);
        let bad_photos = if self.photos.len() > super::photo::MAX_PHOTOS {
            Some(format!(
                "A report holds at most {} photos.",
                super::photo::MAX_PHOTOS
            ))
        } else {
            (self.photos.iter())
                .find_map(|p| p.check().err())
                .map(|reason| format!("A photo is not acceptable: {reason}."))
        };
        if let Some(message) = bad_photos {
            errors.push(FieldError {
                field: "photos".to_owned(),
                message,
            });
        }
        self.response.check(&mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::GpsFix;
    use uuid::Uuid;

    pub(crate) fn sample() -> Report {
        let now = Timestamp(1_764_000_000_000);
        let mut r = Report::blank(ReportId::new_v7(now, [7; 10]), now, "Ana Field");
        r.title = "Forklift clipped racking".into();
        r.location.place = "Warehouse B, aisle 4".into();
        r
    }

    #[test]
    fn a_complete_report_is_valid() {
        assert_eq!(sample().validate(Timestamp(1_764_000_000_000)), Ok(()));
    }

    #[test]
    fn every_failure_is_reported_at_once() {
        let mut r = sample();
        r.title = "  ".into();
        r.location.place.clear();
        r.reporter.clear();
        let errors = r.validate(Timestamp(1_764_000_000_000)).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "reporter", "location"]);
    }

    #[test]
    fn a_gps_fix_alone_is_a_location_but_must_be_on_earth() {
        let now = Timestamp(1_764_000_000_000);
        let mut r = sample();
        r.location.place.clear();
        r.location.gps = Some(GpsFix {
            latitude: 51.5,
            longitude: -0.12,
            accuracy_m: 8.0,
        });
        assert_eq!(r.validate(now), Ok(()));
        r.location.gps = Some(GpsFix {
            latitude: 91.0,
            longitude: 0.0,
            accuracy_m: 8.0,
        });
        assert!(r.validate(now).is_err());
        r.location.gps = Some(GpsFix {
            latitude: f64::NAN,
            longitude: 0.0,
            accuracy_m: 8.0,
        });
        assert!(r.validate(now).is_err());
    }

    #[test]
    fn future_incidents_are_refused_beyond_a_day_of_clock_skew() {
        let now = Timestamp(1_764_000_000_000);
        let mut r = sample();
        r.occurred_at = Timestamp(now.0 + 3_600_000);
        assert_eq!(r.validate(now), Ok(()));
        r.occurred_at = Timestamp(now.0 + 2 * 86_400_000);
        assert!(r.validate(now).is_err());
    }

    #[test]
    fn a_reportable_outcome_belongs_to_an_injury_and_makes_it_p1_on_the_clock() {
        let mut r = sample();
        r.impact = Impact::Low;
        r.urgency = Urgency::Low;
        assert_eq!(r.priority(), Priority::P5);
        assert_eq!(r.clock(), None);
        r.outcome = Outcome::Amputation;
        let errors = r.validate(r.reported_at).unwrap_err();
        assert_eq!(errors[0].field, "outcome", "not an injury: refused");
        r.category = Category::new("injury_illness");
        assert!(r.validate(r.reported_at).is_ok());
        assert_eq!(r.priority(), Priority::P1);
        assert_eq!(r.clock().unwrap().due.0, r.occurred_at.0 + 24 * 3_600_000);
    }

    #[test]
    fn the_reporter_is_told_updates_for_them_and_the_outcome_once_reviewed() {
        let mut r = sample();
        for (n, audience) in [Audience::Team, Audience::Reporter, Audience::Team]
            .into_iter()
            .enumerate()
        {
            r.timeline.push(TimelineEntry {
                id: Uuid::from_u128(n as u128),
                at: r.reported_at,
                author: "Sam".into(),
                author_id: None,
                text: format!("update {n}"),
                audience,
            });
        }
        let told: Vec<&str> = r.updates_for_reporter().map(|u| u.text.as_str()).collect();
        assert_eq!(told, ["update 1"]);
        r.response.review.lessons = "Check ladders".into();
        r.response.review.root_cause = " No inspection ".into();
        for (status, shown) in [
            (Status::Reported, false),
            (Status::Resolved, false),
            (Status::Reviewed, true),
            (Status::Closed, true),
        ] {
            r.status = status;
            assert_eq!(r.reviewed().is_some(), shown, "{status:?}");
        }
        assert_eq!(
            r.root_cause(),
            Some("No inspection"),
            "the review's, without a chain"
        );
        r.response.whys = vec!["Nobody checked".into(), "No checklist".into()];
        assert_eq!(
            r.root_cause(),
            Some("No checklist"),
            "the chain's end comes first"
        );
    }

    #[test]
    fn injury_details_belong_to_injury_reports_and_witnesses_are_checked() {
        let mut r = sample();
        r.injury.body_part = "Left hand".into();
        let fields = |r: &Report| {
            r.validate(r.reported_at)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(&r), ["injury"]);
        r.category = Category::new(INJURY_CATEGORY);
        assert!(fields(&r).is_empty());
        r.injury.work_began = "7am".into();
        r.witnesses.push(crate::domain::Witness::default());
        assert_eq!(fields(&r), ["injury.work_began", "witnesses"]);
    }
}
