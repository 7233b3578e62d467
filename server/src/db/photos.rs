//! Photo bytes: uploads in progress (chunks appended at the end of what is held), the
//! photos themselves (once per SHA-256) and which report may show which.

use app::domain::{PhotoRef, ReportId, Timestamp};

use super::{Context, DbError, Store, rows_of};

/// How long an abandoned upload's chunks are kept.
const ABANDONED_AFTER_MS: i64 = 7 * 24 * 3_600_000;

/// What the server holds of one photo of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Stored and verified: the report shows it.
    Stored,
    /// This many bytes of an upload in progress (0: none yet).
    Partial(u64),
}

/// The result of appending a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended; the server now holds this many bytes.
    To(u64),
    /// Not at the end of what is held (another upload of it moved on): resume here.
    Elsewhere(u64),
}

impl Store {
    /// What is held of `sha256` for `report`.
    #[tracing::instrument(name = "db.photo_held", skip_all)]
    pub async fn photo_held(&self, report: ReportId, sha256: &str) -> Result<Held, DbError> {
        if self.photo_stored(report, sha256).await? {
            return Ok(Held::Stored);
        }
        self.partial_len(report, sha256).await.map(Held::Partial)
    }

    /// Whether `sha256` is stored for `report`.
    #[tracing::instrument(name = "db.photo_stored", skip_all)]
    pub async fn photo_stored(&self, report: ReportId, sha256: &str) -> Result<bool, DbError> {
        let stored = sqlx::query(
            &self.sql("SELECT 1 AS stored FROM report_photos WHERE report_id = $1 AND sha256 = $2"),
        )
        .bind(report.to_string())
        .bind(sha256.to_owned())
        .fetch_optional(&self.pool)
        .await
        .context("reading a photo's state")?;
        Ok(stored.is_some())
    }

    async fn partial_len(&self, report: ReportId, sha256: &str) -> Result<u64, DbError> {
        let held: i64 = sqlx::query_scalar(&self.sql(
            "SELECT CAST(COALESCE(SUM(LENGTH(bytes)), 0) AS BIGINT) AS held
             FROM photo_chunks WHERE report_id = $1 AND sha256 = $2",
        ))
        .bind(report.to_string())
        .bind(sha256.to_owned())
        .fetch_one(&self.pool)
        .await
        .context("reading an upload's progress")?;
        Ok(u64::try_from(held).unwrap_or(0))
    }

    /// Bytes of unfinished photo uploads `person` has sent.
    #[tracing::instrument(name = "db.pending_photo_bytes", skip_all)]
    pub async fn pending_photo_bytes(&self, person: uuid::Uuid) -> Result<u64, DbError> {
        let held: i64 = sqlx::query_scalar(&self.sql(
            "SELECT CAST(COALESCE(SUM(LENGTH(bytes)), 0) AS BIGINT) AS held FROM photo_chunks WHERE user_id = $1",
        ))
        .bind(person.to_string())
        .fetch_one(&self.pool)
        .await
        .context("reading a person's unfinished uploads")?;
        Ok(u64::try_from(held).unwrap_or(0))
    }

    /// Appends `chunk` (sent by `by`) to the upload of `sha256` for `report` if `offset`
    /// is the end of what is held. Starting an upload also drops uploads abandoned for a week.
    #[tracing::instrument(name = "db.append_photo_chunk", skip_all)]
    pub async fn append_photo_chunk(
        &self,
        report: ReportId,
        sha256: &str,
        offset: u64,
        chunk: &[u8],
        by: uuid::Uuid,
        now: Timestamp,
    ) -> Result<Appended, DbError> {
        let _writer = self.writer().await;
        let held = self.partial_len(report, sha256).await?;
        if held != offset {
            return Ok(Appended::Elsewhere(held));
        }
        if offset == 0 {
            sqlx::query(&self.sql("DELETE FROM photo_chunks WHERE created_at < $1"))
                .bind(now.0.saturating_sub(ABANDONED_AFTER_MS))
                .execute(&self.pool)
                .await
                .context("dropping abandoned uploads")?;
        }
        // Two uploads of one photo racing to the same offset: the key lets one in.
        let inserted = sqlx::query(&self.sql(
            "INSERT INTO photo_chunks (report_id, sha256, start_at, bytes, created_at, user_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        ))
        .bind(report.to_string())
        .bind(sha256.to_owned())
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(chunk.to_vec())
        .bind(now.0)
        .bind(by.to_string())
        .execute(&self.pool)
        .await
        .context("storing an upload's chunk")?
        .rows_affected();
        if inserted == 0 {
            return Ok(Appended::Elsewhere(self.partial_len(report, sha256).await?));
        }
        Ok(Appended::To(offset + chunk.len() as u64))
    }

    /// The bytes of the upload in progress, in order.
    #[tracing::instrument(name = "db.uploaded_bytes", skip_all)]
    pub async fn uploaded_bytes(&self, report: ReportId, sha256: &str) -> Result<Vec<u8>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Chunk {
            start_at: i64,
            bytes: Vec<u8>,
        }
        let chunks: Vec<Chunk> = rows_of(
            sqlx::query(&self.sql(
                "SELECT start_at, bytes FROM photo_chunks WHERE report_id = $1 AND sha256 = $2
                 ORDER BY start_at",
            ))
            .bind(report.to_string())
            .bind(sha256.to_owned())
            .fetch_all(&self.pool)
            .await,
            "reading an upload",
        )?;
        let mut bytes = Vec::new();
        for chunk in &chunks {
            // Chunks are only ever appended at the end, so they are contiguous; a gap
            // would make the hash check fail anyway.
            debug_assert_eq!(chunk.start_at, i64::try_from(bytes.len()).unwrap_or(-1));
            bytes.extend_from_slice(&chunk.bytes);
        }
        Ok(bytes)
    }

    /// Drops the upload in progress (its bytes were refused).
    #[tracing::instrument(name = "db.discard_upload", skip_all)]
    pub async fn discard_upload(&self, report: ReportId, sha256: &str) -> Result<(), DbError> {
        let _writer = self.writer().await;
        sqlx::query(&self.sql("DELETE FROM photo_chunks WHERE report_id = $1 AND sha256 = $2"))
            .bind(report.to_string())
            .bind(sha256.to_owned())
            .execute(&self.pool)
            .await
            .context("dropping a refused upload")?;
        Ok(())
    }

    /// Stores a verified photo for `report` (its bytes once, however many reports show
    /// it) and drops its upload, in one transaction.
    #[tracing::instrument(name = "db.store_photo", skip_all)]
    pub async fn store_photo(
        &self,
        report: ReportId,
        photo: &PhotoRef,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await.context("storing a photo")?;
        sqlx::query(&self.sql(
            "INSERT INTO photos (sha256, bytes, size, width, height, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
        ))
        .bind(photo.sha256.clone())
        .bind(bytes)
        .bind(i64::try_from(photo.size).unwrap_or(i64::MAX))
        .bind(i64::from(photo.width))
        .bind(i64::from(photo.height))
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .context("storing a photo")?;
        sqlx::query(&self.sql(
            "INSERT INTO report_photos (report_id, sha256, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (report_id, sha256) DO NOTHING",
        ))
        .bind(report.to_string())
        .bind(photo.sha256.clone())
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .context("linking a photo to its report")?;
        sqlx::query(&self.sql("DELETE FROM photo_chunks WHERE report_id = $1 AND sha256 = $2"))
            .bind(report.to_string())
            .bind(photo.sha256.clone())
            .execute(&mut *tx)
            .await
            .context("dropping a finished upload")?;
        tx.commit().await.context("storing a photo")
    }

    /// The bytes of a photo `report` shows, if it is stored for it.
    #[tracing::instrument(name = "db.photo", skip_all)]
    pub async fn photo(&self, report: ReportId, sha256: &str) -> Result<Option<Vec<u8>>, DbError> {
        sqlx::query_scalar(&self.sql(
            "SELECT p.bytes FROM report_photos r JOIN photos p ON p.sha256 = r.sha256
             WHERE r.report_id = $1 AND r.sha256 = $2",
        ))
        .bind(report.to_string())
        .bind(sha256.to_owned())
        .fetch_optional(&self.pool)
        .await
        .context("reading a photo")
    }

    /// The hashes of the photos stored for `report`.
    #[tracing::instrument(name = "db.stored_photos", skip_all)]
    pub async fn stored_photos(&self, report: ReportId) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(&self.sql("SELECT sha256 FROM report_photos WHERE report_id = $1"))
            .bind(report.to_string())
            .fetch_all(&self.pool)
            .await
            .context("listing a report's photos")
    }
}
