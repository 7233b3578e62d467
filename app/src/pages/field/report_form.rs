//! The report form: new reports and edits, saved on the device first, synced later.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::domain::{
    Category, CategoryDef, FieldError, GpsFix, Impact, Injury, Outcome, PhotoRef, Report, ReportId, Severity,
    Treatment, Urgency, Witness,
};
use crate::field::{SaveError, use_device, use_field_state};
use crate::pages::{field_errors, options};

/// Parses one name per line, dropping blanks and repeats.
fn people_from_lines(text: &str) -> Vec<String> {
    let mut people: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !people.iter().any(|p| p == line) {
            people.push(line.to_owned());
        }
    }
    people
}

/// The field report form at `/report` (new) and `/report?id=…` (edit a local report).
#[component]
pub fn ReportFormPage() -> impl IntoView {
    let device = use_device();
    let navigate = use_navigate();
    let query = use_query_map();
    let editing = Memo::new(move |_| {
        query
            .with(|q| q.get("id"))
            .and_then(|s| s.parse::<ReportId>().ok())
    });

    let base: RwSignal<Option<Report>> = RwSignal::new(None);
    let title = RwSignal::new(String::new());
    let category = RwSignal::new("other".to_owned());
    let severity = RwSignal::new(Severity::Minor.as_str().to_owned());
    let impact = RwSignal::new(Impact::Unsure.as_str().to_owned());
    let urgency = RwSignal::new(Urgency::Unsure.as_str().to_owned());
    let outcome = RwSignal::new(Outcome::None.as_str().to_owned());
    let occurred = RwSignal::new(String::new());
    let place = RwSignal::new(String::new());
    let gps: RwSignal<Option<GpsFix>> = RwSignal::new(None);
    let what = RwSignal::new(String::new());
    let people = RwSignal::new(String::new());
    let actions = RwSignal::new(String::new());
    let reporter = RwSignal::new(String::new());
    let ticks: RwSignal<Vec<crate::domain::PlanTick>> = RwSignal::new(Vec::new());
    let injury: RwSignal<Injury> = RwSignal::new(Injury::default());
    let witnesses: RwSignal<Vec<WitnessFields>> = RwSignal::new(Vec::new());
    let photos: RwSignal<Vec<PhotoRef>> = RwSignal::new(Vec::new());
    let state = use_field_state();
    let errors: RwSignal<Vec<FieldError>> = RwSignal::new(Vec::new());
    let locate_message: RwSignal<Option<String>> = RwSignal::new(None);
    let missing = RwSignal::new(false);

    // Fill the form from the device once hydrated (the server renders it blank).
    {
        let device = device.clone();
        Effect::new(move |_| {
            let Some(device) = &device else { return };
            let id = editing.get();
            errors.set(Vec::new());
            locate_message.set(None);
            let loaded = id.and_then(|id| device.0.load_report(id));
            missing.set(id.is_some() && loaded.is_none());
            let now = device.0.now();
            let report = loaded.clone().unwrap_or_else(|| {
                let mut blank = Report::blank(ReportId::new_v7(now, [0; 10]), now, &device.0.reporter_name());
                // During a drill, the scenario's category, so its plan's checklist shows.
                if let Some(run) = state.run.get_untracked() {
                    blank.category = run.brief.scenario.category;
                }
                blank
            });
            title.set(report.title.clone());
            category.set(report.category.0.clone());
            severity.set(report.severity.as_str().to_owned());
            impact.set(report.impact.as_str().to_owned());
            urgency.set(report.urgency.as_str().to_owned());
            outcome.set(report.outcome.as_str().to_owned());
            occurred.set(device.0.to_local_input(report.occurred_at));
            place.set(report.location.place.clone());
            gps.set(report.location.gps);
            what.set(report.what_happened.clone());
            people.set(report.people_involved.join("\n"));
            actions.set(report.immediate_actions.clone());
            reporter.set(report.reporter.clone());
            ticks.set(report.plan_ticks.clone());
            injury.set(report.injury.clone());
            witnesses.set(report.witnesses.iter().map(WitnessFields::of).collect());
            photos.set(report.photos.clone());
            base.set(loaded);
        });
    }

    let locate = {
        let device = device.clone();
        move |_| {
            let Some(device) = &device else { return };
            locate_message.set(Some("Finding your position…".to_owned()));
            device.0.locate(Box::new(move |result| match result {
                Ok(fix) => {
                    gps.set(Some(fix));
                    locate_message.set(Some(format!("Position found (±{:.0} m).", fix.accuracy_m)));
                }
                Err(reason) => locate_message.set(Some(reason.to_string())),
            }));
        }
    };

    let submit = {
        let device = device.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let Some(device) = &device else { return };
            let now = device.0.now();
            let original = base.get_untracked();
            let mut report = original.clone().unwrap_or_else(|| {
                let mut new = Report::blank(device.0.new_report_id(), now, "");
                // Filed during a drill: a drill report, for good (its kind never changes).
                new.drill = state
                    .run
                    .with_untracked(|run| run.as_ref().map(|r| r.brief.drill.id));
                new
            });
            report.title = title.get_untracked().trim().to_owned();
            report.category = Category::new(&category.get_untracked());
            report.severity = Severity::from_key(&severity.get_untracked()).unwrap_or(Severity::Minor);
            report.impact = Impact::from_key(&impact.get_untracked()).unwrap_or_default();
            report.urgency = Urgency::from_key(&urgency.get_untracked()).unwrap_or_default();
            // The outcome only means something for an injury or illness.
            report.outcome = if report.category.0 == "injury_illness" {
                Outcome::from_key(&outcome.get_untracked()).unwrap_or_default()
            } else {
                Outcome::None
            };
            report.location.place = place.get_untracked().trim().to_owned();
            report.location.gps = gps.get_untracked();
            report.what_happened = what.get_untracked();
            report.people_involved = people_from_lines(&people.get_untracked());
            report.immediate_actions = actions.get_untracked();
            report.reporter = reporter.get_untracked().trim().to_owned();
            report.plan_ticks = ticks.get_untracked();
            // The injury details only mean something for an injury or illness.
            report.injury = if report.category.is_injury() {
                let mut details = injury.get_untracked();
                for (key, ..) in Injury::default().texts() {
                    if let Some(text) = details.text_mut(key) {
                        *text = text.trim().to_owned();
                    }
                }
                details
            } else {
                Injury::default()
            };
            report.witnesses =
                witnesses.with_untracked(|w| w.iter().filter_map(WitnessFields::read).collect());
            report.photos = photos.get_untracked();
            let mut problems = Vec::new();
            match device.0.parse_local_input(&occurred.get_untracked()) {
                Some(at) => report.occurred_at = at,
                None => problems.push(FieldError {
                    field: "occurred_at".into(),
                    message: "Give the date and time it happened.".into(),
                }),
            }
            if let Err(mut found) = report.validate(now) {
                problems.append(&mut found);
            }
            if !problems.is_empty() {
                errors.set(problems);
                return;
            }
            match device.0.save_report(original.as_ref(), &report) {
                Ok(()) => {
                    errors.set(Vec::new());
                    navigate("/", Default::default());
                }
                Err(SaveError::Invalid(found)) => errors.set(found),
                Err(SaveError::Storage(reason)) => errors.set(vec![FieldError {
                    field: "form".into(),
                    message: format!(
                        "This device could not save the report ({reason}). Free some space or sync, then try again; nothing already saved was lost."
                    ),
                }]),
            }
        }
    };

    let heading = move || match (
        editing.get().is_some(),
        base.with(|b| b.as_ref().is_some_and(|r| r.drill.is_some())),
        state.run.with(Option::is_some),
    ) {
        (true, true, _) => "Edit drill report",
        (true, false, _) => "Edit report",
        (false, _, true) => "File a drill report",
        (false, _, false) => "Report an incident",
    };
    let described = move |field: &'static str| {
        move || {
            errors
                .with(|e| e.iter().any(|e| e.field == field))
                .then(|| format!("{field}-error"))
        }
    };

    view! {
        <h1>{heading}</h1>
        <Show when=move || missing.get()>
            <p class="notice" role="alert">
                "That report is not on this device."
            </p>
        </Show>
        <super::my_actions::ReportOutcome report=base />
        <form class="report-form" on:submit=submit novalidate>
            <Show when=move || !errors.with(Vec::is_empty)>
                <div class="error-summary" role="alert" data-testid="form-errors">
                    <p>"Please correct these before saving:"</p>
                    <ul>
                        {move || {
                            errors
                                .get()
                                .into_iter()
                                .map(|e| view! { <li>{e.message}</li> })
                                .collect_view()
                        }}
                    </ul>
                </div>
            </Show>

            <div class="field">
                <label for="title">"Title"</label>
                <input
                    id="title"
                    name="title"
                    type="text"
                    maxlength="200"
                    required
                    autocomplete="off"
                    aria-describedby=described("title")
                    bind:value=title
                />
                {field_errors(errors, "title")}
            </div>

            <div class="field-row">
                <div class="field">
                    <label for="category">"Category"</label>
                    <select id="category" name="category" bind:value=category>
                        {move || {
                            // The list this device last synced (the defaults before the first
                            // sync); a retired category stays offered on a report that has it.
                            let mut list = state.categories.get();
                            if list.is_empty() {
                                list = CategoryDef::defaults();
                            }
                            let current = Category::new(&category.get_untracked());
                            if !list.iter().any(|c| c.key == current) {
                                list.push(CategoryDef { label: current.label(), key: current, active: true });
                            }
                            list.into_iter()
                                .filter(|c| c.active || c.key.0 == category.get_untracked())
                                .map(|c| {
                                    let selected = c.key.0 == category.get_untracked();
                                    view! { <option value=c.key.0.clone() selected=selected>{c.label}</option> }
                                })
                                .collect_view()
                        }}
                    </select>
                </div>
                <div class="field">
                    <label for="severity">"Severity"</label>
                    <select id="severity" name="severity" bind:value=severity>
                        {options(Severity::ALL, Severity::as_str, Severity::label)}
                    </select>
                </div>
            </div>

            <super::plan_checklist::PlanChecklist category ticks base reporter />

            <div class="field-row">
                <div class="field">
                    <label for="impact">"Impact"</label>
                    <select id="impact" name="impact" bind:value=impact>
                        {options(Impact::ALL, Impact::as_str, Impact::label)}
                    </select>
                </div>
                <div class="field">
                    <label for="urgency">"Urgency"</label>
                    <select id="urgency" name="urgency" bind:value=urgency>
                        {options(Urgency::ALL, Urgency::as_str, Urgency::label)}
                    </select>
                </div>
            </div>
            <Show when=move || category.get() == "injury_illness">
                <div class="field">
                    <label for="outcome">"Did anyone die, lose an eye, lose a limb or stay in hospital?"</label>
                    <select
                        id="outcome"
                        name="outcome"
                        bind:value=outcome
                        aria-describedby=described("outcome")
                    >
                        {options(Outcome::ALL, Outcome::as_str, Outcome::label)}
                    </select>
                    {field_errors(errors, "outcome")}
                </div>
            </Show>
            <p class="priority-preview" role="status" aria-live="polite" data-testid="priority-preview">
                {move || {
                    let impact = Impact::from_key(&impact.get()).unwrap_or_default();
                    let urgency = Urgency::from_key(&urgency.get()).unwrap_or_default();
                    let outcome = if category.get() == "injury_illness" {
                        Outcome::from_key(&outcome.get()).unwrap_or_default()
                    } else {
                        Outcome::None
                    };
                    let priority = crate::domain::priority::priority(impact, urgency, outcome);
                    let why = match outcome.reporting_window_ms() {
                        Some(ms) => format!(
                            " — must be reported to the authority within {} hours of the incident",
                            ms / 3_600_000
                        ),
                        None => String::new(),
                    };
                    format!("Priority {}{why}", priority.as_str())
                }}
            </p>

            <div class="field">
                <label for="occurred_at">"When did it happen?"</label>
                <input
                    id="occurred_at"
                    name="occurred_at"
                    type="datetime-local"
                    required
                    aria-describedby=described("occurred_at")
                    bind:value=occurred
                />
                {field_errors(errors, "occurred_at")}
            </div>

            <fieldset class="field location">
                <legend>"Where?"</legend>
                <button type="button" class="button" on:click=locate data-testid="use-location">
                    "Use my location"
                </button>
                <p class="hint" role="status" aria-live="polite">
                    {move || locate_message.get()}
                </p>
                {move || {
                    gps.get()
                        .map(|fix| {
                            view! {
                                <p class="gps" data-testid="gps-fix">
                                    {format!(
                                        "GPS {:.5}, {:.5} (±{:.0} m) ",
                                        fix.latitude,
                                        fix.longitude,
                                        fix.accuracy_m,
                                    )}
                                    <button
                                        type="button"
                                        class="button link"
                                        on:click=move |_| gps.set(None)
                                    >
                                        "Remove position"
                                    </button>
                                </p>
                            }
                        })
                }}
                <label for="place">"Place (as people call it)"</label>
                <input
                    id="place"
                    name="place"
                    type="text"
                    maxlength="200"
                    autocomplete="off"
                    aria-describedby=described("location")
                    bind:value=place
                />
                {field_errors(errors, "location")}
            </fieldset>

            <div class="field">
                <label for="what_happened">"What happened?"</label>
                <textarea id="what_happened" name="what_happened" rows="5" bind:value=what></textarea>
                {field_errors(errors, "what_happened")}
            </div>

            <Show when=move || category.get() == crate::domain::INJURY_CATEGORY>
                <InjuryFields injury errors />
            </Show>

            <WitnessList witnesses errors />

            <PhotoList photos report=Signal::derive(move || base.with(|b| b.as_ref().map(|r| r.id))) errors />

            <div class="field">
                <label for="people_involved">"People involved (one per line)"</label>
                <textarea
                    id="people_involved"
                    name="people_involved"
                    rows="3"
                    aria-describedby=described("people_involved")
                    bind:value=people
                ></textarea>
                {field_errors(errors, "people_involved")}
            </div>

            <div class="field">
                <label for="immediate_actions">"Immediate actions taken"</label>
                <textarea
                    id="immediate_actions"
                    name="immediate_actions"
                    rows="3"
                    bind:value=actions
                ></textarea>
                {field_errors(errors, "immediate_actions")}
            </div>

            <div class="field">
                <label for="reporter">"Your name"</label>
                <input
                    id="reporter"
                    name="reporter"
                    type="text"
                    maxlength="200"
                    autocomplete="name"
                    aria-describedby=described("reporter")
                    bind:value=reporter
                />
                {field_errors(errors, "reporter")}
            </div>
            {field_errors(errors, "form")}

            <button type="submit" class="button primary" data-testid="save-report">
                "Save report"
            </button>
            <p class="hint">"Reports are saved on this device first and sync when there is a connection."</p>
        </form>
    }
}

/// One witness as the form edits it.
#[derive(Clone, Copy)]
struct WitnessFields {
    key: usize,
    name: RwSignal<String>,
    contact: RwSignal<String>,
    statement: RwSignal<String>,
}

impl WitnessFields {
    fn of(witness: &Witness) -> Self {
        Self::new(witness.clone())
    }

    fn new(witness: Witness) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Self {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            name: RwSignal::new(witness.name),
            contact: RwSignal::new(witness.contact),
            statement: RwSignal::new(witness.statement),
        }
    }

    /// The witness, trimmed; none if every field is blank (an unused row).
    fn read(&self) -> Option<Witness> {
        let witness = Witness {
            name: self.name.get_untracked().trim().to_owned(),
            contact: self.contact.get_untracked().trim().to_owned(),
            statement: self.statement.get_untracked().trim().to_owned(),
        };
        (witness != Witness::default()).then_some(witness)
    }
}

/// The OSHA Form 301 questions, marked private.
#[component]
fn InjuryFields(injury: RwSignal<Injury>, errors: RwSignal<Vec<FieldError>>) -> AnyView {
    let texts = Injury::default().texts().map(|(key, label, _)| {
        let id = format!("injury-{key}");
        let field = format!("injury.{key}");
        let error_id = format!("{field}-error");
        let value = Signal::derive(move || {
            injury.with(|i| {
                i.texts()
                    .iter()
                    .find(|(k, ..)| *k == key)
                    .map(|(.., t)| (*t).to_owned())
                    .unwrap_or_default()
            })
        });
        let set = move |ev: leptos::ev::Event| {
            let text = event_target_value(&ev);
            injury.update(|i| {
                if let Some(part) = i.text_mut(key) {
                    *part = text;
                }
            });
        };
        let long = matches!(key, "activity" | "how" | "injury");
        let (kind, hint) = match key {
            "work_began" => ("time", None),
            "died_on" => ("date", Some("Leave empty unless the employee died.")),
            _ => ("text", None),
        };
        let described = {
            let field = field.clone();
            move || errors.with(|e| e.iter().any(|e| e.field == field)).then(|| error_id.clone())
        };
        let input = if long {
            view! { <textarea id=id.clone() rows="3" prop:value=value on:input=set aria-describedby=described></textarea> }
                .into_any()
        } else {
            view! { <input id=id.clone() type=kind autocomplete="off" prop:value=value on:input=set aria-describedby=described /> }
                .into_any()
        };
        view! {
            <div class="field">
                <label for=id>{label}</label>
                {input}
                {hint.map(|h| view! { <p class="hint">{h}</p> })}
                {field_errors(errors, field)}
            </div>
        }
    });
    view! {
        <fieldset class="field private" data-testid="injury-fields">
            <legend>"Injury details (OSHA Form 301) " <span class="badge">"Private"</span></legend>
            <p class="hint">
                "Seen only by you, your team's supervisors and administrators; never exported. Fill in what you know now."
            </p>
            {texts.into_iter().collect_view()}
            <div class="field">
                <label for="injury-treatment">"Treatment"</label>
                <select
                    id="injury-treatment"
                    on:change=move |ev| {
                        let chosen = Treatment::from_key(&event_target_value(&ev)).unwrap_or_default();
                        injury.update(|i| i.treatment = chosen);
                    }
                    aria-describedby=move || {
                        errors
                            .with(|e| e.iter().any(|e| e.field == "injury.treatment"))
                            .then_some("injury.treatment-error")
                    }
                >
                    {Treatment::ALL
                        .iter()
                        .map(|t| {
                            let t = *t;
                            view! {
                                <option value=t.as_str() selected=move || injury.with(|i| i.treatment == t)>
                                    {t.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                {field_errors(errors, "injury.treatment")}
            </div>
            {field_errors(errors, "injury")}
        </fieldset>
    }
    .into_any()
}

/// Witnesses: a row each, added and removed with buttons.
#[component]
fn WitnessList(witnesses: RwSignal<Vec<WitnessFields>>, errors: RwSignal<Vec<FieldError>>) -> AnyView {
    view! {
        <fieldset class="field witnesses" data-testid="witnesses">
            <legend>"Witnesses"</legend>
            <For each=move || witnesses.get() key=|w| w.key let:w>
                {
                    let n = w.key;
                    let (name_id, contact_id, statement_id) =
                        (format!("witness-{n}-name"), format!("witness-{n}-contact"), format!("witness-{n}-statement"));
                    view! {
                        <div class="witness">
                            <label for=name_id.clone()>"Witness's name"</label>
                            <input id=name_id type="text" maxlength="200" autocomplete="off" bind:value=w.name />
                            <label for=contact_id.clone()>"How to reach them"</label>
                            <input id=contact_id type="text" maxlength="200" autocomplete="off" bind:value=w.contact />
                            <label for=statement_id.clone()>"What they saw"</label>
                            <textarea id=statement_id rows="2" bind:value=w.statement></textarea>
                            <button
                                type="button"
                                class="button link"
                                on:click=move |_| witnesses.update(|list| list.retain(|x| x.key != n))
                            >
                                "Remove this witness"
                            </button>
                        </div>
                    }
                }
            </For>
            <button
                type="button"
                class="button"
                data-testid="add-witness"
                on:click=move |_| witnesses.update(|list| list.push(WitnessFields::new(Witness::default())))
            >
                "Add a witness"
            </button>
            {field_errors(errors, "witnesses")}
        </fieldset>
    }
    .into_any()
}

/// The id of the photo input (the device reads the chosen files from it).
const PHOTO_INPUT: &str = "photo-input";

/// Photos: taken with the camera or chosen, made smaller and kept on the device until
/// uploaded, each with where it stands. A photo added is never removed from the report.
#[component]
fn PhotoList(
    photos: RwSignal<Vec<PhotoRef>>,
    report: Signal<Option<ReportId>>,
    errors: RwSignal<Vec<FieldError>>,
) -> AnyView {
    let device = use_device();
    let message: RwSignal<Option<String>> = RwSignal::new(None);
    let take = move |_| {
        let Some(device) = &device else { return };
        message.set(Some("Preparing the photos…".to_owned()));
        device.0.take_photos(
            PHOTO_INPUT,
            Box::new(move |result| match result {
                Ok(taken) => {
                    let n = taken.len();
                    photos.update(|list| {
                        for p in taken {
                            if list.iter().all(|q| q.sha256 != p.sha256) {
                                list.push(p);
                            }
                        }
                    });
                    message.set(Some(if n == 1 {
                        "1 photo added. It is saved on this device with the report and uploads after it.".to_owned()
                    } else {
                        format!("{n} photos added. They are saved on this device with the report and upload after it.")
                    }));
                }
                Err(reason) => message.set(Some(reason)),
            }),
        );
    };
    view! {
        <fieldset class="field" data-testid="photos">
            <legend>"Photos"</legend>
            <ul class="photo-list">
                <For each=move || photos.get().into_iter().enumerate() key=|(_, p)| p.sha256.clone() let:((i, p))>
                    <PhotoItem photo=p n=i + 1 report />
                </For>
            </ul>
            <label for=PHOTO_INPUT>"Take or add photos (they are made smaller on this device)"</label>
            <input
                id=PHOTO_INPUT
                type="file"
                accept="image/*"
                capture="environment"
                multiple
                on:change=take
            />
            <p class="hint" role="status" data-testid="photo-message">{move || message.get()}</p>
            {field_errors(errors, "photos")}
        </fieldset>
    }
    .into_any()
}

/// One photo on the form: the device's copy (or the server's), and where it stands.
#[component]
fn PhotoItem(photo: PhotoRef, n: usize, report: Signal<Option<ReportId>>) -> AnyView {
    let state = use_field_state();
    let src: RwSignal<Option<String>> = RwSignal::new(None);
    if let Some(device) = use_device() {
        let sha = photo.sha256.clone();
        device.0.photo_preview(
            &photo.sha256,
            Box::new(move |url| {
                src.set(url.or_else(|| {
                    report
                        .get_untracked()
                        .map(|id| format!("/api/reports/{id}/photos/{sha}"))
                }));
            }),
        );
    }
    let (sha, size) = (photo.sha256.clone(), photo.size);
    let status = move || {
        state.photos.with(|p| {
            p.get(&sha)
                .map_or_else(|| "On the server".to_owned(), |s| s.label(size))
        })
    };
    let alt = format!("Photo {n}, {}×{} pixels", photo.width, photo.height);
    view! {
        <li data-testid="photo">
            {move || src.get().map(|src| view! { <img src=src alt=alt.clone() /> })}
            <span class="photo-state" data-testid="photo-state">{status}</span>
        </li>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::people_from_lines;

    #[test]
    fn people_are_one_per_line_without_blanks_or_repeats() {
        assert_eq!(people_from_lines(" Ana \n\nBo\nAna\n"), ["Ana", "Bo"]);
    }
}
