//! The server's side of the supervisor desk: reads the projection and documents, and
//! records supervisor edits as Automerge changes made on the supervisor's behalf.

use std::sync::Arc;

use app::desk::{IncidentDesk, IncidentDetail, IncidentRow, QuarantinedDoc};
use app::document::{ReportDoc, actor_from_uuid};
use app::domain::access::{Guarded, Ownership, Role, Viewer};
use app::domain::{Report, ReportId, TimelineEntry, Timestamp};
use app::merge::{MergeError, Merged};
use automerge::ActorId;

use crate::db::{ApplyError, Job, Store, Writer};
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
    async fn list(&self, viewer: &Viewer) -> Result<Vec<IncidentRow>, String> {
        self.store.list(viewer).await.map_err(|e| {
            tracing::error!(error = %e, "listing incidents");
            "the incident list is unavailable right now".to_owned()
        })
    }

    async fn detail(&self, viewer: &Viewer, id: ReportId) -> Result<Option<IncidentDetail>, String> {
        // A report they may not read is, to them, a report that does not exist.
        if !self.may(viewer, id, Viewer::can_read).await? {
            return Ok(None);
        }
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

    async fn edit(&self, viewer: &Viewer, base: Report, edited: Report) -> Result<(), String> {
        if !self.may(viewer, base.id, Viewer::can_write).await? {
            return Err(NOT_YOURS.to_owned());
        }
        if !base.status.can_move_to(edited.status) {
            return Err(format!(
                "an incident cannot move from {} to {}",
                base.status.label(),
                edited.status.label()
            ));
        }
        let id = base.id;
        self.record(viewer, id, move |_| Ok((base.clone(), edited.clone())), now())
            .await
    }

    async fn add_update(&self, viewer: &Viewer, id: ReportId, text: String) -> Result<(), String> {
        if !self.may(viewer, id, Viewer::can_write).await? {
            return Err(NOT_YOURS.to_owned());
        }
        let at = now();
        let entry = TimelineEntry {
            id: uuid::Uuid::now_v7(),
            at,
            author: viewer.name.clone(),
            text: text.trim().to_owned(),
        };
        self.record(
            viewer,
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

    async fn quarantined(&self, viewer: &Viewer) -> Result<Vec<QuarantinedDoc>, String> {
        if viewer.role != Role::Admin {
            return Err("only administrators see held-back documents".to_owned());
        }
        self.store.quarantined().await.map_err(|e| {
            tracing::error!(error = %e, "listing quarantined documents");
            "the quarantine list is unavailable right now".to_owned()
        })
    }
}

/// The answer to an edit of a report the person may not change.
const NOT_YOURS: &str = "you may not change this report";

impl Desk {
    /// Whether `viewer` may act on report `id` as `rule` says (false if it does not exist).
    async fn may(
        &self,
        viewer: &Viewer,
        id: ReportId,
        rule: fn(&Viewer, Ownership) -> bool,
    ) -> Result<bool, String> {
        let owners = self.store.ownership(&[id]).await.map_err(|e| {
            tracing::error!(error = %e, "reading who a report belongs to");
            "the incident is unavailable right now".to_owned()
        })?;
        Ok(owners.get(&id).is_some_and(|of| rule(viewer, *of)))
    }

    /// Records an edit as a change by this desk's actor, through the same merge-and-commit
    /// path as device syncs. `change` gives, from the current report, the report the editor
    /// started from and the edited one; only fields that differ between those are written.
    async fn record(
        &self,
        viewer: &Viewer,
        id: ReportId,
        change: impl Fn(&Report) -> Result<(Report, Report), String> + Send + Sync + 'static,
        now: Timestamp,
    ) -> Result<(), String> {
        let actor = self.actor.clone();
        let rules = viewer.clone();
        let merge = move |stored: Option<&[u8]>| -> Result<Merged, MergeError> {
            let stored = stored.ok_or_else(|| MergeError::Refused("that incident does not exist".into()))?;
            let mut doc =
                ReportDoc::load(stored, actor.clone()).map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let current = doc.read().map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let before = Guarded::of(&current);
            let (base, edited) = change(&current).map_err(MergeError::Refused)?;
            let changed = doc
                .edit(&base, &edited, now)
                .map_err(|e| MergeError::Refused(e.to_string()))?
                .is_some();
            let snapshot = doc
                .snapshot_valid(id, now)
                .map_err(|e| MergeError::Refused(e.to_string()))?;
            rules
                .check_fields(Some(&before), &snapshot.report)
                .map_err(MergeError::Refused)?;
            Ok(Merged::of(&mut doc, snapshot, changed, Vec::new()))
        };
        let job = Job {
            id,
            merge: Arc::new(merge),
        };
        match self.store.apply(Writer::default(), vec![job], now).await {
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
