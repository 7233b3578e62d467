//! The chosen category's response plan as a checklist on the report form, from the plans
//! kept on the device, so it works offline.

use leptos::prelude::*;

use crate::domain::{Plan, PlanTick, Report};
use crate::field::{use_device, use_field_state};

/// The chosen category's plan as a checklist. Ticking a step records when (the device's
/// clock); a tick already saved with the report stays.
#[component]
pub(crate) fn PlanChecklist(
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
