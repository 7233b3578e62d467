//! The server's side of the drill desk: scenarios, schedules, runs measured from what the
//! phones recorded and the drill reports, reviews and improvement plans.

use std::collections::HashMap;

use app::desk::Person;
use app::document::{ReportDoc, actor_for};
use app::domain::access::{Role, Viewer};
use app::domain::drill::{AfterAction, Drill, DrillReport, DueState, ObjectiveRating, Scenario, measure};
use app::domain::{Action, ReportId};
use app::drills::{DrillBoard, DrillDesk, DrillLine, RunDetail, RunSummary, TeamRef};
use app::error::AppError;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::db::{DbError, Store};

/// The drill desk, over the store.
#[derive(Debug, Clone)]
pub struct Drills {
    store: Store,
    clock: SharedClock,
}

impl Drills {
    /// Drills over `store`, dated by `clock`.
    #[must_use]
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// The teams `viewer` manages drills for (every team, for an administrator).
    async fn teams(&self, viewer: &Viewer) -> Result<Vec<TeamRef>, AppError> {
        let teams = self.store.teams().await.map_err(unavailable)?;
        Ok(teams
            .into_iter()
            .filter(|t| viewer.role == Role::Admin || viewer.teams.contains(&t.id))
            .map(|t| TeamRef {
                id: t.id,
                name: t.name,
            })
            .collect())
    }

    /// Drill `id`, if `viewer` manages its team.
    async fn drill_of(&self, viewer: &Viewer, id: Uuid) -> Result<Option<Drill>, AppError> {
        let drill = self.store.drill(id).await.map_err(unavailable)?;
        Ok(drill.filter(|d| manages(viewer, d.team)))
    }

    /// A run measured: its events, and its drill reports as merged.
    async fn measure(
        &self,
        drill: &Drill,
    ) -> Result<(app::domain::drill::Run, Vec<(ReportId, String)>), AppError> {
        let events = self.store.drill_events(drill.id).await.map_err(unavailable)?;
        let filed = self.store.drill_reports(drill).await.map_err(unavailable)?;
        let ids: Vec<ReportId> = filed.iter().map(|(id, _, _)| *id).collect();
        let docs = self.store.load_docs(&ids).await.map_err(unavailable)?;
        let reports: Vec<DrillReport> = filed
            .iter()
            .filter_map(|(id, by, _)| {
                let stored = docs.get(id)?;
                let report = ReportDoc::load(&stored.doc, actor_for(Uuid::nil(), Uuid::nil(), [0; 4]))
                    .ok()?
                    .read()
                    .ok()?;
                Some(DrillReport {
                    id: *id,
                    by: *by,
                    reported_at: report.reported_at,
                    ticks: report.plan_ticks,
                })
            })
            .collect();
        let titles = filed.into_iter().map(|(id, _, title)| (id, title)).collect();
        Ok((measure(&events, &reports), titles))
    }
}

fn manages(viewer: &Viewer, team: Uuid) -> bool {
    viewer.role.acts_on_reports() && (viewer.role == Role::Admin || viewer.teams.contains(&team))
}

fn unavailable(e: DbError) -> AppError {
    tracing::error!(error = %e, "reading or writing drills");
    AppError::Retryable("drills are unavailable right now".to_owned())
}

/// Overdue and due soon first (soonest due first), then scheduled, then done (latest
/// first).
fn board_order(line: &DrillLine) -> (u8, i64) {
    match line.state {
        DueState::Overdue => (0, line.drill.due_at.0),
        DueState::DueSoon => (1, line.drill.due_at.0),
        DueState::Scheduled => (2, line.drill.due_at.0),
        DueState::Completed => (3, -line.drill.completed_at.map_or(0, |t| t.0)),
    }
}

#[async_trait::async_trait]
impl DrillDesk for Drills {
    async fn board(&self, viewer: &Viewer) -> Result<DrillBoard, AppError> {
        if !viewer.role.acts_on_reports() {
            return Err(AppError::Forbidden(
                "drills are managed by supervisors and administrators".into(),
            ));
        }
        let teams = self.teams(viewer).await?;
        let ids: Vec<Uuid> = teams.iter().map(|t| t.id).collect();
        let scenarios = self.store.scenarios(Some(&ids)).await.map_err(unavailable)?;
        let now = self.clock.now();
        let mut drills: Vec<DrillLine> = self
            .store
            .drills(Some(&ids))
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|drill| DrillLine {
                title: scenarios
                    .iter()
                    .find(|s| s.id == drill.scenario)
                    .map(|s| s.title.clone())
                    .unwrap_or_default(),
                team: teams
                    .iter()
                    .find(|t| t.id == drill.team)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                state: drill.due_state(now),
                drill,
            })
            .collect();
        drills.sort_by_key(board_order);
        let categories = self.store.categories().await.map_err(unavailable)?;
        Ok(DrillBoard {
            teams,
            categories,
            scenarios,
            drills,
        })
    }

    async fn save_scenario(&self, viewer: &Viewer, scenario: Scenario) -> Result<(), AppError> {
        if !manages(viewer, scenario.team) {
            return Err(AppError::Forbidden("you do not manage that team's drills".into()));
        }
        let categories = self.store.categories().await.map_err(unavailable)?;
        if !categories.iter().any(|c| c.key == scenario.category) {
            return Err(AppError::invalid("choose one of the categories"));
        }
        if let Some(stored) = self.store.scenario(scenario.id).await.map_err(unavailable)?
            && stored.team != scenario.team
        {
            return Err(AppError::Conflict("a scenario stays with its team".into()));
        }
        let version = self
            .store
            .save_scenario(&scenario, viewer.user_id, self.clock.now())
            .await
            .map_err(unavailable)?;
        if version == 0 {
            return Err(AppError::Conflict("a scenario stays with its team".into()));
        }
        Ok(())
    }

    async fn schedule(&self, viewer: &Viewer, mut drill: Drill) -> Result<(), AppError> {
        let scenario = self
            .store
            .scenario(drill.scenario)
            .await
            .map_err(unavailable)?
            .filter(|s| manages(viewer, s.team))
            .ok_or_else(|| AppError::NotFound("there is no such scenario".into()))?;
        drill.team = scenario.team;
        self.store
            .schedule_drill(&drill, viewer.user_id, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn run(&self, viewer: &Viewer, id: Uuid) -> Result<Option<RunDetail>, AppError> {
        let Some(drill) = self.drill_of(viewer, id).await? else {
            return Ok(None);
        };
        let Some(scenario) = self.store.scenario(drill.scenario).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let (run, reports) = self.measure(&drill).await?;
        let mut review = self.store.drill_review(id).await.map_err(unavailable)?;
        // One line per objective of the scenario as it stands, with the rating given.
        review.ratings = scenario
            .objectives
            .iter()
            .enumerate()
            .map(|(i, objective)| ObjectiveRating {
                objective: objective.clone(),
                rating: review.ratings.get(i).and_then(|r| r.rating),
            })
            .collect();
        let actions = self.store.drill_actions(id).await.map_err(unavailable)?;
        // The team's runs over time: every drill of the team with anything recorded.
        let mut history = Vec::new();
        let scenarios: HashMap<Uuid, Scenario> = self
            .store
            .scenarios(Some(&[drill.team]))
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut team_drills = self
            .store
            .drills(Some(&[drill.team]))
            .await
            .map_err(unavailable)?;
        team_drills.retain(|d| d.completed_at.is_some() || d.id == drill.id);
        for other in team_drills {
            let measured = if other.id == drill.id {
                run.clone()
            } else {
                self.measure(&other).await?.0
            };
            if measured.started_at.is_none() {
                continue;
            }
            let scenario = scenarios.get(&other.scenario);
            history.push(RunSummary {
                drill: other.id,
                title: scenario.map(|s| s.title.clone()).unwrap_or_default(),
                started_at: measured.started_at,
                first_report_ms: measured.first_report_ms,
                duration_ms: measured.duration_ms,
                steps: measured.steps.len(),
                acknowledged: (
                    measured.acknowledged.len(),
                    scenario.map_or(0, |s| s.injects.len()),
                ),
                participants: measured.participants.len(),
            });
        }
        history.sort_by_key(|r| r.started_at);
        let team = self
            .teams(viewer)
            .await?
            .into_iter()
            .find(|t| t.id == drill.team)
            .map(|t| t.name)
            .unwrap_or_default();
        let users = self.store.users().await.map_err(unavailable)?;
        let people = users
            .into_iter()
            .filter(|u| {
                (u.active && u.teams.contains(&team))
                    || run.participants.contains(&u.id)
                    || actions.iter().any(|a| a.owner == u.id.to_string())
            })
            .map(|u| Person {
                id: u.id.to_string(),
                name: u.name,
            })
            .collect();
        Ok(Some(RunDetail {
            state: drill.due_state(self.clock.now()),
            drill,
            scenario,
            team,
            run,
            reports,
            people,
            review,
            actions,
            history,
            read_at: self.clock.now(),
        }))
    }

    async fn review(&self, viewer: &Viewer, id: Uuid, mut review: AfterAction) -> Result<(), AppError> {
        let Some(drill) = self.drill_of(viewer, id).await? else {
            return Err(AppError::NotFound("there is no such drill".into()));
        };
        let scenario = self
            .store
            .scenario(drill.scenario)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AppError::NotFound("there is no such drill".into()))?;
        if review.ratings.len() != scenario.objectives.len() {
            return Err(AppError::Conflict(
                "the scenario's objectives changed; reload the page and rate them again".into(),
            ));
        }
        // Each rating keeps the objective's words as they were when rated.
        for (rating, objective) in review.ratings.iter_mut().zip(&scenario.objectives) {
            rating.objective.clone_from(objective);
        }
        self.store
            .save_drill_review(id, &review, viewer.user_id, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn save_action(&self, viewer: &Viewer, id: Uuid, action: Action) -> Result<(), AppError> {
        if self.drill_of(viewer, id).await?.is_none() {
            return Err(AppError::NotFound("there is no such drill".into()));
        }
        self.store
            .save_drill_action(id, &action, self.clock.now())
            .await
            .map_err(unavailable)
    }
}
