//! The server's side of the supervisor desk: reads the projection and documents, and
//! records supervisor edits as Automerge changes made on the supervisor's behalf.

use app::desk::{IncidentDesk, IncidentDetail, IncidentRow};
use app::document::{ReportDoc, actor_from_uuid};
use app::domain::{Report, ReportId};
use automerge::ActorId;

use crate::db::Store;
use crate::http::now;
use crate::sync::Merged;

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
        let mut doc = ReportDoc::load(&stored.doc, self.actor.clone()).map_err(|e| e.to_string())?;
        let report = doc.read().map_err(|e| e.to_string())?;
        Ok(Some(IncidentDetail {
            report,
            conflicts: doc.conflicts(),
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
        let now = now();
        let _guard = self.store.write_lock().await;
        let stored = self.store.load_doc(base.id).await.map_err(|e| e.to_string())?;
        let stored = stored.ok_or("that incident does not exist")?;
        let mut doc = ReportDoc::load(&stored.doc, self.actor.clone()).map_err(|e| e.to_string())?;
        if doc
            .edit(&base, &edited, now)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Ok(());
        }
        let report = doc.read_valid(base.id, now).map_err(|e| e.to_string())?;
        let merged = Merged::of(&mut doc, report, true, Vec::new());
        self.store.commit(&[merged], now).await.map_err(|e| e.to_string())
    }
}
