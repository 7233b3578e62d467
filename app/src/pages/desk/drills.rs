//! The drill desk: the board (drills due soon and overdue, scheduling, scenarios) and a
//! run's page (its measured timeline, the team's runs over time, the after-action review
//! and the improvement plan).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::desk::NewAction;
use crate::domain::Timestamp;
use crate::domain::drill::{Cadence, DueState, Rating, RunMoment, Scenario};

/// An improvement action (the domain's), not a Leptos action.
type ImprovementAction = crate::domain::Action;
use crate::drills::{
    DrillBoard, RunDetail, add_drill_action, drill_run, get_drill_board, save_drill_review, save_scenario,
    schedule_drill, span,
};
use crate::error::AppError;
use crate::pages::options;

use super::response::{ActionsSection, outcome};

/// Saving a scenario: (id, team, title, category, objectives, injects).
type ScenarioSave =
    leptos::prelude::Action<(String, String, String, String, String, String), Result<(), AppError>>;
/// Scheduling a drill: (scenario, opens, due, cadence).
type Schedule = leptos::prelude::Action<(String, String, String, String), Result<(), AppError>>;
/// Saving a review: (drill, ratings, strengths, improvements).
type SaveReview = leptos::prelude::Action<(String, Vec<String>, String, String), Result<(), AppError>>;

fn state_badge(state: DueState) -> impl IntoView {
    let class = match state {
        DueState::Overdue => "badge badge-error",
        DueState::DueSoon => "badge badge-pending",
        DueState::Completed => "badge badge-ok",
        DueState::Scheduled => "badge",
    };
    view! { <span class=class data-testid="drill-state">{state.label()}</span> }
}

/// The drill board.
#[component]
pub fn DrillBoardPage() -> impl IntoView {
    let save: ScenarioSave = leptos::prelude::Action::new(
        |(id, team, title, category, objectives, injects): &(
            String,
            String,
            String,
            String,
            String,
            String,
        )| {
            let args = (
                id.clone(),
                team.clone(),
                title.clone(),
                category.clone(),
                objectives.clone(),
                injects.clone(),
            );
            async move { save_scenario(args.0, args.1, args.2, args.3, args.4, args.5).await }
        },
    );
    let schedule = leptos::prelude::Action::new(
        |(scenario, opens, due, cadence): &(String, String, String, String)| {
            let args = (scenario.clone(), opens.clone(), due.clone(), cadence.clone());
            async move { schedule_drill(args.0, args.1, args.2, args.3).await }
        },
    );
    let board = Resource::new(
        move || (save.version().get(), schedule.version().get()),
        |_| get_drill_board(),
    );
    view! {
        <h1>"Drills"</h1>
        <p class="hint">
            "Scenarios reach every phone of their team with sync, so drills start with no signal. "
            "Reports filed during a drill are kept out of the incident list, statistics, exports and alerts."
        </p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match board.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the drills: {e}")}</p> }.into_any(),
                    Ok(board) => view! { <Board board save schedule /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Board(board: DrillBoard, save: ScenarioSave, schedule: Schedule) -> impl IntoView {
    let DrillBoard {
        teams,
        categories,
        scenarios,
        drills,
    } = board;
    let list = if drills.is_empty() {
        view! { <p class="empty">"No drills scheduled yet."</p> }.into_any()
    } else {
        view! {
            <ul class="drills" data-testid="drill-board">
                {drills.into_iter().map(|line| {
                    let when = line.drill.completed_at.map_or_else(
                        || format!("due {}", line.drill.due_at.date()),
                        |done| format!("done {}", done.date()),
                    );
                    view! {
                        <li class="drill" data-drill-id=line.drill.id.to_string()>
                            <a href=format!("/drills/{}", line.drill.id)>{line.title}</a>
                            " "
                            {state_badge(line.state)}
                            <span class="sub">{format!(" {} · {when} · {}", line.team, line.drill.cadence.label())}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    let scenario = RwSignal::new(scenarios.first().map(|s| s.id.to_string()).unwrap_or_default());
    let opens = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let cadence = RwSignal::new(Cadence::Quarterly.as_str().to_owned());
    let submit_schedule = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        schedule.dispatch((
            scenario.get_untracked(),
            opens.get_untracked(),
            due.get_untracked(),
            cadence.get_untracked(),
        ));
    };
    let scenario_options = scenarios
        .iter()
        .map(|s| view! { <option value=s.id.to_string()>{s.title.clone()}</option> })
        .collect_view();
    let editors = scenarios
        .into_iter()
        .map(|s| {
            let team = teams
                .iter()
                .find(|t| t.id == s.team)
                .map(|t| t.name.clone())
                .unwrap_or_default();
            view! { <ScenarioForm scenario=Some(s) team teams=teams.clone() categories=categories.clone() save /> }
        })
        .collect_view();
    view! {
        <section aria-labelledby="board-heading">
            <h2 id="board-heading">"Due, overdue and done"</h2>
            {list}
        </section>
        <section aria-labelledby="schedule-heading">
            <h2 id="schedule-heading">"Schedule a drill"</h2>
            <form class="desk-edit" on:submit=submit_schedule data-testid="schedule-form">
                <div class="field">
                    <label for="drill-scenario">"Scenario"</label>
                    <select id="drill-scenario" bind:value=scenario>{scenario_options}</select>
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="drill-opens">"Window opens"</label>
                        <input id="drill-opens" type="date" required bind:value=opens />
                    </div>
                    <div class="field">
                        <label for="drill-due">"Due by"</label>
                        <input id="drill-due" type="date" required bind:value=due />
                    </div>
                    <div class="field">
                        <label for="drill-cadence">"Comes round"</label>
                        <select id="drill-cadence" bind:value=cadence>
                            {options(Cadence::ALL.to_vec(), Cadence::as_str, Cadence::label)}
                        </select>
                    </div>
                </div>
                <button type="submit" class="button" data-testid="schedule-drill">"Schedule"</button>
                {move || outcome(schedule.value().get(), "Drill scheduled.")}
            </form>
        </section>
        <section aria-labelledby="scenarios-heading">
            <h2 id="scenarios-heading">"Scenarios"</h2>
            <p class="hint">
                "Objectives one per line. Injects one per line as “minutes:seconds role: what happens” "
                "(the role is optional), e.g. “2:00 First aider: a second worker reports dizziness”."
            </p>
            {editors}
            <ScenarioForm scenario=None team=String::new() teams categories save />
            {move || outcome(save.value().get(), "Scenario saved; phones get it with their next sync.")}
        </section>
    }
}

/// A scenario's editor (none: a new scenario, for a team chosen here).
#[component]
fn ScenarioForm(
    scenario: Option<Scenario>,
    team: String,
    teams: Vec<crate::drills::TeamRef>,
    categories: Vec<crate::domain::CategoryDef>,
    save: ScenarioSave,
) -> impl IntoView {
    let key = scenario
        .as_ref()
        .map_or_else(|| "new".to_owned(), |s| s.id.to_string());
    let id = scenario.as_ref().map(|s| s.id.to_string()).unwrap_or_default();
    let team_id = RwSignal::new(
        scenario
            .as_ref()
            .map(|s| s.team.to_string())
            .or_else(|| teams.first().map(|t| t.id.to_string()))
            .unwrap_or_default(),
    );
    let title = RwSignal::new(scenario.as_ref().map(|s| s.title.clone()).unwrap_or_default());
    let category = RwSignal::new(
        scenario
            .as_ref()
            .map(|s| s.category.0.clone())
            .or_else(|| categories.iter().find(|c| c.active).map(|c| c.key.0.clone()))
            .unwrap_or_default(),
    );
    let objectives = RwSignal::new(
        scenario
            .as_ref()
            .map(Scenario::objectives_text)
            .unwrap_or_default(),
    );
    let injects = RwSignal::new(scenario.as_ref().map(Scenario::injects_text).unwrap_or_default());
    let heading = scenario.as_ref().map_or_else(
        || "New scenario".to_owned(),
        |s| format!("{} ({team}, version {})", s.title, s.version),
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch((
            id.clone(),
            team_id.get_untracked(),
            title.get_untracked(),
            category.get_untracked(),
            objectives.get_untracked(),
            injects.get_untracked(),
        ));
    };
    let is_new = scenario.is_none();
    let field = |name: &str| format!("scenario-{name}-{key}");
    view! {
        <form class="desk-edit" on:submit=submit data-testid=format!("scenario-form-{key}")>
            <h3>{heading}</h3>
            {is_new.then(|| view! {
                <div class="field">
                    <label for=field("team")>"Team"</label>
                    <select id=field("team") bind:value=team_id>
                        {teams.iter().map(|t| view! { <option value=t.id.to_string()>{t.name.clone()}</option> }).collect_view()}
                    </select>
                </div>
            })}
            <div class="field">
                <label for=field("title")>"Title"</label>
                <input id=field("title") type="text" required bind:value=title />
            </div>
            <div class="field">
                <label for=field("category")>"Plan it exercises (category)"</label>
                <select id=field("category") bind:value=category>
                    {categories.iter().map(|c| view! { <option value=c.key.0.clone()>{c.label.clone()}</option> }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for=field("objectives")>"Objectives"</label>
                <textarea id=field("objectives") rows="3" bind:value=objectives></textarea>
            </div>
            <div class="field">
                <label for=field("injects")>"Injects"</label>
                <textarea id=field("injects") rows="4" bind:value=injects></textarea>
            </div>
            <button type="submit" class="button">{if is_new { "Add scenario" } else { "Save scenario" }}</button>
        </form>
    }
}

/// One run: measured, over time, reviewed, followed up.
#[component]
pub fn DrillRunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let review = leptos::prelude::Action::new(|args: &(String, Vec<String>, String, String)| {
        let args = args.clone();
        async move { save_drill_review(args.0, args.1, args.2, args.3).await }
    });
    let add = leptos::prelude::Action::new(|args: &(uuid::Uuid, NewAction)| {
        let args = args.clone();
        async move { add_drill_action(args.0, args.1).await }
    });
    let save = leptos::prelude::Action::new(|args: &(uuid::Uuid, ImprovementAction)| {
        let args = args.clone();
        async move { crate::drills::update_drill_action(args.0, args.1).await }
    });
    let run = Resource::new(
        move || {
            (
                id(),
                review.version().get(),
                add.version().get(),
                save.version().get(),
            )
        },
        |(id, ..)| drill_run(id),
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match run.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load the drill: {e}")}</p> }.into_any(),
                    Ok(None) => view! { <h1>"No such drill"</h1><p><a href="/drills">"Back to the drills"</a></p> }.into_any(),
                    Ok(Some(detail)) => view! { <Run detail review add save /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Run(
    detail: RunDetail,
    review: SaveReview,
    add: leptos::prelude::Action<(uuid::Uuid, NewAction), Result<(), AppError>>,
    save: leptos::prelude::Action<(uuid::Uuid, ImprovementAction), Result<(), AppError>>,
) -> impl IntoView {
    let drill_id = detail.drill.id;
    let run = detail.run.clone();
    let after = |ms: Option<i64>| ms.map_or_else(|| "—".to_owned(), span);
    let measures = view! {
        <dl class="measures" data-testid="run-measures">
            <dt>"Started"</dt>
            <dd>{run.started_at.map_or_else(|| "not yet".to_owned(), Timestamp::display_utc)}</dd>
            <dt>"First report after"</dt>
            <dd data-testid="first-report">{after(run.first_report_ms)}</dd>
            <dt>"Ended after"</dt>
            <dd data-testid="duration">{after(run.duration_ms)}</dd>
            <dt>"Injects acknowledged"</dt>
            <dd data-testid="acknowledged">{format!("{} of {}", run.acknowledged.len(), detail.scenario.injects.len())}</dd>
            <dt>"Took part"</dt>
            <dd data-testid="participants">
                {run.participants.iter().map(|p| detail.name_of(p)).collect::<Vec<_>>().join(", ")}
            </dd>
        </dl>
    };
    let steps = if run.steps.is_empty() {
        view! { <p class="empty">"No plan step was ticked."</p> }.into_any()
    } else {
        view! {
            <ol data-testid="step-times">
                {run.steps.iter().map(|s| view! {
                    <li>{format!("{} — {} ({})", span(s.after_ms), s.text, s.role)}</li>
                }).collect_view()}
            </ol>
        }
        .into_any()
    };
    let timeline = run
        .timeline
        .iter()
        .map(|line| {
            let what = match &line.what {
                RunMoment::Started => "Started the drill".to_owned(),
                RunMoment::Acknowledged { inject } => {
                    detail.scenario.injects.get(usize::from(*inject)).map_or_else(
                        || "Acknowledged an inject".to_owned(),
                        |i| format!("Acknowledged “{}”", i.text),
                    )
                }
                RunMoment::Reported { report } => {
                    detail.reports.iter().find(|(id, _)| id == report).map_or_else(
                        || "Filed a drill report".to_owned(),
                        |(_, t)| format!("Filed “{t}”"),
                    )
                }
                RunMoment::Ticked { text } => format!("Did “{text}”"),
                RunMoment::Ended => "Ended the drill".to_owned(),
                RunMoment::StoppedForReal => "Stopped the drill for a real emergency".to_owned(),
            };
            let at = run.started_at.map_or_else(
                || line.at.display_utc(),
                |s| format!("+{}", span(line.at.0 - s.0)),
            );
            let by = line.by.map(|b| detail.name_of(&b)).unwrap_or_default();
            view! { <li><span class="sub">{format!("{at} · {by}")}</span><p>{what}</p></li> }
        })
        .collect_view();
    let history = detail
        .history
        .iter()
        .map(|h| {
            let this = h.drill == drill_id;
            view! {
                <tr class:current=this>
                    <td><a href=format!("/drills/{}", h.drill)>{h.started_at.map(Timestamp::date).unwrap_or_default()}</a></td>
                    <td>{h.title.clone()}</td>
                    <td>{after(h.first_report_ms)}</td>
                    <td>{after(h.duration_ms)}</td>
                    <td>{h.steps}</td>
                    <td>{format!("{} of {}", h.acknowledged.0, h.acknowledged.1)}</td>
                    <td>{h.participants}</td>
                </tr>
            }
        })
        .collect_view();
    let ratings: Vec<RwSignal<String>> = detail
        .review
        .ratings
        .iter()
        .map(|r| RwSignal::new(r.rating.map(|r| r.as_str().to_owned()).unwrap_or_default()))
        .collect();
    let strengths = RwSignal::new(detail.review.strengths.clone());
    let improvements = RwSignal::new(detail.review.improvements.clone());
    let submit_review = {
        let ratings = ratings.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            review.dispatch((
                drill_id.to_string(),
                ratings.iter().map(|r| r.get_untracked()).collect(),
                strengths.get_untracked(),
                improvements.get_untracked(),
            ));
        }
    };
    let rating_fields = detail
        .review
        .ratings
        .iter()
        .zip(ratings)
        .enumerate()
        .map(|(i, (r, signal))| {
            let id = format!("rating-{i}");
            view! {
                <div class="field">
                    <label for=id.clone()>{r.objective.clone()}</label>
                    <select id=id bind:value=signal data-testid="rating">
                        <option value="">"Not rated yet"</option>
                        {options(Rating::ALL.to_vec(), Rating::as_str, Rating::label)}
                    </select>
                </div>
            }
        })
        .collect_view();
    let on_save = Callback::new(move |action: ImprovementAction| {
        save.dispatch((drill_id, action));
    });
    let on_add = Callback::new(move |action: NewAction| {
        add.dispatch((drill_id, action));
    });
    let now = detail.read_at;
    view! {
        <p><a href="/drills">"All drills"</a></p>
        <h1>{format!("Drill: {}", detail.scenario.title)}</h1>
        <p class="sub">
            {state_badge(detail.state)}
            {format!(
                " {} · window {} to {} · {}",
                detail.team,
                detail.drill.opens_at.date(),
                detail.drill.due_at.date(),
                detail.drill.cadence.label(),
            )}
            {run.stopped_for_real.then(|| view! { <span class="badge badge-error">"Stopped for a real emergency"</span> })}
        </p>
        <section aria-labelledby="measures-heading">
            <h2 id="measures-heading">"Measured"</h2>
            {measures}
            <h3>"Plan steps, from the start"</h3>
            {steps}
        </section>
        <section aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">"Timeline"</h2>
            <ol class="timeline" data-testid="run-timeline">{timeline}</ol>
            <h3>"Drill reports"</h3>
            <ul>
                {detail.reports.iter().map(|(id, title)| view! {
                    <li><a href=format!("/incidents/{id}")>{title.clone()}</a></li>
                }).collect_view()}
            </ul>
        </section>
        <section aria-labelledby="history-heading">
            <h2 id="history-heading">"The team's runs over time"</h2>
            <table class="runs" data-testid="team-runs">
                <thead><tr>
                    <th scope="col">"Run"</th><th scope="col">"Scenario"</th><th scope="col">"First report"</th>
                    <th scope="col">"Duration"</th><th scope="col">"Steps done"</th><th scope="col">"Injects acknowledged"</th>
                    <th scope="col">"People"</th>
                </tr></thead>
                <tbody>{history}</tbody>
            </table>
        </section>
        <section aria-labelledby="review-heading">
            <h2 id="review-heading">"After-action review"</h2>
            <form class="desk-edit" on:submit=submit_review data-testid="review-form">
                <h3>"Objectives"</h3>
                {rating_fields}
                <div class="field">
                    <label for="review-strengths">"Strengths"</label>
                    <textarea id="review-strengths" rows="3" bind:value=strengths></textarea>
                </div>
                <div class="field">
                    <label for="review-improvements">"Areas for improvement"</label>
                    <textarea id="review-improvements" rows="3" bind:value=improvements></textarea>
                </div>
                <button type="submit" class="button" data-testid="save-review">"Save review"</button>
                {move || outcome(review.value().get(), "Review saved.")}
            </form>
        </section>
        <ActionsSection
            heading="Improvement plan"
            actions=detail.actions.clone()
            people=detail.people.clone()
            now
            save=on_save
            saved=save.value().into()
            add=on_add
            added=add.value().into()
            adding=add.pending().into()
        />
    }
}
