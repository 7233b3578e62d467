//! Drills: a team rehearses a response plan on its phones, offline if need be.
//!
//! A *scenario* (title, the category whose plan it exercises, objectives, timed *injects*)
//! is written by a supervisor and kept on every device of its team. A *drill* is a
//! scenario scheduled for the team in a window, with a cadence that schedules the next one
//! from the day the last was done. Phones record what happened in a run as *events*
//! (started, inject acknowledged, ended, stopped for a real emergency), each made on the
//! device with the device's time; reports filed during a run are drill reports (a report's
//! kind, fixed when it is created). [`measure`] turns a run's events and drill reports into
//! its times, whatever order they arrived in. The after-action review rates each
//! objective on the four-level scale of exercise evaluation practice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::PlanTick;
use super::validation::{MAX_SHORT, MAX_TEXT, MAX_TITLE};
use super::{Category, ReportId, Timestamp};

/// Most objectives in one scenario.
pub const MAX_OBJECTIVES: usize = 20;
/// Most injects in one scenario.
pub const MAX_INJECTS: usize = 50;
/// The latest an inject may come: a drill is rehearsed in hours, not days.
pub const MAX_INJECT_OFFSET_S: u32 = 12 * 3600;
/// How long before its due date a drill counts as due soon.
pub const DUE_SOON_MS: i64 = 14 * 86_400_000;
/// Most run events one sync request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 200;
/// Most events one person may record in one run (a phone acknowledges each inject once).
pub const MAX_EVENTS_PER_PERSON: usize = MAX_INJECTS + 10;

/// Whether a report is of a real incident or filed during a drill. Decided when the report
/// is created and never changed (the write policy's `drill` row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A real incident.
    Real,
    /// Filed during a drill: kept out of real records.
    Drill,
}

keyed!(ReportKind {
    Real = "real", "Real";
    Drill = "drill", "Drill";
});

/// Writes a report's drill id, and nothing for a real report (whose documents carry no
/// `drill` key at all, as they did before drills existed).
pub(crate) fn reconcile_drill<R: autosurgeon::Reconciler>(
    drill: &Option<Uuid>,
    reconciler: R,
) -> Result<(), R::Error> {
    match drill {
        None => Ok(()),
        Some(id) => autosurgeon::Reconcile::reconcile(&id.to_string(), reconciler),
    }
}

/// A scripted message that appears at a set time after a run starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// Seconds after the start.
    pub at_s: u32,
    /// The role it is for (empty: everyone).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// What happens.
    pub text: String,
}

impl Inject {
    /// Its time as `+m:ss`.
    #[must_use]
    pub fn offset_label(&self) -> String {
        format!("+{}:{:02}", self.at_s / 60, self.at_s % 60)
    }

    /// The inject as its editor line: `m:ss role: text` (or `m:ss text`).
    #[must_use]
    pub fn line(&self) -> String {
        let at = format!("{}:{:02}", self.at_s / 60, self.at_s % 60);
        if self.role.is_empty() {
            format!("{at} {}", self.text)
        } else {
            format!("{at} {}: {}", self.role, self.text)
        }
    }
}

/// A drill scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Its id.
    pub id: Uuid,
    /// The team that rehearses it.
    pub team: Uuid,
    /// A short name ("Chemical spill in bay 3").
    pub title: String,
    /// The category whose response plan it exercises.
    pub category: Category,
    /// What the team should show it can do, one per entry.
    pub objectives: Vec<String>,
    /// The scripted messages, earliest first.
    pub injects: Vec<Inject>,
    /// 1 when written, one more with every change.
    pub version: i64,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Scenario {
    /// Checks a title.
    pub fn check_title(title: &str) -> Result<(), String> {
        let title = title.trim();
        if title.is_empty() {
            return Err("Give the scenario a title.".to_owned());
        }
        if title.chars().count() > MAX_TITLE {
            return Err(format!("Keep the title under {MAX_TITLE} characters."));
        }
        Ok(())
    }

    /// Reads the objectives, one per line (blank lines skipped).
    pub fn parse_objectives(text: &str) -> Result<Vec<String>, String> {
        let objectives: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if objectives.is_empty() {
            return Err("Give the scenario at least one objective.".to_owned());
        }
        if objectives.len() > MAX_OBJECTIVES {
            return Err(format!("A scenario has at most {MAX_OBJECTIVES} objectives."));
        }
        if objectives.iter().any(|o| o.chars().count() > MAX_SHORT) {
            return Err(format!("Keep each objective under {MAX_SHORT} characters."));
        }
        Ok(objectives)
    }

    /// Reads the injects, one per line as `m[:ss] [role:] what happens`, in time order.
    pub fn parse_injects(text: &str) -> Result<Vec<Inject>, String> {
        let mut injects = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (at, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let at = at.trim_start_matches('+');
            let (minutes, seconds) = at.split_once(':').unwrap_or((at, "0"));
            let at_s = match (minutes.parse::<u32>(), seconds.parse::<u32>()) {
                (Ok(m), Ok(s)) if s < 60 => m.saturating_mul(60).saturating_add(s),
                _ => {
                    return Err(format!(
                        "Start each inject with its time after the start, as minutes or m:ss (\"2:30 Smoke is seen\"): {line}"
                    ));
                }
            };
            if at_s > MAX_INJECT_OFFSET_S {
                return Err(format!(
                    "An inject comes at most {} hours after the start.",
                    MAX_INJECT_OFFSET_S / 3600
                ));
            }
            let rest = rest.trim();
            let (role, text) = match rest.split_once(':') {
                Some((role, text))
                    if !role.trim().is_empty()
                        && !text.trim().is_empty()
                        && role.trim().chars().count() <= 40 =>
                {
                    (role.trim(), text.trim())
                }
                _ => ("", rest),
            };
            if text.is_empty() {
                return Err(format!(
                    "Say what happens at {}.",
                    Inject {
                        at_s,
                        role: String::new(),
                        text: String::new()
                    }
                    .offset_label()
                ));
            }
            if role.chars().count() > MAX_SHORT || text.chars().count() > MAX_TEXT {
                return Err(format!("Keep each inject under {MAX_TEXT} characters."));
            }
            injects.push(Inject {
                at_s,
                role: role.to_owned(),
                text: text.to_owned(),
            });
        }
        if injects.len() > MAX_INJECTS {
            return Err(format!("A scenario has at most {MAX_INJECTS} injects."));
        }
        injects.sort_by_key(|i| i.at_s);
        Ok(injects)
    }

    /// The objectives as the editor shows them.
    #[must_use]
    pub fn objectives_text(&self) -> String {
        self.objectives.join("\n")
    }

    /// The injects as the editor shows them (the inverse of [`Scenario::parse_injects`]).
    #[must_use]
    pub fn injects_text(&self) -> String {
        self.injects
            .iter()
            .map(Inject::line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How often a drill comes round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Only this once.
    Once,
    /// Every month.
    Monthly,
    /// Every three months.
    Quarterly,
    /// Every year.
    Yearly,
}

keyed!(Cadence {
    Once = "once", "Once";
    Monthly = "monthly", "Monthly";
    Quarterly = "quarterly", "Quarterly";
    Yearly = "yearly", "Yearly";
});

impl Cadence {
    /// Months between drills (none for a one-off).
    #[must_use]
    pub fn months(self) -> Option<u32> {
        match self {
            Self::Once => None,
            Self::Monthly => Some(1),
            Self::Quarterly => Some(3),
            Self::Yearly => Some(12),
        }
    }
}

/// A scenario scheduled for a team: it may be run from `opens_at`, and should be done by
/// `due_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    /// Its id (also the id of its run: every phone's events and drill reports name it).
    pub id: Uuid,
    /// The scenario.
    pub scenario: Uuid,
    /// The team.
    pub team: Uuid,
    /// When the window opens.
    pub opens_at: Timestamp,
    /// When it is due (the window's end).
    pub due_at: Timestamp,
    /// How often it comes round.
    pub cadence: Cadence,
    /// When its run was completed, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
}

/// Where a drill stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueState {
    /// Its window opens more than [`DUE_SOON_MS`] before it is due, and is not yet open.
    Scheduled,
    /// Due within [`DUE_SOON_MS`], or its window is open.
    DueSoon,
    /// Past its due date and not done.
    Overdue,
    /// Done.
    Completed,
}

keyed!(DueState {
    Scheduled = "scheduled", "Scheduled";
    DueSoon = "due_soon", "Due soon";
    Overdue = "overdue", "Overdue";
    Completed = "completed", "Completed";
});

impl Drill {
    /// Checks a window.
    pub fn check_window(opens_at: Timestamp, due_at: Timestamp) -> Result<(), String> {
        if due_at.0 < opens_at.0 {
            return Err("The drill must be due after its window opens.".to_owned());
        }
        if due_at.0 - opens_at.0 > 366 * 86_400_000 {
            return Err("Keep the window within a year.".to_owned());
        }
        Ok(())
    }

    /// Where it stands at `now`.
    #[must_use]
    pub fn due_state(&self, now: Timestamp) -> DueState {
        if self.completed_at.is_some() {
            DueState::Completed
        } else if now.0 > self.due_at.0 {
            DueState::Overdue
        } else if now.0 >= self.opens_at.0 || self.due_at.0 - now.0 <= DUE_SOON_MS {
            DueState::DueSoon
        } else {
            DueState::Scheduled
        }
    }

    /// The next drill of its cadence once this one was completed at `completed_at`: due
    /// one period after that day, in a window as long as this one's (none for a one-off).
    #[must_use]
    pub fn next(&self, completed_at: Timestamp, id: Uuid) -> Option<Drill> {
        let months = self.cadence.months()?;
        let due_at = completed_at.add_months(months);
        Some(Drill {
            id,
            scenario: self.scenario,
            team: self.team,
            opens_at: Timestamp(due_at.0 - (self.due_at.0 - self.opens_at.0)),
            due_at,
            cadence: self.cadence,
            completed_at: None,
        })
    }
}

/// What a phone recorded during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Happening {
    /// The person started the run on this phone.
    Started,
    /// The person acknowledged the inject at this index of the scenario.
    Acknowledged(u16),
    /// The person ended the run.
    Ended,
    /// The person stopped the drill for a real emergency.
    StoppedForReal,
}

impl Happening {
    /// The stored key.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Acknowledged(_) => "acknowledged",
            Self::Ended => "ended",
            Self::StoppedForReal => "stopped_for_real",
        }
    }

    /// From its stored key and inject index.
    #[must_use]
    pub fn from_key(key: &str, inject: Option<u16>) -> Option<Self> {
        Some(match (key, inject) {
            ("started", None) => Self::Started,
            ("acknowledged", Some(i)) => Self::Acknowledged(i),
            ("ended", None) => Self::Ended,
            ("stopped_for_real", None) => Self::StoppedForReal,
            _ => return None,
        })
    }

    /// The inject's index, for an acknowledgement.
    #[must_use]
    pub fn inject(self) -> Option<u16> {
        match self {
            Self::Acknowledged(i) => Some(i),
            _ => None,
        }
    }
}

/// One event of a run, made on a phone (the id, UUIDv7, makes a retried upload harmless).
/// It travels as flat JSON (`{"id", "drill", "what", "inject"?, "at"}`, see [`WireEvent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireEvent", into = "WireEvent")]
pub struct DrillEvent {
    /// Its id.
    pub id: Uuid,
    /// The drill (run) it belongs to.
    pub drill: Uuid,
    /// What happened.
    pub happening: Happening,
    /// When, by the phone's clock.
    pub at: Timestamp,
}

/// A [`DrillEvent`] as JSON carries it: plain fields, so decoding it needs no buffering
/// (serde's `flatten` would, in code and in memory).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    id: Uuid,
    drill: Uuid,
    what: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inject: Option<u16>,
    at: Timestamp,
}

/// What a [`WireEvent`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    Started,
    Acknowledged,
    Ended,
    StoppedForReal,
}

impl TryFrom<WireEvent> for DrillEvent {
    type Error = &'static str;

    fn try_from(wire: WireEvent) -> Result<Self, Self::Error> {
        let happening = match (wire.what, wire.inject) {
            (EventKind::Started, None) => Happening::Started,
            (EventKind::Acknowledged, Some(i)) => Happening::Acknowledged(i),
            (EventKind::Ended, None) => Happening::Ended,
            (EventKind::StoppedForReal, None) => Happening::StoppedForReal,
            _ => return Err("an acknowledgement names its inject, and nothing else does"),
        };
        Ok(Self {
            id: wire.id,
            drill: wire.drill,
            happening,
            at: wire.at,
        })
    }
}

impl From<DrillEvent> for WireEvent {
    fn from(event: DrillEvent) -> Self {
        let what = match event.happening {
            Happening::Started => EventKind::Started,
            Happening::Acknowledged(_) => EventKind::Acknowledged,
            Happening::Ended => EventKind::Ended,
            Happening::StoppedForReal => EventKind::StoppedForReal,
        };
        Self {
            id: event.id,
            drill: event.drill,
            what,
            inject: event.happening.inject(),
            at: event.at,
        }
    }
}

impl DrillEvent {
    /// Whether the server may store it for `drill` run by `scenario`, received at `now`:
    /// an acknowledged inject must exist, and the time must lie between a day before the
    /// window opened and the server's clock plus `skew_ms`.
    pub fn check(
        &self,
        drill: &Drill,
        scenario: &Scenario,
        now: Timestamp,
        skew_ms: i64,
    ) -> Result<(), String> {
        if let Some(i) = self.happening.inject()
            && usize::from(i) >= scenario.injects.len()
        {
            return Err("the scenario has no such inject".to_owned());
        }
        if self.at.0 > now.0.saturating_add(skew_ms) {
            return Err("the event is in the future".to_owned());
        }
        if self.at.0 < drill.opens_at.0.saturating_sub(86_400_000) {
            return Err("the event is before the drill's window".to_owned());
        }
        Ok(())
    }
}

/// An event as stored: with the person the server knows sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The event.
    pub event: DrillEvent,
    /// Who sent it (from their session, never from the device).
    pub by: Uuid,
}

/// What a run needs of a drill report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The report.
    pub id: ReportId,
    /// Who filed it (the server's record), if known.
    pub by: Option<Uuid>,
    /// When it was first saved on the phone.
    pub reported_at: Timestamp,
    /// The plan steps ticked in it.
    pub ticks: Vec<PlanTick>,
}

/// When a plan step was first done in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTime {
    /// The step's id.
    pub step: String,
    /// Its role and words when ticked.
    pub role: String,
    /// What was done.
    pub text: String,
    /// Milliseconds after the start.
    pub after_ms: i64,
}

/// One line of a run's timeline.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunLine {
    /// When (the phone's clock).
    pub at: Timestamp,
    /// What happened.
    pub what: RunMoment,
    /// Who (a user id), if known.
    pub by: Option<Uuid>,
}

/// What a timeline line records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RunMoment {
    /// A phone started the run.
    Started,
    /// An inject was acknowledged.
    Acknowledged {
        /// Its index.
        inject: u16,
    },
    /// A drill report was filed.
    Reported {
        /// The report.
        report: ReportId,
    },
    /// A plan step was ticked.
    Ticked {
        /// The step's words.
        text: String,
    },
    /// A phone ended the run.
    Ended,
    /// A phone stopped the drill for a real emergency.
    StoppedForReal,
}

/// A run, measured from its events and drill reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The earliest start on any phone.
    pub started_at: Option<Timestamp>,
    /// The latest end on any phone (a run ends when its last phone ends it).
    pub ended_at: Option<Timestamp>,
    /// From the start to the first drill report.
    pub first_report_ms: Option<i64>,
    /// From the start to the first tick of each step, in the order they were first done.
    pub steps: Vec<StepTime>,
    /// From the start to the end.
    pub duration_ms: Option<i64>,
    /// Everyone who started, acknowledged, reported or ended, by user id.
    pub participants: Vec<Uuid>,
    /// Each acknowledged inject (by index): when it was first acknowledged, and by whom.
    pub acknowledged: Vec<(u16, Timestamp, Vec<Uuid>)>,
    /// Whether a phone stopped the drill for a real emergency.
    pub stopped_for_real: bool,
    /// How many drill reports were filed.
    pub reports: usize,
    /// Everything, in time order.
    pub timeline: Vec<RunLine>,
}

/// A drill report as [`measure`] gathers it: who filed it, when, and its ticks as (time,
/// step, role, text, by).
struct Filed {
    by: Option<Uuid>,
    at: Timestamp,
    ticks: BTreeSet<(Timestamp, String, String, String, Option<Uuid>)>,
}

/// Measures a run. The result depends only on the sets of events (by id) and reports (by
/// id, their ticks merged), not on the order in which phones' uploads arrived nor on an
/// upload arriving twice.
#[must_use]
pub fn measure(events: &[RecordedEvent], reports: &[DrillReport]) -> Run {
    // The same id twice (an upload repeated) counts once; should the copies differ, the
    // least is kept, so the choice does not depend on their order.
    let mut unique: BTreeMap<Uuid, RecordedEvent> = BTreeMap::new();
    for e in events {
        let key = |r: &RecordedEvent| (r.event.at, r.event.happening, r.by, r.event.drill);
        unique
            .entry(e.event.id)
            .and_modify(|kept| {
                if key(e) < key(kept) {
                    *kept = *e;
                }
            })
            .or_insert(*e);
    }
    let mut by_report: BTreeMap<ReportId, Filed> = BTreeMap::new();
    for report in reports {
        let entry = by_report.entry(report.id).or_insert(Filed {
            by: report.by,
            at: report.reported_at,
            ticks: BTreeSet::new(),
        });
        entry.by = entry.by.max(report.by);
        entry.at = entry.at.min(report.reported_at);
        for t in &report.ticks {
            entry
                .ticks
                .insert((t.at, t.step.clone(), t.role.clone(), t.text.clone(), t.by_id));
        }
    }
    let mut timeline = BTreeSet::new();
    let mut participants = BTreeSet::new();
    let mut acknowledged: BTreeMap<u16, (Timestamp, BTreeSet<Uuid>)> = BTreeMap::new();
    let (mut started_at, mut ended_at, mut stopped_for_real) = (None::<Timestamp>, None::<Timestamp>, false);
    for recorded in unique.values() {
        let (e, by) = (recorded.event, recorded.by);
        participants.insert(by);
        let what = match e.happening {
            Happening::Started => {
                started_at = Some(started_at.map_or(e.at, |s| s.min(e.at)));
                RunMoment::Started
            }
            Happening::Acknowledged(inject) => {
                let entry = acknowledged.entry(inject).or_insert((e.at, BTreeSet::new()));
                entry.0 = entry.0.min(e.at);
                entry.1.insert(by);
                RunMoment::Acknowledged { inject }
            }
            Happening::Ended => {
                ended_at = Some(ended_at.map_or(e.at, |s| s.max(e.at)));
                RunMoment::Ended
            }
            Happening::StoppedForReal => {
                stopped_for_real = true;
                ended_at = Some(ended_at.map_or(e.at, |s| s.max(e.at)));
                RunMoment::StoppedForReal
            }
        };
        timeline.insert(RunLine {
            at: e.at,
            what,
            by: Some(by),
        });
    }
    let mut first_step: BTreeMap<String, (Timestamp, String, String)> = BTreeMap::new();
    let mut first_report = None::<Timestamp>;
    for (
        id,
        Filed {
            by,
            at: reported_at,
            ticks,
        },
    ) in &by_report
    {
        if let Some(by) = by {
            participants.insert(*by);
        }
        first_report = Some(first_report.map_or(*reported_at, |f| f.min(*reported_at)));
        timeline.insert(RunLine {
            at: *reported_at,
            what: RunMoment::Reported { report: *id },
            by: *by,
        });
        for (at, step, role, text, tick_by) in ticks {
            if let Some(tick_by) = tick_by {
                participants.insert(*tick_by);
            }
            let first = first_step
                .entry(step.clone())
                .or_insert((*at, role.clone(), text.clone()));
            if (*at, role, text) < (first.0, &first.1, &first.2) {
                *first = (*at, role.clone(), text.clone());
            }
            timeline.insert(RunLine {
                at: *at,
                what: RunMoment::Ticked { text: text.clone() },
                by: *tick_by,
            });
        }
    }
    let after = |at: Timestamp| started_at.map(|s| at.0 - s.0);
    let mut steps: Vec<StepTime> = first_step
        .into_iter()
        .map(|(step, (at, role, text))| StepTime {
            step,
            role,
            text,
            after_ms: after(at).unwrap_or(0),
        })
        .collect();
    steps.sort_by(|a, b| (a.after_ms, &a.step).cmp(&(b.after_ms, &b.step)));
    Run {
        started_at,
        ended_at,
        first_report_ms: first_report.and_then(after),
        steps,
        duration_ms: ended_at.and_then(after),
        participants: participants.into_iter().collect(),
        acknowledged: acknowledged
            .into_iter()
            .map(|(i, (at, by))| (i, at, by.into_iter().collect()))
            .collect(),
        stopped_for_real,
        reports: by_report.len(),
        timeline: timeline.into_iter().collect(),
    }
}

/// How well an objective was performed (the four ratings of exercise evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// Performed without challenges.
    Performed,
    /// Performed with some challenges.
    SomeChallenges,
    /// Performed with major challenges.
    MajorChallenges,
    /// Unable to be performed.
    Unable,
}

keyed!(Rating {
    Performed = "performed", "Performed without challenges";
    SomeChallenges = "some_challenges", "Performed with some challenges";
    MajorChallenges = "major_challenges", "Performed with major challenges";
    Unable = "unable", "Unable to be performed";
});

/// One objective's rating.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveRating {
    /// The objective, in the scenario's words when rated.
    pub objective: String,
    /// Its rating, once given.
    pub rating: Option<Rating>,
}

/// The after-action review of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterAction {
    /// Each objective's rating, in the scenario's order.
    pub ratings: Vec<ObjectiveRating>,
    /// What went well.
    pub strengths: String,
    /// What should be done better.
    pub improvements: String,
    /// When it was last changed (none: not written yet).
    pub updated_at: Option<Timestamp>,
}

impl AfterAction {
    /// Checks what a person wrote.
    pub fn check(&self) -> Result<(), String> {
        if self.ratings.len() > MAX_OBJECTIVES {
            return Err(format!("A scenario has at most {MAX_OBJECTIVES} objectives."));
        }
        if self.strengths.chars().count() > MAX_TEXT || self.improvements.chars().count() > MAX_TEXT {
            return Err(format!("Keep each part under {MAX_TEXT} characters."));
        }
        Ok(())
    }
}

/// A drill as a device keeps it: the schedule with its scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillBrief {
    /// The schedule.
    pub drill: Drill,
    /// What is rehearsed.
    pub scenario: Scenario,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_read_with_times_and_roles_in_time_order() {
        let injects = Scenario::parse_injects(
            "2 First aider: A second worker reports dizziness\n\n0:30 Smoke is seen near bay 3\n+1:05 The alarm sounds",
        )
        .unwrap();
        assert_eq!(injects.len(), 3);
        assert_eq!(injects[0].at_s, 30);
        assert_eq!(injects[0].role, "");
        assert_eq!(injects[1].at_s, 65);
        assert_eq!(injects[2].role, "First aider");
        assert_eq!(injects[2].offset_label(), "+2:00");
        let again = Scenario::parse_injects(&injects.iter().map(Inject::line).collect::<Vec<_>>().join("\n"))
            .unwrap();
        assert_eq!(again, injects, "the editor's text reads back the same");
        assert!(Scenario::parse_injects("soon Smoke").is_err());
        assert!(Scenario::parse_injects("1:75 Smoke").is_err());
        assert!(
            Scenario::parse_injects("5").is_err(),
            "an inject says what happens"
        );
        assert!(Scenario::parse_injects(&format!("{} Late", MAX_INJECT_OFFSET_S / 60 + 1)).is_err());
        assert!(Scenario::parse_objectives("\n").is_err());
    }

    fn drill(opens: i64, due: i64, cadence: Cadence) -> Drill {
        Drill {
            id: Uuid::nil(),
            scenario: Uuid::nil(),
            team: Uuid::nil(),
            opens_at: Timestamp(opens),
            due_at: Timestamp(due),
            cadence,
            completed_at: None,
        }
    }

    #[test]
    fn a_drill_is_due_soon_in_its_window_or_two_weeks_before_and_overdue_after() {
        const DAY: i64 = 86_400_000;
        let d = drill(100 * DAY, 130 * DAY, Cadence::Quarterly);
        assert_eq!(d.due_state(Timestamp(50 * DAY)), DueState::Scheduled);
        assert_eq!(d.due_state(Timestamp(100 * DAY)), DueState::DueSoon);
        let late_window = drill(125 * DAY, 130 * DAY, Cadence::Once);
        assert_eq!(late_window.due_state(Timestamp(117 * DAY)), DueState::DueSoon);
        assert_eq!(late_window.due_state(Timestamp(115 * DAY)), DueState::Scheduled);
        assert_eq!(d.due_state(Timestamp(130 * DAY + 1)), DueState::Overdue);
        let done = Drill {
            completed_at: Some(Timestamp(131 * DAY)),
            ..d.clone()
        };
        assert_eq!(done.due_state(Timestamp(200 * DAY)), DueState::Completed);
    }

    #[test]
    fn the_next_drill_is_due_a_period_after_the_last_was_done() {
        // 2026-01-31 00:00 UTC, a window of a week.
        let jan31 = Timestamp::end_of_day("2026-01-31").unwrap();
        let d = drill(jan31.0 - 7 * 86_400_000, jan31.0, Cadence::Monthly);
        let done = Timestamp::end_of_day("2026-02-10").unwrap();
        let next = d.next(done, Uuid::max()).unwrap();
        assert_eq!(next.due_at.date(), "2026-03-10", "counted from when it was done");
        assert_eq!(next.due_at.0 - next.opens_at.0, 7 * 86_400_000);
        let yearly = drill(0, jan31.0, Cadence::Yearly);
        assert_eq!(
            yearly.next(jan31, Uuid::max()).unwrap().due_at.date(),
            "2027-01-31"
        );
        let quarterly = drill(0, jan31.0, Cadence::Quarterly);
        assert_eq!(
            quarterly
                .next(Timestamp::end_of_day("2025-11-30").unwrap(), Uuid::max())
                .unwrap()
                .due_at
                .date(),
            "2026-02-28",
            "the last day of a shorter month"
        );
        assert!(drill(0, 1, Cadence::Once).next(done, Uuid::max()).is_none());
    }

    #[test]
    fn events_travel_as_flat_json() {
        let e = DrillEvent {
            id: Uuid::nil(),
            drill: Uuid::nil(),
            happening: Happening::Acknowledged(2),
            at: Timestamp(5),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""what":"acknowledged","inject":2"#), "{json}");
        assert_eq!(serde_json::from_str::<DrillEvent>(&json).unwrap(), e);
        let started = DrillEvent {
            happening: Happening::Started,
            ..e
        };
        let json = serde_json::to_string(&started).unwrap();
        assert!(!json.contains("inject"), "{json}");
        assert_eq!(serde_json::from_str::<DrillEvent>(&json).unwrap(), started);
        let odd = json.replace(r#""what":"started""#, r#""what":"started","inject":1"#);
        assert!(
            serde_json::from_str::<DrillEvent>(&odd).is_err(),
            "only an acknowledgement names an inject"
        );
        let unknown = json.replace(r#""what":"started""#, r#""what":"started","by":"x""#);
        assert!(
            serde_json::from_str::<DrillEvent>(&unknown).is_err(),
            "nor anything else"
        );
    }

    mod arrival {
        use proptest::prelude::*;

        use super::super::*;

        fn event() -> impl Strategy<Value = RecordedEvent> {
            (0u128..40, 0u8..4, 0u16..3, 0i64..600_000, 0u128..3).prop_map(|(id, what, inject, at, by)| {
                RecordedEvent {
                    event: DrillEvent {
                        id: Uuid::from_u128(id),
                        drill: Uuid::from_u128(1),
                        happening: match what {
                            0 => Happening::Started,
                            1 => Happening::Acknowledged(inject),
                            2 => Happening::Ended,
                            _ => Happening::StoppedForReal,
                        },
                        at: Timestamp(1_000_000 + at),
                    },
                    by: Uuid::from_u128(100 + by),
                }
            })
        }

        fn report() -> impl Strategy<Value = DrillReport> {
            (
                0u128..6,
                0i64..600_000,
                proptest::collection::vec((0u8..4, 0i64..600_000, 0u128..3), 0..4),
            )
                .prop_map(|(id, at, ticks)| DrillReport {
                    id: ReportId(Uuid::from_u128(500 + id)),
                    by: Some(Uuid::from_u128(100 + id % 3)),
                    reported_at: Timestamp(1_000_000 + at),
                    ticks: ticks
                        .into_iter()
                        .map(|(step, at, by)| PlanTick {
                            step: format!("s{step}"),
                            role: "Whoever reports".into(),
                            text: format!("Step {step}"),
                            at: Timestamp(1_000_000 + at),
                            by: "Someone".into(),
                            by_id: Some(Uuid::from_u128(100 + by)),
                        })
                        .collect(),
                })
        }

        /// A xorshift generator: enough to shuffle.
        struct Rng(u64);

        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }

            fn bool(&mut self) -> bool {
                self.next() & 1 == 1
            }

            fn shuffle<T>(&mut self, items: &mut [T]) {
                for i in (1..items.len()).rev() {
                    let j = usize::try_from(self.next() % (i as u64 + 1)).unwrap_or(0);
                    items.swap(i, j);
                }
            }
        }

        proptest! {
            /// Two phones' events and drill reports, arriving in any order, some twice
            /// (a retried upload; a report's ticks arriving as it grew): the same run.
            #[test]
            fn a_runs_times_do_not_depend_on_the_order_phones_changes_arrive_in(
                events in proptest::collection::vec(event(), 0..20),
                reports in proptest::collection::vec(report(), 0..6),
                seed in any::<u64>(),
            ) {
                let run = measure(&events, &reports);
                let mut rng = Rng(seed | 1);
                let mut shuffled_events = events.clone();
                shuffled_events.extend(events.iter().filter(|_| rng.bool()).copied());
                rng.shuffle(&mut shuffled_events);
                let mut shuffled_reports = reports.clone();
                // A report seen earlier with only some of its ticks.
                shuffled_reports.extend(reports.iter().map(|r| DrillReport {
                    ticks: r.ticks.iter().filter(|_| rng.bool()).cloned().collect(),
                    ..r.clone()
                }));
                rng.shuffle(&mut shuffled_reports);
                prop_assert_eq!(measure(&shuffled_events, &shuffled_reports), run.clone());
                if let (Some(start), Some(first)) = (run.started_at, run.first_report_ms) {
                    let earliest = reports.iter().map(|r| r.reported_at.0).min().unwrap();
                    prop_assert_eq!(first, earliest - start.0);
                }
            }
        }
    }
}
