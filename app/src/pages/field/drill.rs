//! On the phone: the team's drills (due soon, overdue), and a drill running, offline too:
//! its injects as they come due by the phone's clock, its objectives, filing drill
//! reports, ending it, and "This is a real emergency".

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::domain::Timestamp;
use crate::domain::drill::{DrillBrief, DueState};
use crate::drills::span;
use crate::field::{ActiveRun, use_device, use_field_state};

/// The drills page: the running drill if there is one, else the team's drills to come.
#[component]
pub fn DrillPage() -> impl IntoView {
    let state = use_field_state();
    // Redrawn when a drill starts or ends, not when the running one records something.
    let running = Memo::new(move |_| state.run.with(|run| run.as_ref().map(|r| r.brief.drill.id)));
    view! {
        <Show
            when=move || state.loaded.get()
            fallback=|| view! { <h1>"Drills"</h1><p class="empty">"Reading the drills kept on this device…"</p> }
        >
            {move || match running.get().and_then(|_| state.run.get_untracked()) {
                Some(run) => view! { <RunningDrill run /> }.into_any(),
                None => view! { <DrillList /> }.into_any(),
            }}
        </Show>
    }
}

/// How a drill stands, as a badge.
fn due_badge(state: DueState) -> impl IntoView {
    let class = match state {
        DueState::Overdue => "badge badge-error",
        DueState::DueSoon => "badge badge-pending",
        DueState::Scheduled | DueState::Completed => "badge",
    };
    view! { <span class=class data-testid="drill-due">{state.label()}</span> }
}

/// The team's drills to come, each with a button to start it.
#[component]
fn DrillList() -> impl IntoView {
    let state = use_field_state();
    let device = StoredValue::new(use_device());
    let problem = RwSignal::new(None::<String>);
    let start = move |id: uuid::Uuid| {
        device.with_value(|device| {
            if let Some(device) = device {
                problem.set(device.0.start_drill(id).err());
            }
        });
    };
    let now = move || device.with_value(|d| d.as_ref().map(|d| d.0.now()));
    view! {
        <h1>"Drills"</h1>
        <p class="lead">
            "Rehearse your team's response plans here, with or without a connection. "
            "While a drill runs, everything you report is marked as practice."
        </p>
        {move || problem.get().map(|p| view! { <p class="notice" role="alert">{p}</p> })}
        {move || {
            let drills = state.drills.get();
            if drills.is_empty() {
                return view! { <p class="empty" data-testid="no-drills">"No drills are scheduled for your team."</p> }.into_any();
            }
            let now = now();
            view! {
                <ul class="drills" data-testid="drills">
                    {drills.into_iter().map(|DrillBrief { drill, scenario }| {
                        let id = drill.id;
                        let due = now.map(|now| drill.due_state(now));
                        let open = now.is_some_and(|now| now.0 >= drill.opens_at.0);
                        view! {
                            <li class="drill" data-drill-id=id.to_string()>
                                <h2>{scenario.title.clone()}</h2>
                                <p class="sub">
                                    {due.map(due_badge)}
                                    {format!(
                                        " Due {} · {} objectives · {} injects",
                                        drill.due_at.date(),
                                        scenario.objectives.len(),
                                        scenario.injects.len(),
                                    )}
                                </p>
                                {if open {
                                    view! {
                                        <button type="button" class="button primary" data-testid="start-drill" on:click=move |_| start(id)>
                                            "Start drill"
                                        </button>
                                    }.into_any()
                                } else {
                                    view! { <p class="sub">{format!("Opens {}", drill.opens_at.date())}</p> }.into_any()
                                }}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }
            .into_any()
        }}
    }
}

/// A drill running on this phone.
#[component]
fn RunningDrill(run: ActiveRun) -> impl IntoView {
    let device = StoredValue::new(use_device());
    let navigate = use_navigate();
    let problem = RwSignal::new(None::<String>);
    let read_now = move || device.with_value(|d| d.as_ref().map_or(run.started_at, |d| d.0.now()));
    let now = RwSignal::new(read_now());
    // The clock: every second, and exactly when the next inject is due, so it shows at
    // its time (not up to a second late).
    if device.with_value(Option::is_some) {
        let next = StoredValue::new(None::<TimeoutHandle>);
        let schedule_next = {
            let run = run.clone();
            move |at: Timestamp| {
                next.update_value(|handle| {
                    if let Some(handle) = handle.take() {
                        handle.clear();
                    }
                    if let Some(due) = run.next_inject_at(at) {
                        let wait = u64::try_from(due.0 - at.0).unwrap_or(0);
                        *handle = set_timeout_with_handle(
                            move || now.set(read_now()),
                            std::time::Duration::from_millis(wait),
                        )
                        .ok();
                    }
                });
            }
        };
        Effect::new(move |_| schedule_next(now.get()));
        if let Ok(tick) =
            set_interval_with_handle(move || now.set(read_now()), std::time::Duration::from_secs(1))
        {
            on_cleanup(move || {
                tick.clear();
                next.update_value(|handle| {
                    if let Some(handle) = handle.take() {
                        handle.clear();
                    }
                });
            });
        }
    }
    // What the person acknowledged: the device's record of the run, not a copy of it.
    let state = use_field_state();
    let acknowledged = move |i: u16| {
        state
            .run
            .with(|run| run.as_ref().is_some_and(|r| r.acknowledged.contains(&i)))
    };
    let acknowledge = move |index: u16| {
        device.with_value(|device| {
            if let Some(device) = device
                && let Err(reason) = device.0.acknowledge_inject(index)
            {
                problem.set(Some(reason));
            }
        });
    };
    let end = move |for_real: bool| {
        device.with_value(|device| {
            if let Some(device) = device {
                problem.set(device.0.end_drill(for_real).err());
            }
        });
    };
    let real_emergency = move |_| {
        end(true);
        // At once: a real report, nothing of it practice.
        navigate("/report", Default::default());
    };
    let scenario = run.brief.scenario.clone();
    let injects = {
        let run = run.clone();
        move || {
            let at = now.get();
            let due: Vec<_> = run
                .due_injects(at)
                .map(|(i, inject)| (i, inject.clone()))
                .collect();
            let next = run
                .next_inject_at(at)
                .map(|next| format!("Next inject in {}", span(next.0 - at.0)));
            view! {
                {if due.is_empty() {
                    view! { <p class="empty">"Nothing yet: injects appear here at their times."</p> }.into_any()
                } else {
                    view! {
                        <ol class="injects" data-testid="injects">
                            {due.into_iter().rev().map(|(i, inject)| {
                                let done = move || acknowledged(i);
                                view! {
                                    <li class="inject" data-testid="inject" data-index=i.to_string()>
                                        <p class="sub">
                                            {inject.offset_label()}
                                            {(!inject.role.is_empty()).then(|| format!(" · for {}", inject.role))}
                                        </p>
                                        <p class="inject-text">{inject.text.clone()}</p>
                                        <button
                                            type="button"
                                            class="button"
                                            data-testid="acknowledge"
                                            disabled=done
                                            on:click=move |_| acknowledge(i)
                                        >
                                            {move || if done() { "Acknowledged" } else { "Got it" }}
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ol>
                    }.into_any()
                }}
                <p class="sub" data-testid="next-inject">{next.unwrap_or_else(|| "No more injects.".to_owned())}</p>
            }
        }
    };
    view! {
        <h1>{format!("Drill: {}", scenario.title)}</h1>
        <p class="drill-clock" data-testid="drill-clock" role="timer">
            {move || format!("Running for {}", span(now.get().0 - run.started_at.0))}
        </p>
        {move || problem.get().map(|p| view! { <p class="notice" role="alert">{p}</p> })}
        <button type="button" class="button danger" data-testid="real-emergency" on:click=real_emergency>
            "This is a real emergency"
        </button>
        <section aria-labelledby="injects-heading">
            <h2 id="injects-heading">"What is happening"</h2>
            <div aria-live="assertive">{injects}</div>
        </section>
        <p>
            <a class="button primary" href="/report" data-testid="file-drill-report">"File a drill report"</a>
        </p>
        <section aria-labelledby="objectives-heading">
            <h2 id="objectives-heading">"Objectives"</h2>
            <ul>{scenario.objectives.iter().map(|o| view! { <li>{o.clone()}</li> }).collect_view()}</ul>
        </section>
        <button type="button" class="button" data-testid="end-drill" on:click=move |_| end(false)>
            "End drill"
        </button>
    }
}
