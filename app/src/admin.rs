//! Managing people: server functions for administrators, and the port the server
//! implements to answer them. Every function refuses anyone but an administrator.

use leptos::prelude::*;

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Timestamp;
use crate::domain::access::Role;

/// One person, as the administration page lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Their id.
    pub id: Uuid,
    /// What they sign in with.
    pub login: String,
    /// Their name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their teams, home team first.
    pub teams: Vec<String>,
    /// Whether they may sign in and sync.
    pub active: bool,
    /// Their sessions that still work, newest first.
    pub sessions: Vec<SessionRow>,
}

/// One live session (a signed-in browser or phone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    /// Its id (not its token).
    pub id: Uuid,
    /// The browser, as it described itself.
    pub device: String,
    /// When it was signed in.
    pub created_at: Timestamp,
    /// When it was last used online.
    pub last_seen_at: Timestamp,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// What a new account was given: the one-time display of its first password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invited {
    /// Their login.
    pub login: String,
    /// The first password to hand over (shown once, never stored in the clear).
    pub password: String,
}

/// The port the server implements to manage people.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait PeopleAdmin: Send + Sync + 'static {
    /// Everyone, with their live sessions.
    async fn people(&self) -> Result<Vec<Person>, AppError>;
    /// Creates an account; a blank password gets a random one. Returns what to hand over.
    async fn invite(
        &self,
        login: String,
        name: String,
        role: Role,
        teams: Vec<String>,
        password: String,
    ) -> Result<Invited, AppError>;
    /// Sets a person's role and teams.
    async fn set_role(&self, id: Uuid, role: Role, teams: Vec<String>) -> Result<(), AppError>;
    /// Deactivates (ending every session) or reactivates a person.
    async fn set_active(&self, id: Uuid, active: bool) -> Result<(), AppError>;
    /// Ends one session (a lost phone): its next request is refused.
    async fn revoke(&self, session: Uuid) -> Result<(), AppError>;
    /// Every response plan.
    async fn plans(&self) -> Result<Vec<crate::domain::Plan>, AppError>;
    /// Replaces a category's response plan (no steps: removes it), as `by`.
    async fn save_plan(
        &self,
        category: String,
        steps: Vec<crate::domain::PlanStep>,
        by: Uuid,
    ) -> Result<(), AppError>;
    /// Every report category, active or retired, in form order.
    async fn categories(&self) -> Result<Vec<crate::domain::CategoryDef>, AppError>;
    /// Adds a category or changes one's label and whether it is offered.
    async fn save_category(&self, category: crate::domain::CategoryDef) -> Result<(), AppError>;
}

/// The people port, as provided through context by the server.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct AdminHandle(pub std::sync::Arc<dyn PeopleAdmin>);

#[cfg(feature = "ssr")]
impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminHandle")
    }
}

/// The port, if the signed-in person is an administrator.
#[cfg(feature = "ssr")]
fn admin() -> Result<AdminHandle, AppError> {
    let viewer = crate::desk::signed_in()?;
    if viewer.role != Role::Admin {
        return Err(AppError::Forbidden("only administrators manage people".into()));
    }
    use_context::<AdminHandle>()
        .ok_or_else(|| AppError::Retryable("people management is not available".into()))
}

#[cfg(feature = "ssr")]
fn parse_id(id: &str) -> Result<Uuid, AppError> {
    id.parse().map_err(|_| AppError::invalid("that is not an id"))
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<Role, AppError> {
    role.parse().map_err(AppError::invalid)
}

/// Team names from a comma-separated list, in order, without blanks.
#[must_use]
pub fn team_list(teams: &str) -> Vec<String> {
    teams
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every response plan (administrators; devices get them from `GET /api/plans`).
#[server]
pub async fn list_plans() -> Result<Vec<crate::domain::Plan>, AppError> {
    admin()?.0.plans().await
}

/// Replaces the response plan of `category` with `steps`, one per line as
/// `role: what to do` (empty: no plan).
#[server]
pub async fn save_plan(category: String, steps: String) -> Result<(), AppError> {
    let handle = admin()?;
    let category = crate::domain::Category::new(category.trim());
    if !handle.0.categories().await?.iter().any(|c| c.key == category) {
        return Err(AppError::invalid("choose one of the categories"));
    }
    let steps = crate::domain::Plan::parse_steps(&steps).map_err(AppError::invalid)?;
    let by = crate::desk::signed_in()?.user_id;
    handle.0.save_plan(category.0, steps, by).await
}

/// Every report category, active or retired, in form order (administrators; devices get
/// them with sync).
#[server]
pub async fn list_categories() -> Result<Vec<crate::domain::CategoryDef>, AppError> {
    admin()?.0.categories().await
}

/// Adds a category named `label` (`key` empty: the key is made from the label and never
/// changes), or renames category `key` and sets whether it is offered for new reports.
#[server]
pub async fn save_category(key: String, label: String, active: bool) -> Result<(), AppError> {
    let handle = admin()?;
    crate::domain::CategoryDef::check_label(&label).map_err(AppError::invalid)?;
    let existing = handle.0.categories().await?;
    let key = if key.trim().is_empty() {
        let key = crate::domain::Category::key_for(&label)
            .ok_or_else(|| AppError::invalid("give the category a name with letters or digits in it"))?;
        if existing.iter().any(|c| c.key == key) {
            return Err(AppError::Conflict(format!(
                "there is already a category with the key {}; rename that one instead",
                key.0
            )));
        }
        key
    } else {
        let key = crate::domain::Category::new(key.trim());
        if !existing.iter().any(|c| c.key == key) {
            return Err(AppError::NotFound("there is no such category".into()));
        }
        key
    };
    handle
        .0
        .save_category(crate::domain::CategoryDef {
            key,
            label: label.trim().to_owned(),
            active,
        })
        .await
}

/// Everyone, with their live sessions.
#[server]
pub async fn list_people() -> Result<Vec<Person>, AppError> {
    admin()?.0.people().await
}

/// Creates an account (teams comma-separated, home team first; a blank password gets a
/// random one).
#[server]
pub async fn invite_person(
    login: String,
    name: String,
    role: String,
    teams: String,
    password: String,
) -> Result<Invited, AppError> {
    let role = parse_role(&role)?;
    admin()?
        .0
        .invite(login, name, role, team_list(&teams), password)
        .await
}

/// Sets a person's role and teams (comma-separated, home team first).
#[server]
pub async fn set_person_role(id: String, role: String, teams: String) -> Result<(), AppError> {
    let (id, role) = (parse_id(&id)?, parse_role(&role)?);
    admin()?.0.set_role(id, role, team_list(&teams)).await
}

/// Deactivates or reactivates a person.
#[server]
pub async fn set_person_active(id: String, active: bool) -> Result<(), AppError> {
    let id = parse_id(&id)?;
    admin()?.0.set_active(id, active).await
}

/// Ends one session.
#[server]
pub async fn revoke_session(id: String) -> Result<(), AppError> {
    let id = parse_id(&id)?;
    admin()?.0.revoke(id).await
}
