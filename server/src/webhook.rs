//! The outgoing webhook: every P1 or P2 escalation (see `Store::escalate`) is POSTed as
//! JSON to one configured URL, signed, and retried with exponential backoff until the
//! receiver answers 2xx or the attempts run out. Every attempt is logged in
//! `webhook_deliveries`, which administrators read at `/admin/webhooks`.
//!
//! # What the receiver gets
//!
//! * Body: `{"event": "incident.escalated", "delivery": "<report>:<rank>", "report_id",
//!   "title", "category", "status", "priority": "P1", "occurred_at", "raised_at", "link"}`
//!   (times in ms since the epoch). The body is fixed at the first attempt, so a retry
//!   sends the same bytes.
//! * `Muster-Delivery`: the delivery's id; the same on every retry, so a receiver can
//!   ignore repeats (delivery is at least once: an answer lost on the way back, or two
//!   server instances picking the same due row, sends it again).
//! * `Muster-Signature: t=<unix seconds>,v1=<hex>`: HMAC-SHA256 with the shared secret
//!   over `"<t>.<body>"`. The receiver recomputes it and rejects old timestamps, so a
//!   captured request cannot be replayed later.
//!
//! Bodies and the secret are never logged; failures are logged by delivery id and status.

use std::time::Duration;

use app::domain::{Category, Priority, Timestamp};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::clock::{Clock, SharedClock};
use crate::db::{Attempt, Delivery, Store};

/// Where and how escalations are sent.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The receiver's URL (`https://…`, or `http://` for a receiver on the same host).
    pub url: String,
    /// The shared signing secret (never printed).
    pub secret: String,
    /// The wait before the first retry; each retry waits twice as long as the one before,
    /// at most [`MAX_BACKOFF`].
    pub retry_after: Duration,
    /// Attempts before a delivery is given up (it stays in the log).
    pub max_attempts: u32,
    /// The address people use, for the link in the body.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("retry_after", &self.retry_after)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// How often the deliverer looks for due deliveries.
const POLL: Duration = Duration::from_millis(250);

/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries raised longer ago than this are not sent (for example, raised before a
/// webhook was configured): a receiver acting on day-old escalations would mislead.
const STALE_MS: i64 = 24 * 3_600_000;

/// The wait after failed attempt number `attempt` (1-based).
#[must_use]
pub fn backoff(retry_after: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    retry_after.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The `Muster-Signature` header for `body` sent at `t` (unix seconds).
#[must_use]
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body of a delivery.
fn body_of(delivery: &Delivery, public_url: Option<&str>) -> String {
    let priority = Priority::from_rank(delivery.priority_rank).map_or("P?", Priority::as_str);
    serde_json::json!({
        "event": "incident.escalated",
        "delivery": delivery.id,
        "report_id": delivery.report_id,
        "title": delivery.title,
        "category": Category::new(&delivery.category).label(),
        "status": delivery.status,
        "priority": priority,
        "occurred_at": delivery.occurred_at.0,
        "raised_at": delivery.created_at.0,
        "link": public_url.map(|base| format!("{}/incidents/{}", base.trim_end_matches('/'), delivery.report_id)),
    })
    .to_string()
}

/// Starts the deliverer: a task that sends due deliveries until the process ends.
pub fn spawn(store: Store, config: WebhookConfig, clock: SharedClock) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "the webhook client could not be made; no webhooks will be sent");
                return;
            }
        };
        loop {
            if let Err(e) = deliver_due(&store, &client, &config, clock.as_ref()).await {
                tracing::warn!(error = %e, "reading due webhook deliveries");
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

/// Tries every delivery due now once.
async fn deliver_due(
    store: &Store,
    client: &reqwest::Client,
    config: &WebhookConfig,
    clock: &dyn Clock,
) -> Result<(), crate::db::DbError> {
    let now = clock.now();
    let due = store.due_deliveries(now, i64::from(config.max_attempts)).await?;
    for delivery in due {
        let body = delivery
            .body
            .clone()
            .unwrap_or_else(|| body_of(&delivery, config.public_url.as_deref()));
        let attempt = if now.0 - delivery.created_at.0 > STALE_MS {
            Attempt {
                delivered: false,
                status: None,
                error: Some("raised more than a day before it could be sent; not sent".to_owned()),
                next_attempt_at: None,
            }
        } else {
            send(client, config, &delivery, &body, now).await
        };
        if !attempt.delivered {
            tracing::warn!(
                delivery = %delivery.id,
                status = ?attempt.status,
                attempts = delivery.attempts + 1,
                "webhook delivery failed"
            );
        }
        store.record_attempt(&delivery.id, &body, &attempt, now).await?;
    }
    Ok(())
}

/// One attempt: POSTs the signed body and reads the answer's status.
async fn send(
    client: &reqwest::Client,
    config: &WebhookConfig,
    delivery: &Delivery,
    body: &str,
    now: Timestamp,
) -> Attempt {
    let attempt = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
    // After the last attempt: never due again (it stays in the log as given up).
    let retry_at = if attempt >= config.max_attempts {
        None
    } else {
        Some(Timestamp(now.0.saturating_add(
            i64::try_from(backoff(config.retry_after, attempt).as_millis()).unwrap_or(i64::MAX),
        )))
    };
    let answer = client
        .post(&config.url)
        .header("content-type", "application/json")
        .header("muster-delivery", &delivery.id)
        .header("muster-signature", signature(&config.secret, now.as_secs(), body))
        .body(body.to_owned())
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => Attempt {
            delivered: true,
            status: Some(response.status().as_u16()),
            error: None,
            next_attempt_at: None,
        },
        Ok(response) => Attempt {
            delivered: false,
            status: Some(response.status().as_u16()),
            error: Some(format!("the receiver answered {}", response.status())),
            next_attempt_at: retry_at,
        },
        Err(e) => Attempt {
            delivered: false,
            status: None,
            error: Some(if e.is_timeout() {
                "the receiver did not answer in time".to_owned()
            } else if e.is_connect() {
                "the receiver could not be reached".to_owned()
            } else {
                "the request failed".to_owned()
            }),
            next_attempt_at: retry_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 5), Duration::from_secs(160));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_time_and_body() {
        // Computed independently (Python's hmac module).
        assert_eq!(
            signature("Jefe", 1_700_000_000, "{\"a\":1}"),
            "t=1700000000,v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        let sig = signature("Jefe", 1_700_000_000, "{\"a\":1}");
        assert_ne!(sig, signature("Jeff", 1_700_000_000, "{\"a\":1}"));
        assert_ne!(sig, signature("Jefe", 1_700_000_001, "{\"a\":1}"));
    }
}
