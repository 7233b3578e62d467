//! Response plans: the checklist on the report form (from the plans kept on the device,
//! so it works offline) and the administrators' plan editor.

use leptos::prelude::*;

use crate::admin::{list_categories, list_plans, save_plan};
use crate::domain::Plan;

/// The administrators' editor: one plan per category, steps one per line.
#[component]
pub fn PlansPage() -> impl IntoView {
    let save = Action::new(|(category, steps): &(String, String)| {
        let (category, steps) = (category.clone(), steps.clone());
        async move { save_plan(category, steps).await }
    });
    let plans = Resource::new(
        move || save.version().get(),
        |_| async { Ok::<_, crate::error::AppError>((list_plans().await?, list_categories().await?)) },
    );
    view! {
        <h1>"Response plans"</h1>
        <p class="hint">
            "One step per line, as “role: what to do” (a line without a role is for whoever reports). \
             Every device keeps the plans, so they open offline; reporters tick the steps as they do them."
        </p>
        {move || save.value().get().map(|r| match r {
            Ok(()) => view! { <p class="ok" role="status">"Plan saved."</p> }.into_any(),
            Err(e) => view! { <p class="notice" role="alert">{format!("Not saved: {e}")}</p> }.into_any(),
        })}
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match plans.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the plans: {e}")}</p> }.into_any(),
                    Ok((plans, categories)) => categories.into_iter().filter(|c| c.active || plans.iter().any(|p| p.category == c.key)).map(|c| {
                        let (key, label) = (c.key.0, c.label);
                        let text = plans
                            .iter()
                            .find(|p| p.category.0 == key)
                            .map(Plan::steps_text)
                            .unwrap_or_default();
                        let steps = RwSignal::new(text);
                        let id = format!("plan-{key}");
                        let form_id = format!("plan-form-{key}");
                        let submit = move |ev: leptos::ev::SubmitEvent| {
                            ev.prevent_default();
                            save.dispatch((key.clone(), steps.get_untracked()));
                        };
                        view! {
                            <form class="desk-edit" on:submit=submit data-testid=form_id>
                                <div class="field">
                                    <label for=id.clone()>{format!("{label}: steps")}</label>
                                    <textarea id=id rows="4" bind:value=steps></textarea>
                                </div>
                                <button type="submit" class="button" aria-label=format!("Save the {label} plan")>"Save"</button>
                            </form>
                        }
                    }).collect_view().into_any(),
                }
            })}
        </Suspense>
    }
}
