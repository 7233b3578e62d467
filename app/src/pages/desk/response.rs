//! The response on an incident's page (investigation, actions, review) and the
//! "my actions" page. Every form writes through `edit_incident`, which records only what
//! differs from what the page loaded, so concurrent work by others on the same report
//! stands.

use leptos::prelude::*;

use crate::desk::{NewAction, Person, add_action};
use crate::domain::response::MAX_WHYS;
use crate::domain::{Action, ActionKind, ActionState, Effectiveness, Report, ReportId, Timestamp};
use crate::pages::options;

/// Saving an edit of the report: (what the page loaded, the edited report).
pub(super) type Save = leptos::prelude::Action<(Report, Report), Result<(), crate::error::AppError>>;
/// Adding an action: (report, the action).
pub(super) type Add = leptos::prelude::Action<(ReportId, NewAction), Result<(), crate::error::AppError>>;

/// A server action for saving edits of the report (one per form, so each shows its own
/// outcome).
pub(super) fn save_action() -> Save {
    leptos::prelude::Action::new(|(base, edited): &(Report, Report)| {
        let (base, edited) = (base.clone(), edited.clone());
        async move { crate::desk::edit_incident(base, edited).await }
    })
}

/// A server action for adding actions.
pub(super) fn add_action_action() -> Add {
    leptos::prelude::Action::new(|(id, action): &(ReportId, NewAction)| {
        let (id, action) = (*id, action.clone());
        async move { add_action(id, action).await }
    })
}

/// What a save said, for a form's live region.
pub(super) fn outcome(
    result: Option<Result<(), crate::error::AppError>>,
    done: &'static str,
) -> Option<AnyView> {
    match result {
        Some(Ok(())) => Some(view! { <p class="ok" role="status">{done}</p> }.into_any()),
        Some(Err(e)) => {
            Some(view! { <p class="notice" role="alert">{format!("Not saved: {e}")}</p> }.into_any())
        }
        None => None,
    }
}

/// The "5 whys" chain and the contributing factors.
#[component]
pub(super) fn Investigation(base: Report, save: Save) -> AnyView {
    let mut whys = base.response.whys.clone();
    let shown = (whys.len() + 1).clamp(5, MAX_WHYS);
    whys.resize(shown, String::new());
    let whys: Vec<RwSignal<String>> = whys.into_iter().map(RwSignal::new).collect();
    let factors = RwSignal::new(base.response.factors.join("\n"));
    let base = StoredValue::new(base);
    let chain = whys.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let base = base.get_value();
        let mut edited = base.clone();
        let mut answers: Vec<String> = chain
            .iter()
            .map(|w| w.get_untracked().trim().to_owned())
            .collect();
        while answers.last().is_some_and(String::is_empty) {
            answers.pop();
        }
        edited.response.whys = answers;
        edited.response.factors = lines(&factors.get_untracked());
        save.dispatch((base, edited));
    };
    let root = base.with_value(|b| b.response.root_cause().map(str::to_owned));
    view! {
        <section aria-labelledby="investigation-heading" data-testid="investigation">
            <h2 id="investigation-heading">"Investigation"</h2>
            {root.map(|r| view! { <p class="root-cause">"Root cause: "<strong>{r}</strong></p> })}
            <form on:submit=submit class="desk-edit">
                <fieldset>
                    <legend>"5 whys: each answer asks the next why; the last is the root cause"</legend>
                    {whys.into_iter().enumerate().map(|(i, why)| {
                        let id = format!("why-{}", i + 1);
                        view! {
                            <div class="field">
                                <label for=id.clone()>{format!("Why {}?", i + 1)}</label>
                                <input id=id type="text" maxlength="10000" bind:value=why />
                            </div>
                        }
                    }).collect_view()}
                </fieldset>
                <div class="field">
                    <label for="factors">"Contributing factors (one per line)"</label>
                    <textarea id="factors" rows="3" bind:value=factors></textarea>
                </div>
                <button type="submit" class="button" data-testid="save-investigation" disabled=move || save.pending().get()>
                    "Save investigation"
                </button>
                {move || outcome(save.value().get(), "Investigation saved.")}
            </form>
        </section>
    }
    .into_any()
}

/// Non-empty trimmed lines, each once.
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|o| o == line) {
            out.push(line.to_owned());
        }
    }
    out
}

/// `<option>`s for people, with "nobody" first.
fn people_options(people: &[Person]) -> impl IntoView + use<> {
    let people = people.to_vec();
    view! {
        <option value="">"Nobody yet"</option>
        {people.into_iter().map(|p| view! { <option value=p.id>{p.name}</option> }).collect_view()}
    }
}

/// The incident's corrective and preventive actions, each editable, and a form to add one.
#[component]
pub(super) fn Actions(base: Report, people: Vec<Person>, now: Timestamp, save: Save, add: Add) -> AnyView {
    let id = base.id;
    let actions = base.response.actions.clone();
    let base = StoredValue::new(base);
    // An action's progress, written into the report as the page loaded it.
    let on_save = Callback::new(move |action: Action| {
        let base = base.get_value();
        let mut edited = base.clone();
        if let Some(a) = edited.response.actions.iter_mut().find(|a| a.id == action.id) {
            *a = action;
        }
        save.dispatch((base, edited));
    });
    let on_add = Callback::new(move |action: NewAction| {
        add.dispatch((id, action));
    });
    view! {
        <ActionsSection
            heading="Corrective and preventive actions"
            actions
            people
            now
            save=on_save
            saved=save.value().into()
            add=on_add
            added=add.value().into()
            adding=add.pending().into()
        />
    }
    .into_any()
}

/// Actions (of an incident, or of a drill's improvement plan), each editable through
/// `save`, and a form to add one through `add`; `saved` and `added` are their outcomes.
#[component]
pub(crate) fn ActionsSection(
    heading: &'static str,
    actions: Vec<Action>,
    people: Vec<Person>,
    now: Timestamp,
    save: Callback<Action>,
    saved: Signal<Option<Result<(), crate::error::AppError>>>,
    add: Callback<NewAction>,
    added: Signal<Option<Result<(), crate::error::AppError>>>,
    adding: Signal<bool>,
) -> AnyView {
    let list = if actions.is_empty() {
        view! { <p class="empty">"No actions yet."</p> }.into_any()
    } else {
        let items = actions
            .iter()
            .map(|action| {
                let owner = Person::name_in(&people, &action.owner);
                view! { <ActionItem action=action.clone() owner now save /> }
            })
            .collect_view();
        view! { <ul class="actions" data-testid="actions">{items}</ul> }.into_any()
    };
    let kind = RwSignal::new(ActionKind::Corrective.as_str().to_owned());
    let text = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.run(NewAction {
            kind: ActionKind::from_key(&kind.get_untracked()).unwrap_or(ActionKind::Corrective),
            text: text.get_untracked(),
            owner: owner.get_untracked(),
            due_at: Timestamp::end_of_day(&due.get_untracked()),
        });
        text.set(String::new());
    };
    view! {
        <section aria-labelledby="actions-heading">
            <h2 id="actions-heading">{heading}</h2>
            {list}
            {move || outcome(saved.get(), "Action saved.")}
            <form on:submit=submit class="desk-edit" data-testid="add-action-form">
                <h3>"Add an action"</h3>
                <div class="field">
                    <label for="action-text">"What is to be done"</label>
                    <textarea id="action-text" rows="2" required bind:value=text></textarea>
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="action-kind">"Kind"</label>
                        <select id="action-kind" bind:value=kind>
                            {options(ActionKind::ALL.to_vec(), ActionKind::as_str, ActionKind::label)}
                        </select>
                    </div>
                    <div class="field">
                        <label for="action-owner">"Owner"</label>
                        <select id="action-owner" bind:value=owner>{people_options(&people)}</select>
                    </div>
                    <div class="field">
                        <label for="action-due">"Due by"</label>
                        <input id="action-due" type="date" bind:value=due />
                    </div>
                </div>
                <button type="submit" class="button" data-testid="add-action" disabled=move || adding.get()>
                    "Add action"
                </button>
                {move || outcome(added.get(), "Action added.")}
            </form>
        </section>
    }
    .into_any()
}

/// One action: what, who, by when, overdue or not, and its state and effectiveness check.
#[component]
fn ActionItem(action: Action, owner: String, now: Timestamp, save: Callback<Action>) -> impl IntoView {
    let overdue = action.is_overdue(now);
    let key = action.id.to_string();
    let state = RwSignal::new(action.state.as_str().to_owned());
    let check = RwSignal::new(action.check.as_str().to_owned());
    let note = RwSignal::new(action.check_note.clone());
    let done = move || state.get() == ActionState::Done.as_str();
    let stored = StoredValue::new(action.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut a = stored.get_value();
        a.state = ActionState::from_key(&state.get_untracked()).unwrap_or(a.state);
        a.check = if a.state == ActionState::Done {
            Effectiveness::from_key(&check.get_untracked()).unwrap_or(a.check)
        } else {
            Effectiveness::NotChecked
        };
        a.check_note = note.get_untracked().trim().to_owned();
        save.run(a);
    };
    let due = action
        .due_at
        .map_or_else(|| "no due date".to_owned(), |d| format!("due {}", d.date()));
    view! {
        <li class="action" class:overdue=overdue data-action-id=key.clone()>
            <p>
                <strong>{action.text.clone()}</strong>
                <span class="sub">{format!(" {} · {owner} · {due} · {}", action.kind.label(), action.state.label())}</span>
                {overdue.then(|| view! { <span class="badge badge-error" data-testid="overdue">"Overdue"</span> })}
                {(action.state == ActionState::Done).then(|| view! {
                    <span class="sub">{format!(" · {}", action.check.label())}</span>
                })}
            </p>
            <form on:submit=submit class="field-row">
                <div class="field">
                    <label for=format!("state-{key}")>"State"</label>
                    <select id=format!("state-{key}") bind:value=state>
                        {options(ActionState::ALL.to_vec(), ActionState::as_str, ActionState::label)}
                    </select>
                </div>
                <div class="field">
                    <label for=format!("check-{key}")>"Effectiveness check"</label>
                    <select id=format!("check-{key}") bind:value=check disabled=move || !done()>
                        {options(Effectiveness::ALL.to_vec(), Effectiveness::as_str, Effectiveness::label)}
                    </select>
                </div>
                <div class="field">
                    <label for=format!("note-{key}")>"What the check found"</label>
                    <input id=format!("note-{key}") type="text" bind:value=note />
                </div>
                <button type="submit" class="button" aria-label=format!("Save action “{}”", action.text)>
                    "Save"
                </button>
            </form>
        </li>
    }
}

/// The post-incident review. Its lessons learned reach the reporter's phone.
#[component]
pub(super) fn ReviewForm(base: Report, save: Save) -> AnyView {
    let parts: Vec<(&'static str, &'static str, RwSignal<String>)> = base
        .response
        .review
        .parts()
        .into_iter()
        .map(|(key, label, text)| (key, label, RwSignal::new(text.to_owned())))
        .collect();
    let fields = parts.clone();
    let base = StoredValue::new(base);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let base = base.get_value();
        let mut edited = base.clone();
        for (key, _, text) in &fields {
            if let Some(part) = edited.response.review.part_mut(key) {
                *part = text.get_untracked().trim().to_owned();
            }
        }
        save.dispatch((base, edited));
    };
    view! {
        <section aria-labelledby="review-heading" data-testid="review">
            <h2 id="review-heading">"Post-incident review"</h2>
            <p class="hint">
                "Write it once the incident is resolved. The summary and lessons learned are needed to mark it \
                 reviewed; the reporter sees them on their phone."
            </p>
            <form on:submit=submit class="desk-edit">
                {parts.into_iter().map(|(key, label, text)| {
                    let id = format!("review-{key}");
                    view! {
                        <div class="field">
                            <label for=id.clone()>{label}</label>
                            <textarea id=id rows="3" bind:value=text></textarea>
                        </div>
                    }
                }).collect_view()}
                <button type="submit" class="button" data-testid="save-review" disabled=move || save.pending().get()>
                    "Save review"
                </button>
                {move || outcome(save.value().get(), "Review saved.")}
            </form>
        </section>
    }
    .into_any()
}
