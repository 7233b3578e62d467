//! The drill desk: server functions for supervisors and administrators (scenarios,
//! schedules, runs and their reviews), and the port the server implements to answer them.
//! A supervisor sees and manages their teams' drills, an administrator every team's; field
//! employees reach drills through their phone (the sync answer), not here.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::access::Viewer;
use crate::domain::drill::{AfterAction, Drill, DueState, Run, Scenario};
use crate::domain::{Action, CategoryDef, ReportId, Timestamp};
use crate::error::AppError;

/// A team, as the drill pages name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRef {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// One drill on the board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillLine {
    /// The schedule.
    pub drill: Drill,
    /// Its scenario's title.
    pub title: String,
    /// Its team's name.
    pub team: String,
    /// Where it stands now.
    pub state: DueState,
}

/// Everything the drill board shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillBoard {
    /// The teams the person manages drills for.
    pub teams: Vec<TeamRef>,
    /// The categories a scenario may exercise.
    pub categories: Vec<CategoryDef>,
    /// Their scenarios.
    pub scenarios: Vec<Scenario>,
    /// Their drills, overdue and due soon first, then scheduled, then done (latest first).
    pub drills: Vec<DrillLine>,
}

/// One earlier run of the same team, for comparison over time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The drill.
    pub drill: Uuid,
    /// Its scenario's title.
    pub title: String,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// From the start to the first report.
    pub first_report_ms: Option<i64>,
    /// From the start to the end.
    pub duration_ms: Option<i64>,
    /// Plan steps done.
    pub steps: usize,
    /// Injects acknowledged, of those scripted.
    pub acknowledged: (usize, usize),
    /// How many took part.
    pub participants: usize,
}

/// A run, measured, with its review and improvement plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The drill.
    pub drill: Drill,
    /// Where it stands.
    pub state: DueState,
    /// Its scenario.
    pub scenario: Scenario,
    /// Its team's name.
    pub team: String,
    /// The run, measured from the phones' events and the drill reports.
    pub run: Run,
    /// The drill reports filed in it: id and title.
    pub reports: Vec<(ReportId, String)>,
    /// Names for user ids (participants, owners) and who can own an action.
    pub people: Vec<crate::desk::Person>,
    /// The after-action review (objectives listed even before it is written).
    pub review: AfterAction,
    /// The improvement plan.
    pub actions: Vec<Action>,
    /// The team's runs, oldest first (this one included): is the team getting faster?
    pub history: Vec<RunSummary>,
    /// The server's time when this was read (actions are overdue against it).
    pub read_at: Timestamp,
}

impl RunDetail {
    /// The name of the person with user id `id`.
    #[must_use]
    pub fn name_of(&self, id: &Uuid) -> String {
        crate::desk::Person::name_in(&self.people, &id.to_string())
    }
}

/// `m:ss` (or `h:mm:ss`) for a span in milliseconds.
#[must_use]
pub fn span(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// The port the server implements for the drill pages.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait DrillDesk: Send + Sync + 'static {
    /// The board of the teams `viewer` manages.
    async fn board(&self, viewer: &Viewer) -> Result<DrillBoard, AppError>;
    /// Stores a new scenario or a change to one (checked already).
    async fn save_scenario(&self, viewer: &Viewer, scenario: Scenario) -> Result<(), AppError>;
    /// Schedules a drill (checked already).
    async fn schedule(&self, viewer: &Viewer, drill: Drill) -> Result<(), AppError>;
    /// One run, measured.
    async fn run(&self, viewer: &Viewer, id: Uuid) -> Result<Option<RunDetail>, AppError>;
    /// Writes a run's after-action review.
    async fn review(&self, viewer: &Viewer, id: Uuid, review: AfterAction) -> Result<(), AppError>;
    /// Adds an action to a run's improvement plan, or records its progress.
    async fn save_action(&self, viewer: &Viewer, id: Uuid, action: Action) -> Result<(), AppError>;
}

/// The drill port, as provided through context by the server.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct DrillHandle(pub std::sync::Arc<dyn DrillDesk>);

#[cfg(feature = "ssr")]
impl std::fmt::Debug for DrillHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrillHandle")
    }
}

/// The port and the signed-in person, if they manage drills.
#[cfg(feature = "ssr")]
fn drills() -> Result<(DrillHandle, Viewer), AppError> {
    let viewer = crate::desk::signed_in()?;
    if !viewer.role.acts_on_reports() {
        return Err(AppError::Forbidden(
            "drills are managed by supervisors and administrators".into(),
        ));
    }
    let handle =
        use_context::<DrillHandle>().ok_or_else(|| AppError::Retryable("drills are not available".into()))?;
    Ok((handle, viewer))
}

#[cfg(feature = "ssr")]
fn parse_uuid(id: &str, what: &str) -> Result<Uuid, AppError> {
    id.trim()
        .parse()
        .map_err(|_| AppError::invalid(format!("that is not a {what}")))
}

/// The drill board.
#[server]
pub async fn get_drill_board() -> Result<DrillBoard, AppError> {
    let (handle, viewer) = drills()?;
    handle.0.board(&viewer).await
}

/// Writes scenario `id` (empty: a new one) for `team`: objectives one per line, injects
/// one per line as `m:ss [role:] what happens`.
#[server]
pub async fn save_scenario(
    id: String,
    team: String,
    title: String,
    category: String,
    objectives: String,
    injects: String,
) -> Result<(), AppError> {
    let (handle, viewer) = drills()?;
    Scenario::check_title(&title).map_err(AppError::invalid)?;
    let objectives = Scenario::parse_objectives(&objectives).map_err(AppError::invalid)?;
    let injects = Scenario::parse_injects(&injects).map_err(AppError::invalid)?;
    let id = if id.trim().is_empty() {
        Uuid::now_v7()
    } else {
        parse_uuid(&id, "scenario")?
    };
    let scenario = Scenario {
        id,
        team: parse_uuid(&team, "team")?,
        title: title.trim().to_owned(),
        category: crate::domain::Category::new(category.trim()),
        objectives,
        injects,
        version: 0,
        updated_at: Timestamp(0),
    };
    handle.0.save_scenario(&viewer, scenario).await
}

/// Schedules `scenario` for its team: open from the day `opens` (`YYYY-MM-DD`), due by
/// the end of the day `due`, coming round with `cadence` (`once`, `monthly`,
/// `quarterly`, `yearly`).
#[server]
pub async fn schedule_drill(
    scenario: String,
    opens: String,
    due: String,
    cadence: String,
) -> Result<(), AppError> {
    let (handle, viewer) = drills()?;
    let scenario = parse_uuid(&scenario, "scenario")?;
    let day = |text: &str| {
        Timestamp::end_of_day(text).ok_or_else(|| AppError::invalid("give the dates as days of the calendar"))
    };
    // Open from the start of its first day.
    let opens_at = Timestamp(day(&opens)?.0 + 1 - 86_400_000);
    let due_at = day(&due)?;
    Drill::check_window(opens_at, due_at).map_err(AppError::invalid)?;
    let cadence = crate::domain::drill::Cadence::from_key(cadence.trim())
        .ok_or_else(|| AppError::invalid("choose how often the drill comes round"))?;
    let drill = Drill {
        id: Uuid::now_v7(),
        scenario,
        // The scenario's, set by the server.
        team: Uuid::nil(),
        opens_at,
        due_at,
        cadence,
        completed_at: None,
    };
    handle.0.schedule(&viewer, drill).await
}

/// One run, measured, with its review.
#[server]
pub async fn drill_run(id: String) -> Result<Option<RunDetail>, AppError> {
    let (handle, viewer) = drills()?;
    let id = parse_uuid(&id, "drill")?;
    handle.0.run(&viewer, id).await
}

/// Writes a run's after-action review: one rating key per objective, in order (empty:
/// not rated yet), what went well and what should be done better.
#[server]
pub async fn save_drill_review(
    id: String,
    ratings: Vec<String>,
    strengths: String,
    improvements: String,
) -> Result<(), AppError> {
    let (handle, viewer) = drills()?;
    let id = parse_uuid(&id, "drill")?;
    let ratings = ratings
        .iter()
        .map(|key| match key.trim() {
            "" => Ok(None),
            key => crate::domain::drill::Rating::from_key(key)
                .map(Some)
                .ok_or_else(|| AppError::invalid("choose one of the ratings")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let review = AfterAction {
        ratings: ratings
            .into_iter()
            .map(|rating| crate::domain::drill::ObjectiveRating {
                objective: String::new(),
                rating,
            })
            .collect(),
        strengths: strengths.trim().to_owned(),
        improvements: improvements.trim().to_owned(),
        updated_at: None,
    };
    review.check().map_err(AppError::invalid)?;
    handle.0.review(&viewer, id, review).await
}

/// Adds an action to a run's improvement plan.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn add_drill_action(id: Uuid, action: crate::desk::NewAction) -> Result<(), AppError> {
    let (handle, viewer) = drills()?;
    if action.text.trim().is_empty() {
        return Err(AppError::invalid("say what is to be done"));
    }
    if action.text.chars().count() > crate::domain::validation::MAX_TEXT {
        return Err(AppError::invalid("keep the action shorter"));
    }
    let action = Action::new(
        Uuid::now_v7(),
        action.kind,
        &action.text,
        &action.owner,
        action.due_at,
    );
    handle.0.save_action(&viewer, id, action).await
}

/// Records an improvement action's progress: its state, and once done its effectiveness
/// check.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn update_drill_action(id: Uuid, action: Action) -> Result<(), AppError> {
    let (handle, viewer) = drills()?;
    if action.text.trim().is_empty()
        || action.check_note.chars().count() > crate::domain::validation::MAX_TEXT
    {
        return Err(AppError::invalid(
            "say what is to be done, and keep the note shorter",
        ));
    }
    handle.0.save_action(&viewer, id, action).await
}
