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
//! [`Store::apply`] is the only writer of documents. It loads the stored documents, runs
//! the merges outside any lock (they are CPU work), then queues them for a group commit:
//! merges of concurrent requests are committed together, one transaction and one durable
//! flush for several requests. That transaction re-reads the stored heads (PostgreSQL:
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

use app::desk::{ActionRow, IncidentRow, QuarantinedDoc};
use app::domain::access::{Ownership, Role, Viewer};
use app::domain::{Priority, Report, ReportId, Severity, Status, Timestamp};
use app::merge::{MergeError, Merged};
use sha2::Digest;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, oneshot};

mod photos;
pub use photos::{Appended, Held};

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
    /// Merges are CPU work: at most one per core at a time, so a burst of devices queues
    /// instead of thrashing (and holding every request's documents in memory at once).
    cpu: Arc<tokio::sync::Semaphore>,
    /// Merges waiting to be committed together.
    group: Arc<Group>,
    /// The reference lists' version as last read, and when: every sync asks for it and
    /// the lists rarely change (see [`Store::lists_version`]).
    lists_version: Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// How long a read of the lists' version is reused. This instance's own changes to plans
/// and categories reach devices at once; another instance's within this time.
const LISTS_VERSION_TTL: Duration = Duration::from_secs(2);

/// Group commit: merges queue here; whoever holds `leader` commits all that queued.
#[derive(Debug, Default)]
struct Group {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    leader: Mutex<()>,
}

/// One request's merges, made against `stored`.
#[derive(Debug)]
struct Commit {
    writer: Writer,
    stored: Arc<HashMap<ReportId, StoredDoc>>,
    merged: Vec<Merged>,
}

/// Who a write is for: the device that will hold the result (it follows the reports), and
/// who reports it creates belong to. Server-side writers (desk edits of existing reports,
/// tests) may leave either out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Writer {
    /// The device's key in `following` (see [`following_key`]).
    pub device: Option<uuid::Uuid>,
    /// Owner and team of reports this write creates; never changed afterwards.
    pub owner: Ownership,
    /// Who pushed the changes, for the change receipts (`None`: written by the server
    /// itself).
    pub from: Option<Sender>,
}

/// Who pushed changes: the person, and from which sign-in (`None`: the desk).
#[derive(Debug, Clone, Copy)]
pub struct Sender {
    /// The person.
    pub user: uuid::Uuid,
    /// Their session, if they pushed from a device.
    pub session: Option<uuid::Uuid>,
}

/// A device's key in `following`: its id within its user's namespace, so a person who
/// learns someone else's device id cannot read or reset what that device follows.
#[must_use]
pub fn following_key(user: uuid::Uuid, device: uuid::Uuid) -> uuid::Uuid {
    uuid::Uuid::new_v5(&user, device.as_bytes())
}

/// A [`Commit`] waiting for its group, and where to send its outcome.
#[derive(Debug)]
struct Waiting {
    commit: Commit,
    reply: oneshot::Sender<Outcome>,
}

/// What a group commit tells each request: stored (and how), or merge again (`None`).
type Outcome = Result<Option<Vec<Applied>>, DbError>;

/// A stored document as loaded for merging.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    /// The merged document.
    pub doc: Vec<u8>,
    /// Its heads, space-separated hex.
    pub heads: String,
    /// Its feed sequence number.
    pub seq: i64,
    /// Held back for an administrator: never merged or served.
    pub quarantined: bool,
}

/// One report to merge and store: a pure function from the stored document (if any) to
/// the merged result. It may run more than once if another writer gets there first.
pub type MergeFn = Arc<dyn Fn(Option<&[u8]>) -> Result<Merged, MergeError> + Send + Sync>;

/// A report [`Store::apply`] will merge.
#[derive(Clone)]
pub struct Job {
    /// The report.
    pub id: ReportId,
    /// How to merge it.
    pub merge: MergeFn,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A merged and durably stored report.
#[derive(Debug)]
pub struct Applied {
    /// The merge.
    pub merged: Merged,
    /// Its feed sequence number after the commit.
    pub seq: i64,
}

/// Why [`Store::apply`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Some reports were refused (reason per report); nothing was stored.
    #[error("{} report(s) refused", .0.len())]
    Refused(Vec<(ReportId, String)>),
    /// The database failed; nothing was stored.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Other writers kept changing the same documents; nothing was stored.
    #[error("the documents kept changing while merging; try again")]
    Contended,
    /// The merge task failed outside the merge's own panic guard; nothing was stored.
    #[error("the merge could not run")]
    Internal,
}

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

/// What a refused quarantined report is told.
pub const QUARANTINE_REASON: &str = "this report is held for review on the server because its stored copy is damaged; \
     your changes are kept on this device";

const ATTEMPTS: usize = 8;

impl Store {
    /// Opens (creating if needed) the database at `url` and runs pending migrations.
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
            cpu: Arc::new(tokio::sync::Semaphore::new(cores)),
            group: Arc::default(),
            lists_version: Arc::default(),
        })
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for queries in flight).
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

    /// The stored document of a report, if any.
    pub async fn load_doc(&self, id: ReportId) -> Result<Option<StoredDoc>, DbError> {
        Ok(self.load_docs(&[id]).await?.remove(&id))
    }

    /// The stored documents among `ids`.
    #[tracing::instrument(name = "db.load_docs", skip_all, fields(n = ids.len()))]
    pub async fn load_docs(&self, ids: &[ReportId]) -> Result<HashMap<ReportId, StoredDoc>, DbError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = self.sql_for_ids(
            "SELECT d.report_id, d.doc, d.heads, d.seq,
               CAST(CASE WHEN q.report_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS quarantined
             FROM documents d LEFT JOIN quarantine q ON q.report_id = d.report_id
             WHERE d.report_id IN ({ids})",
            ids.len(),
        );
        let rows = bind_ids(&sql, ids)
            .fetch_all(&self.pool)
            .await
            .context("loading documents")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: String = r.get("report_id");
                Some((
                    id.parse().ok()?,
                    StoredDoc {
                        doc: unpack(r.get("doc")),
                        heads: r.get("heads"),
                        seq: r.get("seq"),
                        quarantined: r.get::<i64, _>("quarantined") != 0,
                    },
                ))
            })
            .collect())
    }

    /// `template` with `{ids}` replaced by `n` placeholders, in this backend's syntax.
    fn sql_for_ids(&self, template: &str, n: usize) -> String {
        let list = (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        self.sql(&template.replace("{ids}", &list))
    }

    /// Records that a report's stored document is damaged. Its document stays as it is,
    /// for an administrator; syncs of it are refused and the feed skips it.
    #[tracing::instrument(name = "db.quarantine", skip_all, fields(report = %id))]
    pub async fn quarantine(&self, id: ReportId, reason: &str, now: Timestamp) -> Result<(), DbError> {
        tracing::error!(report = %id, reason, "document quarantined");
        sqlx::query(&self.sql(
            "INSERT INTO quarantine (report_id, reason, detected_at) VALUES ($1, $2, $3)
             ON CONFLICT (report_id) DO NOTHING",
        ))
        .bind(id.to_string())
        .bind(reason.to_owned())
        .bind(now.0)
        .execute(&self.pool)
        .await
        .context("quarantining a document")?;
        Ok(())
    }

    /// Every quarantined document, newest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantinedDoc>, DbError> {
        let rows =
            sqlx::query("SELECT report_id, reason, detected_at FROM quarantine ORDER BY detected_at DESC")
                .fetch_all(&self.pool)
                .await
                .context("listing quarantined documents")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(QuarantinedDoc {
                    id: r.get::<String, _>("report_id").parse().ok()?,
                    reason: r.get("reason"),
                    detected_at: Timestamp(r.get("detected_at")),
                })
            })
            .collect())
    }

    /// Merges and durably stores every job, all or nothing; the writer's device (if any)
    /// follows every report and is known to hold the merged heads; reports it creates
    /// belong to the writer's owner and team. See the module docs for how
    /// concurrent writers (tasks or instances) are kept from losing each other's changes.
    #[tracing::instrument(name = "db.apply", skip_all, fields(n = jobs.len(), attempts))]
    pub async fn apply(
        &self,
        writer: Writer,
        jobs: Vec<Job>,
        now: Timestamp,
    ) -> Result<Vec<Applied>, ApplyError> {
        let ids: Vec<ReportId> = jobs.iter().map(|j| j.id).collect();
        let jobs = Arc::new(jobs);
        for attempt in 1..=ATTEMPTS {
            tracing::Span::current().record("attempts", attempt);
            let stored = Arc::new(self.load_docs(&ids).await?);
            let quarantined: Vec<(ReportId, String)> = stored
                .iter()
                .filter(|(_, s)| s.quarantined)
                .map(|(id, _)| (*id, QUARANTINE_REASON.to_owned()))
                .collect();
            if !quarantined.is_empty() {
                return Err(ApplyError::Refused(quarantined));
            }
            let results = {
                let (jobs, stored) = (Arc::clone(&jobs), Arc::clone(&stored));
                let _core = self.cpu.acquire().await.map_err(|_| ApplyError::Internal)?;
                tokio::task::spawn_blocking(move || {
                    jobs.iter()
                        .map(|j| {
                            let mut merged = (j.merge)(stored.get(&j.id).map(|s| s.doc.as_slice()))?;
                            if merged.changed {
                                merged.doc = pack(&merged.doc);
                            }
                            Ok(merged)
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|_| ApplyError::Internal)?
            };
            let mut merged = Vec::with_capacity(results.len());
            let mut refused = Vec::new();
            for (job, result) in jobs.iter().zip(results) {
                match result {
                    Ok(m) => merged.push(m),
                    Err(MergeError::Refused(reason)) => refused.push((job.id, reason)),
                    Err(MergeError::Poisoned(reason)) => {
                        self.quarantine(job.id, &reason, now).await?;
                        refused.push((job.id, QUARANTINE_REASON.to_owned()));
                    }
                }
            }
            if !refused.is_empty() {
                return Err(ApplyError::Refused(refused));
            }
            if let Some(applied) = self.commit(writer, Arc::clone(&stored), merged, now).await? {
                return Ok(applied);
            }
        }
        Err(ApplyError::Contended)
    }

    /// Commits merges made against `stored`, or returns `None` (storing nothing) if any of
    /// those documents changed since.
    ///
    /// Group commit: merges that finish while another commit is in flight wait for it, then
    /// the first of them commits them all in one transaction (one lock of the feed counter,
    /// one durable flush). Each request still succeeds or fails on its own.
    async fn commit(
        &self,
        writer: Writer,
        stored: Arc<HashMap<ReportId, StoredDoc>>,
        merged: Vec<Merged>,
        now: Timestamp,
    ) -> Outcome {
        let (reply, mut answer) = oneshot::channel();
        self.group
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Waiting {
                commit: Commit {
                    writer,
                    stored,
                    merged,
                },
                reply,
            });
        {
            let _leader = self.group.leader.lock().await;
            match answer.try_recv() {
                Ok(result) => return result,
                // The leader before us went away mid-commit: merge again (a merge that
                // did get committed is found unchanged and just acknowledged).
                Err(oneshot::error::TryRecvError::Closed) => return Ok(None),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch = std::mem::take(
                &mut *self
                    .group
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            self.commit_group(batch, now).await;
        }
        answer.await.unwrap_or(Ok(None))
    }

    /// Commits a group of waiting merges and answers each.
    #[tracing::instrument(name = "db.commit", skip_all, fields(requests = batch.len()))]
    async fn commit_group(&self, batch: Vec<Waiting>, now: Timestamp) {
        // Two requests of one group must not write the same report: the later one merges
        // again on top of the earlier one's result.
        let mut taken = std::collections::HashSet::new();
        let mut commits = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for Waiting { commit, reply } in batch {
            if commit.merged.iter().all(|m| taken.insert(m.report.id)) {
                commits.push(commit);
                replies.push(reply);
            } else {
                // Ignored send errors here and below: that request is gone.
                let _ = reply.send(Ok(None));
            }
        }
        match self.commit_together(commits, now).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// One transaction for several requests' merges (no report in two of them). Returns,
    /// per request, what was stored, or `None` if its documents changed since it loaded
    /// them (nothing of it is stored).
    async fn commit_together(
        &self,
        commits: Vec<Commit>,
        now: Timestamp,
    ) -> Result<Vec<Option<Vec<Applied>>>, DbError> {
        let _writer = match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        // A fixed order, so concurrent transactions lock rows in the same order.
        let mut ids: Vec<ReportId> = commits
            .iter()
            .flat_map(|c| c.merged.iter().map(|m| m.report.id))
            .collect();
        ids.sort_unstable();
        let mut current: HashMap<ReportId, String> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let lock = match self.backend {
                Backend::Postgres => " ORDER BY report_id FOR UPDATE",
                Backend::Sqlite => "",
            };
            let sql = self.sql_for_ids(
                &format!("SELECT report_id, heads FROM documents WHERE report_id IN ({{ids}}){lock}"),
                chunk.len(),
            );
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&mut *tx)
                .await
                .context("locking documents")?;
            current.extend(rows.iter().filter_map(|row| {
                let id: ReportId = row.get::<String, _>("report_id").parse().ok()?;
                Some((id, row.get::<String, _>("heads")))
            }));
        }
        // Requests whose documents someone changed since they were loaded merge again.
        let unchanged = |c: &Commit| {
            c.merged
                .iter()
                .all(|m| current.get(&m.report.id) == c.stored.get(&m.report.id).map(|s| &s.heads))
        };
        let commits: Vec<Option<Commit>> = commits.into_iter().map(|c| unchanged(&c).then_some(c)).collect();
        let changed = commits
            .iter()
            .flatten()
            .flat_map(|c| &c.merged)
            .filter(|m| m.changed)
            .count();
        let mut next_seq = 0;
        if changed > 0 {
            let row =
                sqlx::query(&self.sql("UPDATE sync_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq"))
                    .bind(i64::try_from(changed).unwrap_or(i64::MAX))
                    .fetch_one(&mut *tx)
                    .await
                    .context("taking feed sequence numbers")?;
            let last: i64 = row.get("seq");
            next_seq = last - i64::try_from(changed).unwrap_or(0) + 1;
        }
        let results: Vec<Option<(Writer, Vec<Applied>)>> = commits
            .into_iter()
            .map(|c| {
                let c = c?;
                let applied = c
                    .merged
                    .into_iter()
                    .map(|m| {
                        let stored = c.stored.get(&m.report.id);
                        let seq = if m.changed {
                            next_seq += 1;
                            next_seq - 1
                        } else {
                            stored.map_or(0, |s| s.seq)
                        };
                        Applied { merged: m, seq }
                    })
                    .collect::<Vec<_>>();
                Some((c.writer, applied))
            })
            .collect();
        // A few multi-row statements instead of three per report: each statement is a
        // round trip to the database (for SQLite, to its worker thread).
        let all = || results.iter().flatten().flat_map(|(_, applied)| applied.iter());
        let (known, new): (Vec<&Applied>, Vec<&Applied>) = all()
            .filter(|a| a.merged.changed)
            .partition(|a| current.contains_key(&a.merged.report.id));
        for chunk in known.chunks(ROWS_PER_STATEMENT) {
            self.store_documents(&mut tx, chunk, now, true).await?;
        }
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            if self.store_documents(&mut tx, chunk, now, false).await? != chunk.len() as u64 {
                // Another writer created one of them first: everyone merges again
                // (rare; the transaction is rolled back when dropped).
                return Ok(results.iter().map(|_| None).collect());
            }
        }
        let changed: Vec<(&Applied, Ownership)> = results
            .iter()
            .flatten()
            .flat_map(|(writer, applied)| applied.iter().map(|a| (a, writer.owner)))
            .filter(|(a, _)| a.merged.changed)
            .collect();
        for chunk in changed.chunks(ROWS_PER_STATEMENT) {
            self.project(&mut tx, chunk, now).await?;
        }
        self.escalate(&mut tx, &changed, now).await?;
        let following: Vec<(uuid::Uuid, &Applied)> = results
            .iter()
            .flatten()
            .filter_map(|(writer, applied)| Some((writer.device.as_ref()?, applied)))
            .flat_map(|(device, applied)| applied.iter().map(|a| (*device, a)))
            .collect();
        for chunk in following.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO following (device_id, report_id, known_heads) VALUES {}
                 ON CONFLICT (device_id, report_id) DO UPDATE SET known_heads = excluded.known_heads",
                values_list(chunk.len(), 3)
            );
            let sql = self.sql(&sql);
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, (device, a)| {
                    q.bind(device.to_string())
                        .bind(a.merged.report.id.to_string())
                        .bind(a.merged.heads.join(" "))
                })
                .execute(&mut *tx)
                .await
                .context("recording what the device holds")?;
        }
        // One receipt per report per sync, naming the changes it brought.
        let receipts: Vec<(&Applied, Option<Sender>)> = results
            .iter()
            .flatten()
            .flat_map(|(writer, applied)| {
                applied
                    .iter()
                    .filter(|a| a.merged.changed && !a.merged.received.is_empty())
                    .map(move |a| (a, writer.from))
            })
            .collect();
        for chunk in receipts.chunks(ROWS_PER_STATEMENT) {
            let sql = self.sql(&format!(
                "INSERT INTO change_receipts (report_id, received_at, user_id, session_id, bytes, hashes)
                 VALUES {}",
                typed_values_list(chunk.len(), &[None, None, Some("TEXT"), Some("TEXT"), None, None])
            ));
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, (a, from)| {
                    let received = &a.merged.received;
                    let bytes: usize = received.iter().map(|(_, b)| b).sum();
                    let hashes: Vec<&str> = received.iter().map(|(h, _)| h.as_str()).collect();
                    q.bind(a.merged.report.id.to_string())
                        .bind(now.0)
                        .bind(from.map(|f| f.user.to_string()))
                        .bind(from.and_then(|f| f.session).map(|s| s.to_string()))
                        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
                        .bind(hashes.join(" "))
                })
                .execute(&mut *tx)
                .await
                .context("recording when changes were received")?;
        }
        tx.commit().await.context("committing")?;
        Ok(results
            .into_iter()
            .map(|r| r.map(|(_, applied)| applied))
            .collect())
    }

    /// When the server received each change of report `id` (by hash, hex), if it
    /// recorded it (changes stored before receipts existed have none).
    pub async fn receipts(&self, id: ReportId) -> Result<HashMap<String, Timestamp>, DbError> {
        let rows =
            sqlx::query(&self.sql("SELECT hashes, received_at FROM change_receipts WHERE report_id = $1"))
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await
                .context("reading when changes were received")?;
        Ok(rows
            .iter()
            .flat_map(|r| {
                let at = Timestamp(r.get::<i64, _>("received_at"));
                r.get::<String, _>("hashes")
                    .split_whitespace()
                    .map(|h| (h.to_owned(), at))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Bytes of changes `person` pushed that the server stored since `since`.
    pub async fn received_bytes_since(&self, person: uuid::Uuid, since: Timestamp) -> Result<i64, DbError> {
        let row = sqlx::query(&self.sql(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS total FROM change_receipts
             WHERE user_id = $1 AND received_at >= $2",
        ))
        .bind(person.to_string())
        .bind(since.0)
        .fetch_one(&self.pool)
        .await
        .context("reading what a person sent today")?;
        Ok(row.get("total"))
    }

    /// Runs CPU-bound work on the blocking pool, one task per core at most.
    pub async fn cpu<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _core = self.cpu.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }

    /// The last feed sequence number committed.
    pub async fn current_seq(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT seq FROM sync_counter WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .context("reading the feed position")?;
        Ok(row.get("seq"))
    }

    /// Reports `device` follows that changed after `since` and up to `until`, oldest
    /// first, at most `limit`. Left out: quarantined documents, and documents whose heads
    /// the device already holds (such as the ones it just pushed). Whether its person may
    /// still read each one is for the caller to check (see `http::feed`): done in SQL, the
    /// permission filter made PostgreSQL scan every report of the person's teams on each
    /// sync (12 ms per quiet reconnect instead of 1.5 ms).
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
        let rows = sqlx::query(&self.sql(feed_sql(self.backend, from_changes)))
            .bind(device.to_string())
            .bind(since)
            .bind(until)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .context("reading the feed")?;
        tracing::Span::current().record("n", rows.len());
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(FeedRow {
                    id: r.get::<String, _>("report_id").parse().ok()?,
                    seq: r.get("seq"),
                    doc: unpack(r.get("doc")),
                    known_heads: r.get("known_heads"),
                })
            })
            .collect())
    }

    /// Who each of these stored reports belongs to (reports not stored yet are absent).
    pub async fn ownership(&self, ids: &[ReportId]) -> Result<HashMap<ReportId, Ownership>, DbError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = self.sql_for_ids(
                "SELECT id, owner_id, team_id, sensitive FROM reports WHERE id IN ({ids})",
                chunk.len(),
            );
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&self.pool)
                .await
                .context("reading who reports belong to")?;
            out.extend(rows.iter().filter_map(|r| {
                let id: ReportId = r.get::<String, _>("id").parse().ok()?;
                let uuid = |col: &str| r.get::<Option<String>, _>(col).and_then(|t| t.parse().ok());
                Some((
                    id,
                    Ownership {
                        owner: uuid("owner_id"),
                        team: uuid("team_id"),
                        sensitive: r.get::<i64, _>("sensitive") == 1,
                    },
                ))
            }));
        }
        Ok(out)
    }

    /// Records the heads `device` now holds (or will, once it stores the answer) for
    /// each report.
    #[tracing::instrument(name = "db.mark_known", skip_all, fields(n = known.len()))]
    pub async fn mark_known(&self, device: uuid::Uuid, known: &[(ReportId, String)]) -> Result<(), DbError> {
        if known.is_empty() {
            return Ok(());
        }
        let _writer = match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
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

    /// The projection of the reports `viewer` may read, newest first.
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<IncidentRow>, DbError> {
        let (readable, teams) = read_filter(viewer, "reports", 2);
        let sql = self.sql(&format!(
            "SELECT id, title, category, severity, status, reporter, occurred_at, place, latitude, longitude,
               priority_rank, report_due_at
             FROM reports WHERE {readable} ORDER BY reported_at DESC, id DESC",
        ));
        let query = sqlx::query(&sql).bind(viewer.user_id.to_string());
        let rows = teams
            .into_iter()
            .fold(query, sqlx::query::Query::bind)
            .fetch_all(&self.pool)
            .await
            .context("listing incidents")?;
        Ok(rows.iter().filter_map(row_to_incident).collect())
    }

    /// The raw projection row of a report, for tests and exports.
    pub async fn projection(&self, id: ReportId) -> Result<Option<Projection>, DbError> {
        let row = sqlx::query(&self.sql("SELECT * FROM reports WHERE id = $1"))
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
            priority_rank: r.get("priority_rank"),
            report_due_at: r.get("report_due_at"),
        }))
    }

    /// Every stored document id with its heads, for consistency checks.
    pub async fn all_heads(&self) -> Result<Vec<(ReportId, String)>, DbError> {
        let rows = sqlx::query("SELECT report_id, heads FROM documents ORDER BY report_id")
            .fetch_all(&self.pool)
            .await
            .context("listing documents")?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.get::<String, _>("report_id").parse().ok()?, r.get("heads"))))
            .collect())
    }

    /// How many documents are stored, and their total size in bytes.
    pub async fn document_stats(&self) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(LENGTH(doc)), 0) AS BIGINT) AS bytes FROM documents",
        )
        .fetch_one(&self.pool)
        .await
        .context("counting documents")?;
        Ok((row.get("n"), row.get("bytes")))
    }

    /// The database's size on disk, in bytes (SQLite: pages in use; PostgreSQL: the
    /// database's relations).
    pub async fn size_on_disk(&self) -> Result<i64, DbError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database()) AS bytes",
        };
        let row = sqlx::query(sql)
            .fetch_one(&self.pool)
            .await
            .context("measuring the database")?;
        Ok(row.get("bytes"))
    }

    /// Writes merged documents: replacing stored ones (`stored_already`), or inserting new
    /// ones unless another writer got there first. Returns how many rows were written.
    async fn store_documents(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[&Applied],
        now: Timestamp,
        stored_already: bool,
    ) -> Result<u64, DbError> {
        let conflict = if stored_already {
            "DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
               schema_version = excluded.schema_version, change_count = excluded.change_count,
               updated_at = excluded.updated_at, seq = excluded.seq"
        } else {
            "DO NOTHING"
        };
        let sql = self.sql(&format!(
            "INSERT INTO documents (report_id, doc, heads, schema_version, change_count, updated_at, seq)
             VALUES {} ON CONFLICT (report_id) {conflict}",
            values_list(chunk.len(), 7)
        ));
        let done = chunk
            .iter()
            .fold(sqlx::query(&sql), |q, a| {
                let m = &a.merged;
                q.bind(m.report.id.to_string())
                    .bind(m.doc.clone())
                    .bind(m.heads.join(" "))
                    .bind(i64::try_from(app::document::SCHEMA_VERSION).unwrap_or(i64::MAX))
                    .bind(i64::try_from(m.change_count).unwrap_or(i64::MAX))
                    .bind(now.0)
                    .bind(a.seq)
            })
            .execute(&mut **tx)
            .await
            .context("storing documents")?;
        Ok(done.rows_affected())
    }

    /// Brings the SQL projection of merged reports up to date.
    async fn project(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[(&Applied, Ownership)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        // Owner and team are set when a report is first stored and never updated.
        let sql = self.sql(&format!(
            "INSERT INTO reports (id, title, what_happened, category, severity, severity_rank, status,
               occurred_at, reported_at, place, latitude, longitude, accuracy_m, reporter, people_involved,
               immediate_actions, conflict_count, updated_at, owner_id, team_id, priority_rank, report_due_at,
               sensitive)
             VALUES {}
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, what_happened = excluded.what_happened,
               category = excluded.category, severity = excluded.severity,
               severity_rank = excluded.severity_rank, status = excluded.status,
               occurred_at = excluded.occurred_at, reported_at = excluded.reported_at,
               place = excluded.place, latitude = excluded.latitude, longitude = excluded.longitude,
               accuracy_m = excluded.accuracy_m, reporter = excluded.reporter,
               people_involved = excluded.people_involved, immediate_actions = excluded.immediate_actions,
               conflict_count = excluded.conflict_count, updated_at = excluded.updated_at,
               priority_rank = excluded.priority_rank, report_due_at = excluded.report_due_at,
               sensitive = CASE WHEN excluded.sensitive = 1 THEN 1 ELSE reports.sensitive END",
            typed_values_list(chunk.len(), &PROJECTION_COLUMNS)
        ));
        chunk
            .iter()
            .fold(sqlx::query(&sql), |q, (a, owner)| {
                let report = &a.merged.report;
                let p = Projection::of(report, a.merged.conflicts.len());
                let gps = report.location.gps;
                q.bind(report.id.to_string())
                    .bind(p.title)
                    .bind(p.what_happened)
                    .bind(p.category)
                    .bind(p.severity)
                    .bind(report.severity.rank())
                    .bind(p.status)
                    .bind(p.occurred_at)
                    .bind(report.reported_at.0)
                    .bind(p.place)
                    // As text, cast in SQL: see `PROJECTION_COLUMNS`.
                    .bind(gps.map(|g| g.latitude.to_string()))
                    .bind(gps.map(|g| g.longitude.to_string()))
                    .bind(gps.map(|g| g.accuracy_m.to_string()))
                    .bind(p.reporter)
                    .bind(p.people_involved)
                    .bind(p.immediate_actions)
                    .bind(p.conflict_count)
                    .bind(now.0)
                    .bind(owner.owner.map(|u| u.to_string()))
                    .bind(owner.team.map(|t| t.to_string()))
                    .bind(p.priority_rank)
                    .bind(p.report_due_at.map(|due| due.to_string()))
                    // Once sensitive, always (the history keeps the details): see the
                    // `sensitive = CASE …` above.
                    .bind(i64::from(
                        a.merged.sensitive || report.category.is_injury() || !report.injury.is_empty(),
                    ))
            })
            .execute(&mut **tx)
            .await
            .context("projecting reports")?;
        self.project_actions(tx, chunk).await
    }

    /// Rewrites the projected actions of the reports in `chunk`.
    async fn project_actions(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[(&Applied, Ownership)],
    ) -> Result<(), DbError> {
        // Actions are never removed from a report (a field rule on every write), so a
        // report without actions has none projected: only reports with some are rewritten.
        let with_actions: Vec<String> = chunk
            .iter()
            .filter(|(a, _)| !a.merged.report.response.actions.is_empty())
            .map(|(a, _)| a.merged.report.id.to_string())
            .collect();
        if with_actions.is_empty() {
            return Ok(());
        }
        let delete = self.sql(&format!(
            "DELETE FROM actions WHERE report_id IN ({})",
            (1..=with_actions.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        with_actions
            .iter()
            .fold(sqlx::query(&delete), |q, id| q.bind(id.clone()))
            .execute(&mut **tx)
            .await
            .context("clearing projected actions")?;
        let rows: Vec<(String, &app::domain::Action)> = chunk
            .iter()
            .flat_map(|(a, _)| {
                let report = &a.merged.report;
                report
                    .response
                    .actions
                    .iter()
                    .map(|action| (report.id.to_string(), action))
            })
            .collect();
        for rows in rows.chunks(ACTION_ROWS_PER_STATEMENT) {
            let sql = self.sql(&format!(
                "INSERT INTO actions (report_id, action_id, kind, text, owner_id, due_at, state, check_state)
                 VALUES {}",
                typed_values_list(rows.len(), &ACTION_COLUMNS)
            ));
            rows.iter()
                .fold(sqlx::query(&sql), |q, (report, action)| {
                    q.bind(report.clone())
                        .bind(action.id.to_string())
                        .bind(action.kind.as_str())
                        .bind(action.text.clone())
                        .bind((!action.owner.is_empty()).then(|| action.owner.clone()))
                        // As text, cast in SQL: see `typed_values_list`.
                        .bind(action.due_at.map(|due| due.0.to_string()))
                        .bind(action.state.as_str())
                        .bind(action.check.as_str())
                })
                .execute(&mut **tx)
                .await
                .context("projecting actions")?;
        }
        Ok(())
    }

    /// Records each P1 or P2 that a merged report reaches for the first time, and for each
    /// new one notifies the report's team's supervisors and queues a webhook delivery, all
    /// in the merge's transaction.
    async fn escalate(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        changed: &[(&Applied, Ownership)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let raised: Vec<(String, i64)> = changed
            .iter()
            .filter_map(|(a, _)| {
                let priority = a.merged.report.priority();
                priority
                    .escalates()
                    .then(|| (a.merged.report.id.to_string(), priority.rank()))
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
            let inserted = rows
                .iter()
                .fold(sqlx::query(&sql), |q, (id, rank)| {
                    q.bind(id.clone()).bind(*rank).bind(now.0)
                })
                .fetch_all(&mut **tx)
                .await
                .context("recording escalations")?;
            new.extend(inserted.iter().map(|r| r.get::<String, _>("report_id")));
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
            let told = bind_raised(&notify, now, ids)
                .fetch_all(&mut **tx)
                .await
                .context("notifying supervisors")?;
            let mut users: Vec<String> = told.iter().map(|r| r.get("user_id")).collect();
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
    pub async fn notice_mark(&self, user: uuid::Uuid) -> Result<i64, DbError> {
        let row = sqlx::query(&self.sql("SELECT version FROM notice_marks WHERE user_id = $1"))
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .context("reading a notification mark")?;
        Ok(row.map_or(0, |r| r.get("version")))
    }

    /// `user`'s unread notifications, newest first (at most [`app::protocol::MAX_NOTICES`]).
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
        let rows = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await
            .context("reading notifications")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(app::protocol::Notice {
                    id: r.get("id"),
                    report_id: r.get::<String, _>("report_id").parse().ok()?,
                    title: r.get("title"),
                    priority: Priority::from_rank(r.get("priority_rank"))?,
                    raised_at: Timestamp(r.get("created_at")),
                })
            })
            .collect())
    }

    /// Marks `user`'s notification `id` read; whether there was such an unread one.
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

    /// A short version of the reference lists devices keep (response plans and
    /// categories): the first 8 bytes of a SHA-256 over each plan's category and when it
    /// changed and each category's key and when it changed, in hex, so a device that holds
    /// them is not sent them again. Read at most every 2 s (every sync
    /// asks).
    pub async fn lists_version(&self) -> Result<String, DbError> {
        if let Some((read_at, version)) = &*self.cached_lists_version()
            && read_at.elapsed() < LISTS_VERSION_TTL
        {
            return Ok(version.clone());
        }
        let rows = sqlx::query(
            "SELECT 'plan' AS list, category AS item, updated_at FROM plans
             UNION ALL SELECT 'category', key, updated_at FROM categories
             ORDER BY list, item",
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the lists' versions")?;
        let mut hash = sha2::Sha256::new();
        for row in &rows {
            hash.update(format!(
                "{}:{}@{}\n",
                row.get::<String, _>("list"),
                row.get::<String, _>("item"),
                row.get::<i64, _>("updated_at")
            ));
        }
        let version = hex::encode(&hash.finalize()[..8]);
        *self.cached_lists_version() = Some((std::time::Instant::now(), version.clone()));
        Ok(version)
    }

    fn cached_lists_version(&self) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, String)>> {
        // A poisoned cache is only a stale cache.
        self.lists_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every report category, active or retired, in the order forms list them.
    pub async fn categories(&self) -> Result<Vec<app::domain::CategoryDef>, DbError> {
        let rows = sqlx::query("SELECT key, label, active FROM categories ORDER BY position, key")
            .fetch_all(&self.pool)
            .await
            .context("reading categories")?;
        Ok(rows
            .iter()
            .map(|r| app::domain::CategoryDef {
                key: app::domain::Category(r.get("key")),
                label: r.get("label"),
                active: r.get::<i64, _>("active") == 1,
            })
            .collect())
    }

    /// Adds a category (listed last) or changes one's label and whether it is offered.
    /// Keys never change: reports hold them.
    pub async fn save_category(
        &self,
        category: &app::domain::CategoryDef,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let result = sqlx::query(&self.sql(
            "INSERT INTO categories (key, label, position, active, updated_at)
             VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM categories), $3, $4)
             ON CONFLICT (key) DO UPDATE SET label = excluded.label, active = excluded.active,
               updated_at = excluded.updated_at",
        ))
        .bind(category.key.0.clone())
        .bind(category.label.trim().to_owned())
        .bind(i64::from(category.active))
        .bind(now.0)
        .execute(&self.pool)
        .await
        .context("saving a category");
        *self.cached_lists_version() = None;
        result.map(|_| ())
    }

    /// Every response plan, by category.
    pub async fn plans(&self) -> Result<Vec<app::domain::Plan>, DbError> {
        let rows = sqlx::query("SELECT category, steps, updated_at FROM plans ORDER BY category")
            .fetch_all(&self.pool)
            .await
            .context("reading response plans")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(app::domain::Plan {
                    category: app::domain::Category(r.get("category")),
                    steps: serde_json::from_str(&r.get::<String, _>("steps")).ok()?,
                    updated_at: Timestamp(r.get("updated_at")),
                })
            })
            .collect())
    }

    /// Replaces the response plan of `category` (no steps: removes it).
    pub async fn set_plan(
        &self,
        category: &str,
        steps: &[app::domain::PlanStep],
        by: uuid::Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let result = self.write_plan(category, steps, by, now).await;
        *self.cached_lists_version() = None;
        result
    }

    async fn write_plan(
        &self,
        category: &str,
        steps: &[app::domain::PlanStep],
        by: uuid::Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        if steps.is_empty() {
            sqlx::query(&self.sql("DELETE FROM plans WHERE category = $1"))
                .bind(category.to_owned())
                .execute(&self.pool)
                .await
                .context("removing a response plan")?;
            return Ok(());
        }
        sqlx::query(&self.sql(
            "INSERT INTO plans (category, steps, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (category) DO UPDATE SET steps = excluded.steps, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by",
        ))
        .bind(category.to_owned())
        .bind(serde_json::to_string(steps).unwrap_or_else(|_| "[]".to_owned()))
        .bind(now.0)
        .bind(by.to_string())
        .execute(&self.pool)
        .await
        .context("saving a response plan")?;
        Ok(())
    }

    /// Webhook deliveries due at `now` (not delivered, attempts left), oldest first.
    pub async fn due_deliveries(&self, now: Timestamp, max_attempts: i64) -> Result<Vec<Delivery>, DbError> {
        let rows = sqlx::query(&self.sql(
            "SELECT d.id, d.report_id, d.priority_rank, d.created_at, d.body, d.attempts,
                    r.title, r.category, r.status, r.occurred_at
             FROM webhook_deliveries d JOIN reports r ON r.id = d.report_id
             WHERE d.delivered_at IS NULL AND d.attempts < $1 AND d.next_attempt_at <= $2
             ORDER BY d.next_attempt_at LIMIT 20",
        ))
        .bind(max_attempts)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .context("reading due webhook deliveries")?;
        Ok(rows
            .iter()
            .map(|r| Delivery {
                id: r.get("id"),
                report_id: r.get("report_id"),
                priority_rank: r.get("priority_rank"),
                created_at: Timestamp(r.get("created_at")),
                body: r.get("body"),
                attempts: r.get("attempts"),
                title: r.get("title"),
                category: r.get("category"),
                status: r.get("status"),
                occurred_at: Timestamp(r.get("occurred_at")),
            })
            .collect())
    }

    /// Records one delivery attempt: its body (fixed at the first), the answer, and either
    /// success or when to try again.
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
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<app::desk::DeliveryLine>, DbError> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, report_id, priority_rank, created_at, attempts, next_attempt_at, delivered_at,
                    last_status, last_error
             FROM webhook_deliveries ORDER BY created_at DESC, id LIMIT $1",
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading the webhook delivery log")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(app::desk::DeliveryLine {
                    id: r.get("id"),
                    report_id: r.get::<String, _>("report_id").parse().ok()?,
                    priority: Priority::from_rank(r.get("priority_rank"))?,
                    created_at: Timestamp(r.get("created_at")),
                    attempts: r.get("attempts"),
                    next_attempt_at: Some(r.get::<i64, _>("next_attempt_at"))
                        .filter(|at| *at != NEVER_DUE)
                        .map(Timestamp),
                    delivered_at: r.get::<Option<i64>, _>("delivered_at").map(Timestamp),
                    last_status: r.get("last_status"),
                    last_error: r.get("last_error"),
                })
            })
            .collect())
    }

    /// The actions `viewer` owns on reports they may read: open ones first by due date,
    /// then the done ones.
    pub async fn my_actions(&self, viewer: &Viewer) -> Result<Vec<ActionRow>, DbError> {
        let (readable, teams) = read_filter(viewer, "r", 3);
        let sql = self.sql(&format!(
            "SELECT a.report_id, a.action_id, a.kind, a.text, a.due_at, a.state, a.check_state, r.title
             FROM actions a JOIN reports r ON r.id = a.report_id
             WHERE a.owner_id = $1 AND {readable}
             ORDER BY CASE WHEN a.state = 'done' THEN 1 ELSE 0 END, a.due_at IS NULL, a.due_at, a.action_id",
        ));
        let query = sqlx::query(&sql)
            .bind(viewer.user_id.to_string())
            .bind(viewer.user_id.to_string());
        let rows = teams
            .into_iter()
            .fold(query, sqlx::query::Query::bind)
            .fetch_all(&self.pool)
            .await
            .context("listing actions")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(ActionRow {
                    report_id: r.get::<String, _>("report_id").parse().ok()?,
                    report_title: r.get("title"),
                    action: app::domain::Action {
                        id: r.get::<String, _>("action_id").parse().ok()?,
                        kind: app::domain::ActionKind::from_key(&r.get::<String, _>("kind"))?,
                        text: r.get("text"),
                        owner: viewer.user_id.to_string(),
                        due_at: r.get::<Option<i64>, _>("due_at").map(Timestamp),
                        state: app::domain::ActionState::from_key(&r.get::<String, _>("state"))?,
                        check: app::domain::Effectiveness::from_key(&r.get::<String, _>("check_state"))?,
                        check_note: String::new(),
                    },
                })
            })
            .collect())
    }
}

/// Bumps the notification marks of `users` (see [`Store::notice_mark`]).
async fn bump_notice_marks(
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
const NEVER_DUE: i64 = i64::MAX;

/// Action rows per `INSERT` (8 parameters each, far below either database's limit).
const ACTION_ROWS_PER_STATEMENT: usize = 200;

/// The projected action columns in `INSERT` order, with casts for those that may be NULL.
const ACTION_COLUMNS: [Option<&str>; 8] = [None, None, None, None, Some("TEXT"), Some("BIGINT"), None, None];

/// Up to this many feed positions since a device's cursor, the feed starts from the
/// changed documents (one lookup in `following` per change); beyond it, from the reports
/// the device follows (one lookup in `documents` per followed report). Either way the cost
/// is bounded by what is looked up, whatever the planner's statistics say: PostgreSQL,
/// left to choose with the statistics of a freshly filled table, joined every changed
/// document against every followed report (10,000 × 100 comparisons, 28 ms per sync while
/// devices uploaded their first reports).
const FEED_FROM_CHANGES: i64 = 256;

/// The feed query, with its join order fixed: on PostgreSQL by a `LATERAL` subquery that
/// `OFFSET 0` keeps from being flattened, on SQLite by `CROSS JOIN` (which SQLite never
/// reorders). `$1` device, `$2` since, `$3` until, `$4` limit.
fn feed_sql(backend: Backend, from_changes: bool) -> &'static str {
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

/// The projection's columns in `INSERT` order, with a cast for those that may be NULL.
const PROJECTION_COLUMNS: [Option<&str>; 23] = {
    let mut columns = [None; 23];
    // latitude, longitude, accuracy_m: bound as text
    columns[10] = Some("DOUBLE PRECISION");
    columns[11] = Some("DOUBLE PRECISION");
    columns[12] = Some("DOUBLE PRECISION");
    // owner_id, team_id
    columns[18] = Some("TEXT");
    columns[19] = Some("TEXT");
    // report_due_at
    columns[21] = Some("BIGINT");
    columns
};

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The largest document a stored frame may expand to (far above any valid report).
const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// A document as stored: saved without Automerge's per-column DEFLATE and compressed whole
/// with zstd (level 1). Measured on a report with 20 timeline entries: 739 B instead of
/// 974 B, and 29 µs instead of 73 µs to write (`cargo bench -p muster-tests --bench merge`).
fn pack(doc: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(doc, 1).unwrap_or_else(|_| doc.to_vec())
}

/// The Automerge bytes of a stored document. Documents stored before compression (plain
/// Automerge bytes) are returned as they are; a damaged frame is too, so loading it fails
/// like any other damaged document and it is quarantined.
fn unpack(stored: Vec<u8>) -> Vec<u8> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return stored;
    }
    match zstd::zstd_safe::get_frame_content_size(&stored) {
        Ok(Some(size)) if size <= MAX_UNPACKED_BYTES => {
            zstd::bulk::decompress(&stored, usize::try_from(size).unwrap_or(0)).unwrap_or(stored)
        }
        _ => stored,
    }
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

/// `sql` with the escalation time `now` as `$1` and report ids `ids` after it.
fn bind_raised<'q>(
    sql: &'q str,
    now: Timestamp,
    ids: &[String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter()
        .fold(sqlx::query(sql).bind(now.0), |query, id| query.bind(id.clone()))
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
    pub priority_rank: i64,
    pub report_due_at: Option<i64>,
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
            priority_rank: report.priority().rank(),
            report_due_at: report.clock().map(|c| c.due.0),
        }
    }
}

fn row_to_incident(row: &AnyRow) -> Option<IncidentRow> {
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
        category_label: app::domain::Category(row.get("category")).label(),
        severity: Severity::from_key(row.get("severity"))?,
        status: Status::from_key(row.get("status"))?,
        reporter: row.get("reporter"),
        occurred_at: Timestamp(row.get("occurred_at")),
        location,
        priority: Priority::from_rank(row.get("priority_rank"))?,
        report_due_at: row.get::<Option<i64>, _>("report_due_at").map(Timestamp),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use app::document::{ReportDoc, actor_from_uuid, hash_hex};
    use app::merge::merge_push;
    use app::protocol::{Bytes, ReportPush};

    use super::*;

    const NOW: Timestamp = Timestamp(1_760_000_000_000);

    fn actor(n: u8) -> automerge::ActorId {
        actor_from_uuid(uuid::Uuid::from_u128(u128::from(n)))
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("muster.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    /// A new report, stored; returns the device's document.
    async fn filed(store: &Store, n: u8) -> ReportDoc {
        let mut report = Report::blank(ReportId::new_v7(NOW, [n; 10]), NOW, "Dana Okafor");
        report.title = format!("Incident {n}");
        report.location.place = "Yard".into();
        let mut doc = ReportDoc::create(&report, actor(n), NOW).unwrap();
        let push = ReportPush {
            id: report.id,
            heads: doc.heads().iter().map(hash_hex).collect(),
            changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
            document: None,
        };
        let job = Job {
            id: report.id,
            merge: Arc::new(move |stored| merge_push(stored, &push, NOW)),
        };
        store.apply(Writer::default(), vec![job], NOW).await.unwrap();
        doc
    }

    /// `doc` (already stored) copied to device `n`, with one edit: its push.
    fn edited(doc: &mut ReportDoc, n: u8, title: &str) -> ReportPush {
        let mut copy = ReportDoc::load(&doc.save(), actor(n)).unwrap();
        let have = copy.heads();
        let base = copy.read().unwrap();
        let mut changed = base.clone();
        changed.title = title.into();
        copy.edit(&base, &changed, NOW).unwrap();
        ReportPush {
            id: base.id,
            heads: copy.heads().iter().map(hash_hex).collect(),
            changes: copy.changes_since(&have).into_iter().map(Bytes).collect(),
            document: None,
        }
    }

    /// A request's merges against `stored`, queued for a group.
    fn waiting(
        stored: &Arc<HashMap<ReportId, StoredDoc>>,
        pushes: &[&ReportPush],
    ) -> (Waiting, oneshot::Receiver<Outcome>) {
        let merged = pushes
            .iter()
            .map(|p| merge_push(stored.get(&p.id).map(|s| s.doc.as_slice()), p, NOW).unwrap())
            .collect();
        let (reply, answer) = oneshot::channel();
        let commit = Commit {
            writer: Writer {
                device: Some(uuid::Uuid::from_u128(7)),
                ..Writer::default()
            },
            stored: Arc::clone(stored),
            merged,
        };
        (Waiting { commit, reply }, answer)
    }

    /// Every value the stored document holds for the title.
    fn titles(doc: &[u8]) -> Vec<String> {
        let doc = ReportDoc::load(doc, actor(0)).unwrap();
        let mut values = doc
            .conflicts()
            .into_iter()
            .find(|c| c.field == "title")
            .map_or_else(|| vec![doc.read().unwrap().title], |c| c.values);
        values.sort();
        values
    }

    #[tokio::test]
    async fn documents_are_stored_compressed_and_read_back_whole() {
        let (_dir, store) = store().await;
        let mut doc = filed(&store, 1).await;
        let id = doc.read().unwrap().id;
        let row = sqlx::query(&store.sql("SELECT doc FROM documents WHERE report_id = $1"))
            .bind(id.to_string())
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let raw: Vec<u8> = row.get("doc");
        assert!(raw.starts_with(&ZSTD_MAGIC), "stored as a zstd frame");
        assert!(
            raw.len() < doc.save().len(),
            "smaller than Automerge's own compression"
        );
        let loaded = store.load_docs(&[id]).await.unwrap().remove(&id).unwrap();
        let back = ReportDoc::load(&loaded.doc, actor(9)).unwrap();
        assert_eq!(back.read().unwrap(), doc.read().unwrap());
    }

    #[test]
    fn unpacking_passes_plain_and_damaged_bytes_through() {
        let mut doc = ReportDoc::create(
            &Report::blank(ReportId::new_v7(NOW, [1; 10]), NOW, "Dana Okafor"),
            actor(1),
            NOW,
        )
        .unwrap();
        let plain = doc.save();
        assert_eq!(unpack(plain.clone()), plain, "stored before compression");
        let packed = pack(&doc.save_uncompressed());
        assert_eq!(unpack(packed.clone()), doc.save_uncompressed());
        let mut damaged = packed.clone();
        damaged.truncate(packed.len() / 2);
        assert_eq!(unpack(damaged.clone()), damaged, "left for the loader to refuse");
    }

    #[tokio::test]
    async fn a_group_commits_each_request_on_its_own() {
        let (_dir, store) = store().await;
        let mut x = filed(&store, 1).await;
        let mut y = filed(&store, 2).await;
        let (x_id, y_id) = (x.read().unwrap().id, y.read().unwrap().id);
        let before = Arc::new(store.load_docs(&[x_id, y_id]).await.unwrap());

        // A and B edit X against the same stored state, C edits Y: one group.
        let a = edited(&mut x, 3, "A's title");
        let b = edited(&mut x, 4, "B's title");
        let c = edited(&mut y, 5, "C's title");
        let (wa, ra) = waiting(&before, &[&a]);
        let (wb, rb) = waiting(&before, &[&b]);
        let (wc, rc) = waiting(&before, &[&c]);
        store.commit_group(vec![wa, wb, wc], NOW).await;
        let stored_a = ra
            .await
            .unwrap()
            .unwrap()
            .expect("the first writer of X is stored");
        assert!(
            rb.await.unwrap().unwrap().is_none(),
            "the second writer of X merges again"
        );
        assert!(
            rc.await.unwrap().unwrap().is_some(),
            "a request on another report is stored"
        );
        let after = store.load_docs(&[x_id, y_id]).await.unwrap();
        assert_eq!(after[&x_id].heads, stored_a[0].merged.heads.join(" "));
        assert_eq!(titles(&after[&x_id].doc), ["A's title"]);
        assert_eq!(titles(&after[&y_id].doc), ["C's title"]);

        // B again against the stale state: X moved, so nothing of B is stored ...
        let (wb, rb) = waiting(&before, &[&b]);
        store.commit_group(vec![wb], NOW).await;
        assert!(rb.await.unwrap().unwrap().is_none());
        assert_eq!(
            store.load_docs(&[x_id]).await.unwrap()[&x_id].heads,
            after[&x_id].heads
        );

        // ... and through `apply` (which merges again) both edits are kept.
        let job = Job {
            id: x_id,
            merge: Arc::new(move |stored| merge_push(stored, &b, NOW)),
        };
        store.apply(Writer::default(), vec![job], NOW).await.unwrap();
        let both = titles(&store.load_docs(&[x_id]).await.unwrap()[&x_id].doc);
        assert_eq!(both, ["A's title", "B's title"]);
    }
}
