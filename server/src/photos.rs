//! Photos over HTTP, behind the same access rules as their report:
//!
//! * `HEAD /api/reports/{id}/photos/{sha256}`: how much of the photo the server holds
//!   (`Upload-Offset`, and `Upload-Length` from the report's reference to it);
//! * `PATCH` the same path: the next chunk (at most [`CHUNK_BYTES`]), sent at the offset the
//!   server holds (`Upload-Offset`). When the last byte arrives the whole photo is
//!   verified against the reference in the report's document ([`photo::verify`]: size,
//!   SHA-256, a JPEG of those dimensions within the limits) and stored, or refused with
//!   the reason and dropped. A photo already stored answers at once: a retry is a no-op.
//! * `GET` the same path: the photo, to whoever may hold the report (an injury report's
//!   photos are as private as its details).
//!
//! Uploading needs the right to change the report, and the report's document (as the
//! server has it) must name the photo: a device uploads after the report's text is
//! synced, so the server knows the size and hash to expect before a byte arrives.

use app::document::{ReportDoc, actor_for};
use app::domain::access::Ownership;
use app::domain::photo::{self, CHUNK_BYTES};
use app::domain::{PhotoRef, ReportId};
use app::protocol::ErrorCode;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::accounts::Session;
use crate::db::{Appended, Held};
use crate::error::{ApiError, signed_out};

/// The header naming how many bytes of a photo the server holds (as in tus).
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The header naming a photo's whole size.
pub const UPLOAD_LENGTH: &str = "upload-length";

/// The most a `PATCH` body may hold: one chunk.
pub const MAX_CHUNK_BODY: usize = CHUNK_BYTES;

/// `HEAD`: how much of the photo the server holds.
pub async fn progress(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let target = Target::resolve(&state, session, &id, &sha256, Need::Write).await?;
    let named = target.named(&state).await?;
    let held = match state
        .store
        .photo_held(target.report, &named.sha256)
        .await
        .map_err(busy)?
    {
        Held::Stored => named.size,
        Held::Partial(n) => n,
    };
    Ok(offsets(StatusCode::OK, held, named.size))
}

/// `PATCH`: the next chunk of the photo.
#[tracing::instrument(name = "photo.upload", skip_all, fields(report, offset))]
pub async fn upload(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Path((id, sha256)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = Target::resolve(&state, session, &id, &sha256, Need::Write).await?;
    tracing::Span::current().record("report", tracing::field::display(target.report));
    let body = body.map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::TooLarge
        } else {
            ErrorCode::MalformedRequest
        };
        ApiError::new(
            e.status(),
            code,
            format!("send a photo in chunks of at most {CHUNK_BYTES} bytes"),
        )
    })?;
    let offset = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
                "say where this chunk starts (Upload-Offset: bytes)",
            )
        })?;
    tracing::Span::current().record("offset", offset);
    let named = target.named(&state).await?;
    let store = &state.store;
    // The append below reads how much is held; only whether it is stored is asked here.
    if store
        .photo_stored(target.report, &named.sha256)
        .await
        .map_err(busy)?
    {
        // Already stored for this report: sending it again changes nothing.
        return Ok(offsets(StatusCode::NO_CONTENT, named.size, named.size));
    }
    let end = offset.saturating_add(body.len() as u64);
    if end > named.size || body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            format!(
                "a chunk holds 1 or more of the photo's {} bytes and ends within them",
                named.size
            ),
        ));
    }
    // What one person may have in unfinished uploads at once: a new upload starts only
    // under the cap; one already started may go on one photo's size past it, so people
    // can always finish what they started (and free its share).
    let pending = store.pending_photo_bytes(target.person).await.map_err(busy)?;
    let cap = state.syncs.pending_photo_bytes as u64;
    let allowed = if offset == 0 {
        cap
    } else {
        cap + photo::MAX_PHOTO_BYTES
    };
    if pending.saturating_add(body.len() as u64) > allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable,
            format!(
                "you have {} of photo uploads not finished; at most {} may wait at once. The photo stays on this device and is sent later",
                in_words(pending),
                in_words(cap)
            ),
        ));
    }
    let held = match store
        .append_photo_chunk(
            target.report,
            &named.sha256,
            offset,
            &body,
            target.person,
            state.clock.now(),
        )
        .await
        .map_err(busy)?
    {
        Appended::To(held) => held,
        Appended::Elsewhere(held) => {
            let mut refused = ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::OffsetMismatch,
                format!("the server holds {held} bytes of this photo: continue from there"),
            )
            .into_response();
            set_offsets(refused.headers_mut(), held, named.size);
            return Ok(refused);
        }
    };
    if held < named.size {
        return Ok(offsets(StatusCode::NO_CONTENT, held, named.size));
    }
    // The last chunk: check the whole photo, then keep it or drop it.
    let bytes = store
        .uploaded_bytes(target.report, &named.sha256)
        .await
        .map_err(busy)?;
    let check = named.clone();
    let (bytes, verdict) = store
        .cpu()
        .run(move || {
            let verdict = photo::verify(&bytes, &check);
            (bytes, verdict)
        })
        .await
        .ok_or_else(|| busy("checking a photo"))?;
    if let Err(reason) = verdict {
        tracing::warn!(%reason, "photo refused");
        store
            .discard_upload(target.report, &named.sha256)
            .await
            .map_err(busy)?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PhotoRefused,
            format!("{reason}; it was not kept"),
        ));
    }
    store
        .store_photo(target.report, &named, bytes, state.clock.now())
        .await
        .map_err(busy)?;
    tracing::info!(size = named.size, "photo stored");
    Ok(offsets(StatusCode::NO_CONTENT, named.size, named.size))
}

/// `GET`: the photo.
pub async fn fetch(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let target = Target::resolve(&state, session, &id, &sha256, Need::Hold).await?;
    let bytes = state
        .store
        .photo(target.report, &target.sha256)
        .await
        .map_err(busy)?
        .ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            // Named by its hash: it never changes; kept by this browser only.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=31536000, immutable"),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// What a request needs to be allowed.
#[derive(Clone, Copy)]
enum Need {
    /// To add to the report (uploads).
    Write,
    /// To hold the whole report (reading photos).
    Hold,
}

/// A photo of a report someone may reach.
struct Target {
    report: ReportId,
    sha256: String,
    /// Who is asking.
    person: uuid::Uuid,
}

impl Target {
    async fn resolve(
        state: &AppState,
        session: Option<Extension<Session>>,
        id: &str,
        sha256: &str,
        need: Need,
    ) -> Result<Self, ApiError> {
        let Some(Extension(Session { viewer, .. })) = session else {
            return Err(signed_out());
        };
        let report: ReportId = id.parse().map_err(|_| not_found())?;
        if !photo::is_sha256_hex(sha256) {
            return Err(not_found());
        }
        let owners = state.store.ownership(&[report]).await.map_err(busy)?;
        // A report they may not read is, to them, a report that does not exist.
        let of: Ownership = owners
            .get(&report)
            .copied()
            .filter(|of| viewer.can_hold(*of))
            .ok_or_else(not_found)?;
        if matches!(need, Need::Write) && !viewer.can_write(of) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::NotAllowed,
                "you may see this report but not add photos to it",
            ));
        }
        Ok(Self {
            report,
            sha256: sha256.to_owned(),
            person: viewer.user_id,
        })
    }

    /// The report's reference to this photo, from its stored document.
    async fn named(&self, state: &AppState) -> Result<PhotoRef, ApiError> {
        let stored = state
            .store
            .load_doc(self.report)
            .await
            .map_err(busy)?
            .filter(|s| !s.quarantined)
            .ok_or_else(not_found)?;
        let sha256 = self.sha256.clone();
        let named = state
            .store
            .cpu()
            .run(move || {
                let doc = ReportDoc::load(
                    &stored.doc,
                    actor_for(uuid::Uuid::nil(), uuid::Uuid::nil(), [0; 4]),
                )
                .ok()?;
                doc.read().ok()?.photos.into_iter().find(|p| p.sha256 == sha256)
            })
            .await
            .ok_or_else(|| busy("reading a report"))?;
        named.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotNamed,
                "the report does not name this photo yet: sync the report, then upload",
            )
        })
    }
}

fn offsets(status: StatusCode, held: u64, size: u64) -> Response {
    let mut response = status.into_response();
    set_offsets(response.headers_mut(), held, size);
    response
}

fn set_offsets(headers: &mut HeaderMap, held: u64, size: u64) {
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(held));
    headers.insert(UPLOAD_LENGTH, HeaderValue::from(size));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such photo")
}

fn busy(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "photo request failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the server could not handle the photo right now; it stays on the device and will be retried",
    )
}

/// A size for people: KiB below a MiB, else MiB.
fn in_words(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{} MiB", bytes / (1024 * 1024))
    }
}
