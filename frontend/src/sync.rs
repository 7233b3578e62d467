//! The sync engine: one `POST /api/sync` exchange pushes every report with unacknowledged
//! changes and receives the feed of what changed on the server since this device's cursor.
//!
//! A pass runs at start-up, after each save, on "Sync now", at once when the browser says
//! the network is back (`online`) or the page becomes visible again, and by timer: every
//! 30 seconds while all is well, and after a failure worth retrying with jittered
//! exponential backoff ([`app::connectivity::Backoff`]: 2 s doubling to 60 s; a success
//! resets it). Only one pass runs at a time; a request during a pass runs another right
//! after. Rounds repeat while reports are pending, the server says `more`, or a feed entry
//! could not be applied (that report is then pulled: sent with its heads and no changes, so
//! the server answers with exactly what it lacks).
//!
//! Connectivity comes from the requests themselves ([`app::connectivity::Connectivity`]):
//! `navigator.onLine` and the `online`/`offline` events only trigger a check, and a request
//! not answered within its deadline ([`request_deadline_ms`]: 30 s, more for a large body)
//! is abandoned and counts as not reached.
//!
//! Durability order: a report's changes stay on the device (and are resent) until the
//! server has durably acknowledged heads that cover them; feed changes are stored report
//! by report before the cursor is advanced, so an interrupted sync only repeats work.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::thread::LocalKey;

use app::connectivity::{Backoff, Connectivity, Signal, request_deadline_ms};
use app::document::{ReportDoc, parse_hash};
use app::domain::{ReportId, Timestamp};
use app::field::{FieldState, ReportSync};
use app::protocol::{
    Bytes, ErrorCode, MAX_REPORTS_PER_REQUEST, PROTOCOL_VERSION, ReportAck, ReportPush, SyncError,
    SyncRequest, SyncResponse,
};
use gloo_events::EventListener;
use gloo_net::http::{Request, RequestBuilder, Response};
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;

use crate::device::{now, store_doc};
use crate::store::{self, StoredReport};

/// Between passes while nothing fails, so supervisor edits arrive unasked.
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
    /// Consecutive passes that failed in a way worth retrying.
    static BACKOFF: Cell<Backoff> = const { Cell::new(Backoff::new()) };
    /// The next timed pass; replacing it cancels the one it replaces.
    static NEXT_PASS: RefCell<Option<Timeout>> = const { RefCell::new(None) };
    /// Ticks [`FieldState::now`] each second while a retry waits, for the countdown.
    static COUNTDOWN: RefCell<Option<Interval>> = const { RefCell::new(None) };
}

/// Why a sync pass (or another request to the server) stopped short.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// No answer: the network failed or the request was abandoned after its timeout.
    #[error("{0}")]
    NotReached(String),
    /// The server answered with an error.
    #[error("{message}")]
    Answered {
        /// What it said.
        message: String,
        /// Whether the same request may succeed later (the server is busy or restarting).
        retry: bool,
    },
    /// This device could not read or store something.
    #[error("{0}")]
    Device(String),
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Self::Device(e.0)
    }
}

impl Failure {
    /// Whether trying again soon may help, so the engine retries with backoff.
    fn is_retryable(&self) -> bool {
        match self {
            Self::NotReached(_) => true,
            Self::Answered { retry, .. } => *retry,
            Self::Device(_) => false,
        }
    }
}

/// What the browser says about its network: a hint, never the truth.
fn browser_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Moves the connectivity the sync bar shows.
fn note(state: FieldState, signal: Signal) {
    state.connectivity.update(|c| *c = c.after(signal));
}

/// Sends `builder` with `body` (JSON; `None` for none), and reads its answer with `read`;
/// both are abandoned after the body's [`request_deadline_ms`]. Whether the server was
/// reached is noted in `state`.
async fn exchange<T, F>(
    state: FieldState,
    builder: RequestBuilder,
    body: Option<String>,
    read: impl FnOnce(Response) -> F,
) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>>,
{
    let deadline_ms = request_deadline_ms(body.as_ref().map_or(0, String::len));
    let controller = web_sys::AbortController::new().map_err(|e| Failure::Device(format!("{e:?}")))?;
    let timed_out = Rc::new(Cell::new(false));
    let _deadline = {
        let (controller, timed_out) = (controller.clone(), Rc::clone(&timed_out));
        Timeout::new(deadline_ms, move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    let not_reached = |timed_out: bool| {
        note(
            state,
            Signal::NotReached {
                browser_online: browser_online(),
            },
        );
        Failure::NotReached(if timed_out {
            format!(
                "the server did not answer within {} s",
                deadline_ms.div_ceil(1_000)
            )
        } else {
            "the server could not be reached".to_owned()
        })
    };
    let builder = builder.abort_signal(Some(&controller.signal()));
    let request = match body {
        Some(json) => builder.header("content-type", "application/json").body(json),
        None => builder.build(),
    }
    .map_err(|e| Failure::Device(e.to_string()))?;
    let response = request.send().await.map_err(|_| not_reached(timed_out.get()))?;
    // The deadline covers reading the answer too: a body that stalls is abandoned.
    let answer = read(response).await;
    if timed_out.get() {
        return Err(not_reached(true));
    }
    note(state, Signal::Reached);
    answer
}

/// Loads local state into `state` and starts the triggers.
pub fn start(state: FieldState) {
    state.connectivity.set(Connectivity::initial(browser_online()));
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
            note(state, Signal::BrowserOnline);
            refresh_me(state);
            request(state);
        })
        .forget();
        EventListener::new(&window, "offline", move |_| note(state, Signal::BrowserOffline)).forget();
        if let Some(document) = window.document() {
            let page = document.clone();
            EventListener::new(&document, "visibilitychange", move |_| {
                if page.visibility_state() == web_sys::VisibilityState::Visible {
                    request(state);
                }
            })
            .forget();
        }
        // Ask the browser not to evict our reports under storage pressure.
        let _ = window.navigator().storage().persist();
    }
    request(state);
}

/// Asks the server who this device is signed in as, and keeps the answer for offline
/// use. A refusal marks the device signed out (its reports stay).
pub fn refresh_me(state: FieldState) {
    leptos::task::spawn_local(async move {
        let answer = exchange(state, Request::get("/api/me"), None, |response| async move {
            Ok(match response.status() {
                200 => response.json::<app::protocol::Me>().await.ok().map(Some),
                401 => Some(None),
                _ => None,
            })
        })
        .await;
        match answer {
            Ok(Some(Some(me))) => {
                let first = state.me.get_untracked().is_none();
                let _ = store::set_me(&me);
                state.me.set(Some(me));
                state.signed_out.set(false);
                if first {
                    request(state);
                }
            }
            // Only a device that believed it was signed in has been signed out.
            Ok(Some(None)) if state.me.get_untracked().is_some() => state.signed_out.set(true),
            _ => {}
        }
    });
}

/// Starts a sync, or queues one if a sync is running.
pub fn request(state: FieldState) {
    Serial::request(&SYNC, move || async move {
        // Nobody signed in on this device (or the session ended): nothing to sync as.
        let signed_in = state.me.get_untracked().is_some() && !state.signed_out.get_untracked();
        if !signed_in {
            schedule(state, INTERVAL_MS, false);
            return;
        }
        // No timed pass while this one runs (its end plans the next), so a timer that
        // comes due during a slow or hung pass cannot start another right after a
        // failure and skip the backoff.
        NEXT_PASS.with(|next| next.replace(None));
        state.syncing.set(true);
        let outcome = run(state).await;
        state.syncing.set(false);
        match outcome {
            Ok(()) => {
                BACKOFF.with(|b| b.set(Backoff::new()));
                state.last_error.set(None);
                state.last_synced_at.set(Some(now()));
                schedule(state, INTERVAL_MS, false);
                // Photos go after their reports' text, which the server now has.
                crate::photos::request_upload(state);
            }
            Err(failure) => {
                state.last_error.set(Some(failure.to_string()));
                if failure.is_retryable() {
                    let wait = BACKOFF.with(|b| {
                        let mut backoff = b.get();
                        let wait = backoff.failed(js_sys::Math::random());
                        b.set(backoff);
                        wait
                    });
                    schedule(state, wait, true);
                } else {
                    schedule(state, INTERVAL_MS, false);
                }
            }
        }
        state.outbox.set(store::outbox());
    });
}

/// Plans the next timed pass in `ms`, replacing (and so cancelling) the one planned
/// before. A `retry` is shown on the sync bar with a countdown.
fn schedule(state: FieldState, ms: u32, retry: bool) {
    NEXT_PASS.with(|next| next.replace(Some(Timeout::new(ms, move || request(state)))));
    if retry {
        state.now.set(now());
        state.next_try_at.set(Some(Timestamp(now().0 + i64::from(ms))));
        COUNTDOWN.with(|c| {
            c.borrow_mut()
                .get_or_insert_with(|| Interval::new(1_000, move || state.now.set(now())));
        });
    } else {
        state.next_try_at.set(None);
        COUNTDOWN.with(|c| c.replace(None));
    }
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

async fn run(state: FieldState) -> Result<(), Failure> {
    let device = store::device()?;
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
        let json = serde_json::to_string(&request).map_err(|e| Failure::Device(e.to_string()))?;
        let answer = exchange(state, Request::post("/api/sync"), Some(json), read_sync_answer).await?;
        let body = match answer {
            Ok(body) => body,
            Err(error) if error.error == ErrorCode::RejectedReports && !error.rejected.is_empty() => {
                for rejection in &error.rejected {
                    mark_refused(rejection.id, &rejection.reason);
                }
                state.outbox.set(store::outbox());
                continue; // send the others again, without the refused ones
            }
            Err(error) => {
                if error.error == ErrorCode::SignedOut {
                    state.signed_out.set(true);
                }
                return Err(Failure::Answered {
                    retry: error.error == ErrorCode::Unavailable,
                    message: error.message,
                });
            }
        };
        for ack in &body.reports {
            apply_remote(ack).map_err(Failure::Device)?;
        }
        // Lists the server sent because they changed: each replaces what the device held.
        if let (Some(notices), Some(version)) = (&body.notices, &body.notices_version) {
            store::set_notices(notices, version)?;
            state.notices.set(notices.clone());
        }
        if let (Some(plans), Some(categories), Some(version)) =
            (&body.plans, &body.categories, &body.lists_version)
        {
            store::set_lists(plans, categories, version)?;
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
            store::set_cursor(body.cursor)?;
            cursor = Some(body.cursor);
        }
        state.outbox.set(store::outbox());
        if !body.more && pulls.is_empty() && pending().is_empty() {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads the answer to a sync request: the server's answer, or the error it explained
/// (`Ok(Err(..))`), or a failure when it said nothing this app understands.
async fn read_sync_answer(response: Response) -> Result<Result<SyncResponse, SyncError>, Failure> {
    if response.ok() {
        return response
            .json::<SyncResponse>()
            .await
            .map(Ok)
            .map_err(|e| Failure::Answered {
                message: format!("the server's answer was not understood: {e}"),
                retry: false,
            });
    }
    let status = response.status();
    response
        .json::<SyncError>()
        .await
        .map(Err)
        .map_err(|_| Failure::Answered {
            message: format!("the server answered {status} {}", response.status_text()),
            // A proxy's "bad gateway" or "too many requests": worth trying again later.
            retry: status == 429 || status >= 500,
        })
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
