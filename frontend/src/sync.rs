//! The sync engine: one `POST /api/sync` exchange pushes every report with unacknowledged
//! changes and receives the feed of what changed on the server since this device's cursor.
//!
//! Runs at start-up, when the browser comes online, every 30 seconds, after each save, and
//! on "Sync now". Only one sync runs at a time; a request during a sync runs another right
//! after. Rounds repeat while reports are pending, the server says `more`, or a feed entry
//! could not be applied (that report is then pulled: sent with its heads and no changes, so
//! the server answers with exactly what it lacks).
//!
//! Durability order: a report's changes stay on the device (and are resent) until the
//! server has durably acknowledged heads that cover them; feed changes are stored report
//! by report before the cursor is advanced, so an interrupted sync only repeats work.

use std::cell::Cell;
use std::future::Future;
use std::thread::LocalKey;

use app::document::{ReportDoc, parse_hash};
use app::domain::ReportId;
use app::field::{FieldState, ReportSync};
use app::protocol::{
    Bytes, ErrorCode, MAX_REPORTS_PER_REQUEST, PROTOCOL_VERSION, ReportAck, ReportPush, SyncError,
    SyncRequest, SyncResponse,
};
use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use leptos::prelude::*;

use crate::device::{now, store_doc};
use crate::store::{self, StoredReport};

const INTERVAL_MS: u32 = 30_000;
/// Most request rounds in one sync, so a misbehaving server cannot keep us looping.
const MAX_ROUNDS: usize = 50;

/// A background job that runs one pass at a time: asked for during a pass, it runs one
/// more pass afterwards, so passes never overlap and nothing asked for is missed.
#[derive(Debug)]
pub(crate) struct Serial {
    running: Cell<bool>,
    again: Cell<bool>,
}

impl Serial {
    pub(crate) const fn new() -> Self {
        Self {
            running: Cell::new(false),
            again: Cell::new(false),
        }
    }

    /// Runs `pass` now, or once more after the pass in progress.
    pub(crate) fn request<F>(job: &'static LocalKey<Self>, pass: impl Fn() -> F + 'static)
    where
        F: Future<Output = ()> + 'static,
    {
        let busy = job.with(|j| {
            j.again.set(true);
            j.running.replace(true)
        });
        if busy {
            return;
        }
        leptos::task::spawn_local(async move {
            while job.with(|j| j.again.replace(false)) {
                pass().await;
            }
            job.with(|j| j.running.set(false));
        });
    }
}

thread_local! {
    static SYNC: Serial = const { Serial::new() };
}

fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Loads local state into `state` and starts the triggers.
pub fn start(state: FieldState) {
    state.online.set(is_online());
    state.outbox.set(store::outbox());
    state.me.set(store::me());
    state.notices.set(store::notices());
    state.plans.set(store::plans());
    state.categories.set(store::categories());
    crate::photos::start(state);
    state.loaded.set(true);
    refresh_me(state);
    if let Some(window) = web_sys::window() {
        EventListener::new(&window, "online", move |_| {
            state.online.set(true);
            refresh_me(state);
            request(state);
        })
        .forget();
        EventListener::new(&window, "offline", move |_| state.online.set(false)).forget();
        // Ask the browser not to evict our reports under storage pressure.
        let _ = window.navigator().storage().persist();
    }
    Interval::new(INTERVAL_MS, move || request(state)).forget();
    request(state);
}

/// Asks the server who this device is signed in as, when online, and keeps the answer
/// for offline use. A refusal marks the device signed out (its reports stay).
pub fn refresh_me(state: FieldState) {
    if !is_online() {
        return;
    }
    leptos::task::spawn_local(async move {
        let Ok(response) = gloo_net::http::Request::get("/api/me").send().await else {
            return;
        };
        match response.status() {
            200 => {
                if let Ok(me) = response.json::<app::protocol::Me>().await {
                    let first = state.me.get_untracked().is_none();
                    let _ = store::set_me(&me);
                    state.me.set(Some(me));
                    state.signed_out.set(false);
                    if first {
                        request(state);
                    }
                }
            }
            // Only a device that believed it was signed in has been signed out.
            401 if state.me.get_untracked().is_some() => state.signed_out.set(true),
            _ => {}
        }
    });
}

/// Starts a sync, or queues one if a sync is running.
pub fn request(state: FieldState) {
    Serial::request(&SYNC, move || async move {
        // Nobody signed in on this device (or the session ended): nothing to sync as.
        let signed_in = state.me.get_untracked().is_some() && !state.signed_out.get_untracked();
        if !(is_online() && signed_in) {
            return;
        }
        state.syncing.set(true);
        let outcome = run(state).await;
        state.syncing.set(false);
        match outcome {
            Ok(()) => {
                state.last_error.set(None);
                state.last_synced_at.set(Some(now()));
                // Photos go after their reports' text, which the server now has.
                crate::photos::request_upload(state);
            }
            Err(reason) => state.last_error.set(Some(reason)),
        }
        state.outbox.set(store::outbox());
    });
}

/// Reports with changes the server has not acknowledged (refused ones wait until they
/// change again).
fn pending() -> Vec<(ReportId, StoredReport)> {
    store::index()
        .into_iter()
        .filter_map(|id| store::load(id).map(|s| (id, s)))
        .filter(|(_, s)| s.should_send())
        .collect()
}

/// What to send for a report with unacknowledged changes: the stored compacted document
/// while the server has acknowledged nothing of it (smaller, and faster for the server to
/// check), else the changes after what it acknowledged.
fn push_of(id: ReportId, stored: &StoredReport) -> Result<ReportPush, String> {
    if stored.synced_heads.is_empty() {
        return Ok(ReportPush {
            id,
            heads: stored.heads.clone(),
            changes: Vec::new(),
            document: Some(stored.doc.clone()),
        });
    }
    let mut doc = ReportDoc::load(&stored.doc.0, automerge::ActorId::random()).map_err(|e| e.to_string())?;
    let acked = stored
        .synced_heads
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReportPush {
        id,
        heads: stored.heads.clone(),
        changes: doc.changes_since(&acked).into_iter().map(Bytes).collect(),
        document: None,
    })
}

/// A pull: the device's heads and no changes.
fn pull_of(id: ReportId) -> ReportPush {
    ReportPush {
        id,
        heads: store::load(id).map(|s| s.heads).unwrap_or_default(),
        changes: Vec::new(),
        document: None,
    }
}

async fn run(state: FieldState) -> Result<(), String> {
    let device = store::device().map_err(|e| e.0)?;
    let mut cursor = device.cursor;
    let mut pulls: Vec<ReportId> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let mut pushes = Vec::new();
        for (id, stored) in pending().into_iter().take(MAX_REPORTS_PER_REQUEST) {
            match push_of(id, &stored) {
                Ok(push) => pushes.push(push),
                Err(reason) => mark_refused(id, &reason),
            }
        }
        while pushes.len() < MAX_REPORTS_PER_REQUEST {
            let Some(id) = pulls.pop() else { break };
            if pushes.iter().all(|p| p.id != id) {
                pushes.push(pull_of(id));
            }
        }
        let request = SyncRequest {
            protocol_version: PROTOCOL_VERSION,
            device_id: device.device_id,
            since: cursor,
            reports: pushes,
            notices_seen: store::notices_version(),
            lists_seen: store::lists_version(),
        };
        let response = gloo_net::http::Request::post("/api/sync")
            .json(&request)
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|_| "the server could not be reached".to_owned())?;
        if !response.ok() {
            let error: SyncError = response.json().await.map_err(|_| {
                format!(
                    "the server answered {} {}",
                    response.status(),
                    response.status_text()
                )
            })?;
            if error.error == ErrorCode::RejectedReports && !error.rejected.is_empty() {
                for rejection in &error.rejected {
                    mark_refused(rejection.id, &rejection.reason);
                }
                state.outbox.set(store::outbox());
                continue; // send the others again, without the refused ones
            }
            if error.error == ErrorCode::SignedOut {
                state.signed_out.set(true);
            }
            return Err(error.message);
        }
        let body: SyncResponse = response
            .json()
            .await
            .map_err(|e| format!("the server's answer was not understood: {e}"))?;
        for ack in &body.reports {
            apply_remote(ack)?;
        }
        // Lists the server sent because they changed: each replaces what the device held.
        if let (Some(notices), Some(version)) = (&body.notices, &body.notices_version) {
            store::set_notices(notices, version).map_err(|e| e.0)?;
            state.notices.set(notices.clone());
        }
        if let (Some(plans), Some(categories), Some(version)) =
            (&body.plans, &body.categories, &body.lists_version)
        {
            store::set_lists(plans, categories, version).map_err(|e| e.0)?;
            state.plans.set(plans.clone());
            state.categories.set(categories.clone());
        }
        let mut all_applied = true;
        for entry in &body.feed {
            if apply_remote(entry).is_err() {
                // We lack what the server assumed we hold: ask for this report in full.
                all_applied = false;
                pulls.push(entry.id);
            }
        }
        if all_applied {
            store::set_cursor(body.cursor).map_err(|e| e.0)?;
            cursor = Some(body.cursor);
        }
        state.outbox.set(store::outbox());
        if !body.more && pulls.is_empty() && pending().is_empty() {
            return Ok(());
        }
    }
    Ok(())
}

/// Applies the server's state of a report (an acknowledgement or a feed entry): stores
/// the changes it sent and records its heads as acknowledged. A report this device does not
/// hold yet is created.
fn apply_remote(ack: &ReportAck) -> Result<(), String> {
    // Reload: the person may have edited the report while the request was in flight.
    let stored = store::load(ack.id);
    let mut doc = match &stored {
        Some(s) => ReportDoc::load(&s.doc.0, automerge::ActorId::random()).map_err(|e| e.to_string())?,
        None => ReportDoc::empty(automerge::ActorId::random()),
    };
    let incoming: Vec<Vec<u8>> = ack.changes.iter().map(|b| b.0.clone()).collect();
    doc.apply_changes(&incoming)
        .map_err(|e| format!("changes from the server could not be applied: {e}"))?;
    store_doc(ack.id, &mut doc, stored.as_ref(), Some(&ack.heads)).map(|_| ())
}

fn mark_refused(id: ReportId, reason: &str) {
    if let Some(mut stored) = store::load(id) {
        stored.refused_heads = Some(stored.heads.clone());
        stored.sync = ReportSync::Error(reason.to_owned());
        let _ = store::save(id, &stored);
    }
}
