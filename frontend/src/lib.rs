//! Muster in the browser: the WASM entry point that hydrates the server-rendered pages,
//! and the only code that touches browser storage, geolocation and the network.
//!
//! * [`store`]: report documents in `localStorage` (through gloo-storage), the storage of
//!   the sync engine ([`app::sync::client`]).
//! * [`sync`]: drives the engine (on start-up, after every save, when the network or the
//!   page comes back, on a timer, and retrying with backoff), and what the device knows
//!   of reaching the server.
//! * [`clock`], [`serial`]: the browser clock, and background jobs that run one pass at a
//!   time.
//! * [`device`]: the [`app::field::Device`] port the pages use.
//! * [`photos`]: photos made smaller on the device, kept in IndexedDB until uploaded, and
//!   uploaded in resumable chunks after their report's text.
//!
//! Data comes in from the pages (through the port) and from `POST /api/sync` answers; it
//! goes out to `localStorage`, IndexedDB (photos) and to the server.

#![recursion_limit = "256"]

pub mod clock;
pub mod device;
pub mod photos;
pub mod serial;
pub mod store;
pub mod sync;

use std::sync::Arc;

use app::field::{DeviceHandle, FieldState};
use leptos::prelude::*;

/// Called by the hydration script once the WASM module is loaded. Built twice: without
/// features it is the phone's bundle ([`app::FieldApp`], the field pages only); with
/// `desk` it is the desk's ([`app::App`], every page).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let state = FieldState::new();
    let device = DeviceHandle(Arc::new(device::BrowserDevice::new(state)));
    leptos::mount::hydrate_body(move || {
        provide_context(state);
        provide_context(device);
        #[cfg(feature = "desk")]
        let app = view! { <app::App /> };
        #[cfg(not(feature = "desk"))]
        let app = view! { <app::FieldApp /> };
        app
    });
    // Hydration is done: now read the device and start syncing. Doing this earlier would
    // make the first render differ from the server's HTML. It runs in tasks of its own,
    // so the page answers input between them.
    wasm_bindgen_futures::spawn_local(async move {
        sync::yield_now().await;
        sync::start(state).await;
        device::register_service_worker();
        device::mark_hydrated();
    });
}
