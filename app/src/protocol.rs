//! The sync protocol between a device and the server: versioned, closed message types.
//!
//! One `POST /api/sync` exchange does both directions:
//!
//! * **Push.** Every report the device has changed since the server last acknowledged it:
//!   the report id, the device's heads, and the changes the server has not acknowledged.
//!   The server applies them (idempotently: a change it already has is skipped), commits,
//!   and answers per report with its heads and the changes the device lacks. A push with
//!   no changes is a pull: the device states its heads and receives what it lacks.
//! * **Feed.** The request carries the device's cursor (`since`): the server's sequence
//!   number up to which the device has durably applied the server's changes. The answer
//!   carries the reports the device follows that changed after it, each with the changes the
//!   device lacks, and the new cursor. The device stores those changes first and the cursor
//!   after, so a lost answer is simply fetched again. With nothing to push and nothing
//!   changed, an exchange is one round trip of about 220 bytes of JSON (the request names
//!   the versions of the four lists the device holds).
//!
//! Changes travel as raw Automerge change bytes in base64; heads as hex. A report the server
//! has never acknowledged travels as its whole compacted document instead (the server
//! checks that its heads are the claimed ones and that nothing in it lacks dependencies).
//! Every request is all-or-nothing: if any report is refused, nothing is stored and the
//! error lists each refused report with its reason, so the device can mark those and
//! retry the rest.
//!
//! Lists ride along without a version bump (older devices ignore them): the request's
//! `notices_seen`, `lists_seen`, `actions_seen`, `drills_seen`, `notices_read` (alerts
//! marked read on the device) and `drill_events` (what happened in drill runs on the
//! device), and the answer's `notices`/`notices_version` (a supervisor's unread
//! escalations), `plans`, `categories`/`lists_version`, `actions`/`actions_version` (the
//! actions the person owns) and `drills`/`drills_version` (the team's drills to come, with
//! their scenarios), sent only when the version differs from what the device sent, and
//! `events_refused` (drill events not stored, and why).
//!
//! # The feed and its cursor
//!
//! Every stored change of a document takes the next number of the server's counter, and
//! numbers become visible in commit order, so "after `since`, up to the counter" never
//! skips a commit. For each followed report the server sends the changes since the heads
//! it last sent that device, and records the heads sent. If that answer is lost, the next
//! entry builds on changes the device lacks: it cannot apply it, keeps its cursor and
//! pulls the report (its own heads, no changes), which resets what the server believes it
//! holds. A cursor beyond the counter (a database restored from a backup) restarts at 0.
//!
//! # Ordering, idempotency and failures
//!
//! Applying a known change is a no-op; changes within a push may arrive in any order; ids
//! are made on the device, so a retried create cannot duplicate; a replayed request
//! stores nothing new. Errors are [`SyncError`] JSON: 400 `malformed_request` or
//! `unsupported_protocol`, 401 `signed_out`, 413 `too_large`, 422 `rejected_reports`
//! (each refused report with its reason), 429 and 503 `unavailable` (retry later). A
//! stored document that cannot be merged is quarantined: pushes to it are refused with a
//! reason, the feed skips it, everything else keeps syncing.

use serde::{Deserialize, Serialize};

use crate::domain::ReportId;

/// The protocol version this build speaks (2 added the cursor feed).
pub const PROTOCOL_VERSION: u32 = 2;
/// Most reports one request may carry; devices send larger outboxes in several requests.
pub const MAX_REPORTS_PER_REQUEST: usize = 200;
/// Most feed entries in one answer; `more` tells the device to ask again.
pub const MAX_FEED_PER_RESPONSE: usize = 200;
/// Most changes one report may carry in one request.
pub const MAX_CHANGES_PER_REPORT: usize = 5_000;
/// Largest request body the server accepts, in bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Raw bytes, base64 in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(#[serde(with = "base64_bytes")] pub Vec<u8>);

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Just enough of a request to check its version before reading the rest.
#[derive(Clone, Debug, Deserialize)]
pub struct VersionProbe {
    /// The sender's protocol version.
    pub protocol_version: u32,
}

/// Device → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Must equal [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The device's stable id.
    pub device_id: uuid::Uuid,
    /// The feed cursor the device has durably applied, or `None` on its first sync.
    #[serde(default)]
    pub since: Option<u64>,
    /// Every report with changes the server has not acknowledged (at most
    /// [`MAX_REPORTS_PER_REQUEST`]).
    pub reports: Vec<ReportPush>,
    /// The version of the notifications the device holds ([`SyncResponse::notices_version`]),
    /// if any: the answer carries the list only when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices_seen: Option<String>,
    /// The version of the reference lists (response plans and categories) the device
    /// holds, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "plans_seen")]
    pub lists_seen: Option<String>,
    /// The version of the person's actions the device holds
    /// ([`SyncResponse::actions_version`]), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_seen: Option<String>,
    /// Notifications the person marked read on the device, also offline, since the last
    /// answer (at most [`MAX_NOTICES`]; ids that are not theirs or already read are
    /// ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices_read: Vec<String>,
    /// The version of the team's drills the device holds ([`SyncResponse::drills_version`]),
    /// likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills_seen: Option<String>,
    /// What happened in drill runs on the device, also offline, since the last answer (at
    /// most [`crate::domain::drill::MAX_EVENTS_PER_REQUEST`]; an id already stored is
    /// skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_events: Vec<crate::domain::DrillEvent>,
}

impl SyncRequest {
    /// A request of this protocol version from `device_id` carrying `reports`, with no
    /// cursor, no list versions, read marks or drill events.
    #[must_use]
    pub fn new(device_id: uuid::Uuid, reports: Vec<ReportPush>) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            device_id,
            since: None,
            reports,
            notices_seen: None,
            lists_seen: None,
            actions_seen: None,
            notices_read: Vec::new(),
            drills_seen: None,
            drill_events: Vec::new(),
        }
    }
}

/// One report's unacknowledged changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPush {
    /// The report.
    pub id: ReportId,
    /// The device's heads for it (hex).
    pub heads: Vec<String>,
    /// Changes the server has not acknowledged, in causal order.
    pub changes: Vec<Bytes>,
    /// The whole compacted document, sent instead of `changes` while the server has
    /// acknowledged nothing of the report: a seventh of the bytes of its changes and
    /// about twice as fast to check. Its heads must be `heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Bytes>,
}

/// Server → device, when every report was accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The server's protocol version.
    pub protocol_version: u32,
    /// One acknowledgement per pushed report, in request order.
    pub reports: Vec<ReportAck>,
    /// Reports the device follows that changed after `since`, oldest change first, with
    /// the changes the device lacks. Never repeats a report pushed in this request.
    #[serde(default)]
    pub feed: Vec<ReportAck>,
    /// The cursor to send as `since` once everything above is stored.
    pub cursor: u64,
    /// Whether more feed entries are waiting: ask again straight away.
    #[serde(default)]
    pub more: bool,
    /// For supervisors: their unread notifications (P1/P2 escalations), newest first, the
    /// whole current list, sent only when it differs from `notices_seen` (absent: keep
    /// what you hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<Vec<Notice>>,
    /// The version of `notices`, to send back as `notices_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices_version: Option<String>,
    /// Every response plan, sent (with `categories`) only when the lists differ from
    /// `lists_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<crate::domain::Plan>>,
    /// Every report category, active or retired, in the order forms list them; sent
    /// with `plans`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<crate::domain::CategoryDef>>,
    /// The version of `plans` and `categories`, to send back as `lists_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "plans_version")]
    pub lists_version: Option<String>,
    /// Every action the person owns on reports they may read, open ones first by due
    /// date (the whole list, sent only when it differs from `actions_seen`), so "My
    /// actions" shows offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<ActionRow>>,
    /// The version of `actions`, to send back as `actions_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_version: Option<String>,
    /// The drills of the person's teams not yet done, with their scenarios (the whole
    /// list, sent only when it differs from `drills_seen`), so drills start offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<Vec<crate::domain::drill::DrillBrief>>,
    /// The version of `drills`, to send back as `drills_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills_version: Option<String>,
    /// Drill events of the request that were not stored, and why (every other one is
    /// stored): the device drops them either way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_refused: Vec<EventRejection>,
}

/// A drill event the server did not store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRejection {
    /// The event.
    pub id: uuid::Uuid,
    /// Why.
    pub reason: String,
}

impl SyncResponse {
    /// An answer of this protocol version with the acknowledgements and the feed, and none
    /// of the lists (notifications, plans, categories) that ride along only when changed.
    pub fn new(reports: Vec<ReportAck>, feed: Vec<ReportAck>, cursor: u64, more: bool) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            reports,
            feed,
            cursor,
            more,
            notices: None,
            notices_version: None,
            plans: None,
            categories: None,
            lists_version: None,
            actions: None,
            actions_version: None,
            drills: None,
            drills_version: None,
            events_refused: Vec::new(),
        }
    }
}

/// The most actions one answer carries.
pub const MAX_ACTIONS: usize = 200;

/// One action in "My actions", with the incident or drill it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRow {
    /// Where it came from.
    pub from: ActionFrom,
    /// The report's title, or the drill scenario's.
    pub title: String,
    /// The action.
    pub action: crate::domain::Action,
}

/// What an action belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionFrom {
    /// An incident's response.
    Report(ReportId),
    /// A drill's improvement plan.
    Drill(uuid::Uuid),
}

impl ActionRow {
    /// The desk page it belongs to.
    #[must_use]
    pub fn link(&self) -> String {
        match self.from {
            ActionFrom::Report(id) => format!("/incidents/{id}"),
            ActionFrom::Drill(id) => format!("/drills/{id}"),
        }
    }

    /// "Drill: " for an action of a drill's improvement plan.
    #[must_use]
    pub fn source_label(&self) -> &'static str {
        match self.from {
            ActionFrom::Report(_) => "",
            ActionFrom::Drill(_) => "Drill: ",
        }
    }
}

/// The most notifications one answer carries.
pub const MAX_NOTICES: usize = 50;

/// A notification: a report of the person's team reached P1 or P2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Its id (to mark it read).
    pub id: String,
    /// The report.
    pub report_id: ReportId,
    /// Its title (as projected when the answer was made).
    pub title: String,
    /// The priority it reached.
    pub priority: crate::domain::Priority,
    /// When.
    pub raised_at: crate::domain::Timestamp,
}

/// The server's durable state of one report after the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportAck {
    /// The report.
    pub id: ReportId,
    /// The server's heads after merging (hex). Everything up to these is durably stored.
    pub heads: Vec<String>,
    /// Changes the device lacks (for example supervisor edits).
    pub changes: Vec<Bytes>,
}

/// Machine-readable error kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not a valid sync request.
    MalformedRequest,
    /// The protocol version is not spoken here; update the app.
    UnsupportedProtocol,
    /// One or more reports were refused; see `rejected`.
    RejectedReports,
    /// Too many reports or changes in one request.
    TooLarge,
    /// The server could not store the changes; retry later.
    Unavailable,
    /// The request was refused for where it came from (another site).
    Forbidden,
    /// No valid session: signed out, expired, revoked or deactivated. Sign in again; the
    /// device keeps everything it has not synced.
    SignedOut,
    /// No such report or photo, or not one this person may read.
    NotFound,
    /// This person may read the report but not add to it.
    NotAllowed,
    /// A photo upload's chunk did not start where the server's copy ends: resume at the
    /// `Upload-Offset` the answer gives.
    OffsetMismatch,
    /// The report (as the server has it) does not name this photo: sync the report first.
    NotNamed,
    /// The photo's bytes were refused (not a JPEG, too large, not the photo named); sending
    /// them again will not help.
    PhotoRefused,
}

/// Why a request failed: always JSON, always with a sentence for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncError {
    /// What kind of failure.
    pub error: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
    /// Per refused report, why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
}

impl SyncError {
    /// Whether sending the same request again later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self.error, ErrorCode::Unavailable)
    }
}

/// One refused report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The report.
    pub id: ReportId,
    /// Why, in words the device shows on that report.
    pub reason: String,
}

/// Why a request body is not an acceptable sync request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What kind of failure (malformed, unsupported version, too large).
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
}

impl DecodeError {
    fn malformed(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::MalformedRequest,
            message: message.into(),
        }
    }
}

/// Decodes and checks a sync request body: the version first (so an old app hears
/// "update the app", not a shape complaint), then the shape, the limits and duplicates.
///
/// This is the one decoder of untrusted request bytes; it is fuzzed.
pub fn decode_request(body: &[u8]) -> Result<SyncRequest, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(body)
        .map_err(|e| DecodeError::malformed(format!("the body is not a sync request: {e}")))?;
    if probe.protocol_version != PROTOCOL_VERSION {
        return Err(DecodeError {
            code: ErrorCode::UnsupportedProtocol,
            message: format!(
                "protocol version {} is not supported; this server speaks version {PROTOCOL_VERSION}. Update the app.",
                probe.protocol_version
            ),
        });
    }
    let request: SyncRequest = serde_json::from_slice(body)
        .map_err(|e| DecodeError::malformed(format!("the body is not a sync request: {e}")))?;
    if request.reports.len() > MAX_REPORTS_PER_REQUEST {
        return Err(DecodeError {
            code: ErrorCode::TooLarge,
            message: format!(
                "{} reports in one request; send at most {MAX_REPORTS_PER_REQUEST} at a time",
                request.reports.len()
            ),
        });
    }
    let mut ids: Vec<_> = request.reports.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::malformed("a report appears twice in one request"));
    }
    let max_events = crate::domain::drill::MAX_EVENTS_PER_REQUEST;
    if request.drill_events.len() > max_events {
        return Err(DecodeError {
            code: ErrorCode::TooLarge,
            message: format!(
                "{} drill events in one request; send at most {max_events} at a time",
                request.drill_events.len()
            ),
        });
    }
    let mut events: Vec<_> = request.drill_events.iter().map(|e| e.id).collect();
    events.sort_unstable();
    if events.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::malformed(
            "a drill event appears twice in one request",
        ));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_travel_as_base64() {
        let push = ReportPush {
            id: ReportId(uuid::Uuid::nil()),
            heads: vec![],
            changes: vec![Bytes(vec![0, 1, 255])],
            document: None,
        };
        let json = serde_json::to_string(&push).unwrap();
        assert!(json.contains("\"AAH/\""), "{json}");
        assert_eq!(serde_json::from_str::<ReportPush>(&json).unwrap(), push);
        assert!(serde_json::from_str::<ReportPush>(&json.replace("AAH/", "%%%")).is_err());
    }
}

/// Who is signed in, as `GET /api/me` tells the device (which keeps it, to work offline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The person.
    pub viewer: crate::domain::access::Viewer,
    /// When the session ends, even offline.
    pub expires_at: crate::domain::Timestamp,
    /// The session's id: with the user id, it makes the actor this device writes as
    /// ([`crate::document::actor_for`]).
    pub session: uuid::Uuid,
}
