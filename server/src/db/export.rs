//! The rows of the CSV export: the incidents a person may read.

use app::domain::Timestamp;
use sqlx::Row;

use super::{Context, DbError, Store, read_filter};

impl Store {
    /// The CSV rows (as text cells in [`crate::export::COLUMNS`] order) of every report `viewer` may
    /// read, newest first.
    #[tracing::instrument(name = "db.export_rows", skip_all)]
    pub async fn export_rows(
        &self,
        viewer: &app::domain::access::Viewer,
    ) -> Result<Vec<Vec<String>>, DbError> {
        let (readable, teams) = read_filter(viewer, "reports", 2);
        let sql = self.sql(&format!(
            "SELECT id, title, category, severity, status, occurred_at, reported_at, place, latitude,
               longitude, reporter, people_involved, what_happened, immediate_actions
             FROM reports WHERE {readable} ORDER BY reported_at DESC, id DESC",
        ));
        let query = sqlx::query(&sql).bind(viewer.user_id.to_string());
        let rows = teams
            .into_iter()
            .fold(query, sqlx::query::Query::bind)
            .fetch_all(self.pool())
            .await
            .context("exporting incidents")?;
        Ok(rows
            .iter()
            .map(|r| {
                let people: Vec<String> =
                    serde_json::from_str(&r.get::<String, _>("people_involved")).unwrap_or_default();
                let number = |col: &str| {
                    r.get::<Option<f64>, _>(col)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                vec![
                    r.get::<String, _>("id"),
                    r.get("title"),
                    r.get("category"),
                    r.get("severity"),
                    r.get("status"),
                    Timestamp(r.get("occurred_at")).display_utc(),
                    Timestamp(r.get("reported_at")).display_utc(),
                    r.get("place"),
                    number("latitude"),
                    number("longitude"),
                    r.get("reporter"),
                    people.join("; "),
                    r.get("what_happened"),
                    r.get("immediate_actions"),
                ]
            })
            .collect())
    }
}
