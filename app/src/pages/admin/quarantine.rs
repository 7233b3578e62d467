//! Documents the server holds back because they could not be merged (administrators).

use leptos::prelude::*;

use crate::desk::list_quarantined;

/// Documents the server holds back because they could not be merged (administrators).
#[component]
pub fn QuarantinePage() -> impl IntoView {
    let docs = Resource::new(|| (), |()| list_quarantined());
    view! {
        <h1>"Quarantined reports"</h1>
        <p class="hint">
            "These reports' stored copies could not be merged. Devices keep their changes; \
             the server refuses new changes to them until the stored copy is repaired."
        </p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match docs.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the list: {e}")}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty" data-testid="quarantine-empty">"Nothing is quarantined."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="quarantine" data-testid="quarantine-list">
                            {list.into_iter().map(|q| view! {
                                <li>
                                    <code>{q.id.to_string()}</code>
                                    <span class="sub">{q.detected_at.display_utc()}</span>
                                    <p>{q.reason}</p>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
