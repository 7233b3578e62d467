//! The webhook outbox: deliveries due, attempts and their log.

use super::*;

impl Store {
    /// Webhook deliveries due at `now` (not delivered, attempts left), oldest first.
    #[tracing::instrument(name = "db.due_deliveries", skip_all)]
    pub async fn due_deliveries(&self, now: Timestamp, max_attempts: i64) -> Result<Vec<Delivery>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            report_id: String,
            priority_rank: i64,
            created_at: i64,
            body: Option<String>,
            attempts: i64,
            title: String,
            category: String,
            status: String,
            occurred_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(
                "SELECT d.id, d.report_id, d.priority_rank, d.created_at, d.body, d.attempts,
                        r.title, r.category, r.status, r.occurred_at
                 FROM webhook_deliveries d JOIN reports r ON r.id = d.report_id
                 WHERE d.delivered_at IS NULL AND d.attempts < $1 AND d.next_attempt_at <= $2
                 ORDER BY d.next_attempt_at LIMIT 20",
            ))
            .bind(max_attempts)
            .bind(now.0)
            .fetch_all(&self.pool)
            .await,
            "reading due webhook deliveries",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                id: r.id,
                report_id: r.report_id,
                priority_rank: r.priority_rank,
                created_at: Timestamp(r.created_at),
                body: r.body,
                attempts: r.attempts,
                title: r.title,
                category: r.category,
                status: r.status,
                occurred_at: Timestamp(r.occurred_at),
            })
            .collect())
    }

    /// Records one delivery attempt: its body (fixed at the first), the answer, and either
    /// success or when to try again.
    #[tracing::instrument(name = "db.record_attempt", skip_all)]
    pub async fn record_attempt(
        &self,
        id: &str,
        body: &str,
        outcome: &Attempt,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(&self.sql(
            "UPDATE webhook_deliveries SET body = $1, attempts = attempts + 1,
               delivered_at = $2, next_attempt_at = $3, last_status = $4, last_error = $5
             WHERE id = $6",
        ))
        .bind(body.to_owned())
        .bind(outcome.delivered.then_some(now.0))
        .bind(outcome.next_attempt_at.map_or(NEVER_DUE, |at| at.0))
        .bind(outcome.status.map(i64::from))
        .bind(outcome.error.clone())
        .bind(id.to_owned())
        .execute(&self.pool)
        .await
        .context("recording a webhook attempt")?;
        Ok(())
    }

    /// The delivery log, newest first.
    #[tracing::instrument(name = "db.deliveries", skip_all)]
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<app::desk::DeliveryLine>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            report_id: String,
            priority_rank: i64,
            created_at: i64,
            attempts: i64,
            next_attempt_at: i64,
            delivered_at: Option<i64>,
            last_status: Option<i64>,
            last_error: Option<String>,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(
                "SELECT id, report_id, priority_rank, created_at, attempts, next_attempt_at, delivered_at,
                        last_status, last_error
                 FROM webhook_deliveries ORDER BY created_at DESC, id LIMIT $1",
            ))
            .bind(limit)
            .fetch_all(&self.pool)
            .await,
            "reading the webhook delivery log",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(app::desk::DeliveryLine {
                    id: r.id,
                    report_id: r.report_id.parse().ok()?,
                    priority: Priority::from_rank(r.priority_rank)?,
                    created_at: Timestamp(r.created_at),
                    attempts: r.attempts,
                    next_attempt_at: Some(r.next_attempt_at)
                        .filter(|at| *at != NEVER_DUE)
                        .map(Timestamp),
                    delivered_at: r.delivered_at.map(Timestamp),
                    last_status: r.last_status,
                    last_error: r.last_error,
                })
            })
            .collect())
    }
}

/// A webhook delivery due to be tried, with what its body says about the report.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `report:rank`; the receiver's key for ignoring a repeat.
    pub id: String,
    /// The report.
    pub report_id: String,
    /// The priority it reached (1 or 2).
    pub priority_rank: i64,
    /// When it was raised.
    pub created_at: Timestamp,
    /// The body, once fixed by the first attempt.
    pub body: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// The report's title, category, status and when it occurred (for the first body).
    pub title: String,
    /// Category key.
    pub category: String,
    /// Status key.
    pub status: String,
    /// When it occurred.
    pub occurred_at: Timestamp,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// The HTTP status, if there was an answer.
    pub status: Option<u16>,
    /// Why it failed (never the body).
    pub error: Option<String>,
    /// When to try again: `None` once delivered, or given up (no attempts left, or too
    /// old to send).
    pub next_attempt_at: Option<Timestamp>,
}

/// How the database marks a delivery that is never due again (`next_attempt_at` is a
/// plain number there, so the due-deliveries index serves one range scan).
pub(super) const NEVER_DUE: i64 = i64::MAX;
