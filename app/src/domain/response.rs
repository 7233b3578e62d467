//! The response to an incident after it was reported: who leads it and by when, the
//! investigation (a "5 whys" chain and contributing factors), corrective and preventive
//! actions with their effectiveness checks, and the post-incident review whose lessons go
//! back to the reporter.
//!
//! Plain data and rules, like the rest of the domain: the caller passes the time in.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::validation::{MAX_SHORT, MAX_TEXT};
use super::{FieldError, Status, Timestamp};

/// Most steps in a "5 whys" chain (five is the habit, not a limit).
pub const MAX_WHYS: usize = 10;
/// Most contributing factors on one report.
pub const MAX_FACTORS: usize = 50;
/// Most actions on one report.
pub const MAX_ACTIONS: usize = 200;

/// Whether an action fixes this incident's cause or stops the like from happening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Removes the cause of this incident.
    Corrective,
    /// Stops similar incidents elsewhere or later.
    Preventive,
}

keyed!(ActionKind {
    Corrective = "corrective", "Corrective";
    Preventive = "preventive", "Preventive";
});

/// How far an action has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Agreed, not started.
    Open,
    /// Being done.
    InProgress,
    /// Done; its effectiveness can now be checked.
    Done,
}

keyed!(ActionState {
    Open = "open", "Open";
    InProgress = "in_progress", "In progress";
    Done = "done", "Done";
});

/// Whether a completed action was checked to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effectiveness {
    /// Not checked yet.
    NotChecked,
    /// Checked: it works.
    Effective,
    /// Checked: it does not work; a new action is needed.
    NotEffective,
}

keyed!(Effectiveness {
    NotChecked = "not_checked", "Not checked yet";
    Effective = "effective", "Effective";
    NotEffective = "not_effective", "Not effective";
});

/// A corrective or preventive action.
///
/// In the document each action is a map under its id, so two people changing different
/// parts of one action (the owner marks it done, a supervisor moves its due date) both
/// keep their change, and two people adding actions at once both keep theirs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Reconcile)]
pub struct Action {
    /// Made where the action was added (UUIDv7, so ids sort by creation).
    #[autosurgeon(reconcile = "uuid_text")]
    pub id: Uuid,
    /// Corrective or preventive.
    pub kind: ActionKind,
    /// What is to be done.
    pub text: String,
    /// Who is to do it: a user id, or empty while nobody owns it.
    pub owner: String,
    /// By when.
    pub due_at: Option<Timestamp>,
    /// How far it has got.
    pub state: ActionState,
    /// The effectiveness check, once it is done.
    pub check: Effectiveness,
    /// What the check found.
    pub check_note: String,
}

impl Action {
    /// A new open corrective action.
    #[must_use]
    pub fn new(id: Uuid, kind: ActionKind, text: &str, owner: &str, due_at: Option<Timestamp>) -> Self {
        Self {
            id,
            kind,
            text: text.trim().to_owned(),
            owner: owner.to_owned(),
            due_at,
            state: ActionState::Open,
            check: Effectiveness::NotChecked,
            check_note: String::new(),
        }
    }

    /// Whether it is past its due date and not done at `now`.
    #[must_use]
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.state != ActionState::Done && self.due_at.is_some_and(|due| due.0 < now.0)
    }
}

/// Stores a UUID as its hyphenated text (readable in the document and in conflicts).
fn uuid_text<R: autosurgeon::Reconciler>(id: &Uuid, mut reconciler: R) -> Result<(), R::Error> {
    reconciler.str(id.to_string())
}

/// The post-incident review, written once the incident is resolved. Every part is free
/// text; the lessons learned go back to the reporter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Reconcile)]
pub struct Review {
    /// What happened, in a paragraph.
    pub summary: String,
    /// What it cost: people, operations, money, environment.
    pub impact: String,
    /// The sequence of events that mattered.
    pub timeline: String,
    /// What went well in the response.
    pub went_well: String,
    /// What did not.
    pub went_badly: String,
    /// The root cause, as the review agreed it.
    pub root_cause: String,
    /// The actions the review agreed.
    pub actions: String,
    /// What everyone should take away: shown to the reporter.
    pub lessons: String,
}

impl Review {
    /// The parts as (stored key, label, text), in form order.
    #[must_use]
    pub fn parts(&self) -> [(&'static str, &'static str, &str); 8] {
        [
            ("summary", "Summary", &self.summary),
            ("impact", "Impact of the incident", &self.impact),
            ("timeline", "Timeline of events", &self.timeline),
            ("went_well", "What went well", &self.went_well),
            ("went_badly", "What did not go well", &self.went_badly),
            ("root_cause", "Root cause", &self.root_cause),
            ("actions", "Actions agreed", &self.actions),
            ("lessons", "Lessons learned", &self.lessons),
        ]
    }

    /// The part stored under `key`, to write.
    pub fn part_mut(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "summary" => &mut self.summary,
            "impact" => &mut self.impact,
            "timeline" => &mut self.timeline,
            "went_well" => &mut self.went_well,
            "went_badly" => &mut self.went_badly,
            "root_cause" => &mut self.root_cause,
            "actions" => &mut self.actions,
            "lessons" => &mut self.lessons,
            _ => return None,
        })
    }
}

/// Everything the response adds to a report. Documents written before it existed have
/// none of it: read as this type's default (nobody assigned, nothing investigated).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Reconcile)]
pub struct Response {
    /// Who leads the response: a user id, or empty while nobody is assigned.
    pub assignee: String,
    /// When the response should be resolved by.
    pub due_at: Option<Timestamp>,
    /// The "5 whys" chain: each answer asks the next why, the last is the root cause.
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub whys: Vec<String>,
    /// Conditions that made it likelier or worse (merged as a set).
    #[autosurgeon(reconcile = "super::list_as_is")]
    pub factors: Vec<String>,
    /// Corrective and preventive actions, in the order they were added.
    #[autosurgeon(reconcile = "actions_by_id")]
    pub actions: Vec<Action>,
    /// The post-incident review.
    pub review: Review,
}

/// Actions are stored as a map from id to action (see [`Action`]).
fn actions_by_id<R: autosurgeon::Reconciler>(actions: &[Action], mut reconciler: R) -> Result<(), R::Error> {
    use autosurgeon::reconcile::MapReconciler;
    let mut map = reconciler.map()?;
    for action in actions {
        map.put(action.id.to_string(), action)?;
    }
    Ok(())
}

/// A new document holds no response until someone starts one: the map is created by the
/// first write to it (`ReportDoc::edit`), which only the server makes, under the report's
/// lock, so no two replicas race to create it. A reporter's document is smaller and
/// cheaper to merge for it.
pub(crate) fn reconcile_if_started<R: autosurgeon::Reconciler>(
    response: &Response,
    reconciler: R,
) -> Result<(), R::Error> {
    if *response == Response::default() {
        return Ok(());
    }
    response.reconcile(reconciler)
}

impl Response {
    /// The root cause the "5 whys" chain reached (its last answer), if any.
    #[must_use]
    pub fn root_cause(&self) -> Option<&str> {
        self.whys.iter().rev().map(|w| w.trim()).find(|w| !w.is_empty())
    }

    /// Actions past their due date and not done at `now`.
    pub fn overdue(&self, now: Timestamp) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.is_overdue(now))
    }

    /// Every rule the response must satisfy, as field errors (appended to `errors`).
    pub(crate) fn check(&self, errors: &mut Vec<FieldError>) {
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
        };
        let person = |id: &str| id.is_empty() || id.parse::<Uuid>().is_ok();
        if !person(&self.assignee) {
            fail(
                "assignee",
                "Choose the person who leads the response from the list.".into(),
            );
        }
        if self.whys.len() > MAX_WHYS {
            fail(
                "whys",
                format!("A \"5 whys\" chain has at most {MAX_WHYS} steps."),
            );
        }
        if self.whys.iter().any(|w| w.chars().count() > MAX_TEXT) {
            fail("whys", format!("Keep each answer under {MAX_TEXT} characters."));
        }
        if self.factors.len() > MAX_FACTORS {
            fail(
                "factors",
                format!("List at most {MAX_FACTORS} contributing factors."),
            );
        }
        if self
            .factors
            .iter()
            .any(|f| f.trim().is_empty() || f.chars().count() > MAX_SHORT)
        {
            fail(
                "factors",
                format!("Each contributing factor must be 1 to {MAX_SHORT} characters."),
            );
        }
        if self.actions.len() > MAX_ACTIONS {
            fail(
                "actions",
                format!("A report holds at most {MAX_ACTIONS} actions."),
            );
        }
        for action in &self.actions {
            if action.text.trim().is_empty() || action.text.chars().count() > MAX_TEXT {
                fail(
                    "actions",
                    format!("Each action needs 1 to {MAX_TEXT} characters saying what is to be done."),
                );
            }
            if !person(&action.owner) {
                fail("actions", "Choose each action's owner from the list.".into());
            }
            if action.check != Effectiveness::NotChecked && action.state != ActionState::Done {
                fail(
                    "actions",
                    format!(
                        "\"{}\": check whether an action worked once it is done.",
                        action.text.trim()
                    ),
                );
            }
            if action.check_note.chars().count() > MAX_TEXT {
                fail(
                    "actions",
                    format!("Keep each check note under {MAX_TEXT} characters."),
                );
            }
        }
        if self
            .review
            .parts()
            .iter()
            .any(|(_, _, text)| text.chars().count() > MAX_TEXT)
        {
            fail(
                "review",
                format!("Keep each part of the review under {MAX_TEXT} characters."),
            );
        }
    }

    /// Whether the incident may move to `to` with this response: a review needs at least
    /// its summary and the lessons learned (the reporter is shown them).
    pub fn ready_for(&self, to: Status) -> Result<(), String> {
        if to == Status::Reviewed
            && (self.review.summary.trim().is_empty() || self.review.lessons.trim().is_empty())
        {
            return Err(
                "write the review's summary and lessons learned before marking the incident reviewed"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn action(state: ActionState, due: Option<i64>) -> Action {
        let mut a = Action::new(
            Uuid::from_u128(1),
            ActionKind::Corrective,
            "Fix the rack",
            "",
            due.map(Timestamp),
        );
        a.state = state;
        a
    }

    #[test]
    fn an_action_is_overdue_only_past_its_date_and_not_done() {
        assert!(!action(ActionState::Open, None).is_overdue(NOW));
        assert!(!action(ActionState::Open, Some(NOW.0 + 1)).is_overdue(NOW));
        assert!(action(ActionState::Open, Some(NOW.0 - 1)).is_overdue(NOW));
        assert!(action(ActionState::InProgress, Some(NOW.0 - 1)).is_overdue(NOW));
        assert!(!action(ActionState::Done, Some(NOW.0 - 1)).is_overdue(NOW));
    }

    #[test]
    fn effectiveness_is_checked_only_after_completion() {
        let mut response = Response::default();
        let mut a = action(ActionState::InProgress, None);
        a.check = Effectiveness::Effective;
        response.actions.push(a);
        let mut errors = Vec::new();
        response.check(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        response.actions[0].state = ActionState::Done;
        errors.clear();
        response.check(&mut errors);
        assert_eq!(errors, []);
    }

    #[test]
    fn people_are_named_by_id_and_factors_by_text() {
        let mut response = Response {
            assignee: "Sam".into(),
            factors: vec![" ".into()],
            ..Response::default()
        };
        let mut errors = Vec::new();
        response.check(&mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["assignee", "factors"]);
        response.assignee = Uuid::from_u128(5).to_string();
        response.factors = vec!["Worn floor markings".into()];
        errors.clear();
        response.check(&mut errors);
        assert_eq!(errors, []);
    }

    #[test]
    fn the_root_cause_is_the_last_answer_and_a_review_needs_its_lessons() {
        let mut response = Response {
            whys: vec![
                "The pallet fell".into(),
                "It was stacked too high".into(),
                " ".into(),
            ],
            ..Response::default()
        };
        assert_eq!(response.root_cause(), Some("It was stacked too high"));
        assert!(response.ready_for(Status::Resolved).is_ok());
        assert!(response.ready_for(Status::Reviewed).is_err());
        response.review.summary = "A pallet fell from the top shelf.".into();
        assert!(
            response.ready_for(Status::Reviewed).is_err(),
            "lessons still missing"
        );
        response.review.lessons = "Stack no higher than the yellow line.".into();
        assert!(response.ready_for(Status::Reviewed).is_ok());
    }

    #[test]
    fn keys_round_trip() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::from_key(k.as_str()), Some(*k));
        }
        for s in ActionState::ALL {
            assert_eq!(ActionState::from_key(s.as_str()), Some(*s));
        }
        for e in Effectiveness::ALL {
            assert_eq!(Effectiveness::from_key(e.as_str()), Some(*e));
        }
        assert_eq!(ActionState::from_key("cancelled"), None);
        let mut review = Review::default();
        for (key, _, _) in Review::default().parts() {
            *review.part_mut(key).unwrap() = key.to_owned();
        }
        assert!(review.parts().iter().all(|(key, _, text)| key == text));
    }
}
