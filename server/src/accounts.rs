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
use uuid::Uuid;

use crate::db::DbError;

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

pub(crate) fn hasher() -> Argon2<'static> {
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
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

/// A fresh session token (256 random bits, URL-safe base64).
pub(crate) fn new_token() -> Result<String, AccountError> {
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

pub(crate) fn check_new_user(user: &NewUser) -> Result<(), AccountError> {
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
