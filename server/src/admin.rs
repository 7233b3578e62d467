//! The server's side of people management ([`app::admin::PeopleAdmin`]) over the store.
//! The server functions have already checked that the caller is an administrator.

use app::admin::{Invited, PeopleAdmin, Person, SessionRow};
use app::domain::access::Role;
use base64::Engine as _;
use uuid::Uuid;

use crate::accounts::{AccountError, NewUser};
use app::error::AppError;

use crate::clock::SharedClock;
use crate::db::Store;

/// People management, over the store.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Store,
    clock: SharedClock,
}

impl Admin {
    /// Management of the people in `store`, stamping times from `clock`.
    #[must_use]
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }
}

fn shown(e: AccountError) -> AppError {
    match e {
        AccountError::Invalid(reason) => AppError::invalid(reason),
        AccountError::Db(e) => unavailable(e),
    }
}

fn unavailable(e: crate::db::DbError) -> AppError {
    tracing::error!(error = %e, "managing people");
    AppError::Retryable("the change could not be saved right now; try again".to_owned())
}

/// A first password to hand over: 96 random bits, 16 URL-safe characters.
fn random_password() -> Result<String, AppError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|_| AppError::Retryable("no randomness available".to_owned()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[async_trait::async_trait]
impl PeopleAdmin for Admin {
    async fn plans(&self) -> Result<Vec<app::domain::Plan>, AppError> {
        self.store.plans().await.map_err(unavailable)
    }

    async fn categories(&self) -> Result<Vec<app::domain::CategoryDef>, AppError> {
        self.store.categories().await.map_err(unavailable)
    }

    async fn save_category(&self, category: app::domain::CategoryDef) -> Result<(), AppError> {
        self.store
            .save_category(&category, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn save_plan(
        &self,
        category: String,
        steps: Vec<app::domain::PlanStep>,
        by: Uuid,
    ) -> Result<(), AppError> {
        self.store
            .set_plan(&category, &steps, by, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn people(&self) -> Result<Vec<Person>, AppError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for user in self.store.users().await.map_err(unavailable)? {
            let sessions = self
                .store
                .sessions_of(user.id)
                .await
                .map_err(unavailable)?
                .into_iter()
                .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
                .map(|s| SessionRow {
                    id: s.id,
                    device: s.user_agent,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                    expires_at: s.expires_at,
                })
                .collect();
            out.push(Person {
                id: user.id,
                login: user.login,
                name: user.name,
                role: user.role,
                teams: user.teams,
                active: user.active,
                sessions,
            });
        }
        Ok(out)
    }

    async fn invite(
        &self,
        login: String,
        name: String,
        role: Role,
        teams: Vec<String>,
        password: String,
    ) -> Result<Invited, AppError> {
        let password = if password.trim().is_empty() {
            random_password()?
        } else {
            password
        };
        let user = NewUser {
            login: login.clone(),
            name,
            role,
            password: password.clone(),
            teams,
        };
        self.store
            .create_user(user, self.clock.now())
            .await
            .map_err(shown)?;
        Ok(Invited {
            login: crate::accounts::normalise_login(&login),
            password,
        })
    }

    async fn set_role(&self, id: Uuid, role: Role, teams: Vec<String>) -> Result<(), AppError> {
        self.store
            .set_role_and_teams(id, role, &teams, self.clock.now())
            .await
            .map_err(shown)
    }

    async fn set_active(&self, id: Uuid, active: bool) -> Result<(), AppError> {
        self.store
            .set_active(id, active, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn revoke(&self, session: Uuid) -> Result<(), AppError> {
        self.store
            .revoke_session(session, self.clock.now())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
