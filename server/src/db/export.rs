//! The rows of the CSV export: the incidents a person may read.

use super::{DbError, Store, read_filter, rows_of};
use app::domain::Timestamp;

impl Store {
    /// The CSV rows (as text cells in [`crate::export::COLUMNS`] order) of every real incident
    /// `viewer` may read, newest first (drill reports are never exported as incidents).
    #[tracing::instrument(name = "db.export_rows", skip_all)]
    pub async fn export_rows(
        &self,
        viewer: &app::domain::access::Viewer,
    ) -> Result<Vec<Vec<String>>, DbError> {
        let (readable, teams) = read_filter(viewer, "reports", 2);
        let sql = self.sql(&format!(
            "SELECT id, title, category, severity, status, occurred_at, reported_at, place, latitude,
               longitude, reporter, people_involved, what_happened, immediate_actions
             FROM reports WHERE {readable} AND kind = 'real' ORDER BY reported_at DESC, id DESC",
        ));
        let query = sqlx::query(&sql).bind(viewer.user_id.to_string());
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            title: String,
            category: String,
            severity: String,
            status: String,
            occurred_at: i64,
            reported_at: i64,
            place: String,
            latitude: Option<f64>,
            longitude: Option<f64>,
            reporter: String,
            people_involved: String,
            what_happened: String,
            immediate_actions: String,
        }
        let rows: Vec<Row> = rows_of(
            teams
                .into_iter()
                .fold(query, sqlx::query::Query::bind)
                .fetch_all(self.pool())
                .await,
            "exporting incidents",
        )?;
        let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| {
                let people: Vec<String> = serde_json::from_str(&r.people_involved).unwrap_or_default();
                vec![
                    r.id,
                    r.title,
                    r.category,
                    r.severity,
                    r.status,
                    Timestamp(r.occurred_at).display_utc(),
                    Timestamp(r.reported_at).display_utc(),
                    r.place,
                    number(r.latitude),
                    number(r.longitude),
                    r.reporter,
                    people.join("; "),
                    r.what_happened,
                    r.immediate_actions,
                ]
            })
            .collect())
    }
}
