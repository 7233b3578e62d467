//! The pages. Field pages (outbox, report form) work offline and reach the device through
//! [`crate::field`]; desk pages (incident list and detail) read the server's merged reports
//! through server functions.

mod incidents;
mod outbox;
mod report_form;

pub use incidents::{IncidentListPage, IncidentPage, QuarantinePage};
pub use outbox::OutboxPage;
pub use report_form::ReportFormPage;

use leptos::prelude::*;

use crate::domain::FieldError;
use crate::field::{use_device, use_field_state};

/// The bar on every page: connectivity, unsynced count, sync activity and "Sync now".
#[component]
pub fn SyncBar() -> impl IntoView {
    let state = use_field_state();
    let device = use_device();
    let sync_now = move |_| {
        if let Some(device) = &device {
            device.0.sync_now();
        }
    };
    let unsynced = move || {
        if state.loaded.get() {
            let n = state.unsynced();
            if n == 1 {
                "1 unsynced report".to_owned()
            } else {
                format!("{n} unsynced reports")
            }
        } else {
            "Checking this device…".to_owned()
        }
    };
    let activity = move || {
        if state.syncing.get() {
            "Syncing…".to_owned()
        } else if let Some(error) = state.last_error.get() {
            format!("Last sync failed: {error}")
        } else if let Some(at) = state.last_synced_at.get() {
            format!("Last synced {}", at.display_utc())
        } else {
            String::new()
        }
    };
    view! {
        <header class="topbar">
            <a class="skip" href="#main">"Skip to content"</a>
            <a class="brand" href="/">"Muster"</a>
            <nav aria-label="Main">
                <a href="/">"Outbox"</a>
                <a href="/report">"New report"</a>
                <a href="/incidents">"Incidents"</a>
            </nav>
        </header>
        <div class="syncbar">
            <p class="sync-state" role="status" aria-live="polite">
                <span
                    data-testid="connectivity"
                    class=move || if state.online.get() { "pill pill-online" } else { "pill pill-offline" }
                >
                    {move || if state.online.get() { "Online" } else { "Offline" }}
                </span>
                <span data-testid="unsynced" class="unsynced">
                    {unsynced}
                </span>
            </p>
            <button
                type="button"
                class="button"
                data-testid="sync-now"
                on:click=sync_now
                disabled=move || !state.online.get() || state.syncing.get()
            >
                "Sync now"
            </button>
            <p data-testid="sync-activity" class="activity" aria-live="polite">
                {activity}
            </p>
        </div>
    }
}

/// Shown for unknown addresses.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <h1>"Page not found"</h1>
        <p>
            <a href="/">"Back to your reports"</a>
        </p>
    }
}

/// The messages for one field, linked to its control by `{field}-error`.
fn field_errors(errors: RwSignal<Vec<FieldError>>, field: &'static str) -> impl IntoView {
    move || {
        let messages: Vec<String> = errors.with(|all| {
            all.iter()
                .filter(|e| e.field == field)
                .map(|e| e.message.clone())
                .collect()
        });
        (!messages.is_empty()).then(|| {
            view! {
                <p class="field-error" id=format!("{field}-error")>
                    {messages.join(" ")}
                </p>
            }
        })
    }
}
