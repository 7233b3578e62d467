//! Driving the sync engine ([`app::sync::client`], which decides what to push, store and
//! show) in the browser: when to run a pass, the requests themselves, and the sync bar.
//!
//! A pass runs at start-up, after each save, on "Sync now", at once when the browser says
//! the network is back (`online`) or the page becomes visible again, and by timer: every
//! 30 seconds while all is well, and after a failure worth retrying with jittered
//! exponential backoff ([`app::connectivity::Backoff`]: 2 s doubling to 60 s; a success
//! resets it). Only one pass runs at a time; a request during a pass runs another right
//! after.
//!
//! Connectivity comes from the requests themselves ([`app::connectivity::Connectivity`]):
//! `navigator.onLine` and the `online`/`offline` events only trigger a check, and a request
//! not answered within its deadline ([`request_deadline_ms`]: 30 s, more for a large body)
//! is abandoned and counts as not reached.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use app::connectivity::{Backoff, Connectivity, Signal, request_deadline_ms};
use app::domain::Timestamp;
use app::field::{FieldState, set_if_changed};
use app::protocol::{SyncError, SyncResponse};
use app::sync::client::Pass;
use gloo_events::EventListener;
use gloo_net::http::{Request, RequestBuilder, Response};
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;

use crate::clock::now;
use crate::serial::Serial;
use crate::store;

/// Between passes while nothing fails, so supervisor edits arrive unasked.
const INTERVAL_MS: u32 = 30_000;
/// Most request rounds in one sync, so a misbehaving server cannot keep us looping.
const MAX_ROUNDS: usize = 50;

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

/// Lets the browser handle what waits (input, painting) before going on, so start-up and
/// an answer's handling run as several short tasks rather than one long one.
pub async fn yield_now() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Loads local state into `state` and starts the triggers. Each step redraws what it
/// changed before the next begins.
pub async fn start(state: FieldState) {
    state.connectivity.set(Connectivity::initial(browser_online()));
    state.outbox.set(store::outbox());
    set_if_changed(state.me, store::me());
    set_if_changed(state.notices, store::notices());
    set_if_changed(state.actions, store::actions());
    set_if_changed(state.plans, store::plans());
    set_if_changed(state.categories, store::categories());
    set_if_changed(state.drills, store::drills());
    set_if_changed(state.run, store::active_run());
    yield_now().await;
    state.loaded.set(true);
    yield_now().await;
    crate::photos::start(state);
    refresh_me(state);
    if let Some(window) = web_sys::window() {
        EventListener::new(&window, "online", move |_| {
            note(state, Signal::BrowserOnline);
            refresh_me(state);
            request(state);
        })
        .forget();
        EventListener::new(&window, "offline", move |_| note(state, Signal::BrowserOffline)).forget();
        // Another tab saved or synced: re-read the reports, and show them.
        EventListener::new(&window, "storage", move |_| {
            store::forget_index();
            state.outbox.set(store::outbox());
        })
        .forget();
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
    yield_now().await;
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
                set_if_changed(state.me, Some(me));
                set_if_changed(state.signed_out, false);
                if first {
                    request(state);
                }
            }
            // Only a device that believed it was signed in has been signed out.
            Ok(Some(None)) if state.me.get_untracked().is_some() => set_if_changed(state.signed_out, true),
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
                set_if_changed(state.last_error, None);
                state.last_synced_at.set(Some(now()));
                schedule(state, INTERVAL_MS, false);
                // Photos go after their reports' text, which the server now has.
                crate::photos::request_upload(state);
            }
            Err(failure) => {
                set_if_changed(state.last_error, Some(failure.to_string()));
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

/// One sync pass, driven by the engine ([`app::sync::client::Pass`]): this only sends its
/// requests and shows what it says.
async fn run(state: FieldState) -> Result<(), Failure> {
    let device = store::device()?;
    let mut pass = store::with_local(|local| Pass::new(local));
    for _ in 0..MAX_ROUNDS {
        let request = store::with_local(|local| pass.request(local, device.device_id));
        let json = serde_json::to_string(&request).map_err(|e| Failure::Device(e.to_string()))?;
        let answer = exchange(state, Request::post("/api/sync"), Some(json), read_sync_answer).await?;
        yield_now().await;
        let round = store::with_local(|local| pass.answer(local, answer));
        yield_now().await;
        state.outbox.set(store::outbox());
        let round = match round {
            Ok(round) => round,
            Err(stop) => {
                if stop.signed_out {
                    set_if_changed(state.signed_out, true);
                }
                return Err(Failure::Answered {
                    retry: stop.retry,
                    message: stop.message,
                });
            }
        };
        if let Some(notices) = round.notices {
            set_if_changed(state.notices, notices);
        }
        if let Some(drills) = round.drills {
            set_if_changed(state.drills, drills);
        }
        if let Some(actions) = round.actions {
            set_if_changed(state.actions, Some(actions));
        }
        if let Some((plans, categories)) = round.lists {
            set_if_changed(state.plans, plans);
            set_if_changed(state.categories, categories);
        }
        if !round.again {
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
