//! The one mapping from errors to JSON: every API error is a status and a
//! [`SyncError`] body (kind, message, refused reports).

use app::domain::ReportId;
use app::protocol::{DecodeError, ErrorCode, Rejection, SyncError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request: status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: SyncError,
}

impl ApiError {
    /// An error answered with `status`, its kind and a message for people.
    pub(crate) fn new(status: StatusCode, error: ErrorCode, message: impl Into<String>) -> Self {
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

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let status = match e.code {
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code, e.message)
    }
}

impl ApiError {
    /// This error, naming each refused report with its reason.
    #[must_use]
    pub(crate) fn rejected(mut self, list: Vec<(ReportId, String)>) -> Self {
        self.body.rejected = list
            .into_iter()
            .map(|(id, reason)| Rejection { id, reason })
            .collect();
        self
    }
}

/// The answer to a sync without a valid session.
pub(crate) fn signed_out() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::SignedOut,
        "you are signed out (the session ended or was revoked); sign in again — your reports stay on this device",
    )
}
