//! The server's side of the supervisor desk: reads the projection and documents, and
//! records supervisor edits as Automerge changes made on the supervisor's behalf.

use std::sync::Arc;

use app::desk::{HistoryLine, IncidentDesk, IncidentDetail, IncidentRow, NewAction, Person, QuarantinedDoc};
use std::collections::HashMap;

use app::document::{HistoryEntry, ReportDoc, actor_for, actor_owner, hash_hex};
use app::domain::access::{Ownership, Role, Viewer};
use app::domain::{Report, ReportId, TimelineEntry, Timestamp};
use app::error::AppError;
use app::merge::{MergeError, Merged, merge_push_checked};
use app::protocol::{Bytes, ReportPush};

use crate::clock::SharedClock;
use crate::db::{Store, Writer};
use crate::sync::{ApplyError, Committer, Job};

/// The desk, over the store.
#[derive(Debug, Clone)]
pub struct Desk {
    store: Store,
    /// Desk edits are written as every sync is.
    committer: Committer,
    clock: SharedClock,
    /// Whether an outgoing webhook is configured (for the delivery log page).
    webhook: bool,
    /// This process's part of the actors it writes desk edits as (with the person's user
    /// id, see [`actor_for`]), so several processes never reuse an actor's sequence numbers.
    salt: [u8; 4],
}

impl Desk {
    /// This desk, telling administrators whether a webhook is configured.
    #[must_use]
    pub fn with_webhook(mut self, configured: bool) -> Self {
        self.webhook = configured;
        self
    }

    /// A desk writing through `committer` (over its store) as a fresh actor, stamping
    /// times from `clock`.
    #[must_use]
    pub fn new(committer: Committer, clock: SharedClock) -> Self {
        Self {
            store: committer.store().clone(),
            committer,
            clock,
            webhook: false,
            salt: {
                let mut salt = [0u8; 4];
                salt.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..4]);
                salt
            },
        }
    }
}

#[async_trait::async_trait]
impl IncidentDesk for Desk {
    async fn list(&self, viewer: &Viewer) -> Result<Vec<IncidentRow>, AppError> {
        let unavailable = |e: crate::db::DbError| {
            tracing::error!(error = %e, "listing incidents");
            AppError::Retryable("the incident list is unavailable right now".to_owned())
        };
        let mut rows = self.store.list(viewer).await.map_err(unavailable)?;
        let categories = self.store.categories().await.map_err(unavailable)?;
        for row in &mut rows {
            if let Some(c) = categories.iter().find(|c| c.key.0 == row.category) {
                row.category_label.clone_from(&c.label);
            }
        }
        Ok(rows)
    }

    async fn detail(&self, viewer: &Viewer, id: ReportId) -> Result<Option<IncidentDetail>, AppError> {
        // A report they may not read is, to them, a report that does not exist.
        let Some(of) = self.ownership_of(id).await?.filter(|of| viewer.can_read(*of)) else {
            return Ok(None);
        };
        let stored = self.store.load_doc(id).await.map_err(|e| {
            tracing::error!(error = %e, "loading an incident");
            AppError::Retryable("the incident is unavailable right now".to_owned())
        })?;
        let Some(stored) = stored else { return Ok(None) };
        let read = self
            .store
            .cpu()
            .run(move || {
                let mut doc = ReportDoc::load(
                    &stored.doc,
                    actor_for(uuid::Uuid::nil(), uuid::Uuid::nil(), [0; 4]),
                )?;
                let snapshot = doc.snapshot()?;
                let history = doc.history(HISTORY_LIMIT);
                Ok::<_, app::document::DocError>((snapshot, doc.change_count(), history))
            })
            .await
            .ok_or_else(|| AppError::Retryable("the incident could not be read right now".to_owned()))?;
        let (snapshot, change_count, history) =
            read.map_err(|e| AppError::NotFound(format!("the incident could not be read: {e}")))?;
        // One read of who is who, for the history, the concurrent values and the
        // people the response can be given to.
        let users = self.store.users().await.map_err(|e| {
            tracing::error!(error = %e, "reading who changed a report");
            AppError::Retryable("the incident's history is unavailable right now".to_owned())
        })?;
        let people: HashMap<uuid::Uuid, String> = users.iter().map(|u| (u.id, u.name.clone())).collect();
        let received = self.store.receipts(id).await.map_err(|e| {
            tracing::error!(error = %e, "reading when changes were received");
            AppError::Retryable("the incident's history is unavailable right now".to_owned())
        })?;
        let history = self.name_authors(history, &people, &received).await?;
        let name = |id: &str| {
            id.parse::<uuid::Uuid>()
                .ok()
                .and_then(|user| people.get(&user).cloned())
        };
        let mut conflicts = snapshot.conflicts;
        for conflict in &mut conflicts {
            for by in &mut conflict.by {
                *by = name(by).unwrap_or_else(|| "someone".to_owned());
            }
            // Assignee and owners are stored as user ids: show names.
            if conflict.field.ends_with(".assignee") || conflict.field.ends_with(".owner") {
                for value in &mut conflict.values {
                    if let Some(n) = name(value) {
                        *value = n;
                    }
                }
            }
        }
        let mut report = snapshot.report;
        // Colleagues who may read the report but not its privacy-sensitive parts see
        // neither those parts nor their concurrent values.
        let private_withheld = if viewer.can_read_private(of) {
            false
        } else {
            conflicts.retain(|c| !Report::is_private_field(&c.field));
            report.withhold_private(of.sensitive)
        };
        let team = self.team_name(of.team).await?;
        let stored_photos = if report.photos.is_empty() {
            Vec::new()
        } else {
            self.store.stored_photos(id).await.map_err(|e| {
                tracing::error!(error = %e, "listing a report's photos");
                AppError::Retryable("the incident's photos are unavailable right now".to_owned())
            })?
        };
        let category_label = match self.store.categories().await {
            Ok(list) => app::domain::CategoryDef::label_of(&list, &report.category),
            Err(e) => {
                tracing::warn!(error = %e, "reading categories");
                report.category.label()
            }
        };
        let named: Vec<&str> = std::iter::once(report.response.assignee.as_str())
            .chain(report.response.actions.iter().map(|a| a.owner.as_str()))
            .collect();
        let assignable = users
            .iter()
            .filter(|u| {
                (u.active && team.as_ref().is_some_and(|t| u.teams.contains(t)))
                    || u.id == viewer.user_id
                    || named.contains(&u.id.to_string().as_str())
            })
            .map(|u| Person {
                id: u.id.to_string(),
                name: u.name.clone(),
            })
            .collect();
        Ok(Some(IncidentDetail {
            report,
            conflicts,
            change_count,
            history,
            read_at: self.clock.now(),
            people: assignable,
            private_withheld,
            category_label,
            stored_photos,
        }))
    }

    async fn edit(&self, viewer: &Viewer, base: Report, edited: Report) -> Result<(), AppError> {
        if !self.may(viewer, base.id, Viewer::can_write).await? {
            return Err(AppError::Forbidden(NOT_YOURS.to_owned()));
        }
        // Only what differs between `base` and `edited` is written; whether each write
        // is allowed (the status move from the stored status, the review before
        // Reviewed) is decided by the write policy on the stored report, not on `base`.
        let id = base.id;
        self.record(
            viewer,
            id,
            move |_| Ok((base.clone(), edited.clone())),
            self.clock.now(),
        )
        .await
    }

    async fn add_update(
        &self,
        viewer: &Viewer,
        id: ReportId,
        text: String,
        audience: app::domain::Audience,
    ) -> Result<(), AppError> {
        if !self.may(viewer, id, Viewer::can_write).await? {
            return Err(AppError::Forbidden(NOT_YOURS.to_owned()));
        }
        let at = self.clock.now();
        let entry = TimelineEntry {
            id: uuid::Uuid::now_v7(),
            at,
            author: viewer.name.clone(),
            author_id: Some(viewer.user_id),
            text: text.trim().to_owned(),
            audience,
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

    async fn add_action(&self, viewer: &Viewer, id: ReportId, action: NewAction) -> Result<(), AppError> {
        if !self.may(viewer, id, Viewer::can_write).await? {
            return Err(AppError::Forbidden(NOT_YOURS.to_owned()));
        }
        let action = app::domain::Action::new(
            uuid::Uuid::now_v7(),
            action.kind,
            &action.text,
            &action.owner,
            action.due_at,
        );
        self.record(
            viewer,
            id,
            move |current| {
                let mut next = current.clone();
                next.response.actions.push(action.clone());
                Ok((current.clone(), next))
            },
            self.clock.now(),
        )
        .await
    }

    async fn choose(
        &self,
        viewer: &Viewer,
        id: ReportId,
        field: String,
        value: String,
    ) -> Result<(), AppError> {
        if !self.may(viewer, id, Viewer::can_write).await? {
            return Err(AppError::Forbidden(NOT_YOURS.to_owned()));
        }
        let at = self.clock.now();
        self.write(
            viewer,
            id,
            // Already settled (by someone else, or never in conflict): nothing to write.
            move |doc, _| doc.choose(&field, &value, at).map_err(|e| e.to_string()),
            at,
        )
        .await
    }

    async fn deliveries(&self, viewer: &Viewer) -> Result<(Vec<app::desk::DeliveryLine>, bool), AppError> {
        if viewer.role != Role::Admin {
            return Err(AppError::Forbidden(
                "only administrators see the webhook's delivery log".to_owned(),
            ));
        }
        let lines = self.store.deliveries(200).await.map_err(|e| {
            tracing::error!(error = %e, "reading the webhook delivery log");
            AppError::Retryable("the delivery log is unavailable right now".to_owned())
        })?;
        Ok((lines, self.webhook))
    }

    async fn quarantined(&self, viewer: &Viewer) -> Result<Vec<QuarantinedDoc>, AppError> {
        if viewer.role != Role::Admin {
            return Err(AppError::Forbidden(
                "only administrators see held-back documents".to_owned(),
            ));
        }
        self.store.quarantined().await.map_err(|e| {
            tracing::error!(error = %e, "listing quarantined documents");
            AppError::Retryable("the quarantine list is unavailable right now".to_owned())
        })
    }
}

/// The answer to an edit of a report the person may not change.
const NOT_YOURS: &str = "you may not change this report";

/// The most changes a report page lists (the latest ones).
const HISTORY_LIMIT: usize = 200;

impl Desk {
    /// Puts names to the actors of a report's history: the person (from the user id in
    /// the actor) and the device (the browser of the session it names, or the desk).
    async fn name_authors(
        &self,
        history: Vec<HistoryEntry>,
        people: &HashMap<uuid::Uuid, String>,
        received: &HashMap<String, Timestamp>,
    ) -> Result<Vec<HistoryLine>, AppError> {
        let unavailable = |e: crate::db::DbError| {
            tracing::error!(error = %e, "reading who changed a report");
            AppError::Retryable("the incident's history is unavailable right now".to_owned())
        };
        let mut devices: HashMap<uuid::Uuid, Vec<([u8; 8], String)>> = HashMap::new();
        let mut lines = Vec::with_capacity(history.len());
        for entry in history {
            let owner = hex::decode(&entry.actor)
                .ok()
                .and_then(|bytes| actor_owner(&automerge::ActorId::from(bytes.as_slice())));
            let (who, device) = match owner {
                Some((user, tag)) if people.contains_key(&user) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = devices.entry(user) {
                        let sessions = self.store.sessions_of(user).await.map_err(unavailable)?;
                        slot.insert(
                            sessions
                                .into_iter()
                                .map(|s| {
                                    let mut t = [0u8; 8];
                                    t.copy_from_slice(&s.id.as_bytes()[8..]);
                                    (t, s.user_agent)
                                })
                                .collect(),
                        );
                    }
                    let device = if tag == [0; 8] {
                        "the desk".to_owned()
                    } else {
                        devices[&user]
                            .iter()
                            .find(|(t, _)| *t == tag)
                            .map_or_else(|| "a device".to_owned(), |(_, agent)| device_name(agent))
                    };
                    (people[&user].clone(), device)
                }
                _ => (
                    "someone without an account".to_owned(),
                    "before sign-in existed".to_owned(),
                ),
            };
            let assigned = entry.assigned.map(|id| match id.parse::<uuid::Uuid>() {
                _ if id.is_empty() => "nobody".to_owned(),
                Ok(user) => people
                    .get(&user)
                    .cloned()
                    .unwrap_or_else(|| "someone without an account".to_owned()),
                Err(_) => "someone without an account".to_owned(),
            });
            lines.push(HistoryLine {
                at: entry.at,
                received_at: received.get(&entry.hash).copied(),
                who,
                device,
                fields: entry.fields,
                moved: entry.moved,
                assigned,
            });
        }
        Ok(lines)
    }

    /// The name of `team`, if any.
    async fn team_name(&self, team: Option<uuid::Uuid>) -> Result<Option<String>, AppError> {
        let Some(team) = team else {
            return Ok(None);
        };
        let teams = self.store.teams().await.map_err(|e| {
            tracing::error!(error = %e, "reading a report's team");
            AppError::Retryable("the incident is unavailable right now".to_owned())
        })?;
        Ok(teams.into_iter().find(|t| t.id == team).map(|t| t.name))
    }

    /// Whether `viewer` may act on report `id` as `rule` says (false if it does not exist).
    async fn may(
        &self,
        viewer: &Viewer,
        id: ReportId,
        rule: fn(&Viewer, Ownership) -> bool,
    ) -> Result<bool, AppError> {
        Ok(self.ownership_of(id).await?.is_some_and(|of| rule(viewer, of)))
    }

    /// Who report `id` belongs to (`None` if it does not exist).
    async fn ownership_of(&self, id: ReportId) -> Result<Option<Ownership>, AppError> {
        let owners = self.store.ownership(&[id]).await.map_err(|e| {
            tracing::error!(error = %e, "reading who a report belongs to");
            AppError::Retryable("the incident is unavailable right now".to_owned())
        })?;
        Ok(owners.get(&id).copied())
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
    ) -> Result<(), AppError> {
        self.write(
            viewer,
            id,
            move |doc, current| {
                let (base, edited) = change(current)?;
                doc.edit(&base, &edited, now)
                    .map(|change| change.is_some())
                    .map_err(|e| e.to_string())
            },
            now,
        )
        .await
    }

    /// Writes into the merged document as `viewer` through the same merge-and-commit path
    /// as device syncs, then checks the result like any other write. `write` gets the
    /// document and the report as it stands, and says whether it changed anything.
    async fn write(
        &self,
        viewer: &Viewer,
        id: ReportId,
        write: impl Fn(&mut ReportDoc, &Report) -> Result<bool, String> + Send + Sync + 'static,
        now: Timestamp,
    ) -> Result<(), AppError> {
        // A desk edit is the person's own change, made through the server (no session part).
        let actor = actor_for(viewer.user_id, uuid::Uuid::nil(), self.salt);
        let pusher = viewer.clone();
        // The edit is made on a copy of the stored document and then merged like any
        // device's upload: through the intake walk and the write policy, as this person.
        let merge = move |stored: Option<&[u8]>| -> Result<Merged, MergeError> {
            let stored = stored.ok_or_else(|| MergeError::Refused("that incident does not exist".into()))?;
            let mut doc =
                ReportDoc::load(stored, actor.clone()).map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let current = doc.read().map_err(|e| MergeError::Poisoned(e.to_string()))?;
            let before = doc.heads();
            write(&mut doc, &current).map_err(MergeError::Refused)?;
            let push = ReportPush {
                id,
                heads: doc.heads().iter().map(hash_hex).collect(),
                changes: doc.changes_since(&before).into_iter().map(Bytes).collect(),
                document: None,
            };
            merge_push_checked(Some(stored), &push, now, &pusher)
        };
        let job = Job {
            id,
            merge: Arc::new(merge),
        };
        let writer = Writer {
            from: Some(crate::db::Sender {
                user: viewer.user_id,
                session: None,
            }),
            ..Writer::default()
        };
        match self.committer.apply(writer, vec![job], now).await {
            Ok(_) => Ok(()),
            Err(ApplyError::Refused(list)) => Err(AppError::invalid(
                list.into_iter()
                    .map(|(_, reason)| reason)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(e) => {
                tracing::error!(error = %e, "recording a supervisor edit");
                Err(AppError::Retryable(
                    "the change could not be saved right now; try again".to_owned(),
                ))
            }
        }
    }
}

/// A short name for a browser from its user agent: the platform and browser, not the
/// whole string.
fn device_name(agent: &str) -> String {
    let platform = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux", "CrOS"]
        .into_iter()
        .find(|p| agent.contains(p));
    let browser = ["Firefox", "Edg", "Chrome", "Safari"]
        .into_iter()
        .find(|b| agent.contains(b));
    match (platform, browser) {
        (Some(p), Some(b)) => format!("{b} on {p}")
            .replace("Edg ", "Edge ")
            .replace("Mac OS", "macOS"),
        (Some(p), None) => p.to_owned(),
        (None, Some(b)) => b.to_owned(),
        (None, None) if agent.is_empty() => "a device".to_owned(),
        (None, None) => agent.chars().take(40).collect(),
    }
}
