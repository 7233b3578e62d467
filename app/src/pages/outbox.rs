//! The outbox: every report on this device, with where it stands with the server.

use leptos::prelude::*;

use crate::field::use_field_state;

/// The field home page.
#[component]
pub fn OutboxPage() -> impl IntoView {
    let state = use_field_state();
    let list = move || {
        let entries = state.outbox.get();
        if entries.is_empty() {
            return view! { <p class="empty">"No reports on this device yet."</p> }.into_any();
        }
        view! {
            <ul class="outbox" data-testid="outbox">
                {entries
                    .into_iter()
                    .map(|entry| {
                        let href = format!("/report?id={}", entry.id);
                        view! {
                            <li class="outbox-item" data-report-id=entry.id.to_string()>
                                <a class="outbox-link" href=href>
                                    <span class="outbox-title">{entry.title}</span>
                                    <span class="outbox-meta">
                                        <span class=format!(
                                            "sev sev-{}",
                                            entry.severity.as_str(),
                                        )>{entry.severity.label()}</span>
                                        " · "
                                        {entry.status.label()}
                                        " · "
                                        {entry.occurred_at.display_utc()}
                                    </span>
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
