//! The feed: what changed since a device's cursor among the reports it follows.

use super::*;

/// What a device is told about a followed report that changed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    /// The report.
    pub id: ReportId,
    /// Its feed sequence number.
    pub seq: i64,
    /// The stored document.
    pub doc: Vec<u8>,
    /// The heads the server last knew the device to have, space-separated hex.
    pub known_heads: String,
}

impl Store {
    /// The last feed sequence number committed.
    #[tracing::instrument(name = "db.current_seq", skip_all)]
    pub async fn current_seq(&self) -> Result<i64, DbError> {
        sqlx::query_scalar("SELECT seq FROM sync_counter WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .context("reading the feed position")
    }

    /// Reports `device` follows that changed after `since` and up to `until`, oldest
    /// first, at most `limit`. Left out: quarantined documents, and documents whose heads
    /// the device already holds (such as the ones it just pushed). Whether its person may
    /// still read each one is for the caller to check (`sync::Exchange`): done in SQL, the
    /// permission filter made PostgreSQL scan every report of the person's teams on each
    /// sync.
    ///
    /// The join order is chosen here, not by the query planner: see `feed_sql`.
    #[tracing::instrument(name = "db.feed", skip_all, fields(since, until, n))]
    pub async fn feed(
        &self,
        device: uuid::Uuid,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<FeedRow>, DbError> {
        let from_changes = until.saturating_sub(since) <= FEED_FROM_CHANGES;
        #[derive(sqlx::FromRow)]
        struct Row {
            report_id: String,
            seq: i64,
            doc: Vec<u8>,
            known_heads: String,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql(feed_sql(self.backend, from_changes)))
                .bind(device.to_string())
                .bind(since)
                .bind(until)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await,
            "reading the feed",
        )?;
        tracing::Span::current().record("n", rows.len());
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(FeedRow {
                    id: r.report_id.parse().ok()?,
                    seq: r.seq,
                    doc: unpack(r.doc),
                    known_heads: r.known_heads,
                })
            })
            .collect())
    }

    /// Records the heads `device` now holds (or will, once it stores the answer) for
    /// each report.
    #[tracing::instrument(name = "db.mark_known", skip_all, fields(n = known.len()))]
    pub async fn mark_known(&self, device: uuid::Uuid, known: &[(ReportId, String)]) -> Result<(), DbError> {
        if known.is_empty() {
            return Ok(());
        }
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        for chunk in known.chunks(ROWS_PER_STATEMENT) {
            // Only for reports that exist (the `WHERE` also tells SQLite's parser that
            // `ON CONFLICT` belongs to the `INSERT`).
            let sql = self.sql(&format!(
                "INSERT INTO following (device_id, report_id, known_heads)
                 SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) AS v
                 WHERE EXISTS (SELECT 1 FROM documents d WHERE d.report_id = v.column2)
                 ON CONFLICT (device_id, report_id) DO UPDATE SET known_heads = excluded.known_heads",
                values_list(chunk.len(), 3)
            ));
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, (id, heads)| {
                    q.bind(device.to_string())
                        .bind(id.to_string())
                        .bind(heads.clone())
                })
                .execute(&mut *tx)
                .await
                .context("recording what the device holds")?;
        }
        tx.commit().await.context("committing")?;
        Ok(())
    }
}

/// Up to this many feed positions since a device's cursor, the feed starts from the
/// changed documents (one lookup in `following` per change); beyond it, from the reports
/// the device follows (one lookup in `documents` per followed report). Either way the cost
/// is bounded by what is looked up, whatever the planner's statistics say: PostgreSQL,
/// left to choose with the statistics of a freshly filled table, joined every changed
/// document against every followed report while devices uploaded their first reports
/// (the W1 benchmark shows it).
pub(super) const FEED_FROM_CHANGES: i64 = 256;

/// The feed query, with its join order fixed: on PostgreSQL by a `LATERAL` subquery that
/// `OFFSET 0` keeps from being flattened, on SQLite by `CROSS JOIN` (which SQLite never
/// reorders). `$1` device, `$2` since, `$3` until, `$4` limit.
pub(super) fn feed_sql(backend: Backend, from_changes: bool) -> &'static str {
    // What every variant selects, and keeps: not already held, not quarantined, oldest first.
    macro_rules! feed {
        ($from:literal, $where:literal) => {
            concat!(
                "SELECT d.report_id, d.seq, d.doc, f.known_heads ",
                $from,
                " WHERE ",
                $where,
                " AND d.heads <> f.known_heads
                  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.report_id = d.report_id)
                 ORDER BY d.seq LIMIT $4"
            )
        };
    }
    match (backend, from_changes) {
        (Backend::Postgres, true) => feed!(
            "FROM (SELECT report_id, seq, doc, heads FROM documents WHERE seq > $2 AND seq <= $3 OFFSET 0) d
             CROSS JOIN LATERAL (SELECT known_heads FROM following
                   WHERE device_id = $1 AND report_id = d.report_id OFFSET 0) f",
            "TRUE"
        ),
        (Backend::Postgres, false) => feed!(
            "FROM following f
             CROSS JOIN LATERAL (SELECT report_id, seq, doc, heads FROM documents
                   WHERE report_id = f.report_id AND seq > $2 AND seq <= $3 OFFSET 0) d",
            "f.device_id = $1"
        ),
        (Backend::Sqlite, true) => feed!(
            "FROM documents d CROSS JOIN following f",
            "f.device_id = $1 AND f.report_id = d.report_id AND d.seq > $2 AND d.seq <= $3"
        ),
        (Backend::Sqlite, false) => feed!(
            "FROM following f CROSS JOIN documents d",
            "f.device_id = $1 AND d.report_id = f.report_id AND d.seq > $2 AND d.seq <= $3"
        ),
    }
}
