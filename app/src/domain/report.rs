//! The incident report as a field employee files it, and the rules a report must satisfy.
//!
//! Everything here is plain data: no clock, no randomness, no IO. Callers pass the current
//! time and fresh ids in, so the rules are deterministic and testable.

use std::fmt;
use std::str::FromStr;

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::priority::{Clock, Impact, Outcome, Priority, Urgency};
use super::response::Response;
use super::workflow::Status;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest free-text field (what happened, immediate actions), in characters.
pub const MAX_TEXT: usize = 10_000;
/// Longest short text (names, places, reporter), in characters.
pub const MAX_SHORT: usize = 200;
/// Most people that can be listed on one report.
pub const MAX_PEOPLE: usize = 100;
/// Most timeline entries one report can hold.
pub const MAX_TIMELINE: usize = 2_000;

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

/// The category whose reports carry the OSHA Form 301 details and a regulatory outcome.
pub const INJURY_CATEGORY: &str = "injury_illness";

/// The kind of incident. A short lowercase key (`near_miss`); administrators add their
/// own ([`CategoryDef`]), so it is an open set checked by shape rather than a closed enum.
/// A device may hold a list older than the server's, so reports are not refused for a key
/// the server does not list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[serde(transparent)]
pub struct Category(pub String);

impl Category {
    /// The categories every organisation starts with: (key, label).
    pub const DEFAULTS: [(&'static str, &'static str); 9] = [
        ("injury_illness", "Injury or illness"),
        ("near_miss", "Near miss"),
        ("property_damage", "Property damage"),
        ("environmental_release", "Environmental release"),
        ("security", "Security"),
        ("vehicle", "Vehicle"),
        ("equipment_failure", "Equipment failure"),
        ("operational_outage", "Operational outage"),
        ("other", "Other"),
    ];

    /// A category from its key.
    #[must_use]
    pub fn new(key: &str) -> Self {
        Self(key.to_owned())
    }

    /// A label for people: the default label, or the key made readable.
    #[must_use]
    pub fn label(&self) -> String {
        Self::DEFAULTS
            .iter()
            .find(|(k, _)| *k == self.0)
            .map_or_else(|| self.0.replace('_', " "), |(_, l)| (*l).to_owned())
    }

    /// Whether this is an injury or illness (which carries the OSHA Form 301 details).
    #[must_use]
    pub fn is_injury(&self) -> bool {
        self.0 == INJURY_CATEGORY
    }

    /// The key for a new category named `label`: lowercase letters, digits and `_`
    /// (`"Chemical spill"` → `chemical_spill`), if the label has any letters or digits.
    #[must_use]
    pub fn key_for(label: &str) -> Option<Self> {
        let mut key = String::new();
        for c in label.trim().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                key.push(c);
            } else if !key.ends_with('_') && !key.is_empty() {
                key.push('_');
            }
        }
        let key: String = key.trim_end_matches('_').chars().take(40).collect();
        let key = Self(key.trim_end_matches('_').to_owned());
        key.is_well_formed().then_some(key)
    }

    /// Whether the key has the shape every category key has.
    #[must_use]
    pub fn is_well_formed(&self) -> bool {
        (1..=40).contains(&self.0.len())
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }
}

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

/// A category as administrators define it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryDef {
    /// The stored key, fixed once made.
    pub key: Category,
    /// The name people see.
    pub label: String,
    /// Offered for new reports (retired ones stay on the reports that have them).
    pub active: bool,
}

impl CategoryDef {
    /// The seeded categories, as defined before any administrator changes them.
    #[must_use]
    pub fn defaults() -> Vec<Self> {
        Category::DEFAULTS
            .iter()
            .map(|(key, label)| Self {
                key: Category::new(key),
                label: (*label).to_owned(),
                active: true,
            })
            .collect()
    }

    /// The label of `key` in `list`, else its default label or its key made readable.
    #[must_use]
    pub fn label_of(list: &[Self], key: &Category) -> String {
        list.iter()
            .find(|c| c.key == *key)
            .map_or_else(|| key.label(), |c| c.label.clone())
    }

    /// The label's rules, as a reason to refuse it.
    pub fn check_label(label: &str) -> Result<(), String> {
        let count = label.trim().chars().count();
        if count == 0 || count > 60 {
            return Err("Give the category a name of 1 to 60 characters.".to_owned());
        }
        Ok(())
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

/// Who an update is for. Everyone who may read a report can read all of it (the document
/// is theirs to sync): the audience says whom the update is addressed to and where it is
/// shown, not who may see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The response team (shown at the desk).
    #[default]
    Team,
    /// Also the person who reported it: shown on their phone with the report.
    Reporter,
}

impl Audience {
    /// Every audience, in form order.
    pub const ALL: [Audience; 2] = [Self::Team, Self::Reporter];

    /// The stored key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Reporter => "reporter",
        }
    }

    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Team => "The response team",
            Self::Reporter => "The team and the reporter (shown on their phone)",
        }
    }

    /// An audience from its stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == key)
    }
}

/// One dated entry in a report's timeline: what someone observed, did or decided.
///
/// Entries are only ever appended, never edited or removed, so concurrent additions from
/// several devices and supervisors all survive a merge.
///
/// In the document each entry is one scalar string (see `crate::document`), so it
/// implements `Reconcile` there rather than deriving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Made where the entry was written; identifies it across merges.
    pub id: Uuid,
    /// When it was written.
    pub at: Timestamp,
    /// Who wrote it (their name as it was).
    pub author: String,
    /// Their user id (absent from entries written before the write policy): the sync
    /// gate accepts a new entry only from the person it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<Uuid>,
    /// What happened, was done or was decided.
    pub text: String,
    /// Whom it is for (absent from entries written before audiences: the team).
    #[serde(default)]
    pub audience: Audience,
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
    pub people_involved: Vec<String>,
    /// What was done straight away.
    pub immediate_actions: String,
    /// Where the report is in the response workflow.
    pub status: Status,
    /// Dated updates, oldest first (absent from documents written before it existed).
    #[serde(default)]
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
    pub plan_ticks: Vec<super::plan::PlanTick>,
    /// The OSHA Form 301 details of an injury or illness: privacy-sensitive (empty for
    /// other categories, and absent from documents written before them).
    #[serde(default)]
    pub injury: super::Injury,
    /// Who saw it (absent from documents written before witnesses: none).
    #[serde(default)]
    pub witnesses: Vec<super::Witness>,
    /// The photos taken of it, in the order they were added; never removed (absent from
    /// documents written before photos: none). The bytes travel separately.
    #[serde(default)]
    #[autosurgeon(reconcile = "super::photo::reconcile_if_any")]
    pub photos: Vec<super::PhotoRef>,
}

/// One reason a report is not acceptable, named by field so a form can show it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name in the document (`title`, `location`, ...).
    pub field: String,
    /// What is wrong, in words a reporter understands.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
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

    /// The legal deadline for reporting it to the authority, if its outcome has one.
    #[must_use]
    pub fn clock(&self) -> Option<Clock> {
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
mod tests {
    use super::*;

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
    fn a_new_category_gets_a_key_from_its_label() {
        let key = |l: &str| Category::key_for(l).map(|c| c.0);
        assert_eq!(key("Chemical spill").as_deref(), Some("chemical_spill"));
        assert_eq!(
            key("  Slips, trips & falls! ").as_deref(),
            Some("slips_trips_falls")
        );
        assert_eq!(key("Fire 2").as_deref(), Some("fire_2"));
        assert_eq!(key("Éboulement").as_deref(), Some("boulement"));
        assert_eq!(key("!!!"), None);
        assert_eq!(key(&"a".repeat(60)).map(|k| k.len()), Some(40));
        let defs = CategoryDef::defaults();
        assert_eq!(
            CategoryDef::label_of(&defs, &Category::new("near_miss")),
            "Near miss"
        );
        assert_eq!(CategoryDef::label_of(&defs, &Category::new("fire_2")), "fire 2");
        assert!(CategoryDef::check_label(" ").is_err());
        assert!(CategoryDef::check_label("Fire").is_ok());
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

    #[test]
    fn categories_are_checked_by_shape() {
        let mut r = sample();
        r.category = Category::new("Near Miss!");
        assert!(r.validate(Timestamp(1_764_000_000_000)).is_err());
        assert_eq!(Category::new("near_miss").label(), "Near miss");
        assert_eq!(Category::new("chemical_spill").label(), "chemical spill");
    }

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
