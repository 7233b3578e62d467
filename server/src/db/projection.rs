//! The `reports` and `actions` projection of merged documents, and what reads it.

use super::*;

impl Store {
    /// Who each of these stored reports belongs to (reports not stored yet are absent).
    #[tracing::instrument(name = "db.ownership", skip_all)]
    pub async fn ownership(&self, ids: &[ReportId]) -> Result<HashMap<ReportId, Ownership>, DbError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = self.sql_for_ids(
                "SELECT id, owner_id, team_id, sensitive FROM reports WHERE id IN ({ids})",
                chunk.len(),
            );
            #[derive(sqlx::FromRow)]
            struct Row {
                id: String,
                owner_id: Option<String>,
                team_id: Option<String>,
                sensitive: i64,
            }
            let rows: Vec<Row> = rows_of(
                bind_ids(&sql, chunk).fetch_all(&self.pool).await,
                "reading who reports belong to",
            )?;
            let uuid = |text: Option<String>| text.and_then(|t| t.parse().ok());
            out.extend(rows.into_iter().filter_map(|r| {
                Some((
                    r.id.parse().ok()?,
                    Ownership {
                        owner: uuid(r.owner_id),
                        team: uuid(r.team_id),
                        sensitive: r.sensitive == 1,
                    },
                ))
            }));
        }
        Ok(out)
    }

    /// The projection of the real incidents `viewer` may read, newest first (drill reports
    /// are listed with their runs).
    #[tracing::instrument(name = "db.list", skip_all)]
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<IncidentRow>, DbError> {
        let (readable, teams) = read_filter(viewer, "reports", 2);
        let sql = self.sql(&format!(
            "SELECT id, title, category, severity, status, reporter, occurred_at, place, latitude, longitude,
               priority_rank, report_due_at
             FROM reports WHERE {readable} AND kind = 'real' ORDER BY reported_at DESC, id DESC",
        ));
        let query = sqlx::query(&sql).bind(viewer.user_id.to_string());
        let rows: Vec<IncidentListRow> = rows_of(
            teams
                .into_iter()
                .fold(query, sqlx::query::Query::bind)
                .fetch_all(&self.pool)
                .await,
            "listing incidents",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(IncidentListRow::into_incident)
            .collect())
    }

    /// The raw projection row of a report, for tests and exports.
    #[tracing::instrument(name = "db.projection", skip_all)]
    pub async fn projection(&self, id: ReportId) -> Result<Option<Projection>, DbError> {
        maybe_row_of(
            sqlx::query(&self.sql("SELECT * FROM reports WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await,
            "reading a projection row",
        )
    }

    /// Brings the SQL projection of merged reports up to date.
    pub(super) async fn project(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[(&Placed, Ownership)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        // Owner and team are set when a report is first stored and never updated.
        let sql = self.sql(&format!(
            "INSERT INTO reports ({})
             VALUES {}
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, what_happened = excluded.what_happened,
               category = excluded.category, severity = excluded.severity,
               severity_rank = excluded.severity_rank, status = excluded.status,
               occurred_at = excluded.occurred_at, reported_at = excluded.reported_at,
               place = excluded.place, latitude = excluded.latitude, longitude = excluded.longitude,
               accuracy_m = excluded.accuracy_m, reporter = excluded.reporter,
               people_involved = excluded.people_involved, immediate_actions = excluded.immediate_actions,
               conflict_count = excluded.conflict_count, updated_at = excluded.updated_at,
               priority_rank = excluded.priority_rank, report_due_at = excluded.report_due_at,
               sensitive = CASE WHEN excluded.sensitive = 1 THEN 1 ELSE reports.sensitive END",
            // `kind` and `drill_id` are not updated: a report's kind is fixed when it is
            // created (the write policy), so they never change.
            PROJECTION_NAMES.join(", "),
            typed_values_list(chunk.len(), &PROJECTION_COLUMNS)
        ));
        chunk
            .iter()
            .fold(sqlx::query(&sql), |q, (a, owner)| {
                let report = &a.write.report;
                let p = Projection::of(report, a.write.conflicts);
                let gps = report.location.gps;
                q.bind(report.id.to_string())
                    .bind(p.title)
                    .bind(p.what_happened)
                    .bind(p.category)
                    .bind(p.severity)
                    .bind(report.severity.rank())
                    .bind(p.status)
                    .bind(p.occurred_at)
                    .bind(report.reported_at.0)
                    .bind(p.place)
                    // As text, cast in SQL: see `PROJECTION_COLUMNS`.
                    .bind(gps.map(|g| g.latitude.to_string()))
                    .bind(gps.map(|g| g.longitude.to_string()))
                    .bind(gps.map(|g| g.accuracy_m.to_string()))
                    .bind(p.reporter)
                    .bind(p.people_involved)
                    .bind(p.immediate_actions)
                    .bind(p.conflict_count)
                    .bind(now.0)
                    .bind(owner.owner.map(|u| u.to_string()))
                    .bind(owner.team.map(|t| t.to_string()))
                    .bind(p.priority_rank)
                    .bind(p.report_due_at.map(|due| due.to_string()))
                    // Once sensitive, always (the history keeps the details): see the
                    // `sensitive = CASE …` above.
                    .bind(i64::from(
                        a.write.sensitive || report.category.is_injury() || !report.injury.is_empty(),
                    ))
                    .bind(p.kind)
                    .bind(p.drill_id)
            })
            .execute(&mut **tx)
            .await
            .context("projecting reports")?;
        self.project_actions(tx, chunk).await
    }

    /// Rewrites the projected actions of the reports in `chunk`.
    pub(super) async fn project_actions(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[(&Placed, Ownership)],
    ) -> Result<(), DbError> {
        // Actions are never removed from a report (a field rule on every write), so a
        // report without actions has none projected: only reports with some are rewritten.
        let with_actions: Vec<String> = chunk
            .iter()
            .filter(|(a, _)| !a.write.report.response.actions.is_empty())
            .map(|(a, _)| a.write.report.id.to_string())
            .collect();
        if with_actions.is_empty() {
            return Ok(());
        }
        let delete = self.sql(&format!(
            "DELETE FROM actions WHERE report_id IN ({})",
            (1..=with_actions.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        with_actions
            .iter()
            .fold(sqlx::query(&delete), |q, id| q.bind(id.clone()))
            .execute(&mut **tx)
            .await
            .context("clearing projected actions")?;
        let rows: Vec<(String, &app::domain::Action)> = chunk
            .iter()
            .flat_map(|(a, _)| {
                let report = &a.write.report;
                report
                    .response
                    .actions
                    .iter()
                    .map(|action| (report.id.to_string(), action))
            })
            .collect();
        for rows in rows.chunks(ACTION_ROWS_PER_STATEMENT) {
            let sql = self.sql(&format!(
                "INSERT INTO actions (report_id, action_id, kind, text, owner_id, due_at, state, check_state)
                 VALUES {}",
                typed_values_list(rows.len(), &ACTION_COLUMNS)
            ));
            rows.iter()
                .fold(sqlx::query(&sql), |q, (report, action)| {
                    q.bind(report.clone())
                        .bind(action.id.to_string())
                        .bind(action.kind.as_str())
                        .bind(action.text.clone())
                        .bind((!action.owner.is_empty()).then(|| action.owner.clone()))
                        // As text, cast in SQL: see `typed_values_list`.
                        .bind(action.due_at.map(|due| due.0.to_string()))
                        .bind(action.state.as_str())
                        .bind(action.check.as_str())
                })
                .execute(&mut **tx)
                .await
                .context("projecting actions")?;
        }
        Ok(())
    }

    /// The actions `viewer` owns on reports they may read and on their teams' drills: open
    /// ones first by due date, then the done ones (at most [`app::protocol::MAX_ACTIONS`]).
    #[tracing::instrument(name = "db.my_actions", skip_all)]
    pub async fn my_actions(&self, viewer: &Viewer) -> Result<Vec<ActionRow>, DbError> {
        let (readable, teams) = read_filter(viewer, "r", 3);
        let sql = self.sql(&format!(
            "SELECT a.report_id, a.action_id, a.kind, a.text, a.due_at, a.state, a.check_state, r.title
             FROM actions a JOIN reports r ON r.id = a.report_id
             WHERE a.owner_id = $1 AND {readable}
             ORDER BY CASE WHEN a.state = 'done' THEN 1 ELSE 0 END, a.due_at IS NULL, a.due_at, a.action_id
             LIMIT {}",
            app::protocol::MAX_ACTIONS
        ));
        let query = sqlx::query(&sql)
            .bind(viewer.user_id.to_string())
            .bind(viewer.user_id.to_string());
        #[derive(sqlx::FromRow)]
        struct Row {
            report_id: String,
            action_id: String,
            kind: String,
            text: String,
            due_at: Option<i64>,
            state: String,
            check_state: String,
            title: String,
        }
        let rows: Vec<Row> = rows_of(
            teams
                .into_iter()
                .fold(query, sqlx::query::Query::bind)
                .fetch_all(&self.pool)
                .await,
            "listing actions",
        )?;
        let mut actions: Vec<ActionRow> = rows
            .into_iter()
            .filter_map(|r| {
                Some(ActionRow {
                    from: app::protocol::ActionFrom::Report(r.report_id.parse().ok()?),
                    title: r.title,
                    action: app::domain::Action {
                        id: r.action_id.parse().ok()?,
                        kind: app::domain::ActionKind::from_key(&r.kind)?,
                        text: r.text,
                        owner: viewer.user_id.to_string(),
                        due_at: r.due_at.map(Timestamp),
                        state: app::domain::ActionState::from_key(&r.state)?,
                        check: app::domain::Effectiveness::from_key(&r.check_state)?,
                        check_note: String::new(),
                    },
                })
            })
            .collect();
        // With the improvement actions of drills, in the same order.
        actions.extend(self.my_drill_actions(viewer).await?);
        actions.sort_by(|a, b| {
            let key = |r: &ActionRow| {
                (
                    r.action.state == app::domain::ActionState::Done,
                    r.action.due_at.is_none(),
                    r.action.due_at,
                    r.action.id,
                )
            };
            key(a).cmp(&key(b))
        });
        actions.truncate(app::protocol::MAX_ACTIONS);
        Ok(actions)
    }
}

/// Action rows per `INSERT` (8 parameters each, far below either database's limit).
pub(super) const ACTION_ROWS_PER_STATEMENT: usize = 200;

/// The projected action columns in `INSERT` order, with casts for those that may be NULL.
pub(super) const ACTION_COLUMNS: [Option<&str>; 8] =
    [None, None, None, None, Some("TEXT"), Some("BIGINT"), None, None];

/// The projection's columns in `INSERT` order (the binds in [`Store::project`] follow it).
/// Each is fed by a field of the document (`app::document::FIELDS` names which) or is
/// derived from how it was stored (see the test below).
pub(super) const PROJECTION_NAMES: [&str; 25] = [
    "id",
    "title",
    "what_happened",
    "category",
    "severity",
    "severity_rank",
    "status",
    "occurred_at",
    "reported_at",
    "place",
    "latitude",
    "longitude",
    "accuracy_m",
    "reporter",
    "people_involved",
    "immediate_actions",
    "conflict_count",
    "updated_at",
    "owner_id",
    "team_id",
    "priority_rank",
    "report_due_at",
    "sensitive",
    "kind",
    "drill_id",
];

/// Projection columns no single field feeds: concurrent values, when it was stored, and
/// who it belongs to.
#[cfg(test)]
const DERIVED: [&str; 4] = ["conflict_count", "updated_at", "owner_id", "team_id"];

/// The projection's columns in `INSERT` order, with a cast for those that may be NULL.
pub(super) const PROJECTION_COLUMNS: [Option<&str>; 25] = {
    let mut columns = [None; 25];
    // latitude, longitude, accuracy_m: bound as text
    columns[10] = Some("DOUBLE PRECISION");
    columns[11] = Some("DOUBLE PRECISION");
    columns[12] = Some("DOUBLE PRECISION");
    // owner_id, team_id
    columns[18] = Some("TEXT");
    columns[19] = Some("TEXT");
    // report_due_at
    columns[21] = Some("BIGINT");
    // drill_id
    columns[24] = Some("TEXT");
    columns
};

/// A projection row as stored, for checking it matches the document.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct Projection {
    pub title: String,
    pub what_happened: String,
    pub category: String,
    pub severity: String,
    pub status: String,
    pub occurred_at: i64,
    pub place: String,
    pub latitude: Option<f64>,
    pub reporter: String,
    pub people_involved: String,
    pub immediate_actions: String,
    pub conflict_count: i64,
    pub priority_rank: i64,
    pub report_due_at: Option<i64>,
    pub kind: String,
    pub drill_id: Option<String>,
}

impl Projection {
    /// What the projection of `report` must hold.
    #[must_use]
    pub fn of(report: &Report, conflict_count: usize) -> Self {
        Self {
            title: report.title.clone(),
            what_happened: report.what_happened.clone(),
            category: report.category.0.clone(),
            severity: report.severity.as_str().to_owned(),
            status: report.status.as_str().to_owned(),
            occurred_at: report.occurred_at.0,
            place: report.location.place.clone(),
            latitude: report.location.gps.map(|g| g.latitude),
            reporter: report.reporter.clone(),
            people_involved: serde_json::to_string(&report.people_involved).unwrap_or_default(),
            immediate_actions: report.immediate_actions.clone(),
            conflict_count: i64::try_from(conflict_count).unwrap_or(i64::MAX),
            priority_rank: report.priority().rank(),
            report_due_at: report.clock().map(|c| c.due.0),
            kind: report.kind().as_str().to_owned(),
            drill_id: report.drill.map(|d| d.to_string()),
        }
    }
}

/// A row of the incident list, as read.
#[derive(sqlx::FromRow)]
pub(super) struct IncidentListRow {
    id: String,
    title: String,
    category: String,
    severity: String,
    status: String,
    reporter: String,
    occurred_at: i64,
    place: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
    priority_rank: i64,
    report_due_at: Option<i64>,
}

impl IncidentListRow {
    /// The list's line (none if the row holds a key this build does not know).
    fn into_incident(self) -> Option<IncidentRow> {
        let location = match (self.place.trim(), self.latitude, self.longitude) {
            ("", Some(lat), Some(lon)) => format!("{lat:.5}, {lon:.5}"),
            (place, _, _) => place.to_owned(),
        };
        Some(IncidentRow {
            id: self.id.parse().ok()?,
            category_label: app::domain::Category(self.category.clone()).label(),
            title: self.title,
            category: self.category,
            severity: Severity::from_key(&self.severity)?,
            status: Status::from_key(&self.status)?,
            reporter: self.reporter,
            occurred_at: Timestamp(self.occurred_at),
            location,
            priority: Priority::from_rank(self.priority_rank)?,
            report_due_at: self.report_due_at.map(Timestamp),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use app::document::FIELDS;

    use super::{DERIVED, PROJECTION_NAMES};

    /// Every projection column is fed by a field of the table (or derived from how it was
    /// stored), and every column the table names exists.
    #[test]
    fn the_projection_follows_the_field_table() {
        let fed: BTreeSet<&str> = FIELDS.iter().flat_map(|f| f.projected.iter().copied()).collect();
        let columns: BTreeSet<&str> = PROJECTION_NAMES.into_iter().collect();
        let derived: BTreeSet<&str> = DERIVED.into_iter().collect();
        assert_eq!(
            columns.difference(&derived).copied().collect::<BTreeSet<_>>(),
            fed,
            "projection columns and FieldSpec::projected differ"
        );
    }
}
