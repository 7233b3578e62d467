//! The browser's implementation of the [`Device`] port: time, ids, geolocation, local
//! time zone conversion, and saving report documents.

use app::document::{ReportDoc, actor_for};
use app::domain::drill::Happening;
use app::domain::{DrillEvent, GpsFix, Report, ReportId, Timestamp};
use app::error::AppError;
use app::field::{ActiveRun, Device, FieldState, SaveError};
use leptos::prelude::{GetUntracked, Set, Update, WithUntracked};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use crate::clock::now;
use crate::store::{self, StoredReport};

/// The actor this page load writes as: the signed-in person and session (so the server
/// accepts the changes and the report's history names them), plus 4 bytes fresh per page
/// load, so two tabs of one browser never reuse an actor's sequence numbers.
fn session_actor() -> automerge::ActorId {
    thread_local! {
        static SALT: [u8; 4] = {
            let id = uuid::Uuid::now_v7();
            let mut salt = [0u8; 4];
            salt.copy_from_slice(&id.as_bytes()[12..]);
            salt
        };
    }
    let salt = SALT.with(|s| *s);
    match store::me() {
        Some(me) => actor_for(me.viewer.user_id, me.session, salt),
        // Not signed in: nothing written this way will be accepted by a server.
        None => actor_for(uuid::Uuid::nil(), uuid::Uuid::nil(), salt),
    }
}

/// The device, as the pages see it.
#[derive(Debug, Clone, Copy)]
pub struct BrowserDevice {
    state: FieldState,
}

impl BrowserDevice {
    /// A device that reports into `state`.
    #[must_use]
    pub fn new(state: FieldState) -> Self {
        Self { state }
    }
}

/// Stores `doc` as the report's new local state (see [`StoredReport::of`]).
pub fn store_doc(
    id: ReportId,
    doc: &mut ReportDoc,
    previous: Option<&StoredReport>,
    acknowledged: Option<&[String]>,
) -> Result<StoredReport, String> {
    let stored = StoredReport::of(doc, previous, acknowledged).map_err(|e| e.to_string())?;
    store::save(id, &stored).map_err(|e| e.0)?;
    Ok(stored)
}

impl BrowserDevice {
    /// Keeps one event of `run` until the server takes it.
    fn record(&self, run: &ActiveRun, happening: Happening) -> Result<(), String> {
        store::record_event(DrillEvent {
            id: uuid::Uuid::now_v7(),
            drill: run.brief.drill.id,
            happening,
            at: now(),
        })
        .map_err(|e| e.0)
    }
}

impl Device for BrowserDevice {
    fn now(&self) -> Timestamp {
        now()
    }

    fn new_report_id(&self) -> ReportId {
        ReportId(uuid::Uuid::now_v7())
    }

    fn reporter_name(&self) -> String {
        if let Some(me) = store::me() {
            return me.viewer.name;
        }
        store::device().map(|d| d.reporter_name).unwrap_or_default()
    }

    fn load_report(&self, id: ReportId) -> Option<Report> {
        let stored = store::load(id)?;
        ReportDoc::load(&stored.doc.0, session_actor()).ok()?.read().ok()
    }

    fn save_report(&self, base: Option<&Report>, report: &Report) -> Result<(), SaveError> {
        if store::me().is_none() {
            return Err(SaveError::Storage(
                "sign in first: reports are filed under your name (once signed in, this device works offline)"
                    .to_owned(),
            ));
        }
        let now = now();
        report.validate(now).map_err(SaveError::Invalid)?;
        let previous = store::load(report.id);
        let mut doc = match (base, &previous) {
            (Some(base), Some(previous)) => {
                let mut doc = ReportDoc::load(&previous.doc.0, session_actor())
                    .map_err(|e| SaveError::Storage(e.to_string()))?;
                doc.edit(base, report, now)
                    .map_err(|e| SaveError::Storage(e.to_string()))?;
                doc
            }
            (None, None) => ReportDoc::create(report, session_actor(), now)
                .map_err(|e| SaveError::Storage(e.to_string()))?,
            _ => {
                return Err(SaveError::Storage(
                    "the report on this device changed; reopen it and try again".into(),
                ));
            }
        };
        store_doc(report.id, &mut doc, previous.as_ref(), None).map_err(SaveError::Storage)?;
        let _ = store::remember_reporter(&report.reporter);
        self.state.outbox.set(store::outbox());
        crate::sync::request(self.state);
        Ok(())
    }

    fn sync_now(&self) {
        crate::sync::request(self.state);
    }

    fn start_drill(&self, drill: uuid::Uuid) -> Result<(), String> {
        if self.state.run.with_untracked(Option::is_some) {
            return Err("a drill is already running on this phone; end it first".to_owned());
        }
        let brief = self
            .state
            .drills
            .with_untracked(|drills| drills.iter().find(|b| b.drill.id == drill).cloned())
            .ok_or_else(|| "this drill is no longer on this phone".to_owned())?;
        let run = ActiveRun {
            brief,
            started_at: now(),
            acknowledged: Vec::new(),
        };
        self.record(&run, Happening::Started)?;
        store::set_active_run(Some(&run)).map_err(|e| e.0)?;
        self.state.run.set(Some(run));
        crate::sync::request(self.state);
        Ok(())
    }

    fn acknowledge_inject(&self, index: u16) -> Result<(), String> {
        let Some(mut run) = self.state.run.get_untracked() else {
            return Err("no drill is running on this phone".to_owned());
        };
        if run.acknowledged.contains(&index) {
            return Ok(());
        }
        self.record(&run, Happening::Acknowledged(index))?;
        run.acknowledged.push(index);
        store::set_active_run(Some(&run)).map_err(|e| e.0)?;
        self.state.run.set(Some(run));
        crate::sync::request(self.state);
        Ok(())
    }

    fn end_drill(&self, for_real: bool) -> Result<(), String> {
        let Some(run) = self.state.run.get_untracked() else {
            return Ok(());
        };
        let happening = if for_real {
            Happening::StoppedForReal
        } else {
            Happening::Ended
        };
        // The run ends on this phone even if its event cannot be kept (storage full):
        // nothing real may be filed as practice.
        let recorded = self.record(&run, happening);
        let _ = store::set_active_run(None);
        self.state.run.set(None);
        crate::sync::request(self.state);
        recorded
    }

    fn mark_notice_read(&self, id: &str) -> Result<(), String> {
        store::mark_read(id).map_err(|e| e.0)?;
        self.state.notices.update(|n| n.retain(|n| n.id != id));
        crate::sync::request(self.state);
        Ok(())
    }

    fn sign_out(&self, done: Box<dyn FnOnce(Result<(), AppError>)>) {
        leptos::task::spawn_local(async move {
            done(sign_out().await);
        });
    }

    fn locate(&self, done: Box<dyn FnOnce(Result<GpsFix, AppError>)>) {
        let Some(geolocation) = web_sys::window().and_then(|w| w.navigator().geolocation().ok()) else {
            done(Err(AppError::NotFound(
                "This device cannot give a position; type the place instead.".to_owned(),
            )));
            return;
        };
        let done = std::rc::Rc::new(std::cell::RefCell::new(Some(done)));
        let on_fix = {
            let done = done.clone();
            Closure::once(move |position: web_sys::Position| {
                let c = position.coords();
                if let Some(done) = done.borrow_mut().take() {
                    done(Ok(GpsFix {
                        latitude: c.latitude(),
                        longitude: c.longitude(),
                        accuracy_m: c.accuracy(),
                    }));
                }
            })
        };
        let on_error = Closure::once(move |error: web_sys::PositionError| {
            let reason = match error.code() {
                1 => {
                    AppError::Forbidden("Location permission was refused; type the place instead.".to_owned())
                }
                3 => AppError::Retryable(
                    "Finding your position took too long; try again or type the place.".to_owned(),
                ),
                _ => AppError::NotFound("Your position is not available; type the place instead.".to_owned()),
            };
            if let Some(done) = done.borrow_mut().take() {
                done(Err(reason));
            }
        });
        let options = web_sys::PositionOptions::new();
        options.set_enable_high_accuracy(true);
        options.set_timeout(20_000);
        options.set_maximum_age(60_000);
        let _ = geolocation.get_current_position_with_error_callback_and_options(
            on_fix.as_ref().unchecked_ref(),
            Some(on_error.as_ref().unchecked_ref()),
            &options,
        );
        on_fix.forget();
        on_error.forget();
    }

    fn to_local_input(&self, at: Timestamp) -> String {
        #[allow(clippy::cast_precision_loss)]
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.0 as f64));
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date(),
            d.get_hours(),
            d.get_minutes()
        )
    }

    fn take_photos(&self, input_id: &str, done: Box<dyn FnOnce(Result<Vec<app::domain::PhotoRef>, String>)>) {
        let (state, input_id) = (self.state, input_id.to_owned());
        leptos::task::spawn_local(async move {
            done(crate::photos::take(state, &input_id).await);
        });
    }

    fn photo_preview(&self, sha256: &str, done: Box<dyn FnOnce(Option<String>)>) {
        let sha256 = sha256.to_owned();
        leptos::task::spawn_local(async move {
            done(crate::photos::preview(&sha256).await);
        });
    }

    fn parse_local_input(&self, text: &str) -> Option<Timestamp> {
        let (date, time) = text.split_once('T')?;
        let mut date = date.split('-').map(str::parse::<u32>);
        let mut time = time.split(':').map(str::parse::<u32>);
        let (y, m, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
        let (h, min) = (time.next()?.ok()?, time.next()?.ok()?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 {
            return None;
        }
        let date = js_sys::Date::new_with_year_month_day_hr_min(
            y,
            i32::try_from(m - 1).ok()?,
            i32::try_from(d).ok()?,
            i32::try_from(h).ok()?,
            i32::try_from(min).ok()?,
        );
        let ms = date.get_time();
        #[allow(clippy::cast_possible_truncation)]
        ms.is_finite().then_some(Timestamp(ms as i64))
    }
}

/// Registers the service worker that makes the app open offline.
pub fn register_service_worker() {
    if let Some(window) = web_sys::window() {
        let container = window.navigator().service_worker();
        let _ = container.register("/sw.js");
    }
}

/// Marks the page as hydrated (`<body data-hydrated>`), for people's tools and tests.
pub fn mark_hydrated() {
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.dataset().set("hydrated", "true");
    }
    // For scripts/bench-web: the time from navigation to a page that answers.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("muster-ready");
    }
}

/// Ends the session on the server (which also asks the browser to clear this site's
/// storage and caches), then wipes local storage and every cache itself, and opens the
/// sign-in page.
async fn sign_out() -> Result<(), AppError> {
    let offline = "Connect to the network to sign out: only the server can end the session.";
    let response = gloo_net::http::Request::post("/logout")
        .send()
        .await
        .map_err(|_| AppError::Retryable(offline.to_owned()))?;
    // The server answers with a redirect to the sign-in page, which fetch follows.
    if !response.ok() {
        return Err(AppError::Retryable(format!(
            "the server could not sign you out ({})",
            response.status()
        )));
    }
    crate::store::wipe();
    crate::photos::wipe().await;
    if let Some(window) = web_sys::window() {
        if let Ok(caches) = window.caches()
            && let Ok(keys) = wasm_bindgen_futures::JsFuture::from(caches.keys()).await
        {
            for key in js_sys::Array::from(&keys).iter() {
                if let Some(name) = key.as_string() {
                    let _ = wasm_bindgen_futures::JsFuture::from(caches.delete(&name)).await;
                }
            }
        }
        let _ = window.location().set_href("/login?signed_out=1");
    }
    Ok(())
}
