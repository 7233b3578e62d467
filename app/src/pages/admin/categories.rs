//! The administrators' category editor at `/admin/categories`: rename, retire or bring
//! back a category, or add one. Keys never change (reports hold them); devices receive
//! the list with their next sync and offer it offline.

use leptos::prelude::*;

use crate::admin::{list_categories, save_category};
use crate::domain::CategoryDef;

/// The category list, each row its own form, and a form to add one.
#[component]
pub fn CategoriesPage() -> impl IntoView {
    let save = Action::new(|(key, label, active): &(String, String, bool)| {
        let (key, label, active) = (key.clone(), label.clone(), *active);
        async move { save_category(key, label, active).await }
    });
    let categories = Resource::new(move || save.version().get(), |_| list_categories());
    let new_label = RwSignal::new(String::new());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch((String::new(), new_label.get_untracked(), true));
    };
    view! {
        <h1>"Categories"</h1>
        <p class="hint">
            "What reporters choose from. A retired category is no longer offered but stays on the reports that have it. \
             Devices receive changes with their next sync."
        </p>
        {move || save.value().get().map(|r| match r {
            Ok(()) => view! { <p class="ok" role="status">"Category saved."</p> }.into_any(),
            Err(e) => view! { <p class="notice" role="alert">{format!("Not saved: {e}")}</p> }.into_any(),
        })}
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match categories.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the categories: {e}")}</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|c| view! { <CategoryRow category=c save /> }).collect_view().into_any(),
                }
            })}
        </Suspense>
        <form class="desk-edit" on:submit=add data-testid="add-category">
            <h2>"Add a category"</h2>
            <div class="field">
                <label for="new-category">"Name"</label>
                <input id="new-category" type="text" maxlength="60" autocomplete="off" bind:value=new_label />
            </div>
            <button type="submit" class="button primary">"Add category"</button>
        </form>
    }
}

/// One category: its label and whether it is offered.
#[component]
fn CategoryRow(
    category: CategoryDef,
    save: Action<(String, String, bool), Result<(), crate::error::AppError>>,
) -> impl IntoView {
    let key = category.key.0.clone();
    let label = RwSignal::new(category.label.clone());
    let active = RwSignal::new(category.active);
    let (label_id, active_id) = (format!("category-{key}"), format!("category-active-{key}"));
    let form_id = format!("category-form-{key}");
    let submit = {
        let key = key.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            save.dispatch((key.clone(), label.get_untracked(), active.get_untracked()));
        }
    };
    view! {
        <form class="desk-edit" on:submit=submit data-testid=form_id>
            <div class="field">
                <label for=label_id.clone()>{format!("Name (key {key})")}</label>
                <input id=label_id type="text" maxlength="60" autocomplete="off" bind:value=label />
            </div>
            <div class="field checkbox">
                <input id=active_id.clone() type="checkbox" bind:checked=active />
                <label for=active_id>"Offered for new reports"</label>
            </div>
            <button type="submit" class="button" aria-label=format!("Save the {} category", category.label)>"Save"</button>
        </form>
    }
}
