//! Escalations: a supervisor's alerts (P1 and P2 reports of their teams), kept on the
//! device by sync so they show, and can be marked read, offline; and the outgoing
//! webhook's delivery log for administrators.

use leptos::prelude::*;

use crate::field::{use_device, use_field_state};

/// The supervisor's unread alerts, as the last sync brought them.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new_local(use_device());
    let failed = RwSignal::new(None::<String>);
    // Off the list at once; the next sync tells the server.
    let mark = move |id: &str| {
        let result = device.with_value(|d| d.as_ref().map(|d| d.0.mark_notice_read(id)));
        failed.set(result.and_then(Result::err));
    };
    let list = move || {
        let notices = state.notices.get();
        if notices.is_empty() {
            return view! { <p class="empty">"No alerts. P1 and P2 reports of your teams show here."</p> }
                .into_any();
        }
        view! {
            <ul class="alerts" data-testid="alerts">
                {notices.into_iter().map(|n| {
                    let id = n.id.clone();
                    view! {
                        <li class="alert">
                            <span class=format!("prio prio-{}", n.priority.rank())>{n.priority.as_str()}</span>
                            " "
                            <a href=format!("/incidents/{}", n.report_id)>{n.title.clone()}</a>
                            <span class="sub">{format!(" · {}", n.raised_at.display_utc())}</span>
                            <button
                                type="button"
                                class="button"
                                aria-label=format!("Mark “{}” as read", n.title)
                                on:click=move |_| mark(&id)
                            >
                                "Mark as read"
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    let failed = move || {
        failed
            .get()
            .map(|e| view! { <p class="notice" role="alert">{format!("Not marked: {e}")}</p> })
    };
    view! {
        <h1>"Alerts"</h1>
        <Show
            when=move || state.loaded.get()
            fallback=|| view! { <p class="empty">"Reading alerts saved on this device…"</p> }
        >
            {list}
        </Show>
        {failed}
    }
}
