//! On the phone: where a report of theirs stands and what it taught (once reviewed), and
//! the actions a person owns (as the last sync brought them).

use leptos::prelude::*;

use crate::domain::Report;
use crate::field::{use_device, use_field_state};
use crate::protocol::ActionRow;

/// On the reporter's phone, for a report of theirs: where it stands and, once reviewed, the
/// outcome and lessons learned. Read from the report as merged on the device, so it shows
/// offline once a sync has brought the review.
#[component]
pub(crate) fn ReportOutcome(report: RwSignal<Option<Report>>) -> impl IntoView {
    move || {
        let report = report.get()?;
        let outcome = report.reviewed().map(|review| {
            let actions = report.response.actions.clone();
            view! {
                <h3>"Lessons learned"</h3>
                <p data-testid="lessons">{review.lessons.clone()}</p>
                {(!review.summary.is_empty()).then(|| view! { <h3>"What the review found"</h3><p>{review.summary.clone()}</p> })}
                {report.root_cause().map(|r| {
                    view! { <h3>"Root cause"</h3><p>{r.to_owned()}</p> }
                })}
                {(!actions.is_empty()).then(|| view! {
                    <h3>"What is being done"</h3>
                    <ul>
                        {actions.into_iter().map(|a| view! {
                            <li>{format!("{} ({})", a.text, a.state.label().to_ascii_lowercase())}</li>
                        }).collect_view()}
                    </ul>
                })}
            }
        });
        let updates: Vec<_> = report.updates_for_reporter().cloned().collect();
        let updates = (!updates.is_empty()).then(|| {
            view! {
                <h3>"Updates for you"</h3>
                <ol class="timeline" data-testid="updates-for-reporter">
                    {updates.into_iter().map(|u| view! {
                        <li>
                            <span class="sub">{format!("{} · {}", u.at.display_utc(), u.author)}</span>
                            <p>{u.text}</p>
                        </li>
                    }).collect_view()}
                </ol>
            }
        });
        Some(view! {
            <section class="report-outcome" aria-labelledby="outcome-heading" data-testid="report-outcome">
                <h2 id="outcome-heading">"What came of this report"</h2>
                <p data-testid="report-status">{format!("Status: {}", report.status.label())}</p>
                {updates}
                {outcome}
            </section>
        })
    }
}

/// Every action the signed-in person owns, overdue ones marked: the list the last sync
/// brought, kept on the device, so it shows offline too.
#[component]
pub fn MyActionsPage() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new_local(use_device());
    let list = move || {
        let Some(rows) = state.actions.get() else {
            return view! { <p class="empty">"Your actions arrive with the next sync."</p> }.into_any();
        };
        if rows.is_empty() {
            return view! { <p class="empty">"You own no actions."</p> }.into_any();
        }
        // Overdue by the device's clock when the list was drawn.
        let now = device.with_value(|d| d.as_ref().map(|d| d.0.now()));
        let late = |row: &ActionRow| now.is_some_and(|now| row.action.is_overdue(now));
        let overdue = rows.iter().filter(|r| late(r)).count();
        view! {
            {(overdue > 0).then(|| view! {
                <p class="notice" role="alert">{format!("{overdue} of your actions are overdue.")}</p>
            })}
            <ul class="actions" data-testid="my-actions">
                {rows.into_iter().map(|row| {
                    let late = late(&row);
                    let due = row.action.due_at.map_or_else(|| "no due date".to_owned(), |d| format!("due {}", d.date()));
                    view! {
                        <li class="action" class:overdue=late>
                            <a href=row.link()>{format!("{}{}", row.source_label(), row.title)}</a>
                            <p>
                                <strong>{row.action.text}</strong>
                                <span class="sub">{format!(" {} · {due} · {}", row.action.kind.label(), row.action.state.label())}</span>
                                {late.then(|| view! { <span class="badge badge-error">"Overdue"</span> })}
                            </p>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <h1>"My actions"</h1>
        <Show
            when=move || state.loaded.get()
            fallback=|| view! { <p class="empty">"Reading your actions saved on this device…"</p> }
        >
            {list}
        </Show>
    }
}
