//! The HTTP edge: `POST /api/sync`, `/healthz`, `/readyz`, and the one mapping from errors
//! to JSON.

use std::collections::HashMap;
use std::sync::Arc;

use app::domain::access::{Ownership, Viewer};
use app::domain::{ReportId, Timestamp};
use app::intake;
use app::merge::{changes_for, merge_push_checked};
use app::protocol::{
    DecodeError, ErrorCode, MAX_FEED_PER_RESPONSE, PROTOCOL_VERSION, Rejection, ReportAck, SyncError,
    SyncResponse, decode_request,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::accounts::Session;
use crate::db::{ApplyError, Job, Sender, Store, Writer, following_key};
use crate::{AppState, admission};

/// A failed request: status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: SyncError,
}

impl ApiError {
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

/// The current time, from the system clock.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms)
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

const DAY_MS: i64 = 24 * 3600 * 1000;

/// `POST /api/sync`: merge every pushed report, commit them together, acknowledge, and
/// send the device what changed on the server since its cursor.
///
/// All or nothing: if any report is refused, nothing is stored and the answer lists every
/// refused report with its reason.
#[tracing::instrument(name = "sync", skip_all, fields(device, reports, stored, feed))]
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
    // Every report's Automerge bytes are walked and bounded before anything else reads
    // them, against one budget for the whole request.
    let mut budget = intake::Budget::for_body(body.len());
    let mut over: Vec<(ReportId, String)> = Vec::new();
    for push in &request.reports {
        match intake::check_push(push, &mut budget) {
            Ok(_) => {}
            Err(e) if e.is_request_cap() => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::TooLarge,
                    e.to_string(),
                ));
            }
            Err(e) => over.push((push.id, e.to_string())),
        }
    }
    if !over.is_empty() {
        return Err(apply_error(ApplyError::Refused(over)));
    }
    // What a person may send per day, counted in stored changes.
    let uploaded: usize = request
        .reports
        .iter()
        .flat_map(|p| p.changes.iter().chain(p.document.as_ref()))
        .map(|b| b.0.len())
        .sum();
    let now = now();
    if uploaded > 0 {
        let today = state
            .store
            .received_bytes_since(viewer.user_id, Timestamp(now.0 - DAY_MS))
            .await
            .map_err(unavailable)?;
        let total = usize::try_from(today)
            .unwrap_or(usize::MAX)
            .saturating_add(uploaded);
        let cap = state.syncs.bytes_per_day;
        if total > cap {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Unavailable,
                format!(
                    "you have sent {} MiB of changes in the last 24 hours; the limit is {} MiB per person (a daily cap on what one account stores). Your reports stay on this device and are sent later",
                    total / (1024 * 1024),
                    cap / (1024 * 1024)
                ),
            ));
        }
    }
    let span = tracing::Span::current();
    span.record("device", tracing::field::display(request.device_id));
    span.record("reports", request.reports.len());
    // What this device follows is kept under its user, so a device id alone opens nothing.
    let device = following_key(viewer.user_id, request.device_id);
    let order: Vec<ReportId> = request.reports.iter().map(|p| p.id).collect();
    let owners = if order.is_empty() {
        HashMap::new()
    } else {
        state.store.ownership(&order).await.map_err(unavailable)?
    };
    let forbidden: Vec<(ReportId, String)> = request
        .reports
        .iter()
        .filter_map(|push| {
            let of = *owners.get(&push.id)?;
            let writes = !push.changes.is_empty() || push.document.is_some();
            if !viewer.can_read(of) {
                Some((push.id, "you may not read or change this report".to_owned()))
            } else if !viewer.can_hold(of) {
                Some((
                    push.id,
                    "this injury report holds privacy-sensitive details: only its reporter and the team's supervisors keep it on a device; read it on the incident page"
                        .to_owned(),
                ))
            } else if writes && !viewer.can_write(of) {
                Some((
                    push.id,
                    "you may read this report but not change it; your changes are kept on this device"
                        .to_owned(),
                ))
            } else {
                None
            }
        })
        .collect();
    if !forbidden.is_empty() {
        return Err(apply_error(ApplyError::Refused(forbidden)));
    }
    let viewer = Arc::new(viewer);
    let jobs: Vec<Job> = request
        .reports
        .into_iter()
        .map(|push| {
            let push = Arc::new(push);
            let viewer = Arc::clone(&viewer);
            Job {
                id: push.id,
                merge: Arc::new(move |stored| merge_push_checked(stored, &push, now, &viewer)),
            }
        })
        .collect();
    let writer = Writer {
        from: Some(Sender {
            user: viewer.user_id,
            session: Some(session),
        }),
        device: Some(device),
        owner: Ownership {
            owner: Some(viewer.user_id),
            team: viewer.home_team(),
            sensitive: false,
        },
    };
    let applied = if jobs.is_empty() {
        Vec::new()
    } else {
        state.store.apply(writer, jobs, now).await.map_err(apply_error)?
    };
    span.record("stored", applied.iter().filter(|a| a.merged.changed).count());

    let (feed, cursor, more) = feed(&state.store, &viewer, device, request.since, now).await?;
    span.record("feed", feed.len());
    let mut acks: HashMap<ReportId, ReportAck> = applied
        .into_iter()
        .map(|a| (a.merged.report.id, a.merged.ack))
        .collect();
    // Supervisors' unread notifications and everyone's response plans ride along when
    // they differ from what the device holds, so the device lists them offline.
    let mut response = SyncResponse {
        protocol_version: PROTOCOL_VERSION,
        reports: order.iter().filter_map(|id| acks.remove(id)).collect(),
        feed,
        cursor: u64::try_from(cursor).unwrap_or(0),
        more,
        notices: None,
        notices_version: None,
        plans: None,
        categories: None,
        lists_version: None,
    };
    // The list is read only when its mark moved since the device's copy, or what the
    // person may read changed (their role or teams are part of the version); each alert
    // is listed only while they may still read its report. Someone who no longer acts on
    // reports has their device's list emptied.
    let version = if viewer.role.acts_on_reports() {
        let mark = state
            .store
            .notice_mark(viewer.user_id)
            .await
            .map_err(unavailable)?;
        Some(format!("{mark}.{}", access_tag(&viewer)))
    } else {
        None
    };
    if request.notices_seen.as_deref() != version.as_deref() {
        let mut notices = match version {
            Some(_) => state.store.notices(viewer.user_id).await.map_err(unavailable)?,
            None => Vec::new(),
        };
        if !notices.is_empty() {
            let ids: Vec<ReportId> = notices.iter().map(|n| n.report_id).collect();
            let owners = state.store.ownership(&ids).await.map_err(unavailable)?;
            notices.retain(|n| owners.get(&n.report_id).is_some_and(|of| viewer.can_read(*of)));
        }
        response.notices = Some(notices);
        response.notices_version = Some(version.unwrap_or_else(|| "none".to_owned()));
    }
    let version = state.store.lists_version().await.map_err(unavailable)?;
    if request.lists_seen.as_deref() != Some(version.as_str()) {
        response.plans = Some(state.store.plans().await.map_err(unavailable)?);
        response.categories = Some(state.store.categories().await.map_err(unavailable)?);
        response.lists_version = Some(version);
    }
    Ok(Json(response).into_response())
}

/// A short tag of what `viewer` may read (role and teams): it changes when they do.
fn access_tag(viewer: &Viewer) -> String {
    use sha2::Digest;
    let mut teams = viewer.teams.clone();
    teams.sort_unstable();
    let mut hash = sha2::Sha256::new();
    hash.update(viewer.role.key());
    for team in teams {
        hash.update(team.as_bytes());
    }
    hex::encode(&hash.finalize()[..4])
}

/// The feed part of an answer: followed reports changed after `since` that the device
/// does not already hold (it holds what this request just acknowledged), and the next
/// cursor.
async fn feed(
    store: &Store,
    viewer: &Viewer,
    device: uuid::Uuid,
    since: Option<u64>,
    now: Timestamp,
) -> Result<(Vec<ReportAck>, i64, bool), ApiError> {
    let until = store.current_seq().await.map_err(unavailable)?;
    let since = since.and_then(|s| i64::try_from(s).ok()).unwrap_or(0);
    // A cursor from the future means the database was restored from a backup: start over.
    let since = if since > until { 0 } else { since };
    let mut rows = store
        .feed(device, since, until, MAX_FEED_PER_RESPONSE)
        .await
        .map_err(unavailable)?;
    let more = rows.len() == MAX_FEED_PER_RESPONSE;
    let cursor = if more {
        rows.last().map_or(until, |r| r.seq)
    } else {
        until
    };
    // Followed once is not readable forever (a person can change teams or roles, a report
    // can become an injury report): what they may no longer hold is left out, and the
    // cursor moves past it.
    if !rows.is_empty() {
        let ids: Vec<ReportId> = rows.iter().map(|r| r.id).collect();
        let owners = store.ownership(&ids).await.map_err(unavailable)?;
        rows.retain(|r| owners.get(&r.id).is_some_and(|of| viewer.can_hold(*of)));
    }
    if rows.is_empty() {
        return Ok((Vec::new(), cursor, more));
    }
    let computed = store
        .cpu(move || {
            rows.into_iter()
                .map(|r| {
                    let known: Vec<String> = r.known_heads.split_whitespace().map(str::to_owned).collect();
                    (r.id, changes_for(&r.doc, &known))
                })
                .collect::<Vec<_>>()
        })
        .await
        .ok_or_else(internal)?;
    let mut entries = Vec::new();
    let mut known = Vec::new();
    for (id, result) in computed {
        match result {
            Ok((heads, changes)) if !changes.is_empty() => {
                known.push((id, heads.join(" ")));
                entries.push(ReportAck { id, heads, changes });
            }
            Ok(_) => {}
            Err(e) => store
                .quarantine(id, &e.to_string(), now)
                .await
                .map_err(unavailable)?,
        }
    }
    store.mark_known(device, &known).await.map_err(unavailable)?;
    Ok((entries, cursor, more))
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Refused(list) => {
            tracing::warn!(rejected = list.len(), "sync refused");
            let mut error = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::RejectedReports,
                format!("{} report(s) were refused; nothing was stored", list.len()),
            );
            error.body.rejected = list
                .into_iter()
                .map(|(id, reason)| Rejection { id, reason })
                .collect();
            error
        }
        ApplyError::Db(e) => unavailable(e),
        ApplyError::Contended | ApplyError::Internal => internal(),
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
