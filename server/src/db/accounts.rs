//! Accounts in the database: people, teams, memberships and sign-in sessions (the
//! rules and the password hashing are in `crate::accounts`).

use std::collections::HashMap;
use std::time::Duration;

use app::domain::Timestamp;
use app::domain::access::{Role, Viewer};
use uuid::Uuid;

use super::{Context, DbError, Store, maybe_row_of, rows_of};
use crate::accounts::*;

impl Store {
    /// The team named `name`, created if missing.
    #[tracing::instrument(name = "db.ensure_team", skip_all)]
    pub async fn ensure_team(&self, name: &str, now: Timestamp) -> Result<Uuid, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AccountError::Invalid("a team name is 1 to 100 characters".into()));
        }
        let _writer = self.writer().await;
        sqlx::query(&self.sql(
            "INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(name)
        .bind(now.0)
        .execute(self.pool())
        .await
        .context("creating a team")?;
        let id: String = sqlx::query_scalar(&self.sql("SELECT id FROM teams WHERE name = $1"))
            .bind(name)
            .fetch_one(self.pool())
            .await
            .context("reading a team")?;
        Ok(parse_uuid(&id))
    }

    /// Every team, by name.
    #[tracing::instrument(name = "db.teams", skip_all)]
    pub async fn teams(&self) -> Result<Vec<Team>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            name: String,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query("SELECT id, name FROM teams ORDER BY name")
                .fetch_all(self.pool())
                .await,
            "listing teams",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Team {
                id: parse_uuid(&r.id),
                name: r.name,
            })
            .collect())
    }

    /// Creates an account (hashing the password on the blocking pool).
    #[tracing::instrument(name = "db.create_user", skip_all)]
    pub async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<Uuid, AccountError> {
        check_new_user(&user)?;
        let login = normalise_login(&user.login);
        let hash = self.hash_on_pool(&user.password).await?;
        let mut team_ids = Vec::new();
        for team in &user.teams {
            team_ids.push(self.ensure_team(team, now).await?);
        }
        let id = Uuid::now_v7();
        let _writer = self.writer().await;
        let mut tx = self.pool().begin().await.context("starting a transaction")?;
        let inserted = sqlx::query(&self.sql(
            "INSERT INTO users (id, login, name, role, password_hash, active, created_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (login) DO NOTHING",
        ))
        .bind(id.to_string())
        .bind(&login)
        .bind(user.name.trim())
        .bind(user.role.key())
        .bind(hash)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .context("creating an account")?;
        if inserted.rows_affected() == 0 {
            return Err(AccountError::Invalid(format!("the login {login:?} is taken")));
        }
        self.add_memberships(&mut tx, id, &team_ids).await?;
        tx.commit().await.context("committing")?;
        tracing::info!(user = %id, role = %user.role, "account created");
        Ok(id)
    }

    /// Checks a login and password. `None` if either is wrong or the account is
    /// deactivated; takes as long for unknown logins as for known ones.
    #[tracing::instrument(name = "db.check_credentials", skip_all)]
    pub async fn check_credentials(&self, login: &str, password: &str) -> Result<Option<Uuid>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            password_hash: String,
            active: i64,
        }
        let row: Option<Row> = maybe_row_of(
            sqlx::query(&self.sql("SELECT id, password_hash, active FROM users WHERE login = $1"))
                .bind(normalise_login(login))
                .fetch_optional(self.pool())
                .await,
            "reading an account",
        )?;
        let (id, hash, active) = match row {
            Some(r) => (Some(parse_uuid(&r.id)), r.password_hash, r.active == 1),
            None => (None, dummy_hash().to_owned(), false),
        };
        let password = password.to_owned();
        let matches = self
            .cpu()
            .run(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        Ok(id.filter(|_| matches && active))
    }

    /// The person with this id, as requests act for them, if active.
    #[tracing::instrument(name = "db.viewer", skip_all)]
    pub async fn viewer(&self, user: Uuid) -> Result<Option<Viewer>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            person: Person,
            active: i64,
        }
        let row: Option<Row> = maybe_row_of(
            sqlx::query(&self.sql("SELECT login, name, role, active FROM users WHERE id = $1"))
                .bind(user.to_string())
                .fetch_optional(self.pool())
                .await,
            "reading an account",
        )?;
        match row {
            Some(row) if row.active == 1 => self.viewer_of(user, row.person).await,
            _ => Ok(None),
        }
    }

    /// The viewer for `user`, who is `person`, with their teams (home team first).
    async fn viewer_of(&self, user: Uuid, person: Person) -> Result<Option<Viewer>, DbError> {
        let Ok(role) = person.role.parse::<Role>() else {
            return Ok(None);
        };
        let teams: Vec<String> = sqlx::query_scalar(
            &self.sql("SELECT team_id FROM memberships WHERE user_id = $1 ORDER BY position, team_id"),
        )
        .bind(user.to_string())
        .fetch_all(self.pool())
        .await
        .context("reading team memberships")?;
        Ok(Some(Viewer {
            user_id: user,
            name: person.name,
            login: person.login,
            role,
            teams: teams.iter().map(|t| parse_uuid(t)).collect(),
        }))
    }

    /// Starts a session for `user` valid for `ttl`; returns its id and its token (to be
    /// given to the browser once, never stored).
    #[tracing::instrument(name = "db.create_session", skip_all)]
    pub async fn create_session(
        &self,
        user: Uuid,
        user_agent: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(Uuid, String), AccountError> {
        let token = new_token()?;
        let id = Uuid::now_v7();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let agent: String = user_agent.chars().take(200).collect();
        let _writer = self.writer().await;
        sqlx::query(&self.sql(
            "INSERT INTO sessions (id, token_hash, user_id, user_agent, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        ))
        .bind(id.to_string())
        .bind(token_hash(&token))
        .bind(user.to_string())
        .bind(agent)
        .bind(now.0)
        .bind(now.0.saturating_add(ttl_ms))
        .execute(self.pool())
        .await
        .context("starting a session")?;
        Ok((id, token))
    }

    /// The live session a token belongs to: not expired, not revoked, its person active.
    /// One query for the session and its person, one for their teams: it runs on every
    /// request.
    #[tracing::instrument(name = "db.session", skip_all)]
    pub async fn session(&self, token: &str, now: Timestamp) -> Result<Option<Session>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            user_id: String,
            last_seen_at: i64,
            expires_at: i64,
            #[sqlx(flatten)]
            person: Person,
        }
        let row: Option<Row> = maybe_row_of(
            sqlx::query(&self.sql(
                "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, u.login, u.name, u.role
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.active = 1",
            ))
            .bind(token_hash(token))
            .bind(now.0)
            .fetch_optional(self.pool())
            .await,
            "reading a session",
        )?;
        let Some(row) = row else { return Ok(None) };
        let id = parse_uuid(&row.id);
        let Some(viewer) = self.viewer_of(parse_uuid(&row.user_id), row.person).await? else {
            return Ok(None);
        };
        // Recorded at most every ten minutes, so a sync does not write for it.
        if now.0 - row.last_seen_at > 600_000 {
            let _writer = self.writer().await;
            sqlx::query(&self.sql("UPDATE sessions SET last_seen_at = $1 WHERE id = $2"))
                .bind(now.0)
                .bind(id.to_string())
                .execute(self.pool())
                .await
                .context("recording a session's use")?;
        }
        Ok(Some(Session {
            id,
            viewer,
            expires_at: Timestamp(row.expires_at),
        }))
    }

    /// Revokes one session (sign-out, or an administrator revoking a device).
    #[tracing::instrument(name = "db.revoke_session", skip_all)]
    pub async fn revoke_session(&self, id: Uuid, now: Timestamp) -> Result<bool, DbError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            &self.sql("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"),
        )
        .bind(now.0)
        .bind(id.to_string())
        .execute(self.pool())
        .await
        .context("revoking a session")?;
        Ok(done.rows_affected() > 0)
    }

    /// A person's sessions, newest first.
    #[tracing::instrument(name = "db.sessions_of", skip_all)]
    pub async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionInfo>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            user_id: String,
            user_agent: String,
            created_at: i64,
            last_seen_at: i64,
            expires_at: i64,
            revoked_at: Option<i64>,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(
                "SELECT id, user_id, user_agent, created_at, last_seen_at, expires_at, revoked_at
                 FROM sessions WHERE user_id = $1 ORDER BY created_at DESC",
            ))
            .bind(user.to_string())
            .fetch_all(self.pool())
            .await,
            "listing sessions",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                id: parse_uuid(&r.id),
                user_id: parse_uuid(&r.user_id),
                user_agent: r.user_agent,
                created_at: Timestamp(r.created_at),
                last_seen_at: Timestamp(r.last_seen_at),
                expires_at: Timestamp(r.expires_at),
                revoked_at: r.revoked_at.map(Timestamp),
            })
            .collect())
    }

    /// Every account, by name.
    #[tracing::instrument(name = "db.users", skip_all)]
    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            #[sqlx(flatten)]
            person: Person,
            active: i64,
        }
        #[derive(sqlx::FromRow)]
        struct Member {
            user_id: String,
            name: String,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query("SELECT id, login, name, role, active FROM users ORDER BY name, login")
                .fetch_all(self.pool())
                .await,
            "listing accounts",
        )?;
        let members: Vec<Member> = rows_of(
            sqlx::query(
                "SELECT m.user_id, t.name FROM memberships m JOIN teams t ON t.id = m.team_id
                 ORDER BY m.user_id, m.position, t.name",
            )
            .fetch_all(self.pool())
            .await,
            "listing team memberships",
        )?;
        let mut teams: HashMap<String, Vec<String>> = HashMap::new();
        for m in members {
            teams.entry(m.user_id).or_default().push(m.name);
        }
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(User {
                    id: parse_uuid(&r.id),
                    login: r.person.login,
                    name: r.person.name,
                    role: r.person.role.parse().ok()?,
                    active: r.active == 1,
                    teams: teams.remove(&r.id).unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Changes a person's role and teams (home team first).
    #[tracing::instrument(name = "db.set_role_and_teams", skip_all)]
    pub async fn set_role_and_teams(
        &self,
        user: Uuid,
        role: Role,
        teams: &[String],
        now: Timestamp,
    ) -> Result<(), AccountError> {
        if role != Role::Admin && teams.is_empty() {
            return Err(AccountError::Invalid(
                "field employees and supervisors belong to at least one team".into(),
            ));
        }
        let mut team_ids = Vec::new();
        for team in teams {
            team_ids.push(self.ensure_team(team, now).await?);
        }
        let _writer = self.writer().await;
        let mut tx = self.pool().begin().await.context("starting a transaction")?;
        let done = sqlx::query(&self.sql("UPDATE users SET role = $1 WHERE id = $2"))
            .bind(role.key())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("changing a role")?;
        if done.rows_affected() == 0 {
            return Err(AccountError::Invalid("no such account".into()));
        }
        sqlx::query(&self.sql("DELETE FROM memberships WHERE user_id = $1"))
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("changing teams")?;
        self.add_memberships(&mut tx, user, &team_ids).await?;
        tx.commit().await.context("committing")?;
        Ok(())
    }

    /// Deactivates (or reactivates) an account; deactivating revokes its sessions.
    #[tracing::instrument(name = "db.set_active", skip_all)]
    pub async fn set_active(&self, user: Uuid, active: bool, now: Timestamp) -> Result<(), DbError> {
        let _writer = self.writer().await;
        let mut tx = self.pool().begin().await.context("starting a transaction")?;
        sqlx::query(&self.sql("UPDATE users SET active = $1 WHERE id = $2"))
            .bind(i64::from(active))
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("changing an account")?;
        if !active {
            sqlx::query(
                &self.sql("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL"),
            )
            .bind(now.0)
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("revoking sessions")?;
        }
        tx.commit().await.context("committing")?;
        Ok(())
    }

    /// Sets a new password (hashed on the blocking pool).
    #[tracing::instrument(name = "db.set_password", skip_all)]
    pub async fn set_password(&self, user: Uuid, password: &str) -> Result<(), AccountError> {
        check_password(password)?;
        let hash = self.hash_on_pool(password).await?;
        let _writer = self.writer().await;
        sqlx::query(&self.sql("UPDATE users SET password_hash = $1 WHERE id = $2"))
            .bind(hash)
            .bind(user.to_string())
            .execute(self.pool())
            .await
            .context("changing a password")?;
        Ok(())
    }

    /// Hashes a password on the blocking pool (about 50 ms of CPU).
    async fn hash_on_pool(&self, password: &str) -> Result<String, AccountError> {
        let password = password.to_owned();
        self.cpu()
            .run(move || hash_password(&password))
            .await
            .ok_or_else(|| AccountError::Invalid("the password could not be hashed".into()))?
    }

    /// Adds `user` to `teams`, the first its home team.
    async fn add_memberships(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: Uuid,
        teams: &[Uuid],
    ) -> Result<(), DbError> {
        for (position, team) in teams.iter().enumerate() {
            sqlx::query(&self.sql(
                "INSERT INTO memberships (user_id, team_id, position) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, team_id) DO NOTHING",
            ))
            .bind(user.to_string())
            .bind(team.to_string())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await
            .context("adding a team member")?;
        }
        Ok(())
    }
}

pub(crate) fn parse_uuid(text: &str) -> Uuid {
    text.parse().unwrap_or(Uuid::nil())
}

/// Who a person is, as several queries read it.
#[derive(sqlx::FromRow)]
struct Person {
    login: String,
    name: String,
    role: String,
}
