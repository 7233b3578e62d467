//! Response plans: the checklist on the report form (from the plans kept on the device,
//! so it works offline) and the administrators' plan editor.

use leptos::prelude::*;

use crate::admin::{list_categories, list_plans, save_plan};
use crate::domain::{Plan, PlanTick, Report};
use crate::field::{use_device, use_field_state};

/// The chosen category's plan as a checklist. Ticking a step records when (the device's
/// clock); a tick already saved with the report stays.
#[component]
pub(super) fn PlanChecklist(
    category: RwSignal<String>,
    ticks: RwSignal<Vec<PlanTick>>,
    base: RwSignal<Option<Report>>,
    reporter: RwSignal<String>,
) -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new_local(use_device());
    move || {
        let key = category.get();
        let plan: Plan = state
            .plans
            .with(|plans| plans.iter().find(|p| p.category.0 == key).cloned())?;
        let steps = plan.steps.into_iter().map(|step| {
            let id = format!("step-{}", step.id);
            let step_id = step.id.clone();
            let ticked = {
                let step_id = step_id.clone();
                move || ticks.with(|t| t.iter().find(|t| t.step == step_id).cloned())
            };
            let saved = {
                let step_id = step_id.clone();
                move || base.with(|b| b.as_ref().is_some_and(|r| r.plan_ticks.iter().any(|t| t.step == step_id)))
            };
            let toggle = {
                let step = step.clone();
                move |ev: leptos::ev::Event| {
                    let on = event_target_checked(&ev);
                    let at = device.with_value(|d| d.as_ref().map(|d| d.0.now()));
                    // Signed by who is signed in on this device (the server accepts a
                    // tick only from the person it names).
                    let by_id = state
                        .me
                        .with_untracked(|m| m.as_ref().map_or(uuid::Uuid::nil(), |m| m.viewer.user_id));
                    ticks.update(|t| {
                        t.retain(|tick| tick.step != step.id);
                        if let (true, Some(at)) = (on, at) {
                            t.push(PlanTick::of(&step, reporter.get_untracked().trim(), by_id, at));
                        }
                    });
                }
            };
            let when = ticked.clone();
            view! {
                <li class="plan-step">
                    <input
                        type="checkbox"
                        id=id.clone()
                        prop:checked=move || ticked().is_some()
                        disabled=saved
                        on:change=toggle
                    />
                    <label for=id>
                        <strong>{format!("{}: ", step.role)}</strong>
                        {step.text.clone()}
                    </label>
                    {move || when().map(|t| view! { <span class="sub">{format!(" done {}", t.at.display_utc())}</span> })}
                </li>
            }
        }).collect_view();
        Some(view! {
            <fieldset class="plan" data-testid="plan">
                <legend>{format!("Response plan: {}", state.categories.with(|c| crate::domain::CategoryDef::label_of(c, &plan.category)))}</legend>
                <p class="hint">"Tick each step when it is done; the time is kept with the report."</p>
                <ol class="plan-steps">{steps}</ol>
            </fieldset>
        })
    }
}

/// The administrators' editor: one plan per category, steps one per line.
#[component]
pub fn PlansPage() -> impl IntoView {
    let save = Action::new(|(category, steps): &(String, String)| {
        let (category, steps) = (category.clone(), steps.clone());
        async move { save_plan(category, steps).await }
    });
    let plans = Resource::new(
        move || save.version().get(),
        |_| async { Ok::<_, ServerFnError>((list_plans().await?, list_categories().await?)) },
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
