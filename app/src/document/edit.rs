//! Writing a person's edit into a report: only the fields they changed, lists merged as
//! sets or appended, the response created by its first write.

use super::*;

impl ReportDoc {
    /// Records an edit: writes each field where `edited` differs from `base` (what the
    /// editor started from), and nothing else. Returns the new change, if anything changed.
    pub fn edit(
        &mut self,
        base: &Report,
        edited: &Report,
        at: Timestamp,
    ) -> Result<Option<ChangeHash>, DocError> {
        if base.id != edited.id {
            return Err(DocError::Write("a report's id cannot change".into()));
        }
        if base.drill != edited.drill {
            // The gate refuses it too (`policy::RULES`, the `drill` row).
            return Err(DocError::Write(
                "a report's kind (real or drill) is decided when it is created".into(),
            ));
        }
        let report = self.object(&ROOT, REPORT_KEY)?;
        macro_rules! write_changed {
            ($($field:ident),*) => {$(
                if base.$field != edited.$field {
                    autosurgeon::reconcile_prop(&mut self.doc, &report, stringify!($field), &edited.$field)?;
                }
            )*};
        }
        write_changed!(
            title,
            what_happened,
            category,
            severity,
            impact,
            urgency,
            outcome,
            status,
            occurred_at,
            reported_at,
            reporter,
            immediate_actions
        );
        if base.location != edited.location {
            let location = self.object(&report, LOCATION_KEY)?;
            if base.location.gps != edited.location.gps {
                autosurgeon::reconcile_prop(&mut self.doc, &location, "gps", edited.location.gps)?;
            }
            if base.location.place != edited.location.place {
                autosurgeon::reconcile_prop(&mut self.doc, &location, "place", &edited.location.place)?;
            }
        }
        if base.people_involved != edited.people_involved {
            let people = self.object(&report, PEOPLE_KEY)?;
            self.apply_list_edit(&people, &base.people_involved, &edited.people_involved)?;
        }
        if base.response != edited.response {
            self.edit_response(&report, &base.response, &edited.response)?;
        }
        if base.injury != edited.injury {
            // Made with the document; documents from before injury details lack it.
            let injury = self.object_or_new(&report, INJURY_KEY, ObjType::Map)?;
            for ((key, _, was), (_, _, now)) in base.injury.texts().into_iter().zip(edited.injury.texts()) {
                if was != now {
                    self.doc.put(&injury, key, now)?;
                }
            }
            if base.injury.treatment != edited.injury.treatment {
                self.doc
                    .put(&injury, "treatment", edited.injury.treatment.as_str())?;
            }
        }
        if base.witnesses != edited.witnesses {
            let list = self.object_or_new(&report, WITNESSES_KEY, ObjType::List)?;
            let (was, now) = (
                witness_entries(&base.witnesses),
                witness_entries(&edited.witnesses),
            );
            self.apply_list_edit(&list, &was, &now)?;
        }
        // Append-only lists: each photo is added once (by its hash), each plan step ticked
        // once, each timeline entry added once (by its id).
        self.append(&report, PHOTOS_KEY, &base.photos, &edited.photos, |p| &p.sha256)?;
        self.append(
            &report,
            PLAN_TICKS_KEY,
            &base.plan_ticks,
            &edited.plan_ticks,
            |t| &t.step,
        )?;
        self.append(&report, TIMELINE_KEY, &base.timeline, &edited.timeline, |e| &e.id)?;
        Ok(self
            .doc
            .commit_with(CommitOptions::default().with_time(at.as_secs())))
    }

    /// Appends to the append-only list `key` the entries of `edited` whose identity (`id`)
    /// is not in `base`, making the list if the document has none yet.
    fn append<T: autosurgeon::Reconcile, K: PartialEq + ?Sized>(
        &mut self,
        report: &ObjId,
        key: &str,
        base: &[T],
        edited: &[T],
        id: impl Fn(&T) -> &K,
    ) -> Result<(), DocError> {
        let added: Vec<&T> = edited
            .iter()
            .filter(|e| base.iter().all(|b| id(b) != id(e)))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        let list = self.object_or_new(report, key, ObjType::List)?;
        for entry in added {
            let len = self.doc.length(&list);
            autosurgeon::reconcile_insert(&mut self.doc, list.clone(), len, entry)?;
        }
        Ok(())
    }

    /// Applies the removals and additions between `base` and `edited` to the list as merged
    /// so far, so that concurrent additions by others survive.
    pub(super) fn apply_list_edit(
        &mut self,
        list: &ObjId,
        base: &[String],
        edited: &[String],
    ) -> Result<(), DocError> {
        for removed in base.iter().filter(|p| !edited.contains(p)) {
            let len = self.doc.length(list);
            let position = (0..len).find(|&i| {
                matches!(self.doc.get(list, i), Ok(Some((Value::Scalar(s), _)))
                    if s.as_str() == Some(removed.as_str()))
            });
            if let Some(i) = position {
                self.doc.delete(list, i)?;
            }
        }
        for added in edited.iter().filter(|p| !base.contains(p)) {
            let len = self.doc.length(list);
            self.doc.insert(list, len, added.as_str())?;
        }
        Ok(())
    }

    /// Writes the parts of the response that differ between `base` and `edited`.
    pub(super) fn edit_response(
        &mut self,
        report: &ObjId,
        base: &Response,
        edited: &Response,
    ) -> Result<(), DocError> {
        let response = self.object_or_new(report, RESPONSE_KEY, ObjType::Map)?;
        if base.assignee != edited.assignee {
            autosurgeon::reconcile_prop(&mut self.doc, &response, "assignee", &edited.assignee)?;
        }
        if base.due_at != edited.due_at {
            autosurgeon::reconcile_prop(&mut self.doc, &response, "due_at", edited.due_at)?;
        }
        if base.whys != edited.whys {
            let whys = self.object_or_new(&response, "whys", ObjType::List)?;
            self.apply_positional_edit(&whys, &base.whys, &edited.whys)?;
        }
        if base.factors != edited.factors {
            let factors = self.object_or_new(&response, "factors", ObjType::List)?;
            self.apply_list_edit(&factors, &base.factors, &edited.factors)?;
        }
        if base.actions != edited.actions {
            let actions = self.object_or_new(&response, ACTIONS_KEY, ObjType::Map)?;
            for action in &edited.actions {
                let key = action.id.to_string();
                let old = base.actions.iter().find(|a| a.id == action.id);
                let stored = self.object(&actions, &key).ok();
                match (old, stored) {
                    (Some(old), _) if old == action => {}
                    // Changed: only the parts that differ, so a concurrent change to
                    // another part of the same action stands.
                    (Some(old), Some(obj)) => {
                        macro_rules! write_changed {
                            ($($field:ident),*) => {$(
                                if old.$field != action.$field {
                                    autosurgeon::reconcile_prop(&mut self.doc, &obj, stringify!($field), &action.$field)?;
                                }
                            )*};
                        }
                        write_changed!(kind, text, owner, due_at, state, check, check_note);
                    }
                    (_, _) => autosurgeon::reconcile_prop(&mut self.doc, &actions, key.as_str(), action)?,
                }
            }
        }
        if base.review != edited.review {
            let review = self.object_or_new(&response, REVIEW_KEY, ObjType::Map)?;
            for ((key, _, was), (_, _, now)) in base.review.parts().into_iter().zip(edited.review.parts()) {
                if was != now {
                    self.doc.put(&review, key, now)?;
                }
            }
        }
        Ok(())
    }

    /// Applies an edit of an ordered list position by position (changed entries rewritten
    /// in place, new ones appended, dropped ones removed from the end), so a concurrent
    /// change to another position stands.
    fn apply_positional_edit(
        &mut self,
        list: &ObjId,
        base: &[String],
        edited: &[String],
    ) -> Result<(), DocError> {
        for (i, (was, now)) in base.iter().zip(edited).enumerate() {
            if was != now && i < self.doc.length(list) {
                self.doc.put(list, i, now.as_str())?;
            }
        }
        for added in edited.iter().skip(base.len()) {
            let len = self.doc.length(list);
            self.doc.insert(list, len, added.as_str())?;
        }
        for i in (edited.len()..base.len()).rev() {
            if i < self.doc.length(list) {
                self.doc.delete(list, i)?;
            }
        }
        Ok(())
    }

    /// The map or list at `key`, made if the document has none yet (older documents).
    pub(super) fn object_or_new(
        &mut self,
        parent: &ObjId,
        key: &str,
        kind: ObjType,
    ) -> Result<ObjId, DocError> {
        match self.object(parent, key) {
            Ok(obj) => Ok(obj),
            Err(_) => Ok(self.doc.put_object(parent, key, kind)?),
        }
    }
}

/// A timeline entry is written as one scalar string, its JSON (see the module docs).
impl autosurgeon::Reconcile for TimelineEntry {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(entry_json(self))
    }
}

/// The injury details are a map holding only the parts filled in (an empty map for a
/// report that has none), so a new document carries no keys for them.
impl autosurgeon::Reconcile for Injury {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        use autosurgeon::reconcile::MapReconciler;
        let mut map = reconciler.map()?;
        for (key, _, text) in self.texts() {
            if !text.is_empty() {
                map.put(key, text)?;
            }
        }
        if self.treatment != Treatment::NotSaid {
            map.put("treatment", self.treatment.as_str())?;
        }
        Ok(())
    }
}

/// Values written as one scalar string each, their JSON: list entries never edited in
/// place (a witness, so the list merges as a set; a ticked plan step; a photo).
macro_rules! reconcile_as_json {
    ($($t:ty),+) => {$(
        impl autosurgeon::Reconcile for $t {
            type Key<'a> = autosurgeon::reconcile::NoKey;

            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(serde_json::to_string(self).unwrap_or_default())
            }
        }
    )+};
}

reconcile_as_json!(Witness, crate::domain::PlanTick, crate::domain::PhotoRef);

fn witness_entries(witnesses: &[Witness]) -> Vec<String> {
    witnesses
        .iter()
        .map(|w| serde_json::to_string(w).unwrap_or_default())
        .collect()
}

/// The stored form of a timeline entry (the audience only when it is not the default
/// team, so entries read the same as before audiences existed).
fn entry_json(entry: &TimelineEntry) -> String {
    let mut json = serde_json::json!({
        "id": entry.id,
        "at": entry.at.0,
        "author": entry.author,
        "text": entry.text,
    });
    if let Some(id) = entry.author_id {
        json["author_id"] = serde_json::Value::from(id.to_string());
    }
    if entry.audience != crate::domain::Audience::Team {
        json["audience"] = serde_json::Value::from(entry.audience.as_str());
    }
    json.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::{NOW, actor};
    use crate::domain::*;

    #[test]
    fn timeline_entries_are_single_scalars_and_older_map_entries_still_read() {
        let mut report = Report::blank(ReportId::new_v7(NOW, [5; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        // An entry as documents stored it before: a map, the id as 16 bytes.
        let old = TimelineEntry {
            id: uuid::Uuid::from_u128(1),
            at: NOW,
            author: "Ana".into(),
            author_id: None,
            text: "Cordoned off".into(),
            audience: Default::default(),
        };
        let root = doc.object(&ROOT, REPORT_KEY).unwrap();
        let list = doc.object(&root, TIMELINE_KEY).unwrap();
        let map = doc.doc.insert_object(&list, 0, ObjType::Map).unwrap();
        doc.doc
            .put(&map, "id", ScalarValue::Bytes(old.id.as_bytes().to_vec()))
            .unwrap();
        doc.doc.put(&map, "at", old.at.0).unwrap();
        doc.doc.put(&map, "author", old.author.as_str()).unwrap();
        doc.doc.put(&map, "text", old.text.as_str()).unwrap();
        doc.doc.commit();
        let base = doc.read().unwrap();
        assert_eq!(base.timeline, std::slice::from_ref(&old));

        let new = TimelineEntry {
            id: uuid::Uuid::from_u128(2),
            at: Timestamp(NOW.0 + 1),
            author: "Sam".into(),
            author_id: None,
            text: "Absorbent \"granules\" spread".into(),
            audience: Default::default(),
        };
        let mut edited = base.clone();
        edited.timeline.push(new.clone());
        doc.edit(&base, &edited, NOW).unwrap();
        assert_eq!(doc.read_valid(report.id, NOW).unwrap().timeline, [old, new]);
        let stored = doc.doc.get(&list, 1).unwrap().unwrap().0;
        assert!(
            matches!(stored, Value::Scalar(ref s) if matches!(s.as_ref(), ScalarValue::Str(_))),
            "a new entry is one scalar: {stored:?}"
        );

        // An entry that is not an entry is refused like any other bad shape.
        doc.doc.insert(&list, 2, "{\"id\": 3}").unwrap();
        assert!(matches!(doc.read(), Err(DocError::Shape(_))));
    }

    #[test]
    fn a_new_report_holds_no_response_until_one_part_of_it_is_written() {
        let report = Report::blank(ReportId::new_v7(NOW, [9; 10]), NOW, "Ana");
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        let plain = doc.save().len();
        let response = doc.object(&doc.object(&ROOT, REPORT_KEY).unwrap(), RESPONSE_KEY);
        assert!(response.is_err(), "a new document has no response map");
        assert_eq!(doc.read().unwrap().response, Response::default());
        // Each part alone starts the response: the rest reads as not yet written.
        let action = crate::domain::Action::new(
            uuid::Uuid::from_u128(7),
            ActionKind::Corrective,
            "Fix it",
            "",
            None,
        );
        let edits: [&dyn Fn(&mut Response); 5] = [
            &|r| r.actions.push(action.clone()),
            &|r| r.assignee = "u1".into(),
            &|r| r.due_at = Some(NOW),
            &|r| r.whys.push("why".into()),
            &|r| r.review.lessons = "lesson".into(),
        ];
        for edit in edits {
            let mut started = doc.clone();
            let mut next = report.clone();
            edit(&mut next.response);
            started.edit(&report, &next, NOW).unwrap();
            assert_eq!(started.read().unwrap().response, next.response);
            assert!(started.save().len() > plain);
        }
    }

    #[test]
    fn an_unchanged_field_is_not_rewritten() {
        let mut report = Report::blank(ReportId::new_v7(NOW, [1; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        assert_eq!(doc.edit(&report, &report.clone(), NOW).unwrap(), None);
    }
}
