//! Configuration, in one order: built-in defaults, then environment variables.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `MUSTER_ADDR` | `127.0.0.1:3000` | address to listen on |
//! | `DATABASE_URL` | `sqlite://./data/muster.db` | the database: `sqlite://…` or `postgres://…` |
//! | `MUSTER_SITE_ROOT` | `target/site` | built assets (`pkg/`, service worker, icons) |
//! | `MUSTER_DEMO` | unset | `1` seeds sample incidents (also `--demo`) |
//! | `MUSTER_SESSION_DAYS` | `30` | how long a sign-in lasts, also offline, before signing in again |
//! | `MUSTER_PUBLIC_URL` | unset | the address people use, e.g. `https://muster.example.org`: `https` turns on HSTS, and its origin is accepted behind a proxy that rewrites `Host` |

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Server configuration.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The database URL (may hold a password: never printed).
    pub database_url: String,
    /// Folder of built static assets.
    pub site_root: PathBuf,
    /// Seed the demo incidents.
    pub demo: bool,
    /// The address people use (behind a TLS-terminating proxy, its `https://` URL).
    pub public_url: Option<String>,
    /// How long a sign-in lasts (also offline) before the person signs in again.
    pub session_ttl: std::time::Duration,
    /// Where P1/P2 escalations are POSTed, if anywhere.
    pub webhook: Option<crate::webhook::WebhookConfig>,
    /// How long a sync body may pause before it is abandoned (tests shorten it).
    pub sync_body_idle: std::time::Duration,
    /// Most bytes of changes one person may have stored per 24 hours (tests lower it).
    pub bytes_per_person_per_day: usize,
    /// Most bytes of unfinished photo uploads one person may have (tests lower it).
    pub pending_photo_bytes_per_person: usize,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.database_url.split(':').next().unwrap_or("?");
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &format_args!("{scheme}://[redacted]"))
            .field("site_root", &self.site_root)
            .field("demo", &self.demo)
            .field("public_url", &self.public_url)
            .field("session_ttl", &self.session_ttl)
            .field("webhook", &self.webhook)
            .field("sync_body_idle", &self.sync_body_idle)
            .field("bytes_per_person_per_day", &self.bytes_per_person_per_day)
            .field(
                "pending_photo_bytes_per_person",
                &self.pending_photo_bytes_per_person,
            )
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: "sqlite://./data/muster.db".to_owned(),
            site_root: PathBuf::from("target/site"),
            demo: false,
            public_url: None,
            session_ttl: std::time::Duration::from_secs(30 * 24 * 3600),
            webhook: None,
            sync_body_idle: crate::admission::BODY_IDLE,
            bytes_per_person_per_day: crate::admission::BYTES_PER_PERSON_PER_DAY,
            pending_photo_bytes_per_person: crate::admission::PENDING_PHOTO_BYTES_PER_PERSON,
        }
    }
}

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{name} is not valid: {reason}")]
pub struct ConfigError {
    name: &'static str,
    reason: String,
}

impl Config {
    /// Defaults overridden by environment variables read through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(addr) = var("MUSTER_ADDR") {
            config.addr = addr.parse().map_err(|e: std::net::AddrParseError| ConfigError {
                name: "MUSTER_ADDR",
                reason: e.to_string(),
            })?;
        }
        if let Some(url) = var("DATABASE_URL").filter(|u| !u.is_empty()) {
            if crate::db::Backend::of_url(&url).is_none() {
                return Err(ConfigError {
                    name: "DATABASE_URL",
                    reason: "use sqlite://path/to/file.db or postgres://user:password@host/database"
                        .to_owned(),
                });
            }
            config.database_url = url;
        }
        if let Some(root) = var("MUSTER_SITE_ROOT") {
            config.site_root = PathBuf::from(root);
        }
        config.demo = matches!(var("MUSTER_DEMO").as_deref(), Some("1" | "true" | "yes"));
        if let Some(url) = var("MUSTER_PUBLIC_URL").filter(|u| !u.is_empty()) {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.contains(char::is_whitespace) {
                return Err(ConfigError {
                    name: "MUSTER_PUBLIC_URL",
                    reason: "use the full address, e.g. https://muster.example.org".to_owned(),
                });
            }
            config.public_url = Some(url);
        }
        if let Some(days) = var("MUSTER_SESSION_DAYS").filter(|d| !d.is_empty()) {
            let days: u64 = days
                .parse()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| ConfigError {
                    name: "MUSTER_SESSION_DAYS",
                    reason: "a whole number of days from 1 to 365".to_owned(),
                })?;
            config.session_ttl = std::time::Duration::from_secs(days * 24 * 3600);
        }
        if let Some(url) = var("MUSTER_WEBHOOK_URL").filter(|u| !u.is_empty()) {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.contains(char::is_whitespace) {
                return Err(ConfigError {
                    name: "MUSTER_WEBHOOK_URL",
                    reason: "use the receiver's full address, e.g. https://hooks.example.org/muster"
                        .to_owned(),
                });
            }
            let secret = var("MUSTER_WEBHOOK_SECRET")
                .filter(|s| s.chars().count() >= 16)
                .ok_or_else(|| ConfigError {
                    name: "MUSTER_WEBHOOK_SECRET",
                    reason: "a webhook needs a signing secret of at least 16 characters".to_owned(),
                })?;
            let retry_ms: u64 = match var("MUSTER_WEBHOOK_RETRY_MS").filter(|v| !v.is_empty()) {
                None => 10_000,
                Some(ms) => ms
                    .parse()
                    .ok()
                    .filter(|ms| (1..=3_600_000).contains(ms))
                    .ok_or_else(|| ConfigError {
                        name: "MUSTER_WEBHOOK_RETRY_MS",
                        reason: "milliseconds before the first retry, 1 to 3600000".to_owned(),
                    })?,
            };
            config.webhook = Some(crate::webhook::WebhookConfig {
                url,
                secret,
                retry_after: std::time::Duration::from_millis(retry_ms),
                max_attempts: 10,
                public_url: config.public_url.clone(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_needs_an_address_and_a_secret_and_the_secret_stays_hidden() {
        let env = |url: &'static str, secret: &'static str| {
            move |k: &str| match k {
                "MUSTER_WEBHOOK_URL" => Some(url.to_owned()),
                "MUSTER_WEBHOOK_SECRET" => Some(secret.to_owned()),
                _ => None,
            }
        };
        let config = Config::from_env(env("https://hooks.example.org/m", "sixteen-chars-secret")).unwrap();
        let webhook = config.webhook.as_ref().unwrap();
        assert_eq!(webhook.url, "https://hooks.example.org/m");
        assert_eq!(webhook.retry_after, std::time::Duration::from_secs(10));
        assert!(!format!("{config:?}").contains("sixteen-chars-secret"));
        assert!(Config::from_env(env("https://hooks.example.org/m", "short")).is_err());
        assert!(Config::from_env(env("ftp://hooks.example.org", "sixteen-chars-secret")).is_err());
        assert!(Config::from_env(|_| None).unwrap().webhook.is_none());
    }

    #[test]
    fn environment_overrides_defaults_and_secrets_stay_hidden() {
        let env = |k: &str| match k {
            "MUSTER_ADDR" => Some("127.0.0.1:0".to_owned()),
            "DATABASE_URL" => Some("sqlite:///tmp/secret-name.db".to_owned()),
            "MUSTER_DEMO" => Some("1".to_owned()),
            _ => None,
        };
        let config = Config::from_env(env).unwrap();
        assert_eq!(config.addr.port(), 0);
        assert!(config.demo);
        assert!(!format!("{config:?}").contains("secret-name"));
        assert!(Config::from_env(|k| (k == "MUSTER_ADDR").then(|| "nope".to_owned())).is_err());
        let week = Config::from_env(|k| (k == "MUSTER_SESSION_DAYS").then(|| "7".to_owned())).unwrap();
        assert_eq!(week.session_ttl.as_secs(), 7 * 24 * 3600);
        assert!(Config::from_env(|k| (k == "MUSTER_SESSION_DAYS").then(|| "0".to_owned())).is_err());
        let pg = |k: &str| (k == "DATABASE_URL").then(|| "postgres://muster:hunter2@db/muster".to_owned());
        let config = Config::from_env(pg).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(Config::from_env(|k| (k == "DATABASE_URL").then(|| "mysql://x".to_owned())).is_err());
    }
}
