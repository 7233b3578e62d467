//! The device's sync engine, without IO: from the reports a device holds (each with its
//! heads, the heads the server acknowledged and the heads it refused), the feed cursor and
//! the server's answers, it decides what to push, what to store and what to show. The
//! browser (`frontend`) and the test harness's simulated devices drive this same engine;
//! they only perform the IO it asks for, through [`Local`] and by sending the requests.
//!
//! One sync *pass* ([`Pass`]) is a series of exchanges: each sends every report with
//! unacknowledged changes (at most [`MAX_REPORTS_PER_REQUEST`]) and the pulls, and receives
//! acknowledgements and the feed since the cursor. It repeats while reports are pending,
//! the server says `more`, or a feed entry could not be applied (that report is then
//! pulled: sent with its heads and no changes, so the server answers with exactly what it
//! lacks).
//!
//! Durability order: a report's changes stay on the device (and are resent) until the
//! server has acknowledged heads that cover them; feed changes are stored report by
//! report before the cursor advances, so a lost or repeated answer only repeats work.
//! Reports the server refused are not resent until they change again.

use serde::{Deserialize, Serialize};

use crate::document::{DocError, ReportDoc, parse_hash};
use crate::domain::drill::{DrillBrief, MAX_EVENTS_PER_REQUEST};
use crate::domain::{
    CategoryDef, Clock, DrillEvent, Plan, Priority, Report, ReportId, Severity, Status, Timestamp,
};
use crate::field::{OutboxEntry, ReportSync};
use crate::protocol::{
    ActionRow, Bytes, ErrorCode, MAX_NOTICES, MAX_REPORTS_PER_REQUEST, Notice, ReportAck, ReportPush,
    SyncError, SyncRequest, SyncResponse,
};

/// What the outbox shows of a report without loading its document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Status.
    pub status: Status,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its priority (absent in summaries saved before priorities existed).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The legal deadline for reporting it, if one runs.
    #[serde(default)]
    pub clock: Option<Clock>,
    /// Whether it was filed during a drill.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
}

impl Summary {
    /// The summary of `report`.
    #[must_use]
    pub fn of(report: &Report) -> Self {
        Self {
            title: report.title.clone(),
            severity: report.severity,
            status: report.status,
            occurred_at: report.occurred_at,
            priority: Some(report.priority()),
            clock: report.clock(),
            drill: report.drill.is_some(),
        }
    }
}

/// One report as a device holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    /// The whole Automerge document.
    pub doc: Bytes,
    /// Its heads (hex).
    pub heads: Vec<String>,
    /// The heads the server has durably acknowledged (hex).
    pub synced_heads: Vec<String>,
    /// Where it stands.
    pub sync: ReportSync,
    /// Heads that the server refused; not resent until the report changes again.
    #[serde(default)]
    pub refused_heads: Option<Vec<String>>,
    /// For the outbox.
    pub summary: Summary,
}

impl StoredReport {
    /// `doc` as the report's new local state. `acknowledged` is the heads the server has
    /// just acknowledged (which also clears an earlier refusal); without it, `previous`'s
    /// acknowledgement and refusal are kept.
    pub fn of(
        doc: &mut ReportDoc,
        previous: Option<&StoredReport>,
        acknowledged: Option<&[String]>,
    ) -> Result<Self, DocError> {
        let report = doc.read()?;
        let heads: Vec<String> = doc.heads().iter().map(crate::document::hash_hex).collect();
        let previous = previous.filter(|_| acknowledged.is_none());
        let synced_heads = match acknowledged {
            Some(acked) => acked.to_vec(),
            None => previous.map(|p| p.synced_heads.clone()).unwrap_or_default(),
        };
        let refused_heads = previous.and_then(|p| p.refused_heads.clone());
        let sync = if same_heads(&heads, &synced_heads) {
            ReportSync::Synced
        } else {
            match previous {
                Some(p) if refused_heads.as_ref().is_some_and(|r| same_heads(r, &heads)) => p.sync.clone(),
                _ => ReportSync::NotSynced,
            }
        };
        Ok(Self {
            doc: Bytes(doc.save()),
            heads,
            synced_heads,
            sync,
            refused_heads,
            summary: Summary::of(&report),
        })
    }

    /// What the engine and the outbox need of it, without the document.
    #[must_use]
    pub fn state(&self) -> ReportState {
        ReportState {
            heads: self.heads.clone(),
            synced_heads: self.synced_heads.clone(),
            sync: self.sync.clone(),
            refused_heads: self.refused_heads.clone(),
            summary: self.summary.clone(),
        }
    }

    /// What to send for it: the stored compacted document while the server has
    /// acknowledged nothing of it (smaller, and faster for the server to check) when
    /// `whole_documents`, else the changes after what it acknowledged.
    pub fn push(&self, id: ReportId, whole_documents: bool) -> Result<ReportPush, DocError> {
        if whole_documents && self.synced_heads.is_empty() {
            return Ok(ReportPush {
                id,
                heads: self.heads.clone(),
                changes: Vec::new(),
                document: Some(self.doc.clone()),
            });
        }
        let mut doc = ReportDoc::load(&self.doc.0, automerge::ActorId::random())?;
        let acked = (self.synced_heads.iter())
            .map(|h| parse_hash(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DocError::Load)?;
        Ok(ReportPush {
            id,
            heads: self.heads.clone(),
            changes: doc.changes_since(&acked).into_iter().map(Bytes).collect(),
            document: None,
        })
    }
}

/// A report as the engine and the outbox see it: a [`StoredReport`] without its document,
/// small enough to keep for every report in memory (see [`Indexed`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReportState {
    /// Its heads (hex).
    pub heads: Vec<String>,
    /// The heads the server has durably acknowledged (hex).
    pub synced_heads: Vec<String>,
    /// Where it stands.
    pub sync: ReportSync,
    /// Heads that the server refused.
    pub refused_heads: Option<Vec<String>>,
    /// For the outbox.
    pub summary: Summary,
}

impl ReportState {
    /// Whether the server lacks some of this report's changes.
    #[must_use]
    pub fn has_unacknowledged_changes(&self) -> bool {
        !same_heads(&self.heads, &self.synced_heads)
    }

    /// Whether the engine sends it now: it has unacknowledged changes, and they are not
    /// the ones the server refused.
    #[must_use]
    pub fn should_send(&self) -> bool {
        self.has_unacknowledged_changes()
            && self
                .refused_heads
                .as_ref()
                .is_none_or(|refused| !same_heads(refused, &self.heads))
    }

    /// Its outbox line.
    #[must_use]
    pub fn outbox_entry(&self, id: ReportId) -> OutboxEntry {
        OutboxEntry {
            id,
            title: self.summary.title.clone(),
            severity: self.summary.severity,
            status: self.summary.status,
            occurred_at: self.summary.occurred_at,
            priority: self.summary.priority,
            clock: self.summary.clock,
            sync: self.sync.clone(),
            drill: self.summary.drill,
        }
    }
}

/// The browser `localStorage` key under which a device keeps the ids of its reports
/// (`frontend::store`).
pub const INDEX_KEY: &str = "muster.v1.index";
/// The start of the `localStorage` key of each report a device keeps; [`report_key`].
pub const REPORT_KEY_PREFIX: &str = "muster.v1.report.";

/// The `localStorage` key of report `id` on a device.
pub fn report_key(id: ReportId) -> String {
    format!("{REPORT_KEY_PREFIX}{id}")
}

/// Whether two head lists name the same set.
#[must_use]
pub fn same_heads(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// Why the device could not store something (its storage is full, or refused the write).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// What the engine needs of the device's storage: its reports, its feed cursor and the
/// lists it holds. Every write either happens whole or fails with a reason.
pub trait Local {
    /// Every report held, oldest first.
    fn ids(&self) -> Vec<ReportId>;
    /// One report.
    fn load(&self, id: ReportId) -> Option<StoredReport>;
    /// Stores a report (new or replaced).
    fn save(&mut self, id: ReportId, report: &StoredReport) -> Result<(), StoreError>;
    /// Calls `f` with every report's state, oldest first. By default this reads every
    /// document; [`Indexed`] answers from memory, and `f` must not use the storage itself
    /// meanwhile (collect what to do, then do it).
    fn each_state(&self, f: &mut dyn FnMut(ReportId, &ReportState)) {
        for id in self.ids() {
            if let Some(stored) = self.load(id) {
                f(id, &stored.state());
            }
        }
    }
    /// One report's state (by default, read with its document).
    fn state(&self, id: ReportId) -> Option<ReportState> {
        self.load(id).map(|stored| stored.state())
    }
    /// The feed cursor up to which everything is stored.
    fn cursor(&self) -> Option<u64>;
    /// Records the feed cursor, after everything up to it has been stored.
    fn set_cursor(&mut self, cursor: u64) -> Result<(), StoreError>;
    /// The versions of the notifications and of the reference lists held.
    fn versions(&self) -> (Option<String>, Option<String>);
    /// Replaces the notifications with the server's list, of `version`.
    fn set_notices(&mut self, notices: &[Notice], version: &str) -> Result<(), StoreError>;
    /// Replaces the response plans and categories, of `version`.
    fn set_lists(
        &mut self,
        plans: &[Plan],
        categories: &[CategoryDef],
        version: &str,
    ) -> Result<(), StoreError>;
    /// The version of the person's actions held.
    fn actions_seen(&self) -> Option<String>;
    /// Marks a notification read: no longer listed, and told to the server on the next
    /// sync (so it works offline).
    fn mark_read(&mut self, id: &str) -> Result<(), StoreError>;
    /// Notifications marked read on the device and not yet told to the server.
    fn notices_read(&self) -> Vec<String>;
    /// Records that the server was told these were read (a mark made meanwhile stays).
    fn told_read(&mut self, ids: &[String]) -> Result<(), StoreError>;
    /// Replaces the person's actions with the server's list, of `version`.
    fn set_actions(&mut self, actions: &[ActionRow], version: &str) -> Result<(), StoreError>;
    /// The version of the team's drills held.
    fn drills_seen(&self) -> Option<String>;
    /// Replaces the team's drills with the server's list, of `version`.
    fn set_drills(&mut self, drills: &[DrillBrief], version: &str) -> Result<(), StoreError>;
    /// Keeps what happened in a drill run until the server has taken it (so it works
    /// offline).
    fn record_event(&mut self, event: DrillEvent) -> Result<(), StoreError>;
    /// Drill events not yet taken by the server, oldest first.
    fn drill_events(&self) -> Vec<DrillEvent>;
    /// Records that the server took these (stored or refused them).
    fn told_events(&mut self, ids: &[uuid::Uuid]) -> Result<(), StoreError>;
}

/// A device's storage in memory (what the browser keeps in `localStorage`): for devices
/// that keep nothing across restarts, such as the test harness's simulated phones.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InMemory {
    /// Every report held.
    pub reports: std::collections::BTreeMap<ReportId, StoredReport>,
    /// The feed cursor.
    pub cursor: Option<u64>,
    /// The versions of the notifications and of the reference lists held.
    pub versions: (Option<String>, Option<String>),
    /// The notifications held.
    pub notices: Vec<Notice>,
    /// The person's actions held, and their version.
    pub actions: Option<(Vec<ActionRow>, String)>,
    /// Notifications marked read and not yet told to the server.
    pub notices_read: Vec<String>,
    /// The team's drills held, and their version.
    pub drills: Option<(Vec<DrillBrief>, String)>,
    /// Drill events not yet taken by the server.
    pub drill_events: Vec<DrillEvent>,
}

impl Local for InMemory {
    fn ids(&self) -> Vec<ReportId> {
        self.reports.keys().copied().collect()
    }

    fn load(&self, id: ReportId) -> Option<StoredReport> {
        self.reports.get(&id).cloned()
    }

    fn save(&mut self, id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
        self.reports.insert(id, report.clone());
        Ok(())
    }

    fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    fn set_cursor(&mut self, cursor: u64) -> Result<(), StoreError> {
        self.cursor = Some(cursor);
        Ok(())
    }

    fn versions(&self) -> (Option<String>, Option<String>) {
        self.versions.clone()
    }

    fn set_notices(&mut self, notices: &[Notice], version: &str) -> Result<(), StoreError> {
        self.notices = notices.to_vec();
        self.versions.0 = Some(version.to_owned());
        Ok(())
    }

    fn set_lists(&mut self, _: &[Plan], _: &[CategoryDef], version: &str) -> Result<(), StoreError> {
        self.versions.1 = Some(version.to_owned());
        Ok(())
    }

    fn actions_seen(&self) -> Option<String> {
        self.actions.as_ref().map(|(_, version)| version.clone())
    }

    fn set_actions(&mut self, actions: &[ActionRow], version: &str) -> Result<(), StoreError> {
        self.actions = Some((actions.to_vec(), version.to_owned()));
        Ok(())
    }

    fn mark_read(&mut self, id: &str) -> Result<(), StoreError> {
        self.notices.retain(|n| n.id != id);
        if !self.notices_read.iter().any(|r| r == id) {
            self.notices_read.push(id.to_owned());
        }
        Ok(())
    }

    fn notices_read(&self) -> Vec<String> {
        self.notices_read.clone()
    }

    fn told_read(&mut self, ids: &[String]) -> Result<(), StoreError> {
        self.notices_read.retain(|id| !ids.contains(id));
        Ok(())
    }

    fn drills_seen(&self) -> Option<String> {
        self.drills.as_ref().map(|(_, version)| version.clone())
    }

    fn set_drills(&mut self, drills: &[DrillBrief], version: &str) -> Result<(), StoreError> {
        self.drills = Some((drills.to_vec(), version.to_owned()));
        Ok(())
    }

    fn record_event(&mut self, event: DrillEvent) -> Result<(), StoreError> {
        self.drill_events.push(event);
        Ok(())
    }

    fn drill_events(&self) -> Vec<DrillEvent> {
        self.drill_events.clone()
    }

    fn told_events(&mut self, ids: &[uuid::Uuid]) -> Result<(), StoreError> {
        self.drill_events.retain(|e| !ids.contains(&e.id));
        Ok(())
    }
}

/// A device's storage with every report's [`ReportState`] kept in memory: read once, then
/// updated on each save, so a sync round and the outbox read no document they do not use.
/// Only the reports to send are loaded whole.
///
/// Whoever else writes to the same storage (another browser tab) must [`Indexed::forget`]
/// the index, which is then read again on next use.
#[derive(Debug)]
pub struct Indexed<L> {
    inner: L,
    index: std::cell::RefCell<Option<Index>>,
}

/// The reports' states in storage order, and where each is.
#[derive(Debug, Default)]
struct Index {
    states: Vec<(ReportId, ReportState)>,
    at: std::collections::HashMap<ReportId, usize>,
}

impl Index {
    fn read(local: &impl Local) -> Self {
        let mut index = Self::default();
        local.each_state(&mut |id, state| {
            index.put(id, state.clone());
        });
        index
    }

    /// Records `id`'s state; says whether the report is new.
    fn put(&mut self, id: ReportId, state: ReportState) -> bool {
        match self.at.get(&id) {
            Some(&i) => {
                self.states[i].1 = state;
                false
            }
            None => {
                self.at.insert(id, self.states.len());
                self.states.push((id, state));
                true
            }
        }
    }

    /// Puts the states in the storage's order (`ids`).
    fn order_by(&mut self, ids: &[ReportId]) {
        let rank: std::collections::HashMap<ReportId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        self.states
            .sort_by_key(|(id, _)| rank.get(id).copied().unwrap_or(usize::MAX));
        self.at = (self.states.iter().enumerate())
            .map(|(i, (id, _))| (*id, i))
            .collect();
    }
}

impl<L: Local> Indexed<L> {
    /// `inner`, indexed on first use.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            index: std::cell::RefCell::new(None),
        }
    }

    /// Drops the index: the storage changed behind this engine's back.
    pub fn forget(&self) {
        self.index.replace(None);
    }

    fn with_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> T {
        let mut index = self.index.borrow_mut();
        f(index.get_or_insert_with(|| Index::read(&self.inner)))
    }
}

impl<L: Local> Local for Indexed<L> {
    fn ids(&self) -> Vec<ReportId> {
        self.with_index(|index| index.states.iter().map(|(id, _)| *id).collect())
    }

    fn load(&self, id: ReportId) -> Option<StoredReport> {
        self.inner.load(id)
    }

    fn save(&mut self, id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
        self.inner.save(id, report)?;
        let inner = &self.inner;
        self.with_index(|index| {
            // A new report goes where the storage puts it.
            if index.put(id, report.state()) {
                index.order_by(&inner.ids());
            }
        });
        Ok(())
    }

    fn each_state(&self, f: &mut dyn FnMut(ReportId, &ReportState)) {
        self.with_index(|index| {
            for (id, state) in &index.states {
                f(*id, state);
            }
        });
    }

    fn state(&self, id: ReportId) -> Option<ReportState> {
        self.with_index(|index| index.at.get(&id).map(|&i| index.states[i].1.clone()))
    }

    fn cursor(&self) -> Option<u64> {
        self.inner.cursor()
    }

    fn set_cursor(&mut self, cursor: u64) -> Result<(), StoreError> {
        self.inner.set_cursor(cursor)
    }

    fn versions(&self) -> (Option<String>, Option<String>) {
        self.inner.versions()
    }

    fn set_notices(&mut self, notices: &[Notice], version: &str) -> Result<(), StoreError> {
        self.inner.set_notices(notices, version)
    }

    fn set_lists(
        &mut self,
        plans: &[Plan],
        categories: &[CategoryDef],
        version: &str,
    ) -> Result<(), StoreError> {
        self.inner.set_lists(plans, categories, version)
    }

    fn actions_seen(&self) -> Option<String> {
        self.inner.actions_seen()
    }

    fn set_actions(&mut self, actions: &[ActionRow], version: &str) -> Result<(), StoreError> {
        self.inner.set_actions(actions, version)
    }

    fn mark_read(&mut self, id: &str) -> Result<(), StoreError> {
        self.inner.mark_read(id)
    }

    fn notices_read(&self) -> Vec<String> {
        self.inner.notices_read()
    }

    fn told_read(&mut self, ids: &[String]) -> Result<(), StoreError> {
        self.inner.told_read(ids)
    }

    fn drills_seen(&self) -> Option<String> {
        self.inner.drills_seen()
    }

    fn set_drills(&mut self, drills: &[DrillBrief], version: &str) -> Result<(), StoreError> {
        self.inner.set_drills(drills, version)
    }

    fn record_event(&mut self, event: DrillEvent) -> Result<(), StoreError> {
        self.inner.record_event(event)
    }

    fn drill_events(&self) -> Vec<DrillEvent> {
        self.inner.drill_events()
    }

    fn told_events(&mut self, ids: &[uuid::Uuid]) -> Result<(), StoreError> {
        self.inner.told_events(ids)
    }
}

/// Applies the server's state of a report (an acknowledgement or a feed entry): stores
/// the changes it sent and records its heads as acknowledged. A report the device does
/// not hold yet is created. Reloads first: the person may have edited the report while the
/// request was in flight.
pub fn apply_remote(local: &mut impl Local, ack: &ReportAck) -> Result<(), RemoteError> {
    let stored = local.load(ack.id);
    let mut doc = match &stored {
        Some(s) => ReportDoc::load(&s.doc.0, automerge::ActorId::random())?,
        None => ReportDoc::empty(automerge::ActorId::random()),
    };
    let incoming: Vec<Vec<u8>> = ack.changes.iter().map(|b| b.0.clone()).collect();
    doc.apply_changes(&incoming).map_err(RemoteError::Changes)?;
    let updated = StoredReport::of(&mut doc, stored.as_ref(), Some(&ack.heads))?;
    Ok(local.save(ack.id, &updated)?)
}

/// Why the server's state of a report could not be stored on the device.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The device's copy could not be read, or the result is not a report.
    #[error(transparent)]
    Document(#[from] DocError),
    /// The server's changes do not apply (they build on changes the device lacks).
    #[error("changes from the server could not be applied: {0}")]
    Changes(DocError),
    /// The device could not store the result.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks a report's current heads refused, with the server's reason.
pub fn mark_refused(local: &mut impl Local, id: ReportId, reason: &str) {
    if let Some(mut stored) = local.load(id) {
        stored.refused_heads = Some(stored.heads.clone());
        stored.sync = ReportSync::Error(reason.to_owned());
        // A refusal that cannot be stored is met again on the next pass.
        let _ = local.save(id, &stored);
    }
}

/// The reports the engine sends now, oldest first.
pub fn pending(local: &impl Local) -> Vec<(ReportId, StoredReport)> {
    pending_ids(local)
        .into_iter()
        .filter_map(|id| local.load(id).map(|s| (id, s)))
        .collect()
}

/// The ids of the reports the engine sends now, oldest first.
fn pending_ids(local: &impl Local) -> Vec<ReportId> {
    let mut ids = Vec::new();
    local.each_state(&mut |id, state| {
        if state.should_send() {
            ids.push(id);
        }
    });
    ids
}

/// The outbox: every report's line, oldest first.
pub fn outbox(local: &impl Local) -> Vec<OutboxEntry> {
    let mut entries = Vec::new();
    local.each_state(&mut |id, state| entries.push(state.outbox_entry(id)));
    entries
}

/// How a pass stopped short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Stop {
    /// What to show.
    pub message: String,
    /// Whether the same request may succeed later (the server is busy or restarting, or
    /// was not reached), so the device retries with backoff.
    pub retry: bool,
    /// The server says the session ended: the device is signed out (its reports stay).
    pub signed_out: bool,
}

impl Stop {
    /// The device itself could not read or store something: not worth retrying soon.
    #[must_use]
    pub fn device(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
            signed_out: false,
        }
    }
}

/// What an answer asks the device to do next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    /// Whether to send another request in this pass.
    pub again: bool,
    /// Notifications to show, when the server sent a new list.
    pub notices: Option<Vec<Notice>>,
    /// Response plans and categories to show, when the server sent new ones.
    pub lists: Option<(Vec<Plan>, Vec<CategoryDef>)>,
    /// The person's actions to show, when the server sent a new list.
    pub actions: Option<Vec<ActionRow>>,
    /// The team's drills to show, when the server sent a new list.
    pub drills: Option<Vec<DrillBrief>>,
}

/// One sync pass: the cursor and the reports to pull, across its exchanges.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// The feed cursor the next request sends.
    pub cursor: Option<u64>,
    /// Reports to ask for in full (followed, or a feed entry that did not apply).
    pub pulls: Vec<ReportId>,
    /// Send a report the server never acknowledged as its whole document (the app
    /// always does; tests of change handling turn it off).
    pub whole_documents: bool,
    /// The read marks the last request carried (set by [`Pass::request`]), forgotten
    /// on the device once an answer shows the server took them.
    pub notices_read: Vec<String>,
    /// The drill events the last request carried, likewise.
    pub drill_events: Vec<uuid::Uuid>,
}

impl Pass {
    /// A pass starting from the device's stored cursor.
    #[must_use]
    pub fn new(local: &impl Local) -> Self {
        Self {
            cursor: local.cursor(),
            pulls: Vec::new(),
            whole_documents: true,
            notices_read: Vec::new(),
            drill_events: Vec::new(),
        }
    }

    /// The next request: every report with unacknowledged changes (a report whose push
    /// cannot be made is marked refused), then pulls, up to one request's worth.
    pub fn request(&mut self, local: &mut impl Local, device_id: uuid::Uuid) -> SyncRequest {
        let mut pushes = Vec::new();
        let ids = pending_ids(local);
        for id in ids.into_iter().take(MAX_REPORTS_PER_REQUEST) {
            let Some(stored) = local.load(id) else { continue };
            match stored.push(id, self.whole_documents) {
                Ok(push) => pushes.push(push),
                Err(reason) => mark_refused(local, id, &reason.to_string()),
            }
        }
        while pushes.len() < MAX_REPORTS_PER_REQUEST {
            let Some(id) = self.pulls.pop() else { break };
            // A pull of a report pushed anyway is answered by that push.
            if pushes.iter().all(|p| p.id != id) {
                pushes.push(pull_of(local, id));
            }
        }
        let (notices_seen, lists_seen) = local.versions();
        self.notices_read = local.notices_read().into_iter().take(MAX_NOTICES).collect();
        let drill_events: Vec<DrillEvent> = local
            .drill_events()
            .into_iter()
            .take(MAX_EVENTS_PER_REQUEST)
            .collect();
        self.drill_events = drill_events.iter().map(|e| e.id).collect();
        SyncRequest {
            since: self.cursor,
            notices_seen,
            lists_seen,
            actions_seen: local.actions_seen(),
            notices_read: self.notices_read.clone(),
            drills_seen: local.drills_seen(),
            drill_events,
            ..SyncRequest::new(device_id, pushes)
        }
    }

    /// Takes the server's answer to [`Pass::request`] (or the error it explained): stores
    /// acknowledgements, the lists and the feed, advances the cursor when every feed
    /// entry applied, and says whether to go on.
    pub fn answer(
        &mut self,
        local: &mut impl Local,
        answer: Result<SyncResponse, SyncError>,
    ) -> Result<Round, Stop> {
        let body = match answer {
            Ok(body) => body,
            Err(error) if error.error == ErrorCode::RejectedReports && !error.rejected.is_empty() => {
                for rejection in &error.rejected {
                    mark_refused(local, rejection.id, &rejection.reason);
                }
                // Send the others again, without the refused ones.
                return Ok(Round {
                    again: true,
                    ..Round::default()
                });
            }
            Err(error) => {
                return Err(Stop {
                    retry: error.error == ErrorCode::Unavailable,
                    signed_out: error.error == ErrorCode::SignedOut,
                    message: error.message,
                });
            }
        };
        for ack in &body.reports {
            apply_remote(local, ack).map_err(|e| Stop::device(e.to_string()))?;
            self.pulls.retain(|id| *id != ack.id);
        }
        // Lists the server sent because they changed: each replaces what the device held.
        let mut round = Round::default();
        // The server marked the ones sent read before it made this answer.
        let told = std::mem::take(&mut self.notices_read);
        local.told_read(&told).map_err(|e| Stop::device(e.0))?;
        // And stored the drill events sent (or refused them, saying why): either way the
        // device need not send them again.
        let told = std::mem::take(&mut self.drill_events);
        local.told_events(&told).map_err(|e| Stop::device(e.0))?;
        if let (Some(drills), Some(version)) = (body.drills, &body.drills_version) {
            local
                .set_drills(&drills, version)
                .map_err(|e| Stop::device(e.0))?;
            round.drills = Some(drills);
        }
        if let (Some(mut notices), Some(version)) = (body.notices, &body.notices_version) {
            // Marked read here after the request went: keep them hidden until told.
            let unsent = local.notices_read();
            notices.retain(|n| !unsent.contains(&n.id));
            local
                .set_notices(&notices, version)
                .map_err(|e| Stop::device(e.0))?;
            round.notices = Some(notices);
        }
        if let (Some(plans), Some(categories), Some(version)) =
            (body.plans, body.categories, &body.lists_version)
        {
            local
                .set_lists(&plans, &categories, version)
                .map_err(|e| Stop::device(e.0))?;
            round.lists = Some((plans, categories));
        }
        if let (Some(actions), Some(version)) = (body.actions, &body.actions_version) {
            local
                .set_actions(&actions, version)
                .map_err(|e| Stop::device(e.0))?;
            round.actions = Some(actions);
        }
        let mut all_applied = true;
        for entry in &body.feed {
            if apply_remote(local, entry).is_err() {
                // We lack what the server assumed we hold: ask for this report in full.
                all_applied = false;
                if !self.pulls.contains(&entry.id) {
                    self.pulls.push(entry.id);
                }
            }
        }
        if all_applied {
            local.set_cursor(body.cursor).map_err(|e| Stop::device(e.0))?;
            self.cursor = Some(body.cursor);
        }
        round.again = body.more
            || !self.pulls.is_empty()
            || !pending_ids(local).is_empty()
            || !local.drill_events().is_empty();
        Ok(round)
    }
}

/// A pull: the device's heads (none if it holds nothing of the report) and no changes.
fn pull_of(local: &impl Local, id: ReportId) -> ReportPush {
    ReportPush {
        id,
        heads: local.state(id).map(|s| s.heads).unwrap_or_default(),
        changes: Vec::new(),
        document: None,
    }
}

/// Every report the device would send now (pending reports and `pulls`), not limited to
/// one request's worth.
pub fn pushes(local: &impl Local, pulls: &[ReportId], whole_documents: bool) -> Vec<ReportPush> {
    let mut out: Vec<ReportPush> = pending(local)
        .into_iter()
        .filter_map(|(id, stored)| stored.push(id, whole_documents).ok())
        .collect();
    for id in pulls {
        if out.iter().all(|p| p.id != *id) {
            out.push(pull_of(local, *id));
        }
    }
    out
}

#[cfg(test)]
mod tests;
