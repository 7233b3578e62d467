//! The outgoing webhook's delivery log (administrators).

use leptos::prelude::*;

use crate::desk::list_deliveries;

/// The outgoing webhook's delivery log (administrators).
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let log = Resource::new(|| (), |()| list_deliveries());
    view! {
        <h1>"Webhook deliveries"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match log.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the log: {e}")}</p> }.into_any(),
                    Ok((lines, configured)) => {
                        let setup = if configured {
                            "P1 and P2 escalations are sent to the configured webhook (MUSTER_WEBHOOK_URL)."
                        } else {
                            "No webhook is configured (set MUSTER_WEBHOOK_URL and MUSTER_WEBHOOK_SECRET); escalations are listed but not sent."
                        };
                        view! {
                            <p class="hint">{setup}</p>
                            {if lines.is_empty() {
                                view! { <p class="empty" data-testid="deliveries-empty">"Nothing has been escalated yet."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="incidents" data-testid="deliveries">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Delivery"</th>
                                                <th scope="col">"Priority"</th>
                                                <th scope="col">"Raised"</th>
                                                <th scope="col">"Attempts"</th>
                                                <th scope="col">"Outcome"</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {lines.into_iter().map(|d| {
                                                let outcome = match (d.delivered_at, &d.last_error) {
                                                    (Some(at), _) => format!("Delivered {} ({})", at.display_utc(), d.last_status.unwrap_or_default()),
                                                    (None, Some(error)) => match d.next_attempt_at {
                                                        Some(at) => format!("{error}; next attempt {}", at.display_utc()),
                                                        None => format!("{error}; given up"),
                                                    },
                                                    (None, None) => "Waiting for its first attempt".to_owned(),
                                                };
                                                view! {
                                                    <tr>
                                                        <td data-label="Delivery">
                                                            <a href=format!("/incidents/{}", d.report_id)><code>{d.id}</code></a>
                                                        </td>
                                                        <td data-label="Priority">{d.priority.as_str()}</td>
                                                        <td data-label="Raised">{d.created_at.display_utc()}</td>
                                                        <td data-label="Attempts">{d.attempts}</td>
                                                        <td data-label="Outcome">{outcome}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
