//! The HTTP edge: `POST /api/sync`, `/healthz`, and the one mapping from errors to JSON.

use app::domain::Timestamp;
use app::protocol::{
    ErrorCode, MAX_REPORTS_PER_REQUEST, PROTOCOL_VERSION, Rejection, SyncError, SyncRequest, SyncResponse,
    VersionProbe,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::sync::merge_push;

/// A failed request: status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: SyncError,
}

impl ApiError {
    fn new(status: StatusCode, error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: SyncError {
                error,
                message: message.into(),
                rejected: Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The current time, from the system clock.
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms)
}

/// Reads and checks a sync request body.
fn parse_request(body: &[u8]) -> Result<SyncRequest, ApiError> {
    let probe: VersionProbe = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            format!("the body is not a sync request: {e}"),
        )
    })?;
    if probe.protocol_version != PROTOCOL_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedProtocol,
            format!(
                "protocol version {} is not supported; this server speaks version {PROTOCOL_VERSION}. Update the app.",
                probe.protocol_version
            ),
        ));
    }
    let request: SyncRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            format!("the body is not a sync request: {e}"),
        )
    })?;
    if request.reports.len() > MAX_REPORTS_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!(
                "{} reports in one request; send at most {MAX_REPORTS_PER_REQUEST} at a time",
                request.reports.len()
            ),
        ));
    }
    let mut ids: Vec<_> = request.reports.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            "a report appears twice in one request",
        ));
    }
    Ok(request)
}

/// `POST /api/sync`: merge every pushed report, commit them together, acknowledge.
///
/// All or nothing: if any report is refused, nothing is stored and the answer lists every
/// refused report with its reason.
#[tracing::instrument(name = "sync", skip_all, fields(reports, stored))]
pub async fn sync(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::TooLarge
        } else {
            ErrorCode::MalformedRequest
        };
        ApiError::new(status, code, format!("the request body could not be read: {e}"))
    })?;
    let request = parse_request(&body)?;
    tracing::Span::current().record("reports", request.reports.len());
    let now = now();

    let _guard = state.store.write_lock().await;
    let mut merged = Vec::with_capacity(request.reports.len());
    let mut rejected = Vec::new();
    for push in &request.reports {
        let stored = state.store.load_doc(push.id).await.map_err(unavailable)?;
        match merge_push(stored.as_ref().map(|s| s.doc.as_slice()), push, now) {
            Ok(m) => merged.push(m),
            Err(reason) => rejected.push(Rejection { id: push.id, reason }),
        }
    }
    if !rejected.is_empty() {
        tracing::warn!(rejected = rejected.len(), "sync refused");
        let message = format!("{} report(s) were refused; nothing was stored", rejected.len());
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RejectedReports,
            message,
        );
        error.body.rejected = rejected;
        return Err(error);
    }
    state.store.commit(&merged, now).await.map_err(unavailable)?;
    tracing::Span::current().record("stored", merged.iter().filter(|m| m.changed).count());
    let response = SyncResponse {
        protocol_version: PROTOCOL_VERSION,
        reports: merged.into_iter().map(|m| m.ack).collect(),
    };
    Ok(Json(response).into_response())
}

fn unavailable(e: crate::db::DbError) -> ApiError {
    tracing::error!(error = %e, "database failure during sync");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the server could not store the changes right now; they are safe on the device and will be retried",
    )
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}
