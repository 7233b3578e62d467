//! A report's history as its page shows it: each change with its writer, time, the
//! fields it set and the status move or assignment it made.

use super::*;

/// One change in a report's history, as its page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the writer's clock said the change was made (seconds precision).
    pub at: Timestamp,
    /// The change's hash, hex (the server's receipts are kept by it).
    #[serde(default)]
    pub hash: String,
    /// The writer's actor, hex (resolved to a person and device by the server).
    pub actor: String,
    /// The fields whose value the change set, in display order (`timeline` for updates).
    pub fields: Vec<String>,
    /// The status move it made, if it moved the status: (from, to).
    #[serde(default)]
    pub moved: Option<(Status, Status)>,
    /// Whom it assigned the response to (a user id, empty for nobody), if it did.
    #[serde(default)]
    pub assigned: Option<String>,
}

impl ReportDoc {
    /// The actors of the changes after `since` (the changes just merged in).
    pub fn actors_since(&mut self, since: &[ChangeHash]) -> Vec<ActorId> {
        let mut actors: Vec<ActorId> = self
            .doc
            .get_changes_meta(since)
            .into_iter()
            .map(|m| m.actor.into_owned())
            .collect();
        actors.sort_unstable();
        actors.dedup();
        actors
    }

    /// Who changed what, oldest first, at most the last `limit` changes: each change's
    /// time, actor, and the fields whose value differs between the document as its
    /// writer saw it and with the change applied.
    pub fn history(&mut self, limit: usize) -> Vec<HistoryEntry> {
        let metas: Vec<(ChangeHash, Vec<ChangeHash>, i64, ActorId)> = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|m| (m.hash, m.deps.clone(), m.timestamp, m.actor.into_owned()))
            .collect();
        let skip = metas.len().saturating_sub(limit);
        let read_at = |doc: &mut AutoCommit, heads: &[ChangeHash]| -> Option<Report> {
            if heads.is_empty() {
                return None;
            }
            snapshot::report(&doc.fork_at(heads).ok()?).ok().map(|(r, _)| r)
        };
        metas
            .into_iter()
            .skip(skip)
            .map(|(hash, deps, time, actor)| {
                let before = read_at(&mut self.doc, &deps);
                let after = read_at(&mut self.doc, &[hash]);
                let (moved, assigned) = match (&before, &after) {
                    (Some(b), Some(a)) => (
                        (b.status != a.status).then_some((b.status, a.status)),
                        (b.response.assignee != a.response.assignee).then(|| a.response.assignee.clone()),
                    ),
                    _ => (None, None),
                };
                HistoryEntry {
                    at: Timestamp(time.saturating_mul(1000)),
                    hash: hash_hex(&hash),
                    actor: hex::encode(actor.to_bytes()),
                    fields: fields::changed(before.as_ref(), after.as_ref()),
                    moved,
                    assigned,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::{NOW, actor};
    use crate::domain::*;

    #[test]
    fn history_lists_each_change_with_its_actor_and_the_fields_it_set() {
        let mut report = Report::blank(ReportId::new_v7(NOW, [4; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        let mut edited = report.clone();
        edited.severity = Severity::Major;
        edited.title = "Oil spill".into();
        doc.set_actor(actor(2));
        doc.edit(&report, &edited, Timestamp(NOW.0 + 60_000)).unwrap();
        let mut updated = edited.clone();
        updated.timeline.push(TimelineEntry {
            id: uuid::Uuid::from_u128(1),
            at: NOW,
            author: "Sam".into(),
            author_id: None,
            text: "Cleaned".into(),
            audience: Default::default(),
        });
        doc.edit(&edited, &updated, Timestamp(NOW.0 + 120_000)).unwrap();
        let history = doc.history(10);
        let seen: Vec<(String, Vec<String>, i64)> = history
            .iter()
            .map(|h| (h.actor.clone(), h.fields.clone(), h.at.0))
            .collect();
        assert_eq!(
            seen,
            [
                (hex::encode([1u8; 16]), vec!["created".to_owned()], NOW.0),
                (
                    hex::encode([2u8; 16]),
                    vec!["title".to_owned(), "severity".to_owned()],
                    NOW.0 + 60_000
                ),
                (
                    hex::encode([2u8; 16]),
                    vec!["timeline".to_owned()],
                    NOW.0 + 120_000
                ),
            ]
        );
        assert_eq!(doc.history(1).len(), 1, "only the latest");
        let created = doc.heads();
        assert!(doc.actors_since(&created).is_empty());
        assert_eq!(doc.actors_since(&[]).len(), 2);
    }
}
