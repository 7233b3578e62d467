//! The server's side of people management ([`app::admin::PeopleAdmin`]) over the store.
//! The server functions have already checked that the caller is an administrator.

use app::admin::{Invited, PeopleAdmin, Person, SessionRow};
use app::domain::access::Role;
use base64::Engine as _;
use uuid::Uuid;

use crate::accounts::{AccountError, NewUser};
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

fn shown(e: AccountError) -> String {
    match e {
        AccountError::Invalid(reason) => reason,
        AccountError::Db(e) => {
            tracing::error!(error = %e, "managing people");
            "the change could not be saved right now; try again".to_owned()
        }
    }
}

fn unavailable(e: crate::db::DbError) -> String {
    shown(AccountError::Db(e))
}

/// A first password to hand over: 96 random bits, 16 URL-safe characters.
fn random_password() -> Result<String, String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|_| "no randomness available".to_owned())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[async_trait::async_trait]
impl PeopleAdmin for Admin {
    async fn plans(&self) -> Result<Vec<app::domain::Plan>, String> {
        self.store.plans().await.map_err(unavailable)
    }

    async fn categories(&self) -> Result<Vec<app::domain::CategoryDef>, String> {
        self.store.categories().await.map_err(unavailable)
    }

    async fn save_category(&self, category: app::domain::CategoryDef) -> Result<(), String> {
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
    ) -> Result<(), String> {
        self.store
            .set_plan(&category, &steps, by, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn people(&self) -> Result<Vec<Person>, String> {
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
    ) -> Result<Invited, String> {
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

    async fn set_role(&self, id: Uuid, role: Role, teams: Vec<String>) -> Result<(), String> {
        self.store
            .set_role_and_teams(id, role, &teams, self.clock.now())
            .await
            .map_err(shown)
    }

    async fn set_active(&self, id: Uuid, active: bool) -> Result<(), String> {
        self.store
            .set_active(id, active, self.clock.now())
            .await
            .map_err(unavailable)
    }

    async fn revoke(&self, session: Uuid) -> Result<(), String> {
        self.store
            .revoke_session(session, self.clock.now())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
