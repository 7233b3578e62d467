//! `GET /export/incidents.csv`: the incidents the signed-in person may read, as CSV for
//! spreadsheets. Every cell that a spreadsheet would read as a formula (starting with
//! `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`, so report text can
//! never run as a formula on the reader's machine (CSV injection).

use app::domain::Timestamp;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::AppState;
use crate::accounts::Session;
use crate::db::{Context, DbError, Store, read_filter};

/// The columns, in order.
pub const COLUMNS: [&str; 14] = [
    "id",
    "title",
    "category",
    "severity",
    "status",
    "occurred_at_utc",
    "reported_at_utc",
    "place",
    "latitude",
    "longitude",
    "reporter",
    "people_involved",
    "what_happened",
    "immediate_actions",
];

/// A cell as written: text a spreadsheet would evaluate gets a leading `'`.
#[must_use]
pub fn csv_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

impl Store {
    /// The CSV rows (as text cells in [`COLUMNS`] order) of every report `viewer` may
    /// read, newest first.
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

/// `GET /export/incidents.csv`.
pub async fn incidents_csv(State(state): State<AppState>, session: Option<Extension<Session>>) -> Response {
    let Some(Extension(session)) = session else {
        return (StatusCode::UNAUTHORIZED, "sign in to export incidents").into_response();
    };
    let rows = match state.store.export_rows(&session.viewer).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "exporting incidents");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the export is unavailable right now",
            )
                .into_response();
        }
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = out
        .write_record(COLUMNS)
        .and_then(|()| {
            rows.iter()
                .try_for_each(|row| out.write_record(row.iter().map(|cell| csv_safe(cell))))
        })
        .map_err(|e| e.to_string())
        .and_then(|()| out.into_inner().map_err(|e| e.to_string()));
    match written {
        Ok(bytes) => {
            tracing::info!(rows = rows.len(), "incidents exported");
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"incidents.csv\"",
                    ),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "writing the incident export");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_prefixes_are_neutralised_and_other_text_kept() {
        for hostile in ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_safe(hostile), format!("'{hostile}"));
        }
        for plain in ["Spill at dock 3", "", "a=b", "3-2", "'quoted"] {
            assert_eq!(csv_safe(plain), plain);
        }
    }
}
