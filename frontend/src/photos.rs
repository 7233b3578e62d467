//! Photos on the device: made smaller through a canvas (longest side at most 1600 px,
//! JPEG), kept in IndexedDB (photos are too large for local storage) until the server has
//! them, and uploaded after their report's text is synced, in chunks, resuming where the
//! server's copy ends (`HEAD` says where; see `server::photos`). Uploads run beside the
//! sync engine, so photos never hold back text.
//!
//! Each photo's state ([`PhotoSync`]) is kept in local storage (`muster.v1.photos`) and
//! shown on the form; the sync bar counts those still to upload. A photo's bytes are
//! dropped from the device only once the server has all of them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use app::document::ReportDoc;
use app::domain::photo::{self, CHUNK_BYTES, MAX_PHOTO_BYTES, MAX_SIDE};
use app::domain::{PhotoRef, ReportId};
use app::field::{FieldState, PhotoSync, ReportSync, set_if_changed};
use app::protocol::SyncError;
use gloo_net::http::{Method, Request, RequestBuilder, Response};
use gloo_storage::{LocalStorage, Storage};
use idb::event::DatabaseEvent;
use idb::{Database, Factory, ObjectStore, ObjectStoreParams, Transaction, TransactionMode};
use js_sys::Uint8Array;
use leptos::prelude::{Set, Update, WithUntracked};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::clock::now;
use crate::serial::Serial;
use crate::store;

const DB_NAME: &str = "muster-photos";
const STORE: &str = "photos";
const STATES_KEY: &str = "muster.v1.photos";

thread_local! {
    /// Object URLs of photos shown on this page, by hash (made once each).
    static PREVIEWS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    /// Upload passes, one at a time.
    static UPLOADS: Serial = const { Serial::new() };
}

fn js(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

// --- IndexedDB -------------------------------------------------------------------------

/// The photo store in a transaction of `mode`; [`finish`] commits and closes.
async fn photo_store(mode: TransactionMode) -> Result<(Database, Transaction, ObjectStore), String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], mode).map_err(js)?;
    let store = tx.object_store(STORE).map_err(js)?;
    Ok((db, tx, store))
}

/// Commits a read-write transaction and closes the database.
async fn finish(db: Database, tx: Transaction) -> Result<(), String> {
    tx.commit().map_err(js)?.await.map_err(js)?;
    db.close();
    Ok(())
}

async fn open() -> Result<Database, String> {
    let factory = Factory::new().map_err(js)?;
    let mut request = factory.open(DB_NAME, Some(1)).map_err(js)?;
    request.on_upgrade_needed(|event| {
        if let Ok(db) = event.database()
            && !db.store_names().iter().any(|n| n == STORE)
        {
            let _ = db.create_object_store(STORE, ObjectStoreParams::new());
        }
    });
    request.await.map_err(js)
}

/// Keeps a photo's bytes on the device.
async fn keep(sha256: &str, bytes: &[u8]) -> Result<(), String> {
    let (db, tx, store) = photo_store(TransactionMode::ReadWrite).await?;
    store
        .put(&Uint8Array::from(bytes).into(), Some(&JsValue::from_str(sha256)))
        .map_err(js)?
        .await
        .map_err(js)?;
    finish(db, tx).await
}

/// A photo's bytes, if the device holds them.
async fn bytes_of(sha256: &str) -> Result<Option<Vec<u8>>, String> {
    let (db, _tx, store) = photo_store(TransactionMode::ReadOnly).await?;
    let value = store
        .get(JsValue::from_str(sha256))
        .map_err(js)?
        .await
        .map_err(js)?;
    db.close();
    Ok(value.map(|v| Uint8Array::new(&v).to_vec()))
}

/// The hashes of every photo the device holds.
async fn held() -> Result<Vec<String>, String> {
    let (db, _tx, store) = photo_store(TransactionMode::ReadOnly).await?;
    let keys = store.get_all_keys(None, None).map_err(js)?.await.map_err(js)?;
    db.close();
    Ok(keys.into_iter().filter_map(|k| k.as_string()).collect())
}

/// Drops photos from the device.
async fn forget(hashes: &[String]) -> Result<(), String> {
    if hashes.is_empty() {
        return Ok(());
    }
    let (db, tx, store) = photo_store(TransactionMode::ReadWrite).await?;
    for sha in hashes {
        store
            .delete(JsValue::from_str(sha))
            .map_err(js)?
            .await
            .map_err(js)?;
    }
    finish(db, tx).await
}

/// Deletes every photo on the device (signing out).
pub async fn wipe() {
    if let Ok(factory) = Factory::new()
        && let Ok(request) = factory.delete(DB_NAME)
    {
        let _ = request.await;
    }
}

// --- States ----------------------------------------------------------------------------

fn states() -> BTreeMap<String, PhotoSync> {
    LocalStorage::get(STATES_KEY).unwrap_or_default()
}

fn set_state(state: FieldState, sha256: &str, to: PhotoSync) {
    let mut all = states();
    all.insert(sha256.to_owned(), to.clone());
    let _ = LocalStorage::set(STATES_KEY, &all);
    state.photos.update(|p| {
        p.insert(sha256.to_owned(), to);
    });
}

/// Loads the photos' states and drops what no local report names any more (photos taken
/// on a form that was left without saving; states of photos whose reports are gone).
pub fn start(state: FieldState) {
    let known = states();
    // Every photo taken here has a state until tidied away: none, nothing to tidy (and
    // no database to open, which would make one).
    if known.is_empty() {
        return;
    }
    state.photos.set(known);
    leptos::task::spawn_local(async move {
        let named: Vec<String> = local_reports()
            .into_iter()
            .flat_map(|(_, _, report)| report.photos.into_iter().map(|p| p.sha256))
            .collect();
        let Ok(on_device) = held().await else { return };
        let orphans: Vec<String> = on_device.into_iter().filter(|sha| !named.contains(sha)).collect();
        let _ = forget(&orphans).await;
        let mut all = states();
        let before = all.len();
        all.retain(|sha, _| named.contains(sha));
        if all.len() != before {
            let _ = LocalStorage::set(STATES_KEY, &all);
            state.photos.set(all);
        }
    });
}

// --- Taking photos ---------------------------------------------------------------------

/// Reads the files chosen in `input_id`, makes each smaller, keeps it, and returns the
/// references to add to the report.
pub async fn take(state: FieldState, input_id: &str) -> Result<Vec<PhotoRef>, String> {
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no page")?;
    let input: web_sys::HtmlInputElement = document
        .get_element_by_id(input_id)
        .ok_or("no photo input")?
        .dyn_into()
        .map_err(js)?;
    let Some(files) = input.files() else {
        return Ok(Vec::new());
    };
    let mut taken = Vec::new();
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        let bytes = shrink(&file).await?;
        let named = PhotoRef::of(&bytes, now()).map_err(|e| format!("{}: {e}", file.name()))?;
        keep(&named.sha256, &bytes).await.map_err(|e| {
            format!("This device could not keep the photo ({e}). Free some space and try again.")
        })?;
        remember_preview(&named.sha256, &bytes);
        set_state(state, &named.sha256, PhotoSync::Waiting);
        taken.push(named);
    }
    // The same file may be chosen again later.
    input.set_value("");
    Ok(taken)
}

/// Draws the picture at most [`MAX_SIDE`] pixels on its longest side and encodes it as a
/// JPEG (lowering the quality if it would still be over the size limit).
async fn shrink(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let unreadable = || format!("{} is not a picture this device can read.", file.name());
    let window = web_sys::window().ok_or("no window")?;
    let bitmap: web_sys::ImageBitmap =
        JsFuture::from(window.create_image_bitmap_with_blob(file).map_err(js)?)
            .await
            .map_err(|_| unreadable())?
            .dyn_into()
            .map_err(|_| unreadable())?;
    let (width, height) = photo::fit_within(bitmap.width(), bitmap.height(), MAX_SIDE);
    let canvas: web_sys::HtmlCanvasElement = window
        .document()
        .ok_or("no page")?
        .create_element("canvas")
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js)?
        .ok_or("no canvas")?
        .dyn_into()
        .map_err(js)?;
    context
        .draw_image_with_image_bitmap_and_dw_and_dh(&bitmap, 0.0, 0.0, f64::from(width), f64::from(height))
        .map_err(js)?;
    bitmap.close();
    for quality in [0.85, 0.7, 0.5] {
        let bytes = encode(&canvas, quality).await?;
        if bytes.len() as u64 <= MAX_PHOTO_BYTES {
            return Ok(bytes);
        }
    }
    Err(format!("{} stays too large even made smaller.", file.name()))
}

/// The canvas as a JPEG of `quality`.
async fn encode(canvas: &web_sys::HtmlCanvasElement, quality: f64) -> Result<Vec<u8>, String> {
    let canvas = canvas.clone();
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let done = wasm_bindgen::closure::Closure::once_into_js(move |blob: JsValue| {
            let _ = resolve.call1(&JsValue::NULL, &blob);
        });
        if let Err(e) = canvas.to_blob_with_type_and_encoder_options(
            done.unchecked_ref(),
            "image/jpeg",
            &JsValue::from_f64(quality),
        ) {
            let _ = reject.call1(&JsValue::NULL, &e);
        }
    });
    let blob: web_sys::Blob = JsFuture::from(promise)
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(|_| "the photo could not be encoded".to_owned())?;
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(js)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

// --- Previews --------------------------------------------------------------------------

fn remember_preview(sha256: &str, bytes: &[u8]) -> Option<String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/jpeg");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).ok()?;
    PREVIEWS.with(|p| p.borrow_mut().insert(sha256.to_owned(), url.clone()));
    Some(url)
}

/// A URL showing the device's copy of a photo, if it holds one.
pub async fn preview(sha256: &str) -> Option<String> {
    if let Some(url) = PREVIEWS.with(|p| p.borrow().get(sha256).cloned()) {
        return Some(url);
    }
    let bytes = bytes_of(sha256).await.ok()??;
    remember_preview(sha256, &bytes)
}

// --- Uploading -------------------------------------------------------------------------

/// Why an upload stopped.
enum Stop {
    /// Offline or the server is busy: try again at the next sync.
    Later,
    /// The server does not know the photo yet (its report's text has not reached it).
    NotYet,
    /// The session ended.
    SignedOut,
    /// The server will not take it; the reason says why.
    Refused(String),
}

/// Every local report with its stored sync state and its report.
fn local_reports() -> Vec<(ReportId, ReportSync, app::domain::Report)> {
    store::index()
        .into_iter()
        .filter_map(|id| {
            let stored = store::load(id)?;
            let report = ReportDoc::load(&stored.doc.0, automerge::ActorId::random())
                .ok()?
                .read()
                .ok()?;
            Some((id, stored.sync, report))
        })
        .collect()
}

/// Starts uploading the photos still to go, unless an upload pass is running (then it
/// runs one more pass when done, for photos whose reports synced meanwhile). Uploads run
/// beside the sync engine, not inside it, so large photos on a slow link never hold back
/// the next report's text.
pub fn request_upload(state: FieldState) {
    Serial::request(&UPLOADS, move || upload_all(state));
}

/// Uploads every photo still to go whose report's text the server has (the report is
/// synced), one after another. Stops at the first sign of being offline.
async fn upload_all(state: FieldState) {
    if state
        .photos
        .with_untracked(|p| p.values().all(|s| !s.is_pending()))
    {
        return;
    }
    for (id, sync, report) in local_reports() {
        if sync != ReportSync::Synced {
            continue;
        }
        for named in &report.photos {
            if !states().get(&named.sha256).is_some_and(PhotoSync::is_pending) {
                continue;
            }
            let Ok(Some(bytes)) = bytes_of(&named.sha256).await else {
                continue;
            };
            match upload(state, id, named, &bytes).await {
                Ok(()) => {
                    set_state(state, &named.sha256, PhotoSync::Uploaded);
                    let _ = forget(std::slice::from_ref(&named.sha256)).await;
                }
                Err(Stop::NotYet) => {}
                Err(Stop::Refused(reason)) => set_state(state, &named.sha256, PhotoSync::Refused(reason)),
                Err(Stop::SignedOut) => {
                    set_if_changed(state.signed_out, true);
                    return;
                }
                Err(Stop::Later) => return,
            }
        }
    }
}

fn offset_of(response: &Response) -> Option<u64> {
    response.headers().get("upload-offset")?.parse().ok()
}

async fn refusal(response: Response) -> Stop {
    match response.status() {
        401 => Stop::SignedOut,
        409 => Stop::NotYet,
        403 | 404 | 413 | 422 => {
            let reason = response.json::<SyncError>().await.map_or_else(
                |_| format!("the server answered {}", response.status()),
                |e| e.message,
            );
            Stop::Refused(reason)
        }
        _ => Stop::Later,
    }
}

/// Sends `bytes` from where the server's copy ends.
async fn upload(state: FieldState, id: ReportId, named: &PhotoRef, bytes: &[u8]) -> Result<(), Stop> {
    let url = format!("/api/reports/{id}/photos/{}", named.sha256);
    let head = RequestBuilder::new(&url)
        .method(Method::HEAD)
        .send()
        .await
        .map_err(|_| Stop::Later)?;
    if head.status() != 200 {
        return Err(refusal(head).await);
    }
    let mut offset = offset_of(&head).ok_or(Stop::Later)?;
    while offset < named.size {
        set_state(state, &named.sha256, PhotoSync::Uploading(offset));
        let start = usize::try_from(offset).map_err(|_| Stop::Later)?;
        let end = (start + CHUNK_BYTES).min(bytes.len());
        let answer = Request::patch(&url)
            .header("upload-offset", &offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(Uint8Array::from(&bytes[start..end]))
            .map_err(|_| Stop::Later)?
            .send()
            .await
            .map_err(|_| Stop::Later)?;
        match (answer.status(), offset_of(&answer)) {
            // Taken, or another upload of it had moved on: go on from the server's end.
            (204 | 409, Some(held)) => offset = held,
            _ => return Err(refusal(answer).await),
        }
    }
    Ok(())
}
