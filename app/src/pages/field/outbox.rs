//! The outbox: every report on this device, with where it stands with the server.

use leptos::prelude::*;

use crate::field::{use_device, use_field_state};

/// The field home page.
#[component]
pub fn OutboxPage() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new_local(use_device());
    let list = move || {
        let entries = state.outbox.get();
        // Deadlines count down from the device's clock when the list was drawn.
        let now = device.with_value(|d| d.as_ref().map(|d| d.0.now()));
        if entries.is_empty() {
            return view! { <p class="empty">"No reports on this device yet."</p> }.into_any();
        }
        view! {
            <ul class="outbox" data-testid="outbox">
                {entries
                    .into_iter()
                    .map(|entry| {
                        let href = format!("/report?id={}", entry.id);
                        let clock = entry.clock.map(|clock| {
                            let left = now.map(|now| format!(" ({})", clock.describe(now))).unwrap_or_default();
                            view! {
                                <span class="outbox-clock clock" data-testid="report-clock">
                                    {format!("Report to the authority by {}{left}", clock.due.display_utc())}
                                </span>
                            }
                        });
                        view! {
                            <li class="outbox-item" data-report-id=entry.id.to_string()>
                                <a class="outbox-link" href=href>
                                    <span class="outbox-title">
                                        {entry.drill.then(|| view! { <span class="badge badge-drill">"Drill"</span> " " })}
                                        {entry.title}
                                    </span>
                                    <span class="outbox-meta">
                                        {entry.priority.map(|p| view! {
                                            <span class=format!("prio prio-{}", p.rank())>{p.as_str()}</span>
                                            " · "
                                        })}
                                        <span class=format!(
                                            "sev sev-{}",
                                            entry.severity.as_str(),
                                        )>{entry.severity.label()}</span>
                                        " · "
                                        {entry.status.label()}
                                        " · "
                                        {entry.occurred_at.display_utc()}
                                    </span>
                                    {clock}
                                    <span class=entry.sync.class() data-testid="report-sync">
                                        {entry.sync.label()}
                                    </span>
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <h1>"Your reports"</h1>
        <p class="lead">
            "Reports you file are kept on this device first and sent to your supervisors "
            "whenever there is a connection, so you can report with no signal at all."
        </p>
        <p>
            <a class="button primary" href="/report">
                "Report an incident"
            </a>
        </p>
        <Show
            when=move || state.loaded.get()
            fallback=|| view! { <p class="empty">"Reading reports saved on this device…"</p> }
        >
            {list}
        </Show>
    }
}
