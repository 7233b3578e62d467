//! The one table of a report's fields: where each is stored, what the desk calls it, how a
//! stored value reads, what tells an edit changed it, and which projection columns hold it.
//! History (changed fields), conflicts (readable values), the desk's labels and the
//! server's projection all read it; a test fails when the document holds a key it lacks.

use automerge::{ScalarValue, Value};

use crate::domain::{
    ActionKind, ActionState, Category, Effectiveness, Impact, Outcome, Report, Severity, Status, Timestamp,
    Treatment, Urgency,
};

/// How a stored scalar reads for a person.
#[derive(Clone, Copy, Debug)]
pub enum Shown {
    /// As written.
    Text,
    /// A key of a closed set, shown by its label.
    Key(fn(&str) -> Option<&'static str>),
    /// A category key, shown by its label (an open set: unknown keys read as words).
    Category,
}

/// One field of a report.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// Its name in history and conflicts (`title`, `assignee`).
    pub key: &'static str,
    /// Where it is stored, under the document's `report` map (`response.assignee`).
    pub path: &'static str,
    /// What the desk's history calls it.
    pub label: &'static str,
    /// How one of its stored scalars reads.
    pub shown: Shown,
    /// Whether two readings hold the same value: an edit changed the field when not.
    pub same: fn(&Report, &Report) -> bool,
    /// The server projection's columns that hold it (none: read from the document only).
    pub projected: &'static [&'static str],
}

macro_rules! key_of {
    ($t:ty) => {
        Shown::Key(|k| <$t>::from_key(k).map(<$t>::label))
    };
}

/// Every field of a report, in the order a report page lists them.
pub const FIELDS: &[FieldSpec] = &[
    spec("id", "id", "id", Shown::Text, |a, b| a.id == b.id, &["id"]),
    spec(
        "title",
        "title",
        "title",
        Shown::Text,
        |a, b| a.title == b.title,
        &["title"],
    ),
    spec(
        "category",
        "category",
        "category",
        Shown::Category,
        |a, b| a.category == b.category,
        &["category", "sensitive"],
    ),
    spec(
        "severity",
        "severity",
        "severity",
        key_of!(Severity),
        |a, b| a.severity == b.severity,
        &["severity", "severity_rank"],
    ),
    spec(
        "impact",
        "impact",
        "impact",
        key_of!(Impact),
        |a, b| a.impact == b.impact,
        &["priority_rank"],
    ),
    spec(
        "urgency",
        "urgency",
        "urgency",
        key_of!(Urgency),
        |a, b| a.urgency == b.urgency,
        &["priority_rank"],
    ),
    spec(
        "outcome",
        "outcome",
        "gravest outcome",
        key_of!(Outcome),
        |a, b| a.outcome == b.outcome,
        &["priority_rank", "report_due_at"],
    ),
    spec(
        "status",
        "status",
        "status",
        key_of!(Status),
        |a, b| a.status == b.status,
        &["status"],
    ),
    spec(
        "occurred_at",
        "occurred_at",
        "when it happened",
        Shown::Text,
        |a, b| a.occurred_at == b.occurred_at,
        &["occurred_at", "report_due_at"],
    ),
    spec(
        "location",
        "location",
        "location",
        Shown::Text,
        |a, b| a.location == b.location,
        &["place", "latitude", "longitude", "accuracy_m"],
    ),
    spec(
        "what_happened",
        "what_happened",
        "what happened",
        Shown::Text,
        |a, b| a.what_happened == b.what_happened,
        &["what_happened"],
    ),
    spec(
        "people_involved",
        "people_involved",
        "people involved",
        Shown::Text,
        |a, b| a.people_involved == b.people_involved,
        &["people_involved"],
    ),
    spec(
        "immediate_actions",
        "immediate_actions",
        "immediate actions",
        Shown::Text,
        |a, b| a.immediate_actions == b.immediate_actions,
        &["immediate_actions"],
    ),
    spec(
        "reporter",
        "reporter",
        "reporter",
        Shown::Text,
        |a, b| a.reporter == b.reporter,
        &["reporter"],
    ),
    spec(
        "timeline",
        "timeline",
        "added an update",
        Shown::Text,
        |a, b| a.timeline.len() == b.timeline.len(),
        &[],
    ),
    spec(
        "reported_at",
        "reported_at",
        "reported at",
        Shown::Text,
        |a, b| a.reported_at == b.reported_at,
        &["reported_at"],
    ),
    spec(
        "assignee",
        "response.assignee",
        "assignee",
        Shown::Text,
        |a, b| a.response.assignee == b.response.assignee,
        &[],
    ),
    spec(
        "due_at",
        "response.due_at",
        "response due date",
        Shown::Text,
        |a, b| a.response.due_at == b.response.due_at,
        &[],
    ),
    spec(
        "whys",
        "response.whys",
        "5 whys",
        Shown::Text,
        |a, b| a.response.whys == b.response.whys,
        &[],
    ),
    spec(
        "factors",
        "response.factors",
        "contributing factors",
        Shown::Text,
        |a, b| a.response.factors == b.response.factors,
        &[],
    ),
    spec(
        "actions",
        "response.actions",
        "actions",
        Shown::Text,
        |a, b| a.response.actions == b.response.actions,
        &[],
    ),
    spec(
        "review",
        "response.review",
        "post-incident review",
        Shown::Text,
        |a, b| a.response.review == b.response.review,
        &[],
    ),
    spec(
        "plan_ticks",
        "plan_ticks",
        "ticked response plan steps",
        Shown::Text,
        |a, b| a.plan_ticks.len() == b.plan_ticks.len(),
        &[],
    ),
    spec(
        "injury",
        "injury",
        "injury details",
        Shown::Text,
        |a, b| a.injury == b.injury,
        &["sensitive"],
    ),
    spec(
        "witnesses",
        "witnesses",
        "witnesses",
        Shown::Text,
        |a, b| a.witnesses == b.witnesses,
        &[],
    ),
    spec(
        "photos",
        "photos",
        "photos",
        Shown::Text,
        |a, b| a.photos.len() == b.photos.len(),
        &[],
    ),
    spec(
        "drill",
        "drill",
        "drill",
        Shown::Text,
        |a, b| a.drill == b.drill,
        &["kind", "drill_id"],
    ),
];

/// Keys inside a field's map whose stored scalars are keys of a closed set: an action's
/// `kind`, `state` and `check`, the injury's `treatment`.
pub const PARTS: &[(&str, Shown)] = &[
    ("kind", key_of!(ActionKind)),
    ("state", key_of!(ActionState)),
    ("check", key_of!(Effectiveness)),
    ("treatment", key_of!(Treatment)),
];

const fn spec(
    key: &'static str,
    path: &'static str,
    label: &'static str,
    shown: Shown,
    same: fn(&Report, &Report) -> bool,
    projected: &'static [&'static str],
) -> FieldSpec {
    FieldSpec {
        key,
        path,
        label,
        shown,
        same,
        projected,
    }
}

/// The spec of a field by its key.
#[must_use]
pub fn field(key: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.key == key)
}

/// What the desk calls a field of a report's history (`created` is the filing itself).
#[must_use]
pub fn label(key: &str) -> &str {
    match key {
        "created" => "filed the report",
        other => field(other).map_or(other, |f| f.label),
    }
}

/// The fields whose value differs between two readings of a report, in table order
/// (`created` when there is no earlier reading).
pub(super) fn changed(before: Option<&Report>, after: Option<&Report>) -> Vec<String> {
    let Some(after) = after else {
        return Vec::new();
    };
    let Some(before) = before else {
        return vec!["created".to_owned()];
    };
    FIELDS
        .iter()
        .filter(|f| !(f.same)(before, after))
        .map(|f| f.key.to_owned())
        .collect()
}

/// A stored scalar as a person reads it; `key` is the last key of its path.
pub(super) fn display_value(key: &str, value: &Value<'_>) -> String {
    let Value::Scalar(s) = value else {
        return "(nested value)".to_owned();
    };
    let shown = field(key)
        .map(|f| f.shown)
        .or_else(|| PARTS.iter().find(|(k, _)| *k == key).map(|(_, s)| *s));
    match (shown, s.as_ref()) {
        (Some(Shown::Key(label)), ScalarValue::Str(k)) => {
            label(k).map_or_else(|| k.to_string(), str::to_owned)
        }
        (Some(Shown::Category), ScalarValue::Str(k)) => Category::new(k).label(),
        (_, ScalarValue::Str(text)) => text.to_string(),
        (_, ScalarValue::Int(ms)) => Timestamp(*ms).display_utc(),
        (_, ScalarValue::Null) => "(empty)".to_owned(),
        (_, other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use automerge::{ObjType, ReadDoc};

    use super::*;
    use crate::document::ReportDoc;
    use crate::document::tests::{NOW, actor, full_report};

    /// Every key a fully filled document holds under `report` (and under `response`, whose
    /// parts are fields of their own) has a spec, and every spec's path exists in it.
    #[test]
    fn every_stored_key_has_a_spec() {
        let mut report = full_report();
        report.drill = Some(uuid::Uuid::from_u128(9));
        let doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        let am = &doc.doc;
        let (_, root) = am.get(automerge::ROOT, "report").unwrap().unwrap();
        let mut stored = Vec::new();
        for key in am.keys(&root) {
            if key == "response" {
                let (_, response) = am.get(&root, "response").unwrap().unwrap();
                assert_eq!(am.object_type(&response).unwrap(), ObjType::Map);
                stored.extend(am.keys(&response).map(|k| format!("response.{k}")));
            } else {
                stored.push(key);
            }
        }
        for path in &stored {
            assert!(
                FIELDS.iter().any(|f| f.path == path),
                "`{path}` is stored but has no FieldSpec"
            );
        }
        for spec in FIELDS {
            assert!(
                stored.iter().any(|p| p == spec.path),
                "`{}` has a spec but is not stored",
                spec.path
            );
        }
        assert_eq!(
            FIELDS
                .iter()
                .map(|f| f.key)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            FIELDS.len(),
            "keys are unique"
        );
    }

    #[test]
    fn every_field_an_edit_can_change_is_detected() {
        let before = full_report();
        for spec in FIELDS.iter().filter(|f| f.key != "id") {
            let mut after = before.clone();
            crate::document::tests::change_field(&mut after, spec.key, NOW);
            assert_eq!(
                changed(Some(&before), Some(&after)),
                [spec.key],
                "changing {}",
                spec.key
            );
        }
    }

    #[test]
    fn keys_read_as_labels() {
        let show = |k: &str, v: &str| {
            display_value(
                k,
                &Value::Scalar(std::borrow::Cow::Owned(ScalarValue::Str(v.into()))),
            )
        };
        assert_eq!(show("severity", "major"), "Major");
        assert_eq!(show("state", "done"), ActionState::Done.label());
        assert_eq!(show("category", "near_miss"), "Near miss");
        assert_eq!(show("title", "major"), "major");
        assert_eq!(show("severity", "unheard_of"), "unheard_of");
        assert_eq!(label("witnesses"), "witnesses");
        assert_eq!(label("created"), "filed the report");
    }
}
