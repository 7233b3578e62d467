//! Persistence: merged documents (canonical) and the `reports` projection (derived),
//! written together in one transaction.
//!
//! SQLite is opened in WAL mode with `synchronous=FULL`, so a commit that returned is on
//! disk before the device is told so. Writers are serialised by [`Store::write_lock`]: a
//! sync reads the stored documents, merges and commits while holding it, so two syncs of
//! the same report can never overwrite each other's merge.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use app::desk::IncidentRow;
use app::domain::{Report, ReportId, Severity, Status, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use crate::sync::Merged;

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct DbError {
    action: &'static str,
    #[source]
    source: sqlx::Error,
}

trait Context<T> {
    fn context(self, action: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, action: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError { action, source })
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    write: std::sync::Arc<Mutex<()>>,
}

/// A stored document.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    /// The merged document.
    pub doc: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and runs pending migrations.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .context("parsing DATABASE_URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| DbError {
                action: "creating the data folder",
                source: sqlx::Error::Io(e),
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .context("opening the database")?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| DbError {
                action: "running migrations",
                source: e.into(),
            })?;
        Ok(Self {
            pool,
            write: std::sync::Arc::new(Mutex::new(())),
        })
    }

    /// Exclusive right to read-merge-write documents.
    pub async fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging the database")?;
        Ok(())
    }

    /// The stored document of a report, if any.
    pub async fn load_doc(&self, id: ReportId) -> Result<Option<StoredDoc>, DbError> {
        let row = sqlx::query("SELECT doc FROM documents WHERE report_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .context("loading a document")?;
        Ok(row.map(|r| StoredDoc { doc: r.get("doc") }))
    }

    /// Stores every changed merge, document and projection, in one transaction.
    pub async fn commit(&self, merged: &[Merged], now: Timestamp) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        for m in merged.iter().filter(|m| m.changed) {
            let id = m.report.id.to_string();
            sqlx::query(
                "INSERT INTO documents (report_id, doc, heads, schema_version, change_count, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (report_id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
                   schema_version = excluded.schema_version, change_count = excluded.change_count,
                   updated_at = excluded.updated_at",
            )
            .bind(&id)
            .bind(&m.doc)
            .bind(m.heads.join(" "))
            .bind(i64::try_from(app::document::SCHEMA_VERSION).unwrap_or(i64::MAX))
            .bind(i64::try_from(m.change_count).unwrap_or(i64::MAX))
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .context("storing a document")?;
            project(&mut tx, &m.report, m.conflicts.len(), now).await?;
        }
        tx.commit().await.context("committing")?;
        Ok(())
    }

    /// The projection, newest report first.
    pub async fn list(&self) -> Result<Vec<IncidentRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, title, category, severity, status, reporter, occurred_at, place, latitude, longitude
             FROM reports ORDER BY reported_at DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing incidents")?;
        Ok(rows.iter().filter_map(row_to_incident).collect())
    }

    /// The raw projection row of a report, for tests and exports.
    pub async fn projection(&self, id: ReportId) -> Result<Option<Projection>, DbError> {
        let row = sqlx::query("SELECT * FROM reports WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .context("reading a projection row")?;
        Ok(row.map(|r| Projection {
            title: r.get("title"),
            what_happened: r.get("what_happened"),
            category: r.get("category"),
            severity: r.get("severity"),
            status: r.get("status"),
            occurred_at: r.get("occurred_at"),
            place: r.get("place"),
            latitude: r.get("latitude"),
            reporter: r.get("reporter"),
            people_involved: r.get("people_involved"),
            immediate_actions: r.get("immediate_actions"),
            conflict_count: r.get("conflict_count"),
        }))
    }

    /// How many documents are stored, and their total size in bytes.
    pub async fn document_stats(&self) -> Result<(i64, i64), DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(doc)), 0) AS bytes FROM documents")
            .fetch_one(&self.pool)
            .await
            .context("counting documents")?;
        Ok((row.get("n"), row.get("bytes")))
    }
}

/// A projection row as stored, for checking it matches the document.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Projection {
    pub title: String,
    pub what_happened: String,
    pub category: String,
    pub severity: String,
    pub status: String,
    pub occurred_at: i64,
    pub place: String,
    pub latitude: Option<f64>,
    pub reporter: String,
    pub people_involved: String,
    pub immediate_actions: String,
    pub conflict_count: i64,
}

impl Projection {
    /// What the projection of `report` must hold.
    #[must_use]
    pub fn of(report: &Report, conflict_count: usize) -> Self {
        Self {
            title: report.title.clone(),
            what_happened: report.what_happened.clone(),
            category: report.category.0.clone(),
            severity: report.severity.as_str().to_owned(),
            status: report.status.as_str().to_owned(),
            occurred_at: report.occurred_at.0,
            place: report.location.place.clone(),
            latitude: report.location.gps.map(|g| g.latitude),
            reporter: report.reporter.clone(),
            people_involved: serde_json::to_string(&report.people_involved).unwrap_or_default(),
            immediate_actions: report.immediate_actions.clone(),
            conflict_count: i64::try_from(conflict_count).unwrap_or(i64::MAX),
        }
    }
}

async fn project(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    report: &Report,
    conflicts: usize,
    now: Timestamp,
) -> Result<(), DbError> {
    let p = Projection::of(report, conflicts);
    let gps = report.location.gps;
    sqlx::query(
        "INSERT OR REPLACE INTO reports (id, title, what_happened, category, severity, severity_rank, status,
           occurred_at, reported_at, place, latitude, longitude, accuracy_m, reporter, people_involved,
           immediate_actions, conflict_count, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(report.id.to_string())
    .bind(p.title)
    .bind(p.what_happened)
    .bind(p.category)
    .bind(p.severity)
    .bind(report.severity.rank())
    .bind(p.status)
    .bind(p.occurred_at)
    .bind(report.reported_at.0)
    .bind(p.place)
    .bind(gps.map(|g| g.latitude))
    .bind(gps.map(|g| g.longitude))
    .bind(gps.map(|g| g.accuracy_m))
    .bind(p.reporter)
    .bind(p.people_involved)
    .bind(p.immediate_actions)
    .bind(p.conflict_count)
    .bind(now.0)
    .execute(&mut **tx)
    .await
    .context("projecting a report")?;
    Ok(())
}

fn row_to_incident(row: &sqlx::sqlite::SqliteRow) -> Option<IncidentRow> {
    let id: String = row.get("id");
    let place: String = row.get("place");
    let lat: Option<f64> = row.get("latitude");
    let lon: Option<f64> = row.get("longitude");
    let location = match (place.trim(), lat, lon) {
        ("", Some(lat), Some(lon)) => format!("{lat:.5}, {lon:.5}"),
        (place, _, _) => place.to_owned(),
    };
    Some(IncidentRow {
        id: id.parse().ok()?,
        title: row.get("title"),
        category: row.get("category"),
        severity: Severity::from_key(row.get("severity"))?,
        status: Status::from_key(row.get("status"))?,
        reporter: row.get("reporter"),
        occurred_at: Timestamp(row.get("occurred_at")),
        location,
    })
}
