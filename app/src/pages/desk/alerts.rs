//! Escalations: a supervisor's alerts (P1 and P2 reports of their teams), kept on the
//! device by sync so they show offline; and the outgoing webhook's delivery log for
//! administrators.

use leptos::prelude::*;

use crate::connectivity::Connectivity;
use crate::desk::mark_notice_read;
use crate::field::{use_device, use_field_state};

/// The supervisor's unread alerts, as the last sync brought them.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new_local(use_device());
    let mark = Action::new(|id: &String| {
        let id = id.clone();
        async move { mark_notice_read(id).await }
    });
    // Once marked, the next sync brings the list without it.
    Effect::new(move |_| {
        if matches!(mark.value().get(), Some(Ok(()))) {
            device.with_value(|d| {
                if let Some(d) = d {
                    d.0.sync_now();
                }
            });
        }
    });
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
                                disabled=move || state.connectivity.get() == Connectivity::Offline || mark.pending().get()
                                on:click=move |_| { mark.dispatch(id.clone()); }
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
        mark.value().get().and_then(Result::err).map(|e| {
            view! { <p class="notice" role="alert">{format!("Not marked: {e}")}</p> }
        })
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
