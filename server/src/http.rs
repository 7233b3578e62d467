//! The HTTP edge: `POST /api/sync`, `/healthz`, `/readyz`, and how a refused exchange
//! answers.

use app::protocol::{ErrorCode, decode_request};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::accounts::Session;
use crate::error::{ApiError, signed_out};
use crate::sync::Refusal;
use crate::{AppState, admission};

/// `POST /api/sync`: admits the request (session, then body, then a slot: see
/// `admission`), decodes it and hands it to [`crate::sync::Exchange`]; encodes the answer.
pub async fn sync(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // Who first, then the body, then a slot: see `admission`.
    let Some(Extension(Session {
        viewer, id: session, ..
    })) = session
    else {
        return Err(signed_out());
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let admitted = state.syncs.admit(viewer.user_id, declared).await?;
    let body = admission::read_body(request.into_body(), state.syncs.body_idle).await?;
    let _slot = admitted.slot().await?;
    let request = decode_request(&body)?;
    let response = state.sync.run(viewer, session, request, body.len()).await?;
    Ok(Json(response).into_response())
}

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        match e {
            Refusal::Reports(list) => {
                tracing::warn!(rejected = list.len(), "sync refused");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::RejectedReports,
                    format!("{} report(s) were refused; nothing was stored", list.len()),
                )
                .rejected(list)
            }
            Refusal::TooLarge(message) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, message)
            }
            Refusal::OverDailyCap(message) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Unavailable, message)
            }
            Refusal::Unavailable(e) => unavailable(e),
            Refusal::Busy => internal(),
        }
    }
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the server is busy; your changes are safe on the device and will be retried",
    )
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

/// `GET /readyz`: the database answers, so syncs can be served.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "the database is unreachable").into_response()
        }
    }
}
