//! The server's side of the supervisor desk: reads the projection and documents, and
//! records supervisor edits as Automerge changes made on the supervisor's behalf.

use std::sync::Arc;

use app::desk::{IncidentDesk, IncidentDetail, IncidentRow, QuarantinedDoc};
use app::document::{ReportDoc, actor_from_uuid};
use app::domain::{Report, ReportId, TimelineEntry, Timestamp};
use app::merge::{MergeError, Merged};
use automerge::ActorId;

use crate::db::{ApplyError, Job, Store};
use crate::http::now;

/// The desk, over the store.
#[derive(Debug, Clone)]
pub struct Desk {
    store: Store,
    /// The actor this server process writes supervisor edits as. One per process, so that
    /// several processes never reuse an actor's sequence numbers.
    actor: ActorId,
}

impl Desk {
    /// A desk over `store`, writing as a fresh actor.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self {
            store,
            actor: actor_from_uuid(uuid::Uuid::new_v4()),
        }
    }
}

#[async_trait::async_trait]
impl IncidentDesk for Desk {
    async fn list(&self) -> Result<Vec<IncidentRow>, String> {
        self.store.list().await.map_err(|e| {
            tracing::error!(error = %e, "listing incidents");
            "the incident list is unavailable right now".to_owned()
        })
    }

    async fn detail(&self, id: ReportId) -> Result<Option<IncidentDetail>, String> {
        let stored = self.store.load_doc(id).await.map_err(|e| e.to_string())?;
        let Some(stored) = stored else { return Ok(None) };
        let doc = ReportDoc::load(&stored.doc, self.actor.clone()).map_err(|e| e.to_string())?;
        let snapshot = doc.snapshot().map_err(|e| e.to_string())?;
        Ok(Some(IncidentDetail {
            report: snapshot.report,
            conflicts: snapshot.conflicts,
            change_count: doc.change_count(),
        }))
    }

    async fn edit(&self, base: Report, edited: Report) -> Result<(), String> {
        if !base.status.can_move_to(edited.status) {
            return Err(format!(
                "an incident cannot move from {} to {}",
                base.status.label(),
                edited.status.label()
            ));
        }
        let id = base.id;
        self.record(id, move |_| Ok((base.clone(), edited.clone())), now())
            .await
    }

    async fn add_update(&self, id: ReportId, author: String, text: String) -> Result<(), String> {
        let at = now();
        let entry = TimelineEntry {
            id: uuid::Uuid::now_v7(),
            at,
            author: author.trim().to_owned(),
            text: text.trim().to_owned(),
        };
        self.record(
            id,
            move |current| {
                let mut next = current.clone();
                next.timeline.push(entry.clone());
                Ok((current.clone(), next))
            },
            at,
        )
        .await
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedDoc>, String> {
        self.store.quarantined().await.map_err(|e| {
            tracing::error!(error = %e, "listing quarantined documents");
            "the quarantine list is unavailable right now".to_owned()
        })
    }
}

impl Desk {
    /// Records an edit as a change by this desk's actor, through the same merge-and-commit
    /// path as device syncs. `change` gives, from the current report, the report the editor
    /// started from and the edited one; only fields that differ between those are written.
    async fn record(
        &self,
        id: ReportId,
        change: impl Fn(&Report) -> Result<(Report, Report), String> + Send + Sync + 'static,
        now: Timestamp,
    ) -> Result<(), String> {
        let actor = self.actor.clone();
        let merge = move |stored: Option<&[u8]>| -> Result<Merged, MergeError> {
            let stored = stored.ok_or_else(|| MergeError::Refused("that incident does not exist".into()))?;
            let mut doc =
                ReportDoc::load(stored, actor.clone()).map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let current = doc.read().map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let (base, edited) = change(&current).map_err(MergeError::Refused)?;
            let changed = doc
                .edit(&base, &edited, now)
                .map_err(|e| MergeError::Refused(e.to_string()))?
                .is_some();
            let snapshot = doc
                .snapshot_valid(id, now)
                .map_err(|e| MergeError::Refused(e.to_string()))?;
            Ok(Merged::of(&mut doc, snapshot, changed, Vec::new()))
        };
        let job = Job {
            id,
            merge: Arc::new(merge),
        };
        match self.store.apply(None, vec![job], now).await {
            Ok(_) => Ok(()),
            Err(ApplyError::Refused(list)) => Err(list
                .into_iter()
                .map(|(_, reason)| reason)
                .collect::<Vec<_>>()
                .join("; ")),
            Err(e) => {
                tracing::error!(error = %e, "recording a supervisor edit");
                Err("the change could not be saved right now; try again".to_owned())
            }
        }
    }
}
