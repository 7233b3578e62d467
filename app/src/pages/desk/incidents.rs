//! The supervisor's desk: merged incidents, server-rendered and hydrated.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::response::{Actions, Add, Investigation, ReviewForm, Save, add_action_action, save_action};
use crate::desk::{IncidentDetail, add_update, choose_value, get_incident, list_incidents};
use crate::document::FieldConflict;
use crate::domain::{Audience, Impact, Report, Severity, Status, Timestamp, Urgency};
use crate::pages::options;

/// Every merged incident, newest first.
#[component]
pub fn IncidentListPage() -> impl IntoView {
    let incidents = Resource::new(|| (), |()| list_incidents());
    view! {
        <h1>"Incidents"</h1>
        <p>
            <a class="button" href="/export/incidents.csv" download="incidents.csv" rel="external">
                "Download as CSV"
            </a>
        </p>
        <Suspense fallback=|| view! { <p>"Loading incidents…"</p> }>
            {move || Suspend::new(async move {
                match incidents.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load incidents: {e}")}</p> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! { <p class="empty">"No incidents have been reported yet."</p> }.into_any(),
                    Ok(rows) => view! {
                        <table class="incidents" data-testid="incident-list">
                            <thead>
                                <tr>
                                    <th scope="col">"Incident"</th>
                                    <th scope="col">"Priority"</th>
                                    <th scope="col">"Severity"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Category"</th>
                                    <th scope="col">"Reporter"</th>
                                    <th scope="col">"Occurred"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {rows.into_iter().map(|row| view! {
                                    <tr data-report-id=row.id.to_string()>
                                        <td data-label="Incident">
                                            <a href=format!("/incidents/{}", row.id)>{row.title}</a>
                                            <span class="sub">{row.location}</span>
                                        </td>
                                        <td data-label="Priority">
                                            <span class=format!("prio prio-{}", row.priority.rank())>{row.priority.as_str()}</span>
                                            {row.report_due_at.map(|due| view! {
                                                <span class="sub clock">{format!("Report to the authority by {}", due.display_utc())}</span>
                                            })}
                                        </td>
                                        <td data-label="Severity">
                                            <span class=format!("sev sev-{}", row.severity.as_str())>{row.severity.label()}</span>
                                        </td>
                                        <td data-label="Status">{row.status.label()}</td>
                                        <td data-label="Category">{row.category_label.clone()}</td>
                                        <td data-label="Reporter">{row.reporter}</td>
                                        <td data-label="Occurred">{row.occurred_at.display_utc()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// One incident with every field, its conflicts, and the supervisor's edit form.
#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let save = save_action();
    let saves = Saves {
        investigation: save_action(),
        action: save_action(),
        review: save_action(),
    };
    let post = Action::new(|(id, text, audience): &(String, String, String)| {
        let (id, text, audience) = (id.clone(), text.clone(), audience.clone());
        async move { add_update(id, text, audience).await }
    });
    let choose = Action::new(|(id, field, value): &(String, String, String)| {
        let (id, field, value) = (id.clone(), field.clone(), value.clone());
        async move { choose_value(id, field, value).await }
    });
    provide_context(Choose(choose));
    let add = add_action_action();
    let detail = Resource::new(
        move || {
            (
                id(),
                save.version().get(),
                post.version().get(),
                choose.version().get(),
                add.version().get(),
                saves.investigation.version().get(),
                saves.action.version().get(),
                saves.review.version().get(),
            )
        },
        |(id, ..)| get_incident(id),
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading incident…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the incident: {e}")}</p> }.into_any(),
                    Ok(None) => view! { <h1>"No such incident"</h1><p><a href="/incidents">"All incidents"</a></p> }.into_any(),
                    Ok(Some(detail)) => view! { <IncidentView detail save post add saves /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The response's forms' saves, one each.
#[derive(Clone, Copy)]
struct Saves {
    investigation: Save,
    action: Save,
    review: Save,
}

fn conflict_for<'a>(conflicts: &'a [FieldConflict], field: &str) -> Option<&'a FieldConflict> {
    conflicts.iter().find(|c| c.field == field)
}

/// Settling a field's concurrent values: (report id, field, the value kept).
#[derive(Clone, Copy)]
struct Choose(Action<(String, String, String), Result<(), crate::error::AppError>>);

/// One row of the field list, flagging concurrent values: each with who wrote it and a
/// button that keeps it (for those who may change the report; others are told why not).
fn field_row(label: &'static str, value: String, conflict: Option<&FieldConflict>) -> AnyView {
    let conflict = conflict.cloned();
    let flagged = conflict.is_some();
    let choose = use_context::<Choose>();
    let id = use_params_map().with_untracked(|p| p.get("id").unwrap_or_default());
    view! {
        <div class="field-view" class:has-conflict=flagged>
            <dt>{label}</dt>
            <dd>
                <span class="value">{value}</span>
                {conflict.map(|c| {
                    let field = c.field.clone();
                    let outcome = move || {
                        choose.and_then(|Choose(a)| a.value().get()).and_then(|r| r.err()).map(|e| {
                            view! { <p class="notice" role="alert">{format!("Not kept: {e}")}</p> }
                        })
                    };
                    view! {
                        <div class="conflict" role="note" data-testid=format!("conflict-{}", c.field)>
                            <strong>{format!("{} concurrent values:", c.values.len())}</strong>
                            <ul>
                                {c.values.into_iter().enumerate().map(|(i, v)| {
                                    let by = c.by.get(i).cloned().unwrap_or_default();
                                    let (id, field, kept) = (id.clone(), field.clone(), v.clone());
                                    view! {
                                        <li>
                                            <span>{v.clone()}</span>
                                            {(!by.is_empty()).then(|| view! { <span class="sub">{format!(" — {by}")}</span> })}
                                            <button
                                                type="button"
                                                class="button"
                                                aria-label=format!("Keep “{v}” for {label}")
                                                on:click=move |_| {
                                                    if let Some(Choose(a)) = choose {
                                                        a.dispatch((id.clone(), field.clone(), kept.clone()));
                                                    }
                                                }
                                            >
                                                "Keep this"
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                            {outcome}
                        </div>
                    }
                })}
            </dd>
        </div>
    }
    .into_any()
}

#[component]
fn IncidentView(
    detail: IncidentDetail,
    save: Action<(Report, Report), Result<(), crate::error::AppError>>,
    post: Action<(String, String, String), Result<(), crate::error::AppError>>,
    add: Add,
    saves: Saves,
) -> impl IntoView {
    let assignee = detail.name_of(&detail.report.response.assignee);
    let IncidentDetail {
        report,
        conflicts,
        change_count,
        history,
        read_at,
        people: team,
        private_withheld,
        category_label,
        stored_photos,
    } = detail;
    let c = |field: &str| conflict_for(&conflicts, field);
    let gps = report.location.gps.map_or_else(
        || "—".to_owned(),
        |f| format!("{:.5}, {:.5} (±{:.0} m)", f.latitude, f.longitude, f.accuracy_m),
    );
    let people = if report.people_involved.is_empty() {
        "—".to_owned()
    } else {
        report.people_involved.join(", ")
    };
    let rows = view! {
        <dl class="fields" data-testid="incident-fields">
            {field_row("Title", report.title.clone(), c("title"))}
            {field_row("Category", category_label, c("category"))}
            {field_row("Priority", report.priority().as_str().to_owned(), None)}
            {field_row("Severity", report.severity.label().to_owned(), c("severity"))}
            {field_row("Impact", report.impact.label().to_owned(), c("impact"))}
            {field_row("Urgency", report.urgency.label().to_owned(), c("urgency"))}
            {(report.category.0 == "injury_illness").then(|| field_row("Gravest outcome", report.outcome.label().to_owned(), c("outcome")))}
            {field_row("Status", report.status.label().to_owned(), c("status"))}
            {field_row("Assigned to", assignee, c("response.assignee"))}
            {field_row(
                "Response due",
                report.response.due_at.map_or_else(|| "—".to_owned(), |d| d.date()),
                c("response.due_at"),
            )}
            {field_row("Occurred", report.occurred_at.display_utc(), c("occurred_at"))}
            {field_row("Reported", report.reported_at.display_utc(), c("reported_at"))}
            {field_row("Place", report.location.place.clone(), c("location.place"))}
            {field_row("GPS", gps, c("location.gps"))}
            {field_row("What happened", report.what_happened.clone(), c("what_happened"))}
            {field_row("People involved", people, None)}
            {field_row("Immediate actions", report.immediate_actions.clone(), c("immediate_actions"))}
            {field_row("Reporter", report.reporter.clone(), c("reporter"))}
            {field_row("Report id", report.id.to_string(), None)}
        </dl>
    };
    let summary = (!conflicts.is_empty()).then(|| view! {
        <p class="notice" data-testid="conflict-summary">
            {format!(
                "{} field(s) were changed by different people at the same time; every value is shown below.",
                conflicts.len()
            )}
        </p>
    });
    let clock = report.clock().map(|clock| {
        view! {
            <p class="notice clock" role="alert" data-testid="regulatory-clock">
                {format!(
                    "{}: report this to the authority by {} ({} when this page was loaded).",
                    clock.outcome.label(),
                    clock.due.display_utc(),
                    clock.describe(read_at),
                )}
            </p>
        }
    });
    let overdue = report.response.overdue(read_at).count();
    let overdue = (overdue > 0).then(|| {
        view! {
            <p class="notice" role="alert" data-testid="overdue-summary">
                {format!("{overdue} action(s) are past their due date.")}
            </p>
        }
    });
    let response_conflicts: Vec<FieldConflict> = conflicts
        .iter()
        .filter(|c| {
            c.field.starts_with("response.")
                && !c.field.ends_with(".assignee")
                && !c.field.ends_with(".due_at")
        })
        .cloned()
        .collect();
    let response_conflicts = (!response_conflicts.is_empty()).then(|| {
        view! {
            <dl class="fields" data-testid="response-conflicts">
                {response_conflicts.into_iter().map(|c| {
                    let value = c.values.first().cloned().unwrap_or_default();
                    field_row("Response field", value, Some(&c))
                }).collect_view()}
            </dl>
        }
    });
    view! {
        <p><a href="/incidents">"← All incidents"</a></p>
        <h1>{report.title.clone()}</h1>
        {report.drill.map(|drill| view! {
            <p class="notice" data-testid="drill-report">
                <span class="badge badge-drill">"Drill"</span>
                " Filed during a drill: kept out of the incident list, statistics, exports and alerts. "
                <a href=format!("/drills/{drill}")>"The drill's run"</a>
            </p>
        })}
        {clock}
        {summary}
        {overdue}
        {rows}
        <InjuryDetails report=report.clone() conflicts=conflicts.clone() withheld=private_withheld />
        {(!report.witnesses.is_empty()).then(|| view! {
            <section aria-labelledby="witnesses-heading">
                <h2 id="witnesses-heading">"Witnesses"</h2>
                <ul class="timeline" data-testid="witnesses">
                    {report.witnesses.iter().map(|w| view! {
                        <li>
                            <strong>{w.name.clone()}</strong>
                            {(!w.contact.is_empty()).then(|| view! { <span class="sub">{format!(" · {}", w.contact)}</span> })}
                            {(!w.statement.is_empty()).then(|| view! { <p>{w.statement.clone()}</p> })}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        <Photos id=report.id.to_string() photos=report.photos.clone() stored=stored_photos />
        {response_conflicts}
        {(!report.plan_ticks.is_empty()).then(|| view! {
            <section aria-labelledby="plan-heading">
                <h2 id="plan-heading">"Response plan steps done while reporting"</h2>
                <ol class="timeline" data-testid="plan-ticks">
                    {report.plan_ticks.iter().map(|t| view! {
                        <li>
                            <span class="sub">{format!("{} · {}", t.at.display_utc(), t.by)}</span>
                            <p>{format!("{}: {}", t.role, t.text)}</p>
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        })}
        <Timeline entries=report.timeline.clone() history=history.clone() id=report.id.to_string() post />
        <SupervisorEdit base=report.clone() people=team.clone() save />
        <Investigation base=report.clone() save=saves.investigation />
        <Actions base=report.clone() people=team now=read_at save=saves.action add />
        <ReviewForm base=report save=saves.review />
        <History lines=history change_count />
    }
}

/// The OSHA Form 301 details of an injury report, marked private; or, for a colleague who
/// may read the report but not those, a note that they were left out.
#[component]
fn InjuryDetails(report: Report, conflicts: Vec<FieldConflict>, withheld: bool) -> AnyView {
    if withheld {
        return view! {
            <p class="notice" data-testid="injury-withheld">
                "The injury details and photos are private: only the reporter, the team's supervisors and administrators see them."
            </p>
        }
        .into_any();
    }
    if !report.category.is_injury() {
        return ().into_any();
    }
    let injury = report.injury;
    let c = |key: &str| conflict_for(&conflicts, &format!("injury.{key}"));
    let shown = |text: &str| {
        if text.is_empty() {
            "—".to_owned()
        } else {
            text.to_owned()
        }
    };
    view! {
        <section aria-labelledby="injury-heading" class="private" data-testid="injury-details">
            <h2 id="injury-heading">"Injury details (OSHA Form 301) " <span class="badge">"Private"</span></h2>
            <p class="hint">"Privacy-sensitive: not exported and not sent to other systems."</p>
            <dl class="fields">
                {injury.texts().into_iter().map(|(key, label, text)| field_row(label, shown(text), c(key))).collect_view()}
                {field_row("Treatment", injury.treatment.label().to_owned(), c("treatment"))}
            </dl>
        </section>
    }
    .into_any()
}

/// The report's photos: each uploaded one opens full size; the others are still on the
/// reporter's device.
#[component]
fn Photos(id: String, photos: Vec<crate::domain::PhotoRef>, stored: Vec<String>) -> AnyView {
    if photos.is_empty() {
        return ().into_any();
    }
    let total = photos.len();
    view! {
        <section aria-labelledby="photos-heading">
            <h2 id="photos-heading">"Photos"</h2>
            <ul class="photos" data-testid="photos">
                {photos.into_iter().enumerate().map(|(i, p)| {
                    let src = format!("/api/reports/{id}/photos/{}", p.sha256);
                    let alt = format!("Photo {} of {total}, added {}", i + 1, p.at.display_utc());
                    if stored.contains(&p.sha256) {
                        let href = src.clone();
                        view! {
                            <li>
                                <a href=href>
                                    <img src=src alt=alt width=p.width height=p.height loading="lazy" />
                                </a>
                            </li>
                        }
                        .into_any()
                    } else {
                        view! {
                            <li class="waiting" data-testid="photo-waiting">
                                {format!("{alt}: not uploaded yet; it is on the reporter's device")}
                            </li>
                        }
                        .into_any()
                    }
                }).collect_view()}
            </ul>
        </section>
    }
    .into_any()
}

/// Who changed what and when, from the document's own history, newest first.
#[component]
fn History(lines: Vec<crate::desk::HistoryLine>, change_count: usize) -> AnyView {
    let shown = lines.len();
    view! {
        <section aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <p class="hint">
                {if shown < change_count {
                    format!("The latest {shown} of {change_count} changes.")
                } else {
                    format!("{change_count} changes.")
                }}
            </p>
            <ol class="history" data-testid="history" reversed>
                {lines.into_iter().rev().map(|line| {
                    let fields = if line.fields.is_empty() {
                        "no visible field".to_owned()
                    } else {
                        line.fields.iter().map(|f| crate::document::fields::label(f)).collect::<Vec<_>>().join(", ")
                    };
                    // The device's clock, then when the server received it; a device
                    // clock ahead of the server's is flagged, as its time is not evidence.
                    let received = line.received_at.map(|r| format!(" · received {}", r.display_utc()));
                    let ahead = line.clock_ahead().then(|| view! {
                        <strong class="flag">" · device clock ahead of the server"</strong>
                    });
                    view! {
                        <li>
                            <span class="sub">
                                {format!("{} · {} · {}", line.at.display_utc(), line.who, line.device)}
                                {received}
                                {ahead}
                            </span>
                            <p>{fields}</p>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
    .into_any()
}

/// The incident's dated updates, oldest first, and a form to add one.
#[component]
fn Timeline(
    entries: Vec<crate::domain::TimelineEntry>,
    history: Vec<crate::desk::HistoryLine>,
    id: String,
    post: Action<(String, String, String), Result<(), crate::error::AppError>>,
) -> AnyView {
    let text = RwSignal::new(String::new());
    let audience = RwSignal::new(Audience::Team.as_str().to_owned());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        post.dispatch((id.clone(), text.get_untracked(), audience.get_untracked()));
        text.set(String::new());
    };
    let outcome = move || match post.value().get() {
        Some(Err(e)) => Some(view! { <p class="notice" role="alert">{format!("Not added: {e}")}</p> }),
        _ => None,
    };
    let entries = crate::desk::timeline_items(&entries, &history, crate::document::fields::label);
    let list = if entries.is_empty() {
        view! { <p class="empty">"No updates yet."</p> }.into_any()
    } else {
        view! {
            <ol class="timeline" data-testid="timeline">
                {entries.into_iter().map(|e| {
                    let shared = e.audience == Some(Audience::Reporter);
                    view! {
                        <li class:event=e.audience.is_none()>
                            <span class="sub">
                                {format!("{} · {}", e.at.display_utc(), e.who)}
                                {shared.then_some(" · also for the reporter")}
                            </span>
                            <p>{e.text}</p>
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">"Timeline"</h2>
            {list}
            <form on:submit=submit class="desk-edit">
                <div class="field">
                    <label for="update-text">"Update"</label>
                    <textarea id="update-text" rows="3" required bind:value=text></textarea>
                </div>
                <div class="field">
                    <label for="update-audience">"For"</label>
                    <select id="update-audience" bind:value=audience>
                        {options(Audience::ALL, Audience::as_str, Audience::label)}
                    </select>
                </div>
                <button type="submit" class="button" data-testid="add-update" disabled=move || post.pending().get()>
                    "Add update"
                </button>
                {outcome}
            </form>
        </section>
    }
    .into_any()
}

/// The supervisor's edit form: only fields that differ from what was loaded are written.
#[component]
fn SupervisorEdit(
    base: Report,
    people: Vec<crate::desk::Person>,
    save: Action<(Report, Report), Result<(), crate::error::AppError>>,
) -> AnyView {
    let assignee = RwSignal::new(base.response.assignee.clone());
    let due = RwSignal::new(base.response.due_at.map(|d| d.date()).unwrap_or_default());
    let title = RwSignal::new(base.title.clone());
    let severity = RwSignal::new(base.severity.as_str().to_owned());
    let impact = RwSignal::new(base.impact.as_str().to_owned());
    let urgency = RwSignal::new(base.urgency.as_str().to_owned());
    let status = RwSignal::new(base.status.as_str().to_owned());
    let what = RwSignal::new(base.what_happened.clone());
    let actions = RwSignal::new(base.immediate_actions.clone());
    let choices = base.status.next_choices();
    let base = StoredValue::new(base);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let base = base.get_value();
        let mut edited = base.clone();
        edited.title = title.get_untracked().trim().to_owned();
        edited.severity = Severity::from_key(&severity.get_untracked()).unwrap_or(base.severity);
        edited.impact = Impact::from_key(&impact.get_untracked()).unwrap_or(base.impact);
        edited.urgency = Urgency::from_key(&urgency.get_untracked()).unwrap_or(base.urgency);
        edited.status = Status::from_key(&status.get_untracked()).unwrap_or(base.status);
        edited.what_happened = what.get_untracked();
        edited.immediate_actions = actions.get_untracked();
        edited.response.assignee = assignee.get_untracked();
        edited.response.due_at = Timestamp::end_of_day(&due.get_untracked());
        save.dispatch((base, edited));
    };
    let outcome = move || match save.value().get() {
        Some(Ok(())) => Some(view! { <p class="ok" role="status">"Saved."</p> }.into_any()),
        Some(Err(e)) => {
            Some(view! { <p class="notice" role="alert">{format!("Not saved: {e}")}</p> }.into_any())
        }
        None => None,
    };
    view! {
        <section class="desk-edit" aria-labelledby="edit-heading">
            <h2 id="edit-heading">"Update this incident"</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="sup-title">"Title"</label>
                    <input id="sup-title" type="text" maxlength="200" bind:value=title />
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="sup-severity">"Severity"</label>
                        <select id="sup-severity" bind:value=severity>
                            {options(Severity::ALL, Severity::as_str, Severity::label)}
                        </select>
                    </div>
                    <div class="field">
                        <label for="sup-impact">"Impact"</label>
                        <select id="sup-impact" bind:value=impact>
                            {options(Impact::ALL, Impact::as_str, Impact::label)}
                        </select>
                    </div>
                    <div class="field">
                        <label for="sup-urgency">"Urgency"</label>
                        <select id="sup-urgency" bind:value=urgency>
                            {options(Urgency::ALL, Urgency::as_str, Urgency::label)}
                        </select>
                    </div>
                    <div class="field">
                        <label for="sup-status">"Status"</label>
                        <select id="sup-status" bind:value=status>
                            {options(choices, Status::as_str, Status::label)}
                        </select>
                    </div>
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="sup-assignee">"Assigned to"</label>
                        <select id="sup-assignee" bind:value=assignee>
                            <option value="">"Nobody yet"</option>
                            {people.into_iter().map(|p| view! { <option value=p.id>{p.name}</option> }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="sup-due">"Response due by"</label>
                        <input id="sup-due" type="date" bind:value=due />
                    </div>
                </div>
                <div class="field">
                    <label for="sup-what">"What happened"</label>
                    <textarea id="sup-what" rows="4" bind:value=what></textarea>
                </div>
                <div class="field">
                    <label for="sup-actions">"Immediate actions taken"</label>
                    <textarea id="sup-actions" rows="3" bind:value=actions></textarea>
                </div>
                <button type="submit" class="button primary" data-testid="desk-save" disabled=move || save.pending().get()>
                    "Save changes"
                </button>
                {outcome}
            </form>
        </section>
    }
    .into_any()
}
