//! The field device as the pages see it: a port the browser crate implements.
//!
//! Pages never touch browser storage, geolocation or the network directly. They read the
//! reactive [`FieldState`] and call the [`Device`] port, both provided through context by
//! the `frontend` crate when the app hydrates. During server rendering there is no device:
//! field pages render their empty shell, which is what the service worker caches.

use std::sync::Arc;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::connectivity::Connectivity;
use crate::domain::{Clock, GpsFix, Priority, Report, ReportId, Severity, Status, Timestamp};

/// Where one local report stands with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum ReportSync {
    /// Has changes the server has not acknowledged.
    NotSynced,
    /// Everything on this device is durably on the server.
    Synced,
    /// The server refused the report's changes; the reason says why. The text is kept.
    Error(String),
}

impl ReportSync {
    /// A short label.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::NotSynced => "Not synced".to_owned(),
            Self::Synced => "Synced".to_owned(),
            Self::Error(reason) => format!("Sync error: {reason}"),
        }
    }

    /// A CSS modifier.
    #[must_use]
    pub fn class(&self) -> &'static str {
        match self {
            Self::NotSynced => "badge badge-pending",
            Self::Synced => "badge badge-ok",
            Self::Error(_) => "badge badge-error",
        }
    }
}

/// Where one photo taken on this device stands with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum PhotoSync {
    /// Kept on this device, waiting for its report's text to sync and a connection.
    Waiting,
    /// Being uploaded: the server holds this many of its bytes.
    Uploading(u64),
    /// On the server (and no longer kept on this device).
    Uploaded,
    /// The server refused it; the reason says why. It stays on this device.
    Refused(String),
}

impl PhotoSync {
    /// A short label, for a photo of `size` bytes.
    #[must_use]
    pub fn label(&self, size: u64) -> String {
        match self {
            Self::Waiting => "On this device, waiting to upload".to_owned(),
            Self::Uploading(held) => {
                let percent = held.saturating_mul(100).checked_div(size).unwrap_or(0).min(99);
                format!("Uploading ({percent}%)")
            }
            Self::Uploaded => "Uploaded".to_owned(),
            Self::Refused(reason) => format!("Not accepted: {reason}"),
        }
    }

    /// Whether it still has to go to the server.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Waiting | Self::Uploading(_))
    }
}

/// One row of the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The report.
    pub id: ReportId,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
    /// Its workflow status (as last merged).
    pub status: Status,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its priority, if known.
    pub priority: Option<Priority>,
    /// The legal deadline for reporting it, if one runs.
    pub clock: Option<Clock>,
    /// Where it stands with the server.
    pub sync: ReportSync,
    /// Whether it was filed during a drill.
    pub drill: bool,
}

/// A drill running on this phone: kept on the device (with its scenario, so it runs on
/// even if the drill leaves the team's list meanwhile) until the person ends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRun {
    /// The drill and its scenario.
    pub brief: crate::domain::drill::DrillBrief,
    /// When the person started it on this phone (the phone's clock): injects count from
    /// here.
    pub started_at: Timestamp,
    /// The injects the person acknowledged, by index.
    pub acknowledged: Vec<u16>,
}

impl ActiveRun {
    /// The injects due at `now` (by the phone's clock), earliest first, with their index.
    pub fn due_injects(&self, now: Timestamp) -> impl Iterator<Item = (u16, &crate::domain::drill::Inject)> {
        let elapsed = now.0.saturating_sub(self.started_at.0);
        self.brief
            .scenario
            .injects
            .iter()
            .enumerate()
            .filter(move |(_, inject)| i64::from(inject.at_s) * 1000 <= elapsed)
            .filter_map(|(i, inject)| Some((u16::try_from(i).ok()?, inject)))
    }

    /// When the next inject is due, if one is still to come.
    #[must_use]
    pub fn next_inject_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.brief
            .scenario
            .injects
            .iter()
            .map(|i| Timestamp(self.started_at.0 + i64::from(i.at_s) * 1000))
            .find(|at| at.0 > now.0)
    }
}

/// Sets `signal` to `value` only when it differs, so what shows it is not redrawn for
/// an answer that changed nothing.
pub fn set_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    if signal.with_untracked(|old| *old != value) {
        signal.set(value);
    }
}

/// Reactive state of the device, written by the sync engine, read by every page.
#[derive(Clone, Copy, Debug)]
pub struct FieldState {
    /// Whether the server can be reached, as far as the device knows (from the outcome
    /// of its requests; the browser's own word is only a hint).
    pub connectivity: RwSignal<Connectivity>,
    /// When the sync engine tries again after a failure (`None` while nothing failed).
    pub next_try_at: RwSignal<Option<Timestamp>>,
    /// The device's time, ticking every second while a retry waits (for the countdown).
    pub now: RwSignal<Timestamp>,
    /// Whether a sync is running.
    pub syncing: RwSignal<bool>,
    /// The last sync failure, if the last attempt failed.
    pub last_error: RwSignal<Option<String>>,
    /// When the last sync finished successfully.
    pub last_synced_at: RwSignal<Option<Timestamp>>,
    /// Local reports, newest first.
    pub outbox: RwSignal<Vec<OutboxEntry>>,
    /// Whether local storage has been read (false during server rendering and hydration).
    pub loaded: RwSignal<bool>,
    /// Who this device is signed in as (kept on the device, so it works offline).
    pub me: RwSignal<Option<crate::protocol::Me>>,
    /// The server refused the session (ended, revoked, deactivated): sync stops until the
    /// person signs in again; nothing on the device is lost.
    pub signed_out: RwSignal<bool>,
    /// A supervisor's unread notifications (P1/P2 escalations) as of the last sync, kept
    /// on the device so they show offline.
    pub notices: RwSignal<Vec<crate::protocol::Notice>>,
    /// The actions the person owns as of the last sync, kept on the device so they show
    /// offline (`None` before the first sync brought them).
    pub actions: RwSignal<Option<Vec<crate::protocol::ActionRow>>>,
    /// The response plans as of the last sync, kept on the device so they open offline.
    pub plans: RwSignal<Vec<crate::domain::Plan>>,
    /// The report categories as of the last sync (empty before the first: the form then
    /// offers the defaults).
    pub categories: RwSignal<Vec<crate::domain::CategoryDef>>,
    /// Photos taken on this device, by hash, and where each stands with the server.
    pub photos: RwSignal<std::collections::BTreeMap<String, PhotoSync>>,
    /// The drills of the person's teams not yet done, as of the last sync, kept on the
    /// device so they start offline.
    pub drills: RwSignal<Vec<crate::domain::drill::DrillBrief>>,
    /// The drill running on this phone, if one is: every field page says so.
    pub run: RwSignal<Option<ActiveRun>>,
}

impl FieldState {
    /// Fresh state: connectivity not known yet, nothing loaded.
    #[must_use]
    pub fn new() -> Self {
        Self {
            connectivity: RwSignal::new(Connectivity::Checking),
            next_try_at: RwSignal::new(None),
            now: RwSignal::new(Timestamp(0)),
            syncing: RwSignal::new(false),
            last_error: RwSignal::new(None),
            last_synced_at: RwSignal::new(None),
            outbox: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            me: RwSignal::new(None),
            signed_out: RwSignal::new(false),
            notices: RwSignal::new(Vec::new()),
            actions: RwSignal::new(None),
            plans: RwSignal::new(Vec::new()),
            categories: RwSignal::new(Vec::new()),
            photos: RwSignal::new(std::collections::BTreeMap::new()),
            drills: RwSignal::new(Vec::new()),
            run: RwSignal::new(None),
        }
    }

    /// How many photos taken on this device still have to go to the server.
    #[must_use]
    pub fn photos_to_upload(&self) -> usize {
        self.photos
            .with(|p| p.values().filter(|s| s.is_pending()).count())
    }

    /// How many local reports are not yet acknowledged by the server.
    #[must_use]
    pub fn unsynced(&self) -> usize {
        self.outbox
            .with(|o| o.iter().filter(|e| e.sync != ReportSync::Synced).count())
    }
}

impl Default for FieldState {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a report could not be saved on the device.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    /// The report breaks a rule; the form shows these by field.
    #[error("please correct the highlighted fields")]
    Invalid(Vec<crate::domain::FieldError>),
    /// Browser storage refused the write (for example, it is full). Nothing was lost.
    #[error("could not save on this device: {0}")]
    Storage(String),
}

/// What pages may ask of the device.
pub trait Device: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// A fresh report id (UUIDv7).
    fn new_report_id(&self) -> ReportId;
    /// The name the reporter used last time, to prefill the form.
    fn reporter_name(&self) -> String;
    /// A local report, as merged so far.
    fn load_report(&self, id: ReportId) -> Option<Report>;
    /// Saves a new report (`base` is `None`) or an edit of `base`, then starts a sync.
    fn save_report(&self, base: Option<&Report>, report: &Report) -> Result<(), SaveError>;
    /// Starts a sync now, if one is not already running.
    fn sync_now(&self);
    /// Marks one of the person's notifications read: off the list at once, told to the
    /// server with the next sync (also offline).
    fn mark_notice_read(&self, id: &str) -> Result<(), String>;
    /// Signs out (online only: the session cookie can only be ended by the server), then
    /// wipes this device's reports, cached pages and keys and opens the sign-in page.
    /// `done` gets the reason if it could not.
    fn sign_out(&self, done: Box<dyn FnOnce(Result<(), crate::error::AppError>)>);
    /// Asks the device for its position; `done` is called once with the fix, or why not
    /// (`Forbidden`: the person refused; `Retryable`: try again; `NotFound`: no position).
    fn locate(&self, done: Box<dyn FnOnce(Result<GpsFix, crate::error::AppError>)>);
    /// `<input type="datetime-local">` text for a time, in the device's time zone.
    fn to_local_input(&self, at: Timestamp) -> String;
    /// The time a `datetime-local` value means in the device's time zone.
    fn parse_local_input(&self, text: &str) -> Option<Timestamp>;
    /// Takes the photos chosen in the file input with id `input_id`: makes each smaller
    /// (longest side at most [`crate::domain::photo::MAX_SIDE`] pixels, JPEG), keeps it on
    /// the device until it is uploaded, and calls `done` once with their references (to
    /// add to the report) or a reason.
    fn take_photos(
        &self,
        input_id: &str,
        done: Box<dyn FnOnce(Result<Vec<crate::domain::PhotoRef>, String>)>,
    );
    /// Calls `done` with a URL showing the device's own copy of a photo, or `None` if the
    /// device does not hold it (it is on the server).
    fn photo_preview(&self, sha256: &str, done: Box<dyn FnOnce(Option<String>)>);
    /// Starts the drill `drill` (one of [`FieldState::drills`]) on this phone, also
    /// offline: reports filed from now on are drill reports, until it ends.
    fn start_drill(&self, drill: uuid::Uuid) -> Result<(), String>;
    /// Records that the person read the running drill's inject at `index`.
    fn acknowledge_inject(&self, index: u16) -> Result<(), String>;
    /// Ends the running drill on this phone; `for_real`: stopped because of a real
    /// emergency (the next report is a real one).
    fn end_drill(&self, for_real: bool) -> Result<(), String>;
}

/// The device, as provided through context.
#[derive(Clone)]
pub struct DeviceHandle(pub Arc<dyn Device>);

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceHandle")
    }
}

/// The field state from context, creating it if nobody provided one (server rendering).
#[must_use]
pub fn use_field_state() -> FieldState {
    use_context::<FieldState>().unwrap_or_else(|| {
        let state = FieldState::new();
        provide_context(state);
        state
    })
}

/// The device, if running in a browser that has hydrated.
#[must_use]
pub fn use_device() -> Option<DeviceHandle> {
    use_context::<DeviceHandle>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_state_says_how_far_it_got_and_whether_it_still_has_to_go() {
        assert_eq!(PhotoSync::Waiting.label(100), "On this device, waiting to upload");
        assert_eq!(PhotoSync::Uploading(0).label(1_000), "Uploading (0%)");
        assert_eq!(PhotoSync::Uploading(512).label(1_024), "Uploading (50%)");
        // Never "100%" while uploading: the last chunk is still being checked.
        assert_eq!(PhotoSync::Uploading(1_024).label(1_024), "Uploading (99%)");
        assert_eq!(PhotoSync::Uploading(5).label(0), "Uploading (0%)");
        assert_eq!(
            PhotoSync::Refused("this is not a JPEG photo".into()).label(1),
            "Not accepted: this is not a JPEG photo"
        );
        assert!(PhotoSync::Waiting.is_pending() && PhotoSync::Uploading(1).is_pending());
        assert!(!PhotoSync::Uploaded.is_pending() && !PhotoSync::Refused(String::new()).is_pending());
        // Counted by the sync bar.
        Owner::new().with(|| {
            let state = FieldState::new();
            state.photos.set(
                [
                    ("a".to_owned(), PhotoSync::Waiting),
                    ("b".to_owned(), PhotoSync::Uploaded),
                    ("c".to_owned(), PhotoSync::Uploading(3)),
                ]
                .into_iter()
                .collect(),
            );
            assert_eq!(state.photos_to_upload(), 2);
        });
    }
}
