//! On the phone: where a report of theirs stands and what it taught (once reviewed), and
//! the actions a person owns.

use leptos::prelude::*;

use crate::desk::my_actions;
use crate::domain::Report;

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

/// Every action the signed-in person owns, overdue ones marked.
#[component]
pub fn MyActionsPage() -> impl IntoView {
    let rows = Resource::new(|| (), |()| my_actions());
    view! {
        <h1>"My actions"</h1>
        <Suspense fallback=|| view! { <p>"Loading your actions…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load your actions: {e}")}</p> }.into_any(),
                    Ok((rows, _)) if rows.is_empty() => view! { <p class="empty">"You own no actions."</p> }.into_any(),
                    Ok((rows, now)) => {
                        let overdue = rows.iter().filter(|r| r.action.is_overdue(now)).count();
                        view! {
                            {(overdue > 0).then(|| view! {
                                <p class="notice" role="alert">{format!("{overdue} of your actions are overdue.")}</p>
                            })}
                            <ul class="actions" data-testid="my-actions">
                                {rows.into_iter().map(|row| {
                                    let late = row.action.is_overdue(now);
                                    let due = row.action.due_at.map_or_else(|| "no due date".to_owned(), |d| format!("due {}", d.date()));
                                    view! {
                                        <li class="action" class:overdue=late>
                                            <a href=format!("/incidents/{}", row.report_id)>{row.report_title}</a>
                                            <p>
                                                <strong>{row.action.text}</strong>
                                                <span class="sub">{format!(" {} · {due} · {}", row.action.kind.label(), row.action.state.label())}</span>
                                                {late.then(|| view! { <span class="badge badge-error">"Overdue"</span> })}
                                            </p>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
