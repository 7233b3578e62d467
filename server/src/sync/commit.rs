//! Merging and committing: the merges run on the CPU pool outside any lock, then queue for
//! a group commit; a request whose documents another writer changed meanwhile merges again.
//!
//! Group commit: merges that finish while another commit is in flight wait for it, then the
//! first of them commits them all in one transaction (one lock of the feed counter, one
//! durable flush, see [`Store::commit_together`]). Each request still succeeds or fails on
//! its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use app::domain::{ReportId, Timestamp};
use app::merge::{MergeError, Merged};
use app::protocol::ReportAck;
use tokio::sync::{Mutex, oneshot};

use crate::db::{Batch, DbError, QUARANTINE_REASON, Store, StoredDoc, Write, Writer, pack};

/// How often a request merges again before it gives up as contended.
const ATTEMPTS: usize = 8;

/// One report to merge and store: a pure function from the stored document (if any) to
/// the merged result. It may run more than once if another writer gets there first.
pub type MergeFn = Arc<dyn Fn(Option<&[u8]>) -> Result<Merged, MergeError> + Send + Sync>;

/// A report [`Committer::apply`] will merge.
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
    /// The report.
    pub id: ReportId,
    /// Whether anything new was stored.
    pub changed: bool,
    /// The acknowledgement for the device.
    pub ack: ReportAck,
}

/// Why [`Committer::apply`] stored nothing.
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

/// The one writer of documents: every sync, desk edit and seeded demo report is merged and
/// stored here.
#[derive(Debug, Clone)]
pub struct Committer {
    store: Store,
    group: Arc<Group>,
}

/// Group commit: merges queue here; whoever holds `leader` commits all that queued.
#[derive(Debug, Default)]
struct Group {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    leader: Mutex<()>,
}

/// One request's writes and what to answer for each, waiting for its group.
#[derive(Debug)]
struct Waiting {
    batch: Batch,
    acks: Vec<ReportAck>,
    reply: oneshot::Sender<Outcome>,
}

/// What a group commit tells each request: stored (and how), or merge again (`None`).
type Outcome = Result<Option<Vec<Applied>>, DbError>;

impl Committer {
    /// The writer of `store`'s documents.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self {
            store,
            group: Arc::default(),
        }
    }

    /// The store it writes to.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Merges and durably stores every job, all or nothing; the writer's device (if any)
    /// follows every report and is known to hold the merged heads; reports it creates
    /// belong to the writer's owner and team. A merge that finds a damaged stored
    /// document quarantines it and refuses that report.
    #[tracing::instrument(name = "sync.apply", skip_all, fields(n = jobs.len(), attempts))]
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
            let stored = Arc::new(self.store.load_docs(&ids).await?);
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
                self.store
                    .cpu()
                    .run(move || merge_all(&jobs, &stored))
                    .await
                    .ok_or(ApplyError::Internal)?
            };
            let mut merged = Vec::with_capacity(results.len());
            let mut refused = Vec::new();
            for (job, result) in jobs.iter().zip(results) {
                match result {
                    Ok(m) => merged.push(m),
                    Err(MergeError::Refused(reason)) => refused.push((job.id, reason)),
                    Err(MergeError::Poisoned(reason)) => {
                        self.store.quarantine(job.id, &reason, now).await?;
                        refused.push((job.id, QUARANTINE_REASON.to_owned()));
                    }
                }
            }
            if !refused.is_empty() {
                return Err(ApplyError::Refused(refused));
            }
            let (writes, acks) = merged.into_iter().map(split).unzip();
            let batch = Batch {
                writer,
                stored: Arc::clone(&stored),
                writes,
            };
            if let Some(applied) = self.commit(batch, acks, now).await? {
                return Ok(applied);
            }
        }
        Err(ApplyError::Contended)
    }

    /// Commits a batch made against its stored documents, or returns `None` (storing
    /// nothing) if any of those documents changed since. See the module docs.
    async fn commit(&self, batch: Batch, acks: Vec<ReportAck>, now: Timestamp) -> Outcome {
        let (reply, mut answer) = oneshot::channel();
        self.group
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Waiting { batch, acks, reply });
        {
            let _leader = self.group.leader.lock().await;
            match answer.try_recv() {
                Ok(result) => return result,
                // The leader before us went away mid-commit: merge again (a merge that
                // did get committed is found unchanged and just acknowledged).
                Err(oneshot::error::TryRecvError::Closed) => return Ok(None),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let waiting = std::mem::take(
                &mut *self
                    .group
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            self.commit_group(waiting, now).await;
        }
        answer.await.unwrap_or(Ok(None))
    }

    /// Commits a group of waiting batches and answers each.
    #[tracing::instrument(name = "sync.commit", skip_all, fields(requests = waiting.len()))]
    async fn commit_group(&self, waiting: Vec<Waiting>, now: Timestamp) {
        // Two requests of one group must not write the same report: the later one merges
        // again on top of the earlier one's result.
        let mut taken = HashSet::new();
        let mut batches = Vec::with_capacity(waiting.len());
        let mut answers = Vec::with_capacity(waiting.len());
        for Waiting { batch, acks, reply } in waiting {
            if batch.writes.iter().all(|w| taken.insert(w.report.id)) {
                let changed: Vec<(ReportId, bool)> =
                    batch.writes.iter().map(|w| (w.report.id, w.changed)).collect();
                batches.push(batch);
                answers.push((reply, acks, changed));
            } else {
                // Ignored send errors here and below: that request is gone.
                let _ = reply.send(Ok(None));
            }
        }
        match self.store.commit_together(batches, now).await {
            Ok(results) => {
                for ((reply, acks, changed), stored) in answers.into_iter().zip(results) {
                    let applied = stored.then(|| {
                        (acks.into_iter().zip(changed))
                            .map(|(ack, (id, changed))| Applied { id, changed, ack })
                            .collect()
                    });
                    let _ = reply.send(Ok(applied));
                }
            }
            Err(e) => {
                for (reply, ..) in answers {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Runs every job's merge against the stored documents (on the CPU pool).
fn merge_all(jobs: &[Job], stored: &HashMap<ReportId, StoredDoc>) -> Vec<Result<Merged, MergeError>> {
    jobs.iter()
        .map(|j| {
            let mut merged = (j.merge)(stored.get(&j.id).map(|s| s.doc.as_slice()))?;
            if merged.changed {
                merged.doc = pack(&merged.doc);
            }
            Ok(merged)
        })
        .collect()
}

/// What the store writes of a merge, and what the device is answered.
fn split(merged: Merged) -> (Write, ReportAck) {
    let Merged {
        report,
        doc,
        heads,
        change_count,
        conflicts,
        changed,
        sensitive,
        received,
        ack,
    } = merged;
    let write = Write {
        report,
        doc,
        heads,
        change_count,
        conflicts: conflicts.len(),
        changed,
        sensitive,
        received,
    };
    (write, ack)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use app::document::{ReportDoc, actor_from_uuid, hash_hex};
    use app::domain::Report;
    use app::merge::merge_push;
    use app::protocol::{Bytes, ReportPush};
    use sqlx::Row;

    use super::*;
    use crate::db::ZSTD_MAGIC;

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
    async fn filed(committer: &Committer, n: u8) -> ReportDoc {
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
        committer.apply(Writer::default(), vec![job], NOW).await.unwrap();
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
        let merged: Vec<Merged> = pushes
            .iter()
            .map(|p| merge_push(stored.get(&p.id).map(|s| s.doc.as_slice()), p, NOW).unwrap())
            .collect();
        let (reply, answer) = oneshot::channel();
        let (writes, acks) = merged.into_iter().map(split).unzip();
        let batch = Batch {
            writer: Writer {
                device: Some(uuid::Uuid::from_u128(7)),
                ..Writer::default()
            },
            stored: Arc::clone(stored),
            writes,
        };
        (Waiting { batch, acks, reply }, answer)
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
    async fn a_group_commits_each_request_on_its_own() {
        let (_dir, store) = store().await;
        let committer = Committer::new(store.clone());
        let mut x = filed(&committer, 1).await;
        let mut y = filed(&committer, 2).await;
        let (x_id, y_id) = (x.read().unwrap().id, y.read().unwrap().id);
        let before = Arc::new(store.load_docs(&[x_id, y_id]).await.unwrap());

        // A and B edit X against the same stored state, C edits Y: one group.
        let a = edited(&mut x, 3, "A's title");
        let b = edited(&mut x, 4, "B's title");
        let c = edited(&mut y, 5, "C's title");
        let (wa, ra) = waiting(&before, &[&a]);
        let (wb, rb) = waiting(&before, &[&b]);
        let (wc, rc) = waiting(&before, &[&c]);
        committer.commit_group(vec![wa, wb, wc], NOW).await;
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
        assert_eq!(after[&x_id].heads, stored_a[0].ack.heads.join(" "));
        assert_eq!(titles(&after[&x_id].doc), ["A's title"]);
        assert_eq!(titles(&after[&y_id].doc), ["C's title"]);

        // B again against the stale state: X moved, so nothing of B is stored ...
        let (wb, rb) = waiting(&before, &[&b]);
        committer.commit_group(vec![wb], NOW).await;
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
        committer.apply(Writer::default(), vec![job], NOW).await.unwrap();
        let both = titles(&store.load_docs(&[x_id]).await.unwrap()[&x_id].doc);
        assert_eq!(both, ["A's title", "B's title"]);
    }

    /// What the group commit stores is a compressed frame that reads back whole.
    #[tokio::test]
    async fn documents_are_stored_compressed_and_read_back_whole() {
        let (_dir, store) = store().await;
        let mut doc = filed(&Committer::new(store.clone()), 1).await;
        let id = doc.read().unwrap().id;
        let row = sqlx::query(&store.sql("SELECT doc FROM documents WHERE report_id = $1"))
            .bind(id.to_string())
            .fetch_one(store.pool())
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
}
