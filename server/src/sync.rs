//! Merging one report's uploaded changes into its stored document. Pure: bytes in, bytes
//! out, time passed in; the HTTP layer does the IO and the database commits the result.

use std::panic::{AssertUnwindSafe, catch_unwind};

use app::document::{DocError, FieldConflict, ReportDoc, hash_hex, parse_hash};
use app::domain::{Report, Timestamp};
use app::protocol::{Bytes, MAX_CHANGES_PER_REPORT, ReportAck, ReportPush};
use automerge::ActorId;

/// A report's merged state, ready to be stored and acknowledged.
#[derive(Debug)]
pub struct Merged {
    /// The merged report (for the SQL projection).
    pub report: Report,
    /// The whole merged document, compacted.
    pub doc: Vec<u8>,
    /// Heads after merging, hex.
    pub heads: Vec<String>,
    /// Changes in the document's history.
    pub change_count: usize,
    /// Fields holding several concurrent values.
    pub conflicts: Vec<FieldConflict>,
    /// Whether anything new arrived (if not, there is nothing to store).
    pub changed: bool,
    /// The acknowledgement for the device.
    pub ack: ReportAck,
}

impl Merged {
    /// What to store and acknowledge for `doc`, which holds `report`. `changes` are what
    /// the device lacks; the document bytes are only produced if something `changed`.
    pub fn of(doc: &mut ReportDoc, report: Report, changed: bool, changes: Vec<Bytes>) -> Self {
        let heads: Vec<String> = doc.heads().iter().map(hash_hex).collect();
        Self {
            doc: if changed { doc.save() } else { Vec::new() },
            change_count: doc.change_count(),
            conflicts: doc.conflicts(),
            changed,
            ack: ReportAck {
                id: report.id,
                heads: heads.clone(),
                changes,
            },
            heads,
            report,
        }
    }
}

/// The server's merge actor. It only applies others' changes, never authors any.
fn merge_actor() -> ActorId {
    ActorId::from([0u8; 16].as_slice())
}

/// Applies `push` to the stored document (or a new one) and checks the result.
///
/// Refuses, with a reason a device can show, anything that is undecodable, incomplete,
/// for another report, or leaves an invalid report. Never panics: a panic inside Automerge
/// is caught and reported as a refusal.
pub fn merge_push(stored: Option<&[u8]>, push: &ReportPush, now: Timestamp) -> Result<Merged, String> {
    if push.changes.len() > MAX_CHANGES_PER_REPORT {
        return Err(format!(
            "too many changes in one request ({}, at most {MAX_CHANGES_PER_REPORT}); send them in parts",
            push.changes.len()
        ));
    }
    let device_heads = push
        .heads
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    match catch_unwind(AssertUnwindSafe(|| merge_inner(stored, push, &device_heads, now))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the changes could not be merged (internal error); they were not stored".to_owned()),
    }
}

fn merge_inner(
    stored: Option<&[u8]>,
    push: &ReportPush,
    device_heads: &[automerge::ChangeHash],
    now: Timestamp,
) -> Result<Merged, DocError> {
    let mut doc = match stored {
        Some(bytes) => ReportDoc::load(bytes, merge_actor())?,
        None => ReportDoc::empty(merge_actor()),
    };
    let raw: Vec<Vec<u8>> = push.changes.iter().map(|b| b.0.clone()).collect();
    let new = doc.apply_changes(&raw)?;
    let report = doc.read_valid(push.id, now)?;
    let changes = doc.changes_since(device_heads).into_iter().map(Bytes).collect();
    Ok(Merged::of(&mut doc, report, new > 0, changes))
}

#[cfg(test)]
mod tests {
    use app::domain::{Report, ReportId};

    use super::*;

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn device_doc() -> (Report, ReportDoc) {
        let mut report = Report::blank(ReportId::new_v7(NOW, [3; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let doc = ReportDoc::create(&report, ActorId::from([5u8; 16].as_slice()), NOW).unwrap();
        (report, doc)
    }

    #[test]
    fn a_new_report_is_merged_and_a_replay_changes_nothing() {
        let (report, mut doc) = device_doc();
        let push = ReportPush {
            id: report.id,
            heads: doc.heads().iter().map(hash_hex).collect(),
            changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
        };
        let merged = merge_push(None, &push, NOW).unwrap();
        assert!(merged.changed);
        assert_eq!(merged.report, report);
        assert!(merged.ack.changes.is_empty(), "the device has everything");
        let again = merge_push(Some(&merged.doc), &push, NOW).unwrap();
        assert!(!again.changed);
        assert_eq!(again.heads, merged.heads);
    }

    #[test]
    fn invalid_reports_and_bad_heads_are_refused() {
        let (mut report, _) = device_doc();
        report.title = String::new();
        let mut doc = ReportDoc::create(&report, ActorId::from([5u8; 16].as_slice()), NOW).unwrap();
        let push = ReportPush {
            id: report.id,
            heads: vec![],
            changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
        };
        let reason = merge_push(None, &push, NOW).unwrap_err();
        assert!(reason.contains("title"), "{reason}");
        let push = ReportPush {
            heads: vec!["zz".into()],
            ..push
        };
        assert!(merge_push(None, &push, NOW).unwrap_err().contains("not hex"));
    }
}
