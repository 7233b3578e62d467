//! Drills: scenarios, schedules, what phones recorded in runs, reviews and improvement
//! actions (`app::domain::drill`).

use app::domain::drill::{
    AfterAction, Cadence, Drill, DrillBrief, Happening, Inject, MAX_EVENTS_PER_PERSON, RecordedEvent,
    Scenario,
};
use app::domain::{Action, ActionKind, ActionState, Category, DrillEvent, Effectiveness};
use app::protocol::{ActionFrom, EventRejection};
use uuid::Uuid;

use super::*;

/// ` AND <column> IN ($first, …)` for `teams` (nothing for `None`: every team).
fn team_filter(column: &str, teams: Option<&[Uuid]>, first: usize) -> String {
    match teams {
        None => String::new(),
        Some(teams) => {
            let list: Vec<String> = (0..teams.len().max(1))
                .map(|i| format!("${}", first + i))
                .collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
    }
}

/// The team ids to bind for [`team_filter`] (a team that matches nothing when empty).
fn team_binds(teams: Option<&[Uuid]>) -> Vec<String> {
    match teams {
        None => Vec::new(),
        Some([]) => vec![String::new()],
        Some(teams) => teams.iter().map(ToString::to_string).collect(),
    }
}

#[derive(sqlx::FromRow)]
struct ScenarioRow {
    id: String,
    team_id: String,
    title: String,
    category: String,
    objectives: String,
    injects: String,
    version: i64,
    updated_at: i64,
}

impl ScenarioRow {
    fn read(self) -> Option<Scenario> {
        Some(Scenario {
            id: self.id.parse().ok()?,
            team: self.team_id.parse().ok()?,
            title: self.title,
            category: Category(self.category),
            objectives: serde_json::from_str(&self.objectives).ok()?,
            injects: serde_json::from_str::<Vec<Inject>>(&self.injects).ok()?,
            version: self.version,
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct DrillRow {
    id: String,
    scenario_id: String,
    team_id: String,
    opens_at: i64,
    due_at: i64,
    cadence: String,
    completed_at: Option<i64>,
}

impl DrillRow {
    fn read(self) -> Option<Drill> {
        Some(Drill {
            id: self.id.parse().ok()?,
            scenario: self.scenario_id.parse().ok()?,
            team: self.team_id.parse().ok()?,
            opens_at: Timestamp(self.opens_at),
            due_at: Timestamp(self.due_at),
            cadence: Cadence::from_key(&self.cadence)?,
            completed_at: self.completed_at.map(Timestamp),
        })
    }
}

const SCENARIO_COLUMNS: &str = "id, team_id, title, category, objectives, injects, version, updated_at";
const DRILL_COLUMNS: &str = "id, scenario_id, team_id, opens_at, due_at, cadence, completed_at";

impl Store {
    /// Stores a new scenario (version 1) or a change to one (the next version; its team
    /// never changes). Returns the version stored.
    #[tracing::instrument(name = "db.save_scenario", skip_all)]
    pub async fn save_scenario(&self, scenario: &Scenario, by: Uuid, now: Timestamp) -> Result<i64, DbError> {
        let version: Option<i64> = sqlx::query_scalar(&self.sql(
            "INSERT INTO scenarios (id, team_id, title, category, objectives, injects, version, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, category = excluded.category,
               objectives = excluded.objectives, injects = excluded.injects,
               version = scenarios.version + 1, updated_at = excluded.updated_at, updated_by = excluded.updated_by
             WHERE scenarios.team_id = excluded.team_id
             RETURNING version",
        ))
        .bind(scenario.id.to_string())
        .bind(scenario.team.to_string())
        .bind(scenario.title.trim().to_owned())
        .bind(scenario.category.0.clone())
        .bind(serde_json::to_string(&scenario.objectives).unwrap_or_else(|_| "[]".to_owned()))
        .bind(serde_json::to_string(&scenario.injects).unwrap_or_else(|_| "[]".to_owned()))
        .bind(now.0)
        .bind(by.to_string())
        .fetch_optional(&self.pool)
        .await
        .context("saving a drill scenario")?;
        Ok(version.unwrap_or(0))
    }

    /// The scenarios of `teams` (`None`: every team), by title.
    #[tracing::instrument(name = "db.scenarios", skip_all)]
    pub async fn scenarios(&self, teams: Option<&[Uuid]>) -> Result<Vec<Scenario>, DbError> {
        let sql = self.sql(&format!(
            "SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE 1 = 1{} ORDER BY title, id",
            team_filter("team_id", teams, 1)
        ));
        let rows: Vec<ScenarioRow> = rows_of(
            team_binds(teams)
                .into_iter()
                .fold(sqlx::query(&sql), sqlx::query::Query::bind)
                .fetch_all(&self.pool)
                .await,
            "reading drill scenarios",
        )?;
        Ok(rows.into_iter().filter_map(ScenarioRow::read).collect())
    }

    /// One scenario.
    #[tracing::instrument(name = "db.scenario", skip_all)]
    pub async fn scenario(&self, id: Uuid) -> Result<Option<Scenario>, DbError> {
        let row: Option<ScenarioRow> = maybe_row_of(
            sqlx::query(&self.sql(&format!("SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE id = $1")))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await,
            "reading a drill scenario",
        )?;
        Ok(row.and_then(ScenarioRow::read))
    }

    /// Schedules a drill.
    #[tracing::instrument(name = "db.schedule_drill", skip_all)]
    pub async fn schedule_drill(&self, drill: &Drill, by: Uuid, now: Timestamp) -> Result<(), DbError> {
        self.insert_drill(&self.pool, drill, by, now).await
    }

    async fn insert_drill<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
        &self,
        executor: E,
        drill: &Drill,
        by: Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(&self.sql(
            "INSERT INTO drills (id, scenario_id, team_id, opens_at, due_at, cadence, completed_at, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), $8, $9)",
        ))
        .bind(drill.id.to_string())
        .bind(drill.scenario.to_string())
        .bind(drill.team.to_string())
        .bind(drill.opens_at.0)
        .bind(drill.due_at.0)
        .bind(drill.cadence.as_str())
        .bind(drill.completed_at.map(|t| t.0.to_string()))
        .bind(now.0)
        .bind(by.to_string())
        .execute(executor)
        .await
        .context("scheduling a drill")?;
        Ok(())
    }

    /// The drills of `teams` (`None`: every team), latest due first.
    #[tracing::instrument(name = "db.drills", skip_all)]
    pub async fn drills(&self, teams: Option<&[Uuid]>) -> Result<Vec<Drill>, DbError> {
        let sql = self.sql(&format!(
            "SELECT {DRILL_COLUMNS} FROM drills WHERE 1 = 1{} ORDER BY due_at DESC, id",
            team_filter("team_id", teams, 1)
        ));
        let rows: Vec<DrillRow> = rows_of(
            team_binds(teams)
                .into_iter()
                .fold(sqlx::query(&sql), sqlx::query::Query::bind)
                .fetch_all(&self.pool)
                .await,
            "reading drills",
        )?;
        Ok(rows.into_iter().filter_map(DrillRow::read).collect())
    }

    /// One drill.
    #[tracing::instrument(name = "db.drill", skip_all)]
    pub async fn drill(&self, id: Uuid) -> Result<Option<Drill>, DbError> {
        let row: Option<DrillRow> = maybe_row_of(
            sqlx::query(&self.sql(&format!("SELECT {DRILL_COLUMNS} FROM drills WHERE id = $1")))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await,
            "reading a drill",
        )?;
        Ok(row.and_then(DrillRow::read))
    }

    /// The drills of `teams` not yet done, each with its scenario, due first: what the
    /// team's phones keep.
    #[tracing::instrument(name = "db.drill_briefs", skip_all)]
    pub async fn drill_briefs(&self, teams: &[Uuid]) -> Result<Vec<DrillBrief>, DbError> {
        if teams.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.sql(&format!(
            "SELECT {DRILL_COLUMNS} FROM drills WHERE completed_at IS NULL{} ORDER BY due_at, id",
            team_filter("team_id", Some(teams), 1)
        ));
        let rows: Vec<DrillRow> = rows_of(
            team_binds(Some(teams))
                .into_iter()
                .fold(sqlx::query(&sql), sqlx::query::Query::bind)
                .fetch_all(&self.pool)
                .await,
            "reading the drills to come",
        )?;
        let drills: Vec<Drill> = rows.into_iter().filter_map(DrillRow::read).collect();
        if drills.is_empty() {
            // The usual answer: nothing more to read.
            return Ok(Vec::new());
        }
        let scenarios = self.scenarios(Some(teams)).await?;
        Ok(drills
            .into_iter()
            .filter_map(|drill| {
                let scenario = scenarios.iter().find(|s| s.id == drill.scenario)?.clone();
                Some(DrillBrief { drill, scenario })
            })
            .collect())
    }

    /// Stores the drill events `by` sent, who belongs to `teams`, received at `now`, in
    /// one transaction; an event already stored is skipped. Returns those refused, with
    /// why. The first `ended` of a run completes its drill and, with a cadence,
    /// schedules the next one from that day.
    #[tracing::instrument(name = "db.record_events", skip_all, fields(events = events.len()))]
    pub async fn record_events(
        &self,
        by: Uuid,
        teams: &[Uuid],
        events: &[DrillEvent],
        now: Timestamp,
    ) -> Result<Vec<EventRejection>, DbError> {
        let mut refused = Vec::new();
        if events.is_empty() {
            return Ok(refused);
        }
        // Each drill the events name, read before the transaction: its scenario and how
        // many events this person stored in it already.
        let mut known: HashMap<Uuid, Option<(Drill, Scenario, i64)>> = HashMap::new();
        for event in events {
            if known.contains_key(&event.drill) {
                continue;
            }
            let found = match self.drill(event.drill).await? {
                Some(drill) if teams.contains(&drill.team) => match self.scenario(drill.scenario).await? {
                    Some(scenario) => {
                        let count: i64 =
                            sqlx::query_scalar(&self.sql(
                                "SELECT COUNT(*) FROM drill_events WHERE drill_id = $1 AND user_id = $2",
                            ))
                            .bind(drill.id.to_string())
                            .bind(by.to_string())
                            .fetch_one(&self.pool)
                            .await
                            .context("counting drill events")?;
                        Some((drill, scenario, count))
                    }
                    None => None,
                },
                _ => None,
            };
            known.insert(event.drill, found);
        }
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        for event in events {
            let Some(Some((drill, scenario, count))) = known.get_mut(&event.drill) else {
                refused.push(EventRejection {
                    id: event.id,
                    reason: "there is no such drill for your team".to_owned(),
                });
                continue;
            };
            if let Err(reason) = event.check(drill, scenario, now, app::domain::policy::CLOCK_SKEW_MS) {
                refused.push(EventRejection { id: event.id, reason });
                continue;
            }
            if usize::try_from(*count).unwrap_or(usize::MAX) >= MAX_EVENTS_PER_PERSON {
                refused.push(EventRejection {
                    id: event.id,
                    reason: "you recorded as much in this drill as a run can hold".to_owned(),
                });
                continue;
            }
            let stored = sqlx::query(&self.sql(
                "INSERT INTO drill_events (id, drill_id, user_id, what, inject, at, received_at)
                 VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT), $6, $7) ON CONFLICT (id) DO NOTHING",
            ))
            .bind(event.id.to_string())
            .bind(drill.id.to_string())
            .bind(by.to_string())
            .bind(event.happening.key())
            .bind(event.happening.inject().map(|i| i.to_string()))
            .bind(event.at.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .context("recording a drill event")?
            .rows_affected();
            *count += i64::try_from(stored).unwrap_or(0);
            if stored == 1 && event.happening == Happening::Ended {
                let completed = sqlx::query(
                    &self.sql("UPDATE drills SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL"),
                )
                .bind(drill.id.to_string())
                .bind(event.at.0)
                .execute(&mut *tx)
                .await
                .context("completing a drill")?
                .rows_affected();
                if completed == 1 {
                    drill.completed_at = Some(event.at);
                    // The next one is due a period after the day it was done.
                    if let Some(next) = drill.next(event.at, Uuid::now_v7()) {
                        self.insert_drill(&mut *tx, &next, by, now).await?;
                    }
                } else {
                    // Completed already: by the earliest end, whatever order they came in.
                    sqlx::query(
                        &self.sql("UPDATE drills SET completed_at = $2 WHERE id = $1 AND completed_at > $2"),
                    )
                    .bind(drill.id.to_string())
                    .bind(event.at.0)
                    .execute(&mut *tx)
                    .await
                    .context("completing a drill")?;
                }
            }
        }
        tx.commit().await.context("committing drill events")?;
        Ok(refused)
    }

    /// Every event of a run.
    #[tracing::instrument(name = "db.drill_events", skip_all)]
    pub async fn drill_events(&self, drill: Uuid) -> Result<Vec<RecordedEvent>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            user_id: String,
            what: String,
            inject: Option<i64>,
            at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(
                "SELECT id, user_id, what, inject, at FROM drill_events WHERE drill_id = $1 ORDER BY at, id",
            ))
            .bind(drill.to_string())
            .fetch_all(&self.pool)
            .await,
            "reading drill events",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let inject = r.inject.and_then(|i| u16::try_from(i).ok());
                Some(RecordedEvent {
                    event: DrillEvent {
                        id: r.id.parse().ok()?,
                        drill,
                        happening: Happening::from_key(&r.what, inject)?,
                        at: Timestamp(r.at),
                    },
                    by: r.user_id.parse().ok()?,
                })
            })
            .collect())
    }

    /// The drill reports of a run: filed for the drill's team and naming the drill (a
    /// report naming another team's drill is never counted in its run). Each with who
    /// filed it.
    #[tracing::instrument(name = "db.drill_reports", skip_all)]
    pub async fn drill_reports(
        &self,
        drill: &Drill,
    ) -> Result<Vec<(ReportId, Option<Uuid>, String)>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            owner_id: Option<String>,
            title: String,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(
                "SELECT id, owner_id, title FROM reports WHERE kind = 'drill' AND drill_id = $1 AND team_id = $2
                 ORDER BY reported_at, id",
            ))
            .bind(drill.id.to_string())
            .bind(drill.team.to_string())
            .fetch_all(&self.pool)
            .await,
            "reading a drill's reports",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.id.parse().ok()?,
                    r.owner_id.and_then(|o| o.parse().ok()),
                    r.title,
                ))
            })
            .collect())
    }

    /// A run's after-action review (empty until written).
    #[tracing::instrument(name = "db.drill_review", skip_all)]
    pub async fn drill_review(&self, drill: Uuid) -> Result<AfterAction, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            ratings: String,
            strengths: String,
            improvements: String,
            updated_at: i64,
        }
        let row: Option<Row> = maybe_row_of(
            sqlx::query(&self.sql(
                "SELECT ratings, strengths, improvements, updated_at FROM drill_reviews WHERE drill_id = $1",
            ))
            .bind(drill.to_string())
            .fetch_optional(&self.pool)
            .await,
            "reading a drill review",
        )?;
        Ok(row.map_or_else(AfterAction::default, |r| AfterAction {
            ratings: serde_json::from_str(&r.ratings).unwrap_or_default(),
            strengths: r.strengths,
            improvements: r.improvements,
            updated_at: Some(Timestamp(r.updated_at)),
        }))
    }

    /// Writes a run's after-action review.
    #[tracing::instrument(name = "db.save_drill_review", skip_all)]
    pub async fn save_drill_review(
        &self,
        drill: Uuid,
        review: &AfterAction,
        by: Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(&self.sql(
            "INSERT INTO drill_reviews (drill_id, ratings, strengths, improvements, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (drill_id) DO UPDATE SET ratings = excluded.ratings, strengths = excluded.strengths,
               improvements = excluded.improvements, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        ))
        .bind(drill.to_string())
        .bind(serde_json::to_string(&review.ratings).unwrap_or_else(|_| "[]".to_owned()))
        .bind(review.strengths.clone())
        .bind(review.improvements.clone())
        .bind(now.0)
        .bind(by.to_string())
        .execute(&self.pool)
        .await
        .context("saving a drill review")?;
        Ok(())
    }

    /// Adds an action to a drill's improvement plan, or records its progress.
    #[tracing::instrument(name = "db.save_drill_action", skip_all)]
    pub async fn save_drill_action(
        &self,
        drill: Uuid,
        action: &Action,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(&self.sql(
            "INSERT INTO drill_actions (action_id, drill_id, kind, text, owner_id, due_at, state, check_state, check_note, updated_at)
             VALUES ($1, $2, $3, $4, CAST($5 AS TEXT), CAST($6 AS BIGINT), $7, $8, $9, $10)
             ON CONFLICT (action_id) DO UPDATE SET text = excluded.text, owner_id = excluded.owner_id,
               due_at = excluded.due_at, state = excluded.state, check_state = excluded.check_state,
               check_note = excluded.check_note, updated_at = excluded.updated_at
             WHERE drill_actions.drill_id = excluded.drill_id",
        ))
        .bind(action.id.to_string())
        .bind(drill.to_string())
        .bind(action.kind.as_str())
        .bind(action.text.clone())
        .bind((!action.owner.is_empty()).then(|| action.owner.clone()))
        .bind(action.due_at.map(|d| d.0.to_string()))
        .bind(action.state.as_str())
        .bind(action.check.as_str())
        .bind(action.check_note.clone())
        .bind(now.0)
        .execute(&self.pool)
        .await
        .context("saving a drill action")?;
        Ok(())
    }

    /// The improvement plan of a drill, oldest first.
    #[tracing::instrument(name = "db.drill_actions", skip_all)]
    pub async fn drill_actions(&self, drill: Uuid) -> Result<Vec<Action>, DbError> {
        let rows: Vec<DrillActionRow> = rows_of(
            sqlx::query(&self.sql(&format!(
                "SELECT {DRILL_ACTION_COLUMNS}, '' AS title FROM drill_actions a WHERE a.drill_id = $1 ORDER BY a.action_id"
            )))
            .bind(drill.to_string())
            .fetch_all(&self.pool)
            .await,
            "reading a drill's actions",
        )?;
        Ok(rows.into_iter().filter_map(|r| Some(r.read()?.1)).collect())
    }

    /// The drill improvement actions `viewer` owns, on drills of their teams (any, for an
    /// administrator), each with its scenario's title.
    pub(super) async fn my_drill_actions(&self, viewer: &Viewer) -> Result<Vec<ActionRow>, DbError> {
        let teams = (viewer.role != Role::Admin).then_some(viewer.teams.as_slice());
        let sql = self.sql(&format!(
            "SELECT {DRILL_ACTION_COLUMNS}, s.title FROM drill_actions a
             JOIN drills d ON d.id = a.drill_id JOIN scenarios s ON s.id = d.scenario_id
             WHERE a.owner_id = $1{}
             LIMIT {}",
            team_filter("d.team_id", teams, 2),
            app::protocol::MAX_ACTIONS
        ));
        let rows: Vec<DrillActionRow> = rows_of(
            team_binds(teams)
                .into_iter()
                .fold(
                    sqlx::query(&sql).bind(viewer.user_id.to_string()),
                    sqlx::query::Query::bind,
                )
                .fetch_all(&self.pool)
                .await,
            "listing drill actions",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let title = r.title.clone();
                let (drill, action) = r.read()?;
                Some(ActionRow {
                    from: ActionFrom::Drill(drill),
                    title,
                    action,
                })
            })
            .collect())
    }
}

const DRILL_ACTION_COLUMNS: &str =
    "a.action_id, a.drill_id, a.kind, a.text, a.owner_id, a.due_at, a.state, a.check_state, a.check_note";

#[derive(sqlx::FromRow)]
struct DrillActionRow {
    action_id: String,
    drill_id: String,
    kind: String,
    text: String,
    owner_id: Option<String>,
    due_at: Option<i64>,
    state: String,
    check_state: String,
    check_note: String,
    title: String,
}

impl DrillActionRow {
    fn read(self) -> Option<(Uuid, Action)> {
        Some((
            self.drill_id.parse().ok()?,
            Action {
                id: self.action_id.parse().ok()?,
                kind: ActionKind::from_key(&self.kind)?,
                text: self.text,
                owner: self.owner_id.unwrap_or_default(),
                due_at: self.due_at.map(Timestamp),
                state: ActionState::from_key(&self.state)?,
                check: Effectiveness::from_key(&self.check_state)?,
                check_note: self.check_note,
            },
        ))
    }
}
