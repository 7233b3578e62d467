//! The sync engine: sends every report with unacknowledged changes to `POST /api/sync`,
//! applies what the server sends back, and records the server's acknowledgement.
//!
//! Runs at start-up, when the browser comes online, every 30 seconds, after each save, and
//! on "Sync now". Only one sync runs at a time; a request during a sync runs another right
//! after. The interval and saves send only reports with unacknowledged changes; start-up,
//! coming online and "Sync now" also ask the server for changes to every local report
//! (a push with no changes is a pull), so supervisor edits reach the device.
//! A report's changes stay on the device (and are resent) until the server has durably
//! acknowledged heads that cover them.

use std::cell::Cell;

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
const MAX_ROUNDS: usize = 20;

thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    static AGAIN: Cell<bool> = const { Cell::new(false) };
    static PULL: Cell<bool> = const { Cell::new(false) };
}

/// What a sync sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only reports with changes the server has not acknowledged.
    Pending,
    /// Those, and every other local report as a pull.
    Everything,
}

fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Loads local state into `state` and starts the triggers.
pub fn start(state: FieldState) {
    state.online.set(is_online());
    state.outbox.set(store::outbox());
    state.loaded.set(true);
    if let Some(window) = web_sys::window() {
        EventListener::new(&window, "online", move |_| {
            state.online.set(true);
            request(state, Scope::Everything);
        })
        .forget();
        EventListener::new(&window, "offline", move |_| state.online.set(false)).forget();
        // Ask the browser not to evict our reports under storage pressure.
        let _ = window.navigator().storage().persist();
    }
    Interval::new(INTERVAL_MS, move || request(state, Scope::Pending)).forget();
    request(state, Scope::Everything);
}

/// Starts a sync, or queues one if a sync is running.
pub fn request(state: FieldState, scope: Scope) {
    if scope == Scope::Everything {
        PULL.with(|p| p.set(true));
    }
    if RUNNING.with(Cell::get) {
        AGAIN.with(|a| a.set(true));
        return;
    }
    RUNNING.with(|r| r.set(true));
    leptos::task::spawn_local(async move {
        loop {
            AGAIN.with(|a| a.set(false));
            if is_online() {
                state.syncing.set(true);
                let scope = if PULL.with(|p| p.replace(false)) {
                    Scope::Everything
                } else {
                    Scope::Pending
                };
                let outcome = run(state, scope).await;
                state.syncing.set(false);
                match outcome {
                    Ok(()) => {
                        state.last_error.set(None);
                        state.last_synced_at.set(Some(now()));
                    }
                    Err(reason) => state.last_error.set(Some(reason)),
                }
                state.outbox.set(store::outbox());
            }
            if !AGAIN.with(Cell::get) {
                break;
            }
        }
        RUNNING.with(|r| r.set(false));
    });
}

/// Reports to send, with their stored state: those with unacknowledged changes, or with
/// `Everything` also the acknowledged ones (refused reports wait until they change).
fn to_send(scope: Scope) -> Vec<(ReportId, StoredReport)> {
    store::index()
        .into_iter()
        .filter_map(|id| store::load(id).map(|s| (id, s)))
        .filter(|(_, s)| s.should_send() || (scope == Scope::Everything && !s.has_unacknowledged_changes()))
        .collect()
}

fn push_of(id: ReportId, stored: &StoredReport) -> Result<ReportPush, String> {
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
    })
}

async fn run(state: FieldState, scope: Scope) -> Result<(), String> {
    let device_id = store::device().map_err(|e| e.0)?.device_id;
    // Pulls go out once, in as many requests as it takes; pending changes until none remain.
    let mut pulls: Vec<ReportId> = match scope {
        Scope::Everything => to_send(Scope::Everything).into_iter().map(|(id, _)| id).collect(),
        Scope::Pending => Vec::new(),
    };
    for _ in 0..MAX_ROUNDS {
        let mut batch = to_send(Scope::Pending);
        batch.truncate(MAX_REPORTS_PER_REQUEST);
        while batch.len() < MAX_REPORTS_PER_REQUEST {
            let Some(id) = pulls.pop() else { break };
            if batch.iter().all(|(b, _)| *b != id)
                && let Some(stored) = store::load(id)
            {
                batch.push((id, stored));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut pushes = Vec::with_capacity(batch.len());
        for (id, stored) in &batch {
            match push_of(*id, stored) {
                Ok(push) => pushes.push(push),
                Err(reason) => mark_refused(*id, &reason),
            }
        }
        let request = SyncRequest {
            protocol_version: PROTOCOL_VERSION,
            device_id,
            reports: pushes,
        };
        let response = gloo_net::http::Request::post("/api/sync")
            .json(&request)
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|_| "the server could not be reached".to_owned())?;
        if response.ok() {
            let body: SyncResponse = response
                .json()
                .await
                .map_err(|e| format!("the server's answer was not understood: {e}"))?;
            for ack in body.reports {
                apply_ack(&ack)?;
            }
        } else {
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
            return Err(error.message);
        }
        state.outbox.set(store::outbox());
    }
    Ok(())
}

/// Records the server's acknowledgement and applies the changes it sent.
fn apply_ack(ack: &ReportAck) -> Result<(), String> {
    // Reload: the person may have edited the report while the request was in flight.
    let Some(mut stored) = store::load(ack.id) else {
        return Ok(());
    };
    let mut doc = ReportDoc::load(&stored.doc.0, automerge::ActorId::random()).map_err(|e| e.to_string())?;
    let incoming: Vec<Vec<u8>> = ack.changes.iter().map(|b| b.0.clone()).collect();
    if let Err(e) = doc.apply_changes(&incoming) {
        // Keep our state; the next sync will ask again.
        return Err(format!("changes from the server could not be applied: {e}"));
    }
    stored.synced_heads.clone_from(&ack.heads);
    stored.refused_heads = None;
    store_doc(ack.id, &mut doc, Some(&stored)).map(|_| ())
}

fn mark_refused(id: ReportId, reason: &str) {
    if let Some(mut stored) = store::load(id) {
        stored.refused_heads = Some(stored.heads.clone());
        stored.sync = ReportSync::Error(reason.to_owned());
        let _ = store::save(id, &stored);
    }
}
