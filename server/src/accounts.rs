//! Accounts: people, teams, passwords and sign-in sessions.
//!
//! * Passwords are hashed with argon2id (19 MiB, 2 passes, 1 lane: OWASP's minimum) and
//!   checked in constant time; unknown logins are checked against a dummy hash so they
//!   take as long as known ones.
//! * A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; the
//!   database keeps only its SHA-256, with an expiry (valid offline until then) and a
//!   revocation time. A deactivated person's sessions stop working at once.
//! * Sign-in attempts are throttled per login and per address ([`Throttle`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use app::domain::Timestamp;
use app::domain::access::{Role, Viewer};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{Context, DbError, Store};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "muster_session";

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A person, as an administrator sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Their id.
    pub id: Uuid,
    /// What they sign in with (lower case).
    pub login: String,
    /// Their name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Whether they may sign in and sync.
    pub active: bool,
    /// Their teams' names, home team first.
    pub teams: Vec<String>,
}

/// A team (site).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// A sign-in session, as an administrator sees it (never its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its id.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The browser it was made in, as that browser described itself.
    pub user_agent: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last used online.
    pub last_seen_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A signed-in request: the session and the person it acts for.
#[derive(Clone, Debug)]
pub struct Session {
    /// The session's id.
    pub id: Uuid,
    /// Who.
    pub viewer: Viewer,
    /// When it ends, online or offline.
    pub expires_at: Timestamp,
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The input is not acceptable (reason for the person).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a new account needs.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// What they sign in with.
    pub login: String,
    /// Their name, as shown on reports.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their first password.
    pub password: String,
    /// Their teams' names, home team first (created if missing).
    pub teams: Vec<String>,
}

fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: OWASP's recommended minimum for argon2id.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id hash (PHC string) of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| AccountError::Invalid("no randomness available".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Invalid(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid(e.to_string()))
}

/// Whether `password` matches the stored `hash` (constant time).
#[must_use]
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash no password matches in practice, checked for unknown logins so that they take
/// as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

/// A fresh session token (256 random bits, URL-safe base64).
fn new_token() -> Result<String, AccountError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| AccountError::Invalid("no randomness available".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a token.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A login as stored: trimmed, lower case.
#[must_use]
pub fn normalise_login(login: &str) -> String {
    login.trim().to_lowercase()
}

fn check_new_user(user: &NewUser) -> Result<(), AccountError> {
    let login = normalise_login(&user.login);
    if login.is_empty()
        || login.len() > 64
        || !login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(AccountError::Invalid(
            "a login is 1 to 64 letters, digits, dots, dashes, underscores or @".into(),
        ));
    }
    if user.name.trim().is_empty() || user.name.chars().count() > 100 {
        return Err(AccountError::Invalid("a name is 1 to 100 characters".into()));
    }
    check_password(&user.password)?;
    if user.role != Role::Admin && user.teams.is_empty() {
        return Err(AccountError::Invalid(
            "field employees and supervisors belong to at least one team".into(),
        ));
    }
    Ok(())
}

/// Whether a password is long enough (and not absurdly long).
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=256).contains(&n) {
        return Err(AccountError::Invalid(format!(
            "a password is {MIN_PASSWORD_CHARS} to 256 characters"
        )));
    }
    Ok(())
}

impl Store {
    /// The team named `name`, created if missing.
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
        let row = sqlx::query(&self.sql("SELECT id FROM teams WHERE name = $1"))
            .bind(name)
            .fetch_one(self.pool())
            .await
            .context("reading a team")?;
        Ok(parse_uuid(&row.get::<String, _>("id")))
    }

    /// Every team, by name.
    pub async fn teams(&self) -> Result<Vec<Team>, DbError> {
        let rows = sqlx::query("SELECT id, name FROM teams ORDER BY name")
            .fetch_all(self.pool())
            .await
            .context("listing teams")?;
        Ok(rows
            .iter()
            .map(|r| Team {
                id: parse_uuid(&r.get::<String, _>("id")),
                name: r.get("name"),
            })
            .collect())
    }

    /// Creates an account (hashing the password on the blocking pool).
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
    pub async fn check_credentials(&self, login: &str, password: &str) -> Result<Option<Uuid>, DbError> {
        let row = sqlx::query(&self.sql("SELECT id, password_hash, active FROM users WHERE login = $1"))
            .bind(normalise_login(login))
            .fetch_optional(self.pool())
            .await
            .context("reading an account")?;
        let (id, hash, active) = match &row {
            Some(r) => (
                Some(parse_uuid(&r.get::<String, _>("id"))),
                r.get::<String, _>("password_hash"),
                r.get::<i64, _>("active") == 1,
            ),
            None => (None, dummy_hash().to_owned(), false),
        };
        let password = password.to_owned();
        let matches = self
            .cpu(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        Ok(id.filter(|_| matches && active))
    }

    /// The person with this id, as requests act for them, if active.
    pub async fn viewer(&self, user: Uuid) -> Result<Option<Viewer>, DbError> {
        let row = sqlx::query(&self.sql("SELECT login, name, role, active FROM users WHERE id = $1"))
            .bind(user.to_string())
            .fetch_optional(self.pool())
            .await
            .context("reading an account")?;
        match row {
            Some(row) if row.get::<i64, _>("active") == 1 => self.viewer_of(user, &row).await,
            _ => Ok(None),
        }
    }

    /// The viewer for `user` from a row holding its `login`, `name` and `role`, with its
    /// teams (home team first).
    async fn viewer_of(&self, user: Uuid, row: &sqlx::any::AnyRow) -> Result<Option<Viewer>, DbError> {
        let Ok(role) = row.get::<String, _>("role").parse::<Role>() else {
            return Ok(None);
        };
        let teams = sqlx::query(
            &self.sql("SELECT team_id FROM memberships WHERE user_id = $1 ORDER BY position, team_id"),
        )
        .bind(user.to_string())
        .fetch_all(self.pool())
        .await
        .context("reading team memberships")?
        .iter()
        .map(|r| parse_uuid(&r.get::<String, _>("team_id")))
        .collect();
        Ok(Some(Viewer {
            user_id: user,
            name: row.get("name"),
            login: row.get("login"),
            role,
            teams,
        }))
    }

    /// Starts a session for `user` valid for `ttl`; returns its id and its token (to be
    /// given to the browser once, never stored).
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
    pub async fn session(&self, token: &str, now: Timestamp) -> Result<Option<Session>, DbError> {
        let row = sqlx::query(&self.sql(
            "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, u.login, u.name, u.role
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.active = 1",
        ))
        .bind(token_hash(token))
        .bind(now.0)
        .fetch_optional(self.pool())
        .await
        .context("reading a session")?;
        let Some(row) = row else { return Ok(None) };
        let id = parse_uuid(&row.get::<String, _>("id"));
        let Some(viewer) = self
            .viewer_of(parse_uuid(&row.get::<String, _>("user_id")), &row)
            .await?
        else {
            return Ok(None);
        };
        // Recorded at most every ten minutes, so a sync does not write for it.
        if now.0 - row.get::<i64, _>("last_seen_at") > 600_000 {
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
            expires_at: Timestamp(row.get("expires_at")),
        }))
    }

    /// Revokes one session (sign-out, or an administrator revoking a device).
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
    pub async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionInfo>, DbError> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, user_id, user_agent, created_at, last_seen_at, expires_at, revoked_at
             FROM sessions WHERE user_id = $1 ORDER BY created_at DESC",
        ))
        .bind(user.to_string())
        .fetch_all(self.pool())
        .await
        .context("listing sessions")?;
        Ok(rows
            .iter()
            .map(|r| SessionInfo {
                id: parse_uuid(&r.get::<String, _>("id")),
                user_id: parse_uuid(&r.get::<String, _>("user_id")),
                user_agent: r.get("user_agent"),
                created_at: Timestamp(r.get("created_at")),
                last_seen_at: Timestamp(r.get("last_seen_at")),
                expires_at: Timestamp(r.get("expires_at")),
                revoked_at: r.get::<Option<i64>, _>("revoked_at").map(Timestamp),
            })
            .collect())
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        let rows = sqlx::query("SELECT id, login, name, role, active FROM users ORDER BY name, login")
            .fetch_all(self.pool())
            .await
            .context("listing accounts")?;
        let members = sqlx::query(
            "SELECT m.user_id, t.name FROM memberships m JOIN teams t ON t.id = m.team_id
             ORDER BY m.user_id, m.position, t.name",
        )
        .fetch_all(self.pool())
        .await
        .context("listing team memberships")?;
        let mut teams: HashMap<String, Vec<String>> = HashMap::new();
        for m in &members {
            teams.entry(m.get("user_id")).or_default().push(m.get("name"));
        }
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: String = r.get("id");
                Some(User {
                    id: parse_uuid(&id),
                    login: r.get("login"),
                    name: r.get("name"),
                    role: r.get::<String, _>("role").parse().ok()?,
                    active: r.get::<i64, _>("active") == 1,
                    teams: teams.remove(&id).unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Changes a person's role and teams (home team first).
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
        self.cpu(move || hash_password(&password))
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

fn parse_uuid(text: &str) -> Uuid {
    text.parse().unwrap_or(Uuid::nil())
}

/// Failed sign-ins remembered per login and per address; after [`Throttle::FREE`]
/// failures in a row, each further attempt must wait twice as long as the last
/// (1 s, 2 s, 4 s, … up to 15 minutes). A success clears the login's record.
///
/// Kept in this process's memory: with several instances behind a load balancer each
/// counts on its own, so the limit is per instance (see SECURITY.md).
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// Failures allowed before waiting starts (per login; per address it is four times).
    pub const FREE: u32 = 5;
    const LONGEST: Duration = Duration::from_secs(15 * 60);

    fn keys(login: &str, addr: Option<IpAddr>) -> [(String, u32); 2] {
        [
            (format!("login:{}", normalise_login(login)), Self::FREE),
            (
                format!("addr:{}", addr.map_or_else(|| "?".to_owned(), |a| a.to_string())),
                Self::FREE * 4,
            ),
        ]
    }

    fn wait_for(failures: u32, free: u32) -> Duration {
        if failures < free {
            return Duration::ZERO;
        }
        let doubled = 1u64 << (failures - free).min(20);
        Duration::from_secs(doubled).min(Self::LONGEST)
    }

    /// How long this login from this address must still wait, if at all.
    pub fn wait(&self, login: &str, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::keys(login, addr)
            .iter()
            .filter_map(|(key, free)| {
                let (n, last) = failures.get(key)?;
                let until = *last + Self::wait_for(*n, *free);
                (until > now).then(|| until - now)
            })
            .max()
    }

    /// Records a failed attempt.
    pub fn failed(&self, login: &str, addr: Option<IpAddr>, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget records idle for longer than the longest wait.
        if failures.len() > 10_000 {
            failures.retain(|_, (_, last)| now.duration_since(*last) < Self::LONGEST);
        }
        for (key, _) in Self::keys(login, addr) {
            let entry = failures.entry(key).or_insert((0, now));
            entry.0 = entry.0.saturating_add(1);
            entry.1 = now;
        }
    }

    /// Records a success: the login starts afresh.
    pub fn succeeded(&self, login: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&format!("login:{}", normalise_login(login)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery "));
        assert!(!verify_password("not a hash", "anything"));
        assert_ne!(hash, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_throttle_doubles_waits_after_five_failures_per_login() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        let addr = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..Throttle::FREE - 1 {
            throttle.failed("Ana", addr, t0);
        }
        assert_eq!(throttle.wait("ana", addr, t0), None);
        throttle.failed("ana", addr, t0);
        assert_eq!(throttle.wait("ana", addr, t0), Some(Duration::from_secs(1)));
        throttle.failed("ana", addr, t0);
        assert_eq!(throttle.wait("ana", addr, t0), Some(Duration::from_secs(2)));
        assert_eq!(throttle.wait("ana", addr, t0 + Duration::from_secs(2)), None);
        // Another login from another address is not held back.
        assert_eq!(throttle.wait("bo", Some(IpAddr::from([10, 0, 0, 1])), t0), None);
        throttle.succeeded("ana");
        assert_eq!(throttle.wait("ana", Some(IpAddr::from([10, 0, 0, 1])), t0), None);
    }

    #[test]
    fn the_throttle_holds_back_an_address_trying_many_logins() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        let addr = Some(IpAddr::from([192, 0, 2, 7]));
        for n in 0..Throttle::FREE * 4 {
            throttle.failed(&format!("user{n}"), addr, t0);
        }
        assert!(throttle.wait("someone-new", addr, t0).is_some());
        assert_eq!(throttle.wait("someone-new", None, t0), None);
    }
}
