//! The supervisor's desk: server functions over the merged reports, and the port the
//! server implements to answer them.

use leptos::prelude::*;

use crate::error::AppError;
use serde::{Deserialize, Serialize};

use crate::document::FieldConflict;
#[cfg(feature = "ssr")]
use crate::domain::access::Viewer;
use crate::domain::{Priority, Report, ReportId, Severity, Status, Timestamp};

/// One row of the incident list (read from the SQL projection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// The report.
    pub id: ReportId,
    /// Its title.
    pub title: String,
    /// Category key.
    pub category: String,
    /// The category as administrators name it.
    pub category_label: String,
    /// Severity.
    pub severity: Severity,
    /// Workflow status.
    pub status: Status,
    /// Who reported it.
    pub reporter: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Where, in one line.
    pub location: String,
    /// Response priority.
    pub priority: Priority,
    /// When the report to the authority is due, if a regulatory clock runs.
    pub report_due_at: Option<Timestamp>,
}

/// Everything about one incident, read from its merged document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetail {
    /// The report as merged (conflicting fields show Automerge's winner).
    pub report: Report,
    /// Fields holding several concurrent values.
    pub conflicts: Vec<FieldConflict>,
    /// How many changes the document's history holds.
    pub change_count: usize,
    /// Who changed what and when, oldest first (the latest 200 changes at most), from
    /// the document's own history.
    pub history: Vec<HistoryLine>,
    /// The server's time when this was read (regulatory clocks count down from it;
    /// actions are overdue against it).
    pub read_at: Timestamp,
    /// Who can be assigned the response or an action (the report's team), and anyone the
    /// response already names: to choose from and to put names to ids.
    pub people: Vec<Person>,
    /// Whether privacy-sensitive parts (the injury details) were left out because this
    /// reader may read the report but not those.
    pub private_withheld: bool,
    /// The report's category as administrators name it.
    pub category_label: String,
    /// The photos of the report stored on the server (by hash); the others are named by
    /// the report but not uploaded yet.
    pub stored_photos: Vec<String>,
}

impl IncidentDetail {
    /// The name of the person with user id `id` (as stored in the document), or a
    /// placeholder.
    #[must_use]
    pub fn name_of(&self, id: &str) -> String {
        Person::name_in(&self.people, id)
    }
}

impl Person {
    /// The name of the person in `people` with user id `id` (as stored in the document),
    /// or a placeholder.
    #[must_use]
    pub fn name_in(people: &[Person], id: &str) -> String {
        if id.is_empty() {
            return "nobody yet".to_owned();
        }
        people
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| "someone without an account".to_owned(), |p| p.name.clone())
    }
}

/// Someone a response or an action can be given to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Their user id, as the document stores it.
    pub id: String,
    /// Their name.
    pub name: String,
}

/// One outgoing webhook delivery, as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLine {
    /// `report:rank`, also sent as the delivery's id.
    pub id: String,
    /// The report.
    pub report_id: ReportId,
    /// The priority it reached.
    pub priority: Priority,
    /// When it was raised.
    pub created_at: Timestamp,
    /// Attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (`None` once delivered or given up).
    pub next_attempt_at: Option<Timestamp>,
    /// When the receiver accepted it.
    pub delivered_at: Option<Timestamp>,
    /// The receiver's last HTTP status.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// An action as the desk's form submits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAction {
    /// Corrective or preventive.
    pub kind: crate::domain::ActionKind,
    /// What is to be done.
    pub text: String,
    /// Who is to do it (a user id, or empty).
    pub owner: String,
    /// By when.
    pub due_at: Option<Timestamp>,
}

/// One change in a report's history, with names put to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// When (the writer's clock, seconds precision).
    pub at: Timestamp,
    /// When the server received it (none for changes stored before receipts existed).
    #[serde(default)]
    pub received_at: Option<Timestamp>,
    /// Who made it.
    pub who: String,
    /// On which device ("the desk" for edits made on these pages).
    pub device: String,
    /// The fields it set.
    pub fields: Vec<String>,
    /// The status move it made, if any: (from, to).
    pub moved: Option<(Status, Status)>,
    /// The name of whom it assigned the response to, if it did ("nobody" when it
    /// unassigned).
    pub assigned: Option<String>,
}

impl HistoryLine {
    /// Whether the writer's clock said a time later than the server received the change
    /// (plus the skew clocks are allowed): the device's clock was wrong, so its time is not
    /// to be relied on.
    #[must_use]
    pub fn clock_ahead(&self) -> bool {
        self.received_at.is_some_and(|received| {
            self.at.0 > received.0.saturating_add(crate::domain::policy::CLOCK_SKEW_MS)
        })
    }
}

/// One item of an incident's timeline: an update someone wrote, or an event read from the
/// document's history (filed, moved, assigned, edited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineItem {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub who: String,
    /// What was written, or what happened.
    pub text: String,
    /// For an update, whom it is for; `None` for an event from the history.
    pub audience: Option<crate::domain::Audience>,
}

/// The timeline: the updates and, from the history, every change that did more than add
/// updates, oldest first. `label` names a field for people.
#[must_use]
pub fn timeline_items(
    updates: &[crate::domain::TimelineEntry],
    history: &[HistoryLine],
    label: fn(&str) -> &str,
) -> Vec<TimelineItem> {
    let mut items: Vec<TimelineItem> = updates
        .iter()
        .map(|u| TimelineItem {
            at: u.at,
            who: u.author.clone(),
            text: u.text.clone(),
            audience: Some(u.audience),
        })
        .collect();
    for line in history {
        let mut said = Vec::new();
        if let Some((from, to)) = line.moved {
            said.push(format!("moved it from {} to {}", from.label(), to.label()));
        }
        if let Some(whom) = &line.assigned {
            said.push(format!("assigned the response to {whom}"));
        }
        let edited: Vec<&str> = line
            .fields
            .iter()
            .map(String::as_str)
            .filter(|f| !matches!(*f, "timeline" | "status" | "assignee"))
            .map(label)
            .collect();
        if !edited.is_empty() {
            said.push(if line.fields.iter().any(|f| f == "created") {
                edited.join(", ")
            } else {
                format!("changed {}", edited.join(", "))
            });
        }
        if !said.is_empty() {
            items.push(TimelineItem {
                at: line.at,
                who: line.who.clone(),
                text: said.join("; "),
                audience: None,
            });
        }
    }
    // Stable: an update and the change that wrote it keep their order.
    items.sort_by_key(|i| i.at);
    items
}

/// A stored document the server will not merge or serve until an administrator looks at it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedDoc {
    /// The report.
    pub id: ReportId,
    /// What went wrong (from the merge, never report text).
    pub reason: String,
    /// When it was found.
    pub detected_at: Timestamp,
}

/// The port the server implements to serve the desk.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Audience, TimelineEntry};

    #[test]
    fn the_timeline_interleaves_updates_with_moves_assignments_and_edits() {
        let line = |at: i64, fields: &[&str], moved, assigned: Option<&str>| HistoryLine {
            at: Timestamp(at),
            received_at: None,
            who: "Sam".into(),
            device: "the desk".into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            moved,
            assigned: assigned.map(str::to_owned),
        };
        let history = [
            line(1_000, &["created"], None, None),
            line(
                3_000,
                &["status", "assignee"],
                Some((Status::Reported, Status::Triaged)),
                Some("Sam"),
            ),
            line(4_000, &["timeline"], None, None),
            line(5_000, &["title", "severity"], None, None),
        ];
        let updates = [TimelineEntry {
            id: uuid::Uuid::from_u128(1),
            at: Timestamp(4_000),
            author: "Sam".into(),
            author_id: None,
            text: "Called the contractor".into(),
            audience: Audience::Reporter,
        }];
        let items = timeline_items(&updates, &history, |f| {
            if f == "created" { "filed the report" } else { f }
        });
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "filed the report",
                "moved it from Reported to Triaged; assigned the response to Sam",
                "Called the contractor",
                "changed title, severity",
            ]
        );
        assert_eq!(items[2].audience, Some(Audience::Reporter));
        assert_eq!(items[1].audience, None, "an event, not an update");
    }
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait IncidentDesk: Send + Sync + 'static {
    /// Every incident `viewer` may read, newest first.
    async fn list(&self, viewer: &Viewer) -> Result<Vec<IncidentRow>, AppError>;
    /// One incident, if it exists and `viewer` may read it.
    async fn detail(&self, viewer: &Viewer, id: ReportId) -> Result<Option<IncidentDetail>, AppError>;
    /// Applies `viewer`'s edit of `base` as a new change to the merged document, if they
    /// may change the report and the edit keeps the field rules.
    async fn edit(&self, viewer: &Viewer, base: Report, edited: Report) -> Result<(), AppError>;
    /// Appends a dated update by `viewer` to an incident's timeline.
    async fn add_update(
        &self,
        viewer: &Viewer,
        id: ReportId,
        text: String,
        audience: crate::domain::Audience,
    ) -> Result<(), AppError>;
    /// Adds a corrective or preventive action (its id made here) as a change by `viewer`.
    async fn add_action(&self, viewer: &Viewer, id: ReportId, action: NewAction) -> Result<(), AppError>;
    /// Settles a field holding concurrent values on the one shown as `value`, as a change
    /// by `viewer`.
    async fn choose(
        &self,
        viewer: &Viewer,
        id: ReportId,
        field: String,
        value: String,
    ) -> Result<(), AppError>;
    /// Documents held back because they could not be merged (administrators only).
    async fn quarantined(&self, viewer: &Viewer) -> Result<Vec<QuarantinedDoc>, AppError>;
    /// The outgoing webhook's delivery log (administrators only), and whether a webhook
    /// is configured.
    async fn deliveries(&self, viewer: &Viewer) -> Result<(Vec<DeliveryLine>, bool), AppError>;
}

/// The desk, as provided through context by the server.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct DeskHandle(pub std::sync::Arc<dyn IncidentDesk>);

#[cfg(feature = "ssr")]
impl std::fmt::Debug for DeskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeskHandle")
    }
}

#[cfg(feature = "ssr")]
fn desk() -> Result<DeskHandle, AppError> {
    use_context::<DeskHandle>()
        .ok_or_else(|| AppError::Retryable("the incident desk is not available".into()))
}

/// The signed-in person this request acts for (the server puts them in the request).
#[cfg(feature = "ssr")]
pub fn signed_in() -> Result<Viewer, AppError> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Viewer>().cloned())
        .ok_or(AppError::SignedOut)
}

/// Lists every incident, newest first.
#[server]
pub async fn list_incidents() -> Result<Vec<IncidentRow>, AppError> {
    let viewer = signed_in()?;
    desk()?.0.list(&viewer).await
}

/// One incident with its conflicts.
#[server]
pub async fn get_incident(id: String) -> Result<Option<IncidentDetail>, AppError> {
    let id: ReportId = id
        .parse()
        .map_err(|_| AppError::invalid("that is not a report id"))?;
    let viewer = signed_in()?;
    desk()?.0.detail(&viewer, id).await
}

/// Records a supervisor's edit. Only fields that differ from `base` are written.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn edit_incident(base: Report, edited: Report) -> Result<(), AppError> {
    let viewer = signed_in()?;
    desk()?.0.edit(&viewer, base, edited).await
}

/// Appends an update for `audience` (`team` or `reporter`) to an incident's timeline, by
/// the signed-in person, dated now by the server.
#[server]
pub async fn add_update(id: String, text: String, audience: String) -> Result<(), AppError> {
    let id: ReportId = id
        .parse()
        .map_err(|_| AppError::invalid("that is not a report id"))?;
    let audience = crate::domain::Audience::from_key(&audience)
        .ok_or_else(|| AppError::invalid("choose whom the update is for"))?;
    let viewer = signed_in()?;
    desk()?.0.add_update(&viewer, id, text, audience).await
}

/// Adds a corrective or preventive action to an incident, by the signed-in person.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn add_action(id: ReportId, action: NewAction) -> Result<(), AppError> {
    let viewer = signed_in()?;
    desk()?.0.add_action(&viewer, id, action).await
}

/// Settles a field that holds concurrent values on one of them (shown as `value`), as a
/// change by the signed-in person.
#[server]
pub async fn choose_value(id: String, field: String, value: String) -> Result<(), AppError> {
    let id: ReportId = id
        .parse()
        .map_err(|_| AppError::invalid("that is not a report id"))?;
    let viewer = signed_in()?;
    desk()?.0.choose(&viewer, id, field, value).await
}

/// The outgoing webhook's delivery log, newest first, and whether a webhook is set up.
#[server]
pub async fn list_deliveries() -> Result<(Vec<DeliveryLine>, bool), AppError> {
    let viewer = signed_in()?;
    desk()?.0.deliveries(&viewer).await
}

/// Documents held back because they could not be merged, newest first.
#[server]
pub async fn list_quarantined() -> Result<Vec<QuarantinedDoc>, AppError> {
    let viewer = signed_in()?;
    desk()?.0.quarantined(&viewer).await
}
