//! `GET /export/incidents.csv`: the incidents the signed-in person may read, as CSV for
//! spreadsheets. Every cell that a spreadsheet would read as a formula (starting with
//! `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`, so report text can
//! never run as a formula on the reader's machine (CSV injection).

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::accounts::Session;

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
