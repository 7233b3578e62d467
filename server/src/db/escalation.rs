//! Escalation: notifications raised by merges, their marks and who read them.

use super::*;

impl Store {
    /// Records each P1 or P2 that a merged report reaches for the first time, and for each
    /// new one notifies the report's team's supervisors and queues a webhook delivery, all
    /// in the merge's transaction.
    pub(super) async fn escalate(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        changed: &[(&Placed, Ownership)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let raised: Vec<(String, i64)> = changed
            .iter()
            .filter_map(|(a, _)| {
                let report = &a.write.report;
                report
                    .escalates()
                    .then(|| (report.id.to_string(), report.priority().rank()))
            })
            .collect();
        if raised.is_empty() {
            return Ok(());
        }
        // Only the rows inserted now are new escalations: a report that was already at
        // this priority adds nothing (and costs no further statement).
        let mut new: Vec<String> = Vec::new();
        for rows in raised.chunks(ACTION_ROWS_PER_STATEMENT) {
            let sql = self.sql(&format!(
                "INSERT INTO escalations (report_id, priority_rank, raised_at) VALUES {}
                 ON CONFLICT (report_id, priority_rank) DO NOTHING RETURNING report_id",
                values_list(rows.len(), 3)
            ));
            let inserted: Vec<String> = rows
                .iter()
                .fold(sqlx::query_scalar(&sql), |q, (id, rank)| {
                    q.bind(id.clone()).bind(*rank).bind(now.0)
                })
                .fetch_all(&mut **tx)
                .await
                .context("recording escalations")?;
            new.extend(inserted);
        }
        for ids in new.chunks(ACTION_ROWS_PER_STATEMENT) {
            // Both statements read the escalations of these reports raised by this merge
            // (`raised_at = now`), bound by `bind_raised`.
            let these = (2..ids.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let raised_now = format!("e.raised_at = $1 AND e.report_id IN ({these})");
            let notify = self.sql(&format!(
                "INSERT INTO notifications (id, user_id, report_id, priority_rank, created_at)
                 SELECT e.report_id || ':' || CAST(e.priority_rank AS TEXT) || ':' || u.id, u.id,
                        e.report_id, e.priority_rank, e.raised_at
                 FROM escalations e
                 JOIN reports r ON r.id = e.report_id
                 JOIN memberships m ON m.team_id = r.team_id
                 JOIN users u ON u.id = m.user_id
                 WHERE {raised_now} AND u.role = 'supervisor' AND u.active = 1
                 ON CONFLICT (id) DO NOTHING RETURNING user_id"
            ));
            #[derive(sqlx::FromRow)]
            struct Told {
                user_id: String,
            }
            let told: Vec<Told> = rows_of(
                bind_raised(&notify, now, ids).fetch_all(&mut **tx).await,
                "notifying supervisors",
            )?;
            let mut users: Vec<String> = told.into_iter().map(|t| t.user_id).collect();
            users.sort_unstable();
            users.dedup();
            bump_notice_marks(self.backend, tx, &users).await?;
            let queue = self.sql(&format!(
                "INSERT INTO webhook_deliveries (id, report_id, priority_rank, created_at, next_attempt_at)
                 SELECT e.report_id || ':' || CAST(e.priority_rank AS TEXT), e.report_id, e.priority_rank,
                        e.raised_at, e.raised_at
                 FROM escalations e WHERE {raised_now}
                 ON CONFLICT (id) DO NOTHING"
            ));
            bind_raised(&queue, now, ids)
                .execute(&mut **tx)
                .await
                .context("queueing webhook deliveries")?;
        }
        Ok(())
    }

    /// A number that changes whenever `user`'s notifications change (0 if they never had
    /// any): one primary-key lookup, so every sync can ask.
    #[tracing::instrument(name = "db.notice_mark", skip_all)]
    pub async fn notice_mark(&self, user: uuid::Uuid) -> Result<i64, DbError> {
        let version: Option<i64> =
            sqlx::query_scalar(&self.sql("SELECT version FROM notice_marks WHERE user_id = $1"))
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await
                .context("reading a notification mark")?;
        Ok(version.unwrap_or(0))
    }

    /// `user`'s unread notifications, newest first (at most [`app::protocol::MAX_NOTICES`]).
    #[tracing::instrument(name = "db.notices", skip_all)]
    pub async fn notices(&self, user: uuid::Uuid) -> Result<Vec<app::protocol::Notice>, DbError> {
        let sql = self.sql(&format!(
            // The newest first straight from the index, then their titles: a supervisor
            // with thousands of unread alerts costs the same as one with fifty.
            "SELECT n.id, n.report_id, n.priority_rank, n.created_at, r.title
             FROM (SELECT id, report_id, priority_rank, created_at FROM notifications
                   WHERE user_id = $1 AND read_at IS NULL ORDER BY created_at DESC LIMIT {}) n
             JOIN reports r ON r.id = n.report_id
             ORDER BY n.created_at DESC, n.id",
            app::protocol::MAX_NOTICES
        ));
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            report_id: String,
            title: String,
            priority_rank: i64,
            created_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&sql)
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await,
            "reading notifications",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(app::protocol::Notice {
                    id: r.id,
                    report_id: r.report_id.parse().ok()?,
                    title: r.title,
                    priority: Priority::from_rank(r.priority_rank)?,
                    raised_at: Timestamp(r.created_at),
                })
            })
            .collect())
    }

    /// Marks `user`'s notification `id` read; whether there was such an unread one.
    #[tracing::instrument(name = "db.mark_notice_read", skip_all)]
    pub async fn mark_notice_read(
        &self,
        user: uuid::Uuid,
        id: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let done =
            sqlx::query(&self.sql(
                "UPDATE notifications SET read_at = $1 WHERE id = $2 AND user_id = $3 AND read_at IS NULL",
            ))
            .bind(now.0)
            .bind(id.to_owned())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("marking a notification read")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_notice_marks(self.backend, &mut tx, &[user.to_string()]).await?;
        tx.commit().await.context("committing")?;
        Ok(true)
    }
}

/// Bumps the notification marks of `users` (see [`Store::notice_mark`]).
pub(super) async fn bump_notice_marks(
    backend: Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    users: &[String],
) -> Result<(), DbError> {
    for users in users.chunks(ACTION_ROWS_PER_STATEMENT) {
        let mut sql = format!(
            "INSERT INTO notice_marks (user_id, version) VALUES {}
             ON CONFLICT (user_id) DO UPDATE SET version = notice_marks.version + 1",
            (1..=users.len())
                .map(|i| format!("(${i}, 1)"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if backend == Backend::Sqlite {
            sql = sql.replace('$', "?");
        }
        users
            .iter()
            .fold(sqlx::query(&sql), |q, u| q.bind(u.clone()))
            .execute(&mut **tx)
            .await
            .context("marking notifications changed")?;
    }
    Ok(())
}

/// `sql` with the escalation time `now` as `$1` and report ids `ids` after it.
pub(super) fn bind_raised<'q>(
    sql: &'q str,
    now: Timestamp,
    ids: &[String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter()
        .fold(sqlx::query(sql).bind(now.0), |query, id| query.bind(id.clone()))
}
