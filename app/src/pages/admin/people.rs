//! `/admin/people`: administrators invite people, set their role and teams, deactivate
//! them, and end a lost phone's session.

use leptos::prelude::*;

use crate::admin::{Invited, Person, list_people};
use crate::domain::access::Role;

fn role_options(selected: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.key() selected=r == selected>{r.label()}</option> })
        .collect_view()
}

/// The people page.
#[component]
pub fn PeoplePage() -> impl IntoView {
    let invite = ServerAction::<crate::admin::InvitePerson>::new();
    let set_role = ServerAction::<crate::admin::SetPersonRole>::new();
    let set_active = ServerAction::<crate::admin::SetPersonActive>::new();
    let revoke = ServerAction::<crate::admin::RevokeSession>::new();
    let people = Resource::new(
        move || {
            (
                invite.version().get(),
                set_role.version().get(),
                set_active.version().get(),
                revoke.version().get(),
            )
        },
        |_| list_people(),
    );
    let invited = move || match invite.value().get() {
        Some(Ok(Invited { login, password })) => Some(
            view! {
                <p class="notice" role="status" data-testid="invited">
                    {format!("Created {login}. Their first password, shown only now: {password}")}
                </p>
            }
            .into_any(),
        ),
        Some(Err(e)) => {
            Some(view! { <p class="notice" role="alert">{format!("Not created: {e}")}</p> }.into_any())
        }
        None => None,
    };
    let failed = move || {
        [
            set_role.value().get(),
            set_active.value().get(),
            revoke.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::err)
        .map(|e| view! { <p class="notice" role="alert">{format!("Not changed: {e}")}</p> })
    };
    view! {
        <h1>"People"</h1>
        <section aria-labelledby="invite-heading">
            <h2 id="invite-heading">"Invite someone"</h2>
            <ActionForm action=invite attr:class="desk-edit-form">
                <div class="field">
                    <label for="new-login">"Login"</label>
                    <input id="new-login" name="login" type="text" autocapitalize="none" required />
                </div>
                <div class="field">
                    <label for="new-name">"Name (as shown on reports)"</label>
                    <input id="new-name" name="name" type="text" required />
                </div>
                <div class="field">
                    <label for="new-role">"Role"</label>
                    <select id="new-role" name="role">{role_options(Role::Field)}</select>
                </div>
                <div class="field">
                    <label for="new-teams">"Teams (comma-separated, home team first)"</label>
                    <input id="new-teams" name="teams" type="text" />
                </div>
                <div class="field">
                    <label for="new-password">"First password (leave blank to make one up)"</label>
                    <input id="new-password" name="password" type="text" autocomplete="off" />
                </div>
                <button type="submit" class="button primary">"Create account"</button>
            </ActionForm>
            {invited}
        </section>
        {failed}
        <Suspense fallback=|| view! { <p>"Loading people…"</p> }>
            {move || Suspend::new(async move {
                match people.await {
                    Err(e) => view! { <p class="notice" role="alert">{format!("Could not load people: {e}")}</p> }.into_any(),
                    Ok(people) => view! {
                        <ul class="people" data-testid="people">
                            {people.into_iter().map(|p| person(p, set_role, set_active, revoke)).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn person(
    p: Person,
    set_role: ServerAction<crate::admin::SetPersonRole>,
    set_active: ServerAction<crate::admin::SetPersonActive>,
    revoke: ServerAction<crate::admin::RevokeSession>,
) -> impl IntoView {
    let id = p.id.to_string();
    let id2 = id.clone();
    let role_id = format!("role-{}", p.id);
    let teams_id = format!("teams-{}", p.id);
    let status = if p.active { "active" } else { "deactivated" };
    view! {
        <li class="person" data-login=p.login.clone()>
            <h2>{format!("{} ({}) · {} · {status}", p.name, p.login, p.role.label())}</h2>
            <ActionForm action=set_role>
                <input type="hidden" name="id" value=id />
                <div class="field">
                    <label for=role_id.clone()>"Role"</label>
                    <select id=role_id name="role">{role_options(p.role)}</select>
                </div>
                <div class="field">
                    <label for=teams_id.clone()>"Teams (comma-separated, home team first)"</label>
                    <input id=teams_id name="teams" type="text" value=p.teams.join(", ") />
                </div>
                <button type="submit" class="button">"Save role and teams"</button>
            </ActionForm>
            <ActionForm action=set_active>
                <input type="hidden" name="id" value=id2 />
                <input type="hidden" name="active" value=(!p.active).to_string() />
                <button type="submit" class="button" data-testid="toggle-active">
                    {if p.active { "Deactivate (ends every session)" } else { "Reactivate" }}
                </button>
            </ActionForm>
            <h3>"Signed-in devices"</h3>
            {if p.sessions.is_empty() {
                view! { <p class="empty">"None."</p> }.into_any()
            } else {
                view! {
                    <ul class="sessions">
                        {p.sessions.into_iter().map(|s| view! {
                            <li>
                                <span>{format!(
                                    "{} · signed in {} · last online {} · ends {}",
                                    s.device,
                                    s.created_at.display_utc(),
                                    s.last_seen_at.display_utc(),
                                    s.expires_at.display_utc(),
                                )}</span>
                                <ActionForm action=revoke>
                                    <input type="hidden" name="id" value=s.id.to_string() />
                                    <button type="submit" class="button" data-testid="revoke">"End this session"</button>
                                </ActionForm>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </li>
    }
}
