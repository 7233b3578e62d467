//! Persistence: merged documents (canonical), the `reports` projection (derived), the feed
//! sequence, what each device follows, and quarantined documents.
//!
//! One code path for both databases, through sqlx's `Any` driver: SQLite (the default, a
//! file, WAL + `synchronous=FULL`) or PostgreSQL (when `DATABASE_URL` says `postgres://`).
//! Queries are written with `$n` placeholders and rewritten to SQLite's `?n`; the few
//! statements that differ (row locks) are chosen by [`Backend`]. Migrations live per
//! dialect under `migrations/sqlite` and `migrations/postgres`.
//!
//! # Writing
//!
//! [`Store::commit_together`] is the only writer of documents; `crate::sync::Committer`
//! calls it with merges made outside any lock (they are CPU work), several requests'
//! merges in one transaction and one durable flush. That transaction re-reads the stored heads (PostgreSQL:
//! `FOR UPDATE`, so other instances wait), and stores a request only if nobody changed
//! its documents in between; otherwise that request merges again. New documents
//! are inserted with `ON CONFLICT DO NOTHING`; losing that race also means merging again.
//! Every stored document takes the next numbers of the single-row `sync_counter`, which
//! is locked until commit, so feed sequence numbers become visible in increasing order on
//! every instance: a device that has seen sequence `n` has seen everything before it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app::desk::{IncidentRow, QuarantinedDoc};
use app::domain::access::{Ownership, Role, Viewer};
use app::domain::{Priority, Report, ReportId, Severity, Status, Timestamp};
use app::protocol::ActionRow;
use sha2::Digest;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use tokio::sync::Mutex;

use crate::cpu::CpuPool;

mod accounts;
mod documents;
mod drills;
mod escalation;
mod export;
mod feed;
mod lists;
mod photos;
mod projection;
mod webhooks;

pub use documents::{Batch, QUARANTINE_REASON, Sender, StoredDoc, Write, Writer, following_key};
pub use feed::FeedRow;
pub use photos::{Appended, Held};
pub use projection::Projection;
pub use webhooks::{Attempt, Delivery};

#[cfg(test)]
pub(crate) use documents::ZSTD_MAGIC;
pub use documents::pack;
use documents::{Placed, unpack};
use projection::ACTION_ROWS_PER_STATEMENT;

/// A database error, with what was being done.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action}: {source}")]
pub struct DbError {
    action: &'static str,
    /// Shared, so one failed group commit can answer every request in it.
    #[source]
    source: Arc<sqlx::Error>,
}

pub(crate) trait Context<T> {
    fn context(self, action: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, action: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError {
            action,
            source: Arc::new(source),
        })
    }
}

/// Reads every row of `rows` as a `T` (its `sqlx::FromRow`): one struct per query, so a
/// column's name and type are written once.
pub(crate) fn rows_of<T>(
    rows: Result<Vec<AnyRow>, sqlx::Error>,
    action: &'static str,
) -> Result<Vec<T>, DbError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    rows.context(action)?
        .iter()
        .map(T::from_row)
        .collect::<Result<_, _>>()
        .context(action)
}

/// Reads one row as a `T` (see [`rows_of`]).
pub(crate) fn row_of<T>(row: Result<AnyRow, sqlx::Error>, action: &'static str) -> Result<T, DbError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    T::from_row(&row.context(action)?).context(action)
}

/// Reads an optional row as a `T` (see [`rows_of`]).
pub(crate) fn maybe_row_of<T>(
    row: Result<Option<AnyRow>, sqlx::Error>,
    action: &'static str,
) -> Result<Option<T>, DbError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    row.context(action)?
        .as_ref()
        .map(T::from_row)
        .transpose()
        .context(action)
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names, if supported.
    #[must_use]
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; serialising commits here avoids busy-waiting on its lock.
    sqlite_writer: Arc<Mutex<()>>,
    /// The CPU pool: merges and password hashing (see [`CpuPool`]).
    cpu: CpuPool,
    /// The reference lists' version as last read, and when: every sync asks for it and
    /// the lists rarely change (see [`Store::lists_version`]).
    lists_version: Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and runs pending migrations.
    #[tracing::instrument(name = "db.open", skip_all)]
    pub async fn open(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| DbError {
            action: "reading DATABASE_URL",
            source: Arc::new(sqlx::Error::Configuration(
                "only sqlite: and postgres:// URLs are supported".into(),
            )),
        })?;
        let pool = match backend {
            Backend::Sqlite => open_sqlite(url).await?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?,
        };
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(|e| DbError {
            action: "running migrations",
            source: Arc::new(e.into()),
        })?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            pool,
            backend,
            sqlite_writer: Arc::new(Mutex::new(())),
            cpu: CpuPool::new(cores),
            lists_version: Arc::default(),
        })
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for queries in flight).
    #[tracing::instrument(name = "db.close", skip_all)]
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for the other modules' statements.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// On SQLite, the process's writer lock (one writer at a time, without busy-waiting
    /// on SQLite's own lock); PostgreSQL needs none.
    pub(crate) async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The CPU pool this store's work (and the merges for it) runs on.
    #[must_use]
    pub fn cpu(&self) -> &CpuPool {
        &self.cpu
    }

    /// The statement in this backend's placeholder syntax.
    pub(crate) fn sql(&self, text: &str) -> String {
        match self.backend {
            Backend::Postgres => text.to_owned(),
            Backend::Sqlite => text.replace('$', "?"),
        }
    }

    /// Whether the database answers.
    #[tracing::instrument(name = "db.ping", skip_all)]
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging the database")?;
        Ok(())
    }

    /// `template` with `{ids}` replaced by `n` placeholders, in this backend's syntax.
    fn sql_for_ids(&self, template: &str, n: usize) -> String {
        let list = (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        self.sql(&template.replace("{ids}", &list))
    }
}

/// The SQL condition for "`viewer` may read this row of `reports`" (aliased `table`), the
/// mirror of [`Viewer::can_read`]: the viewer's user id is bound as parameter
/// `$(first - 1)`, and the returned team ids are to be bound from `$first` on.
pub(crate) fn read_filter(viewer: &Viewer, table: &str, first: usize) -> (String, Vec<String>) {
    let owner = format!("{table}.owner_id = ${}", first - 1);
    if viewer.role == Role::Admin {
        return (format!("({owner} OR 1 = 1)"), Vec::new());
    }
    if viewer.teams.is_empty() {
        return (owner, Vec::new());
    }
    let placeholders: Vec<String> = (0..viewer.teams.len())
        .map(|i| format!("${}", first + i))
        .collect();
    (
        format!("({owner} OR {table}.team_id IN ({}))", placeholders.join(", ")),
        viewer.teams.iter().map(ToString::to_string).collect(),
    )
}

/// Most rows one multi-row statement writes (18 columns × 100 stays far below either
/// database's limit on bound parameters).
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `columns` placeholders.
fn values_list(rows: usize, columns: usize) -> String {
    typed_values_list(rows, &vec![None; columns])
}

/// [`values_list`] with the given columns cast to a type (`Some("TEXT")`), for columns
/// that may be bound as NULL.
///
/// sqlx 0.8.6's `Any` driver sends a NULL `f64` to PostgreSQL as a NULL `float4` (its
/// NULL mapping swaps `Real` and `Double`), and PostgreSQL keeps the parameter types a
/// statement was first prepared with: a later 8-byte `float8` on that connection then
/// fails with "incorrect binary data format in bind parameter". So nullable numbers are
/// bound as text (Rust prints the shortest text that reads back as the same `f64`) and
/// cast here; nullable text is cast too, so its type never depends on the first binding.
fn typed_values_list(rows: usize, columns: &[Option<&str>]) -> String {
    let n = columns.len();
    (0..rows)
        .map(|r| {
            let row = columns
                .iter()
                .enumerate()
                .map(|(c, cast)| {
                    let param = format!("${}", r * n + c + 1);
                    match cast {
                        Some(ty) => format!("CAST({param} AS {ty})"),
                        None => param,
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn open_sqlite(url: &str) -> Result<AnyPool, DbError> {
    let (path, query) = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split_once('?')
        .map_or(
            (
                url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"),
                None,
            ),
            |(p, q)| (p, Some(q)),
        );
    if path != ":memory:"
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| DbError {
            action: "creating the data folder",
            source: Arc::new(sqlx::Error::Io(e)),
        })?;
    }
    let url = match query {
        Some(q) if q.contains("mode=") => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    };
    AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
                     PRAGMA busy_timeout = 10000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .context("opening the database")
}

/// A query with every id bound in order (for [`Store::sql_for_ids`] statements).
fn bind_ids<'q>(
    sql: &'q str,
    ids: &[ReportId],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter()
        .fold(sqlx::query(sql), |query, id| query.bind(id.to_string()))
}
