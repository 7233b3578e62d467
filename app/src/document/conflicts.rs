//! Concurrent values of one field: listed with their writers, settled by a person's choice.

use super::fields::display_value;
use super::*;

/// All the values Automerge holds for one field after concurrent edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    /// The field's path (`title`, `location.place`).
    pub field: String,
    /// Every value, readable, the one currently shown first.
    pub values: Vec<String>,
    /// Who wrote each value (same order): from the document, the writer's user id as
    /// text (empty if the actor names no one); the desk puts names in their place.
    #[serde(default)]
    pub by: Vec<String>,
}

impl ReportDoc {
    /// The object and key a field path names (`title`, `location.place`,
    /// `response.assignee`, `response.review.lessons`, `response.actions.<id>.state`), if
    /// it is a scalar field that can hold concurrent values.
    pub(super) fn locate(&self, path: &str) -> Option<(ObjId, String)> {
        let report = self.object(&ROOT, REPORT_KEY).ok()?;
        let parts: Vec<&str> = path.split('.').collect();
        let (obj, key) = match parts.as_slice() {
            [key] if REPORT_SCALARS.contains(key) => (report, *key),
            ["location", key] if LOCATION_SCALARS.contains(key) => {
                (self.object(&report, LOCATION_KEY).ok()?, *key)
            }
            ["response", key] if RESPONSE_SCALARS.contains(key) => {
                (self.object(&report, RESPONSE_KEY).ok()?, *key)
            }
            [INJURY_KEY, key] if INJURY_SCALARS.contains(key) => {
                (self.object(&report, INJURY_KEY).ok()?, *key)
            }
            ["response", "review", key] if Review::default().parts().iter().any(|(k, ..)| k == key) => {
                let response = self.object(&report, RESPONSE_KEY).ok()?;
                (self.object(&response, REVIEW_KEY).ok()?, *key)
            }
            ["response", "actions", id, key] if ACTION_SCALARS.contains(key) => {
                let response = self.object(&report, RESPONSE_KEY).ok()?;
                let actions = self.object(&response, ACTIONS_KEY).ok()?;
                (self.object(&actions, id).ok()?, *key)
            }
            _ => return None,
        };
        Some((obj, key.to_owned()))
    }

    pub(super) fn object(&self, parent: &ObjId, key: &str) -> Result<ObjId, DocError> {
        match self.doc.get(parent, key) {
            Ok(Some((Value::Object(ObjType::Map | ObjType::List), id))) => Ok(id),
            _ => Err(DocError::Shape(format!("`{key}` is missing"))),
        }
    }

    /// Every field that currently holds more than one value after concurrent edits.
    #[must_use]
    pub fn conflicts(&self) -> Vec<FieldConflict> {
        self.snapshot().map(|s| s.conflicts).unwrap_or_default()
    }

    /// Settles a field holding concurrent values on the one that reads as `value` (as
    /// [`FieldConflict::values`] shows it): writes that value again, as a change that
    /// supersedes every concurrent one. Returns whether it was written: a field holding one
    /// value is already settled and left alone; a value it does not hold is refused.
    pub fn choose(&mut self, field: &str, value: &str, at: Timestamp) -> Result<bool, DocError> {
        let Some((obj, key)) = self.locate(field) else {
            return Err(DocError::Write(format!(
                "`{field}` is not a field that can hold concurrent values"
            )));
        };
        let key = key.as_str();
        let all = self.doc.get_all(&obj, key)?;
        if all.len() < 2 {
            return Ok(false);
        }
        let Some(chosen) = all.iter().find_map(|(v, _)| match v {
            Value::Scalar(s) if display_value(key, v) == value => Some(s.as_ref().clone()),
            _ => None,
        }) else {
            return Err(DocError::Write(format!(
                "“{value}” is no longer one of the values of `{field}`; reload the incident"
            )));
        };
        self.doc.put(&obj, key, chosen)?;
        self.doc.commit_with(
            CommitOptions::default()
                .with_time(at.as_secs())
                .with_message(format!("chose a value for {field}")),
        );
        Ok(true)
    }

    /// Every value of each field at `paths` (`title`, `location.place`).
    pub(super) fn conflicts_in(&self, paths: &[String]) -> Vec<FieldConflict> {
        paths
            .iter()
            .filter_map(|path| {
                let (obj, key) = self.locate(path)?;
                let key = key.as_str();
                let all = self.doc.get_all(&obj, key).ok()?;
                // Automerge lists the winner last. People who wrote the same value at
                // the same time agree: nothing to choose.
                let first = all.first().map(|(v, _)| display_value(key, v));
                let agree = all.iter().all(|(v, _)| Some(display_value(key, v)) == first);
                (all.len() > 1 && !agree).then(|| FieldConflict {
                    field: path.clone(),
                    values: all.iter().rev().map(|(v, _)| display_value(key, v)).collect(),
                    by: all.iter().rev().map(|(_, op)| writer_of(op)).collect(),
                })
            })
            .collect()
    }
}

/// The user id (as text) of whoever wrote the operation `op`, or empty.
pub(super) fn writer_of(op: &ObjId) -> String {
    match op {
        ObjId::Id(_, actor, _) => actor_owner(actor).map_or_else(String::new, |(user, _)| user.to_string()),
        ObjId::Root => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::{NOW, actor};
    use crate::domain::*;

    #[test]
    fn each_concurrent_value_names_its_writer_and_a_person_chooses_one() {
        let (ana, ben) = (uuid::Uuid::from_u128(0xa1), uuid::Uuid::from_u128(0xb2));
        let mut report = Report::blank(ReportId::new_v7(NOW, [8; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let origin = ReportDoc::create(&report, actor_for(ana, uuid::Uuid::nil(), [1; 4]), NOW).unwrap();
        let mut a = origin.clone();
        let mut b = origin.clone();
        b.set_actor(actor_for(ben, uuid::Uuid::nil(), [2; 4]));
        let mut ra = report.clone();
        ra.title = "Diesel spill".into();
        a.edit(&report, &ra, NOW).unwrap();
        let mut rb = report.clone();
        rb.title = "Oil spill".into();
        b.edit(&report, &rb, NOW).unwrap();
        a.merge(&mut b).unwrap();
        let conflict = a.conflicts().into_iter().find(|c| c.field == "title").unwrap();
        let by: std::collections::HashMap<_, _> = conflict.values.iter().zip(&conflict.by).collect();
        assert_eq!(by[&"Diesel spill".to_owned()], &ana.to_string());
        assert_eq!(by[&"Oil spill".to_owned()], &ben.to_string());

        // A supervisor keeps Ben's value, whichever Automerge shows.
        a.set_actor(actor_for(ana, uuid::Uuid::nil(), [3; 4]));
        assert!(a.choose("title", "Oil spill", NOW).unwrap());
        assert!(a.conflicts().is_empty());
        assert_eq!(a.read().unwrap().title, "Oil spill");
        assert!(
            !a.choose("title", "Oil spill", NOW).unwrap(),
            "nothing left to choose"
        );
        let mut again = origin.clone();
        again.edit(&report, &ra, NOW).unwrap();
        again.merge(&mut b).unwrap();
        assert!(
            again.choose("title", "Petrol spill", NOW).is_err(),
            "not one of the values"
        );
        assert!(a.choose("id", "x", NOW).is_err());
        assert!(a.choose("timeline", "x", NOW).is_err());
    }

    #[test]
    fn concurrent_writes_to_one_field_show_every_value() {
        let now = NOW;
        let mut report = Report::blank(ReportId::new_v7(now, [1; 10]), now, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock 2".into();
        let origin = ReportDoc::create(&report, actor(1), now).unwrap();
        let mut a = origin.clone();
        a.doc.set_actor(actor(2));
        let mut b = origin.clone();
        b.doc.set_actor(actor(3));
        let mut ra = report.clone();
        ra.severity = Severity::Major;
        a.edit(&report, &ra, now).unwrap();
        let mut rb = report.clone();
        rb.severity = Severity::Critical;
        rb.title = "Diesel spill".into();
        b.edit(&report, &rb, now).unwrap();
        a.merge(&mut b).unwrap();
        let conflicts = a.conflicts();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, "severity");
        let mut values = conflicts[0].values.clone();
        values.sort();
        assert_eq!(values, ["Critical", "Major"]);
        assert_eq!(a.read().unwrap().title, "Diesel spill");
    }
}
