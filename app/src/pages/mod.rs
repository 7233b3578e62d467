//! The pages. Field pages (outbox, report form) work offline and reach the device through
//! [`crate::field`]; desk pages (incident list and detail) read the server's merged reports
//! through server functions.

mod admin;
mod desk;
mod field;

pub use admin::{CategoriesPage, PeoplePage, PlansPage, QuarantinePage, WebhooksPage};
pub use desk::{AlertsPage, DrillBoardPage, DrillRunPage, IncidentListPage, IncidentPage};
pub use field::{DemoAccount, DemoMode, DrillPage, MyActionsPage, OutboxPage, ReportFormPage, SignInPage};

use leptos::prelude::*;

use crate::connectivity::next_try_label;
use crate::domain::FieldError;
use crate::domain::drill::DueState;
use crate::field::{use_device, use_field_state};

/// The bar on every page: connectivity, unsynced count, sync activity and "Sync now".
#[component]
pub fn SyncBar() -> impl IntoView {
    let state = use_field_state();
    let device = use_device();
    let clock = StoredValue::new(device.clone());
    let sync_now = move |_| {
        if let Some(device) = &device {
            device.0.sync_now();
        }
    };
    let unsynced = move || {
        if state.loaded.get() {
            let n = state.unsynced();
            let reports = if n == 1 {
                "1 unsynced report".to_owned()
            } else {
                format!("{n} unsynced reports")
            };
            match state.photos_to_upload() {
                0 => reports,
                1 => format!("{reports}, 1 photo to upload"),
                photos => format!("{reports}, {photos} photos to upload"),
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
    let next_try = move || {
        let at = state.next_try_at.get().filter(|_| !state.syncing.get())?;
        Some(next_try_label(at.0 - state.now.get().0))
    };
    view! {
        <header class="topbar">
            <a class="skip" href="#main">"Skip to content"</a>
            <a class="brand" href="/">"Muster"</a>
            <nav aria-label="Main">
                <a href="/">"Outbox"</a>
                <a href="/report">"New report"</a>
                <a href="/incidents">"Incidents"</a>
                <a href="/actions">"My actions"</a>
                <a href="/drill" data-testid="drills-link">
                    {move || {
                        // Due soon or overdue, by the device's clock when the list came.
                        let Some(now) = clock.with_value(|d| d.as_ref().map(|d| d.0.now())) else {
                            return "Drills".to_owned();
                        };
                        let due = state.drills.with(|d| {
                            d.iter()
                                .filter(|b| matches!(b.drill.due_state(now), DueState::DueSoon | DueState::Overdue))
                                .count()
                        });
                        if due == 0 { "Drills".to_owned() } else { format!("Drills ({due} due)") }
                    }}
                </a>
                {move || {
                    let desk = state.loaded.get()
                        && state.me.with(|m| m.as_ref().is_some_and(|m| m.viewer.role.acts_on_reports()));
                    desk.then(|| view! { <a href="/drills">"Drill desk"</a> })
                }}
                {move || {
                    let n = state.notices.with(Vec::len);
                    (n > 0).then(|| view! {
                        <a href="/alerts" class="alerts-link" data-testid="alerts-link">
                            {if n == 1 { "1 alert".to_owned() } else { format!("{n} alerts") }}
                        </a>
                    })
                }}
                {move || {
                    let admin = state.loaded.get()
                        && state.me.with(|m| m.as_ref().is_some_and(|m| m.viewer.role == crate::domain::access::Role::Admin));
                    admin.then(|| view! {
                        <a href="/admin/people">"People"</a>
                        <a href="/admin/quarantine">"Held back"</a>
                        <a href="/admin/webhooks">"Webhook"</a>
                        <a href="/admin/plans">"Plans"</a>
                        <a href="/admin/categories">"Categories"</a>
                    })
                }}
            </nav>
        </header>
        {move || state.run.with(|run| run.as_ref().map(|run| view! {
            <div class="drill-banner" role="status" data-testid="drill-banner">
                <strong>"DRILL"</strong>
                {format!(" · practice: {} · ", run.brief.scenario.title)}
                <a href="/drill">"Drill screen"</a>
            </div>
        }))}
        <div class="syncbar">
            <p class="sync-state" role="status" aria-live="polite">
                <span data-testid="connectivity" class=move || state.connectivity.get().class()>
                    {move || state.connectivity.get().label()}
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
                disabled=move || state.syncing.get()
            >
                "Sync now"
            </button>
            <p data-testid="sync-activity" class="activity" aria-live="polite">
                {activity}
            </p>
            {move || next_try().map(|text| view! {
                <p data-testid="next-try" class="activity">{text}</p>
            })}
            <Account />
        </div>
    }
}

/// Who the device is signed in as, and signing out: asked first when reports are
/// unsynced (sync them, or type DELETE to drop them with everything else on the device).
#[component]
fn Account() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new(use_device());
    let asking = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let sign_out = move || {
        device.with_value(|device| {
            if let Some(device) = device {
                problem.set(None);
                device.0.sign_out(Box::new(move |result| {
                    if let Err(reason) = result {
                        problem.set(Some(reason.to_string()));
                    }
                }));
            }
        });
    };
    let start = move |_| {
        if state.unsynced() == 0 {
            sign_out();
        } else {
            typed.set(String::new());
            asking.set(true);
        }
    };
    let sync_now = move |_| {
        device.with_value(|device| {
            if let Some(device) = device {
                device.0.sync_now();
            }
        });
    };
    let confirmed = move || typed.with(|t| t.trim() == "DELETE");
    view! {
        <div class="account">
            {move || match (state.loaded.get(), state.me.get()) {
                (true, Some(me)) => view! {
                    <span data-testid="signed-in-as">
                        {format!("Signed in as {} ({})", me.viewer.name, me.viewer.role.label())}
                    </span>
                    <button type="button" class="button link" data-testid="sign-out" on:click=start>
                        "Sign out"
                    </button>
                }.into_any(),
                (true, None) => view! {
                    <a class="button" href="/login" rel="external" data-testid="sign-in-link">"Sign in"</a>
                }.into_any(),
                _ => ().into_any(),
            }}
            {move || state.signed_out.get().then(|| view! {
                <p class="notice" role="alert" data-testid="session-ended">
                    "Your session has ended, so syncing has stopped. Your reports stay on this device. "
                    <a href="/login" rel="external">"Sign in again"</a>
                </p>
            })}
            {move || problem.get().map(|p| view! { <p class="notice" role="alert">{p}</p> })}
            <Show when=move || asking.get()>
                <section class="confirm" role="dialog" aria-labelledby="signout-heading" data-testid="sign-out-confirm">
                    <h2 id="signout-heading">"Unsynced reports"</h2>
                    <p>
                        {move || format!(
                            "{} report(s) on this device have not reached the server. Signing out deletes them from this device.",
                            state.unsynced(),
                        )}
                    </p>
                    <button type="button" class="button primary" on:click=sync_now disabled=move || state.syncing.get()>
                        "Sync now"
                    </button>
                    <div class="field">
                        <label for="confirm-discard">"To sign out anyway and delete them, type DELETE"</label>
                        <input id="confirm-discard" type="text" autocomplete="off" bind:value=typed />
                    </div>
                    <button
                        type="button"
                        class="button"
                        data-testid="sign-out-discard"
                        disabled=move || !confirmed()
                        on:click=move |_| sign_out()
                    >
                        "Sign out and delete"
                    </button>
                    <button type="button" class="button link" on:click=move |_| asking.set(false)>"Cancel"</button>
                </section>
            </Show>
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

/// In the field bundle, the place of every page it does not carry: it loads the address
/// from the server, which answers with the desk bundle. Never rendered on the server.
#[component]
pub fn ElsewherePage() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        let href = format!("{}{}", location.pathname.get(), location.search.get());
        let _ = window().location().replace(&href);
    });
    view! { <p class="loading" role="status">"Opening…"</p> }
}

/// The messages for one field, linked to its control by `{field}-error`.
pub(crate) fn field_errors(
    errors: RwSignal<Vec<FieldError>>,
    field: impl Into<std::borrow::Cow<'static, str>>,
) -> impl IntoView {
    let field = field.into();
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

/// One `<option>` per value: its stored key as the value, its label as the text.
pub(crate) fn options<T: Copy + 'static>(
    values: impl IntoIterator<Item = T>,
    key: fn(T) -> &'static str,
    label: fn(T) -> &'static str,
) -> impl IntoView {
    values
        .into_iter()
        .map(|v| view! { <option value=key(v)>{label(v)}</option> })
        .collect_view()
}
