//! Merging one report's uploaded changes into its stored document. Pure: bytes in, bytes
//! out, time passed in; the server does the IO and commits the result. Also the second
//! fuzzed decoder of untrusted bytes (Automerge changes applied to a stored document).

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::ActorId;

use crate::document::{DocError, FieldConflict, ReportDoc, Snapshot, hash_hex, parse_hash};
use crate::domain::access::Viewer;
use crate::domain::{Report, Timestamp};
use crate::intake;
use crate::protocol::{Bytes, ReportAck, ReportPush};

/// Why a push could not be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The upload is at fault (undecodable, incomplete, for another report, invalid): the
    /// device shows the reason on that report; the stored document is untouched.
    #[error("{0}")]
    Refused(String),
    /// The stored document itself cannot be loaded or read, or merging into it panics
    /// whatever is uploaded: it must be quarantined for an administrator.
    #[error("the stored document is damaged: {0}")]
    Poisoned(String),
}

/// A report's merged state, ready to be stored and acknowledged.
#[derive(Debug)]
pub struct Merged {
    /// The merged report (for the SQL projection).
    pub report: Report,
    /// The whole merged document, compacted, without per-column compression (the store
    /// compresses it whole).
    pub doc: Vec<u8>,
    /// Heads after merging, hex.
    pub heads: Vec<String>,
    /// Changes in the document's history.
    pub change_count: usize,
    /// Fields holding several concurrent values.
    pub conflicts: Vec<FieldConflict>,
    /// Whether anything new arrived (if not, there is nothing to store).
    pub changed: bool,
    /// Whether an accepted change wrote injury details or the injury category (the
    /// report's history then holds them, whatever its final state).
    pub sensitive: bool,
    /// The changes new to the stored document that passed the write policy: hash (hex)
    /// and encoded size, for the server's receipts (empty for trusted merges).
    pub received: Vec<(String, usize)>,
    /// The acknowledgement for the device.
    pub ack: ReportAck,
}

impl Merged {
    /// What to store and acknowledge for `doc`, read as `snapshot`. `changes` are what
    /// the device lacks; the document bytes are only produced if something `changed`.
    pub fn of(doc: &mut ReportDoc, snapshot: Snapshot, changed: bool, changes: Vec<Bytes>) -> Self {
        let heads: Vec<String> = doc.heads().iter().map(hash_hex).collect();
        let Snapshot { report, conflicts } = snapshot;
        Self {
            doc: if changed {
                doc.save_uncompressed()
            } else {
                Vec::new()
            },
            change_count: doc.change_count(),
            conflicts,
            changed,
            sensitive: false,
            received: Vec::new(),
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

/// Applies `push` to the stored document (or a new one) with no write policy: for tests
/// of storage and merging, and documents in shapes older versions stored. Every upload,
/// desk edit and the demo seed go through [`merge_push_checked`].
///
/// Refuses, with a reason a device can show, anything that is over the intake caps,
/// undecodable, incomplete, for another report, or leaves an invalid report. Never
/// panics: a panic inside Automerge is caught; if the stored document alone still loads
/// and reads, the upload is refused, otherwise the stored document is reported
/// [`MergeError::Poisoned`].
pub fn merge_push(stored: Option<&[u8]>, push: &ReportPush, now: Timestamp) -> Result<Merged, MergeError> {
    merge_with(stored, push, now, None)
}

pub use crate::document::FOREIGN_ACTOR;

/// Applies `push`, uploaded by `pusher`, to the stored document (or a new one): the
/// uploaded bytes walked and bounded first ([`crate::intake`]), then every operation of
/// every new change checked against the write policy on the state before it
/// ([`ReportDoc::apply_gated`]), then the merged report validated. A new report must be
/// filed as [`Viewer::check_new`] says.
pub fn merge_push_checked(
    stored: Option<&[u8]>,
    push: &ReportPush,
    now: Timestamp,
    pusher: &Viewer,
) -> Result<Merged, MergeError> {
    merge_with(stored, push, now, Some(pusher))
}

fn merge_with(
    stored: Option<&[u8]>,
    push: &ReportPush,
    now: Timestamp,
    pusher: Option<&Viewer>,
) -> Result<Merged, MergeError> {
    let uploaded = push.changes.iter().map(|c| c.0.len()).sum::<usize>()
        + push.document.as_ref().map_or(0, |d| d.0.len());
    intake::check_push(push, &mut intake::Budget::for_body(uploaded))
        .map_err(|e| MergeError::Refused(e.to_string()))?;
    let device_heads = push
        .heads
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(MergeError::Refused)?;
    let mut doc = match stored {
        Some(bytes) => load_stored(bytes, push)?,
        None => ReportDoc::empty(merge_actor()),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        merge_into(&mut doc, push, &device_heads, now, pusher, stored.is_none())
    }));
    match outcome {
        Ok(Ok(Ok(merged))) => Ok(merged),
        // A rule the person broke: the stored document is fine.
        Ok(Ok(Err(reason))) => Err(MergeError::Refused(reason)),
        // Reading the stored document is only checked when a merge fails, so the common
        // path hydrates the report once: if the stored copy alone no longer reads, the
        // fault is the server's, not the upload's.
        _ if stored.is_some_and(|bytes| !stored_reads(bytes)) => Err(MergeError::Poisoned(format!(
            "report {} no longer reads as a report",
            push.id
        ))),
        Ok(Err(e)) => Err(MergeError::Refused(e.to_string())),
        Err(_) => Err(MergeError::Refused(
            "the changes could not be merged (internal error); they were not stored".to_owned(),
        )),
    }
}

/// Loads the stored document on its own, so a failure here is the stored document's
/// fault, not the upload's.
fn load_stored(bytes: &[u8], push: &ReportPush) -> Result<ReportDoc, MergeError> {
    match catch_unwind(AssertUnwindSafe(|| ReportDoc::load(bytes, merge_actor()))) {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(MergeError::Poisoned(e.to_string())),
        Err(_) => Err(MergeError::Poisoned(format!(
            "loading report {} panicked",
            push.id
        ))),
    }
}

/// Whether a stored document still loads and reads as a report.
fn stored_reads(bytes: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        ReportDoc::load(bytes, merge_actor())
            .and_then(|doc| doc.read())
            .is_ok()
    }))
    .unwrap_or(false)
}

fn merge_into(
    doc: &mut ReportDoc,
    push: &ReportPush,
    device_heads: &[automerge::ChangeHash],
    now: Timestamp,
    pusher: Option<&Viewer>,
    new_report: bool,
) -> Result<Result<Merged, String>, DocError> {
    let (new, sensitive, received) = match pusher {
        Some(pusher) => {
            let (mut changes, peer) = match &push.document {
                Some(document) => {
                    let (changes, peer) = ReportDoc::document_changes(&document.0, device_heads)?;
                    (changes, Some(peer))
                }
                None => (Vec::new(), None),
            };
            let whole = push.changes.is_empty();
            changes.extend(ReportDoc::decode_changes(&push.changes)?);
            let gated = match doc.apply_gated_from(changes, peer.filter(|_| whole), pusher, now) {
                Ok(gated) => gated,
                Err(DocError::Forbidden(reason)) => return Ok(Err(reason)),
                Err(e) => return Err(e),
            };
            (gated.new, gated.sensitive, gated.received)
        }
        None => {
            let mut new = match &push.document {
                Some(document) => doc.merge_document(&document.0, device_heads)?,
                None => 0,
            };
            new += doc.apply_changes(&push.changes)?;
            (new, false, Vec::new())
        }
    };
    let snapshot = doc.snapshot_valid(push.id, now)?;
    if new > 0
        && new_report
        && let Some(Err(reason)) = pusher.map(|p| p.check_new(&snapshot.report))
    {
        return Ok(Err(reason));
    }
    let changes = doc.changes_since(device_heads).into_iter().map(Bytes).collect();
    let mut merged = Merged::of(doc, snapshot, new > 0, changes);
    merged.sensitive = sensitive;
    merged.received = received;
    if merged.doc.len() > intake::MAX_STORED_DOCUMENT_BYTES {
        return Ok(Err(format!(
            "the report would grow to {} KiB, past the {} KiB a report may hold; it was not stored",
            merged.doc.len() / 1024,
            intake::MAX_STORED_DOCUMENT_BYTES / 1024
        )));
    }
    Ok(Ok(merged))
}

/// The changes a peer at `heads` lacks from a stored document, with the document's heads.
/// Used for the feed; the stored document was valid when stored.
pub fn changes_for(stored: &[u8], heads: &[String]) -> Result<(Vec<String>, Vec<Bytes>), MergeError> {
    let have: Vec<_> = heads.iter().filter_map(|h| parse_hash(h).ok()).collect();
    catch_unwind(AssertUnwindSafe(|| {
        let mut doc =
            ReportDoc::load(stored, merge_actor()).map_err(|e| MergeError::Poisoned(e.to_string()))?;
        let changes = doc.changes_since(&have).into_iter().map(Bytes).collect();
        Ok((doc.heads().iter().map(hash_hex).collect(), changes))
    }))
    .unwrap_or_else(|_| Err(MergeError::Poisoned("reading the document panicked".to_owned())))
}

/// The report id every fuzz input targets.
pub const FUZZ_REPORT: crate::domain::ReportId =
    crate::domain::ReportId(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));

/// Splits fuzz input into changes: each is a 2-byte big-endian length then that many bytes.
#[must_use]
pub fn split_changes(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let end = (2 + len).min(data.len());
        out.push(data[2..end].to_vec());
        data = &data[end..];
    }
    out
}

/// The inverse of [`split_changes`], for writing seed inputs.
#[must_use]
pub fn join_changes(changes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for change in changes {
        let len = u16::try_from(change.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&change[..usize::from(len)]);
    }
    out
}

/// The time every fuzz case merges at.
const FUZZ_NOW: Timestamp = Timestamp(1_764_000_000_000);

/// The user every fuzz input is pushed as (the seeds' changes are written under actors of
/// this user, [`crate::document::actor_for`]).
pub const FUZZ_USER: uuid::Uuid = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0009);

/// The person every fuzz input is pushed as: a supervisor, so fuzzed changes can reach
/// every row of the write policy (status moves, the response).
#[must_use]
pub fn fuzz_pusher() -> Viewer {
    Viewer {
        user_id: FUZZ_USER,
        name: "Sam Lead".to_owned(),
        login: "sam".to_owned(),
        role: crate::domain::access::Role::Supervisor,
        teams: Vec::new(),
    }
}

/// One fuzz case: the input's changes pushed for [`FUZZ_REPORT`] through the gate,
/// first to a new document, then (if that was accepted) once more onto the stored
/// result. Panics only if an accepted merge does not hold a valid report: the property
/// the server relies on.
pub fn fuzz_one_push(data: &[u8]) {
    check_fuzz_push(
        &ReportPush {
            id: FUZZ_REPORT,
            heads: Vec::new(),
            changes: split_changes(data).into_iter().map(Bytes).collect(),
            document: None,
        },
        None,
    );
}

/// One fuzz case for whole-document pushes: the input sent as [`FUZZ_REPORT`]'s document
/// with the heads it really has (as an honest device would claim them), to a new report
/// and onto a stored one. Panics only if an accepted merge does not hold a valid report.
pub fn fuzz_one_document(data: &[u8]) {
    // Only bytes the intake walk accepts are loaded to learn their heads, as the server
    // only loads those.
    let walked = intake::check_document(data, &mut intake::Budget::for_body(data.len())).is_ok();
    let heads = walked
        .then(|| catch_unwind(|| automerge::AutoCommit::load(data).ok().map(|mut d| d.get_heads())).ok())
        .flatten()
        .flatten()
        .unwrap_or_default();
    let push = ReportPush {
        id: FUZZ_REPORT,
        heads: heads.iter().map(hash_hex).collect(),
        changes: Vec::new(),
        document: Some(Bytes(data.to_vec())),
    };
    check_fuzz_push(&push, None);
    check_fuzz_push(&push, Some(&fuzz_stored_report()));
}

/// One fuzz case for a whole sync request, as the server takes it: decoded, every
/// report's bytes walked against the request's budget, then each merged through the gate
/// as a new report. Panics only if an accepted merge does not hold a valid report.
pub fn fuzz_one_request(body: &[u8]) {
    let Ok(request) = crate::protocol::decode_request(body) else {
        return;
    };
    let mut budget = intake::Budget::for_body(body.len());
    if request
        .reports
        .iter()
        .any(|push| intake::check_push(push, &mut budget).is_err())
    {
        return;
    }
    for push in &request.reports {
        check_fuzz_push(push, None);
    }
}

/// A stored, valid [`FUZZ_REPORT`] for fuzzed pushes to land on.
fn fuzz_stored_report() -> Vec<u8> {
    let mut report = Report::blank(FUZZ_REPORT, FUZZ_NOW, "Ana Field");
    report.title = "Ladder with cracked stile".into();
    report.location.place = "Stores".into();
    ReportDoc::create(&report, ActorId::from([7u8; 16].as_slice()), FUZZ_NOW)
        .expect("a valid report is written")
        .save()
}

/// Merges `push` onto `stored` (or a new document) and, if that stored something, checks
/// the result reads back as the merged report and that a replay onto it adds nothing.
fn check_fuzz_push(push: &ReportPush, stored: Option<&[u8]>) {
    let pusher = fuzz_pusher();
    let Ok(mut merged) = merge_push_checked(stored, push, FUZZ_NOW, &pusher) else {
        return;
    };
    assert!(
        merged.changed || stored.is_some(),
        "an accepted new report is stored"
    );
    if !merged.changed {
        return;
    }
    let doc = std::mem::take(&mut merged.doc);
    let reloaded = ReportDoc::load(&doc, merge_actor()).expect("a stored merge loads");
    assert_eq!(
        reloaded.read_valid(push.id, FUZZ_NOW).as_ref(),
        Ok(&merged.report)
    );
    let again = merge_push_checked(Some(&doc), push, FUZZ_NOW, &pusher)
        .expect("a replay onto the stored merge is accepted");
    assert!(!again.changed, "a replay adds nothing");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReportId;

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
            document: None,
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
            document: None,
        };
        let reason = merge_push(None, &push, NOW).unwrap_err().to_string();
        assert!(reason.contains("title"), "{reason}");
        let push = ReportPush {
            heads: vec!["zz".into()],
            ..push
        };
        assert!(
            merge_push(None, &push, NOW)
                .unwrap_err()
                .to_string()
                .contains("not hex")
        );
    }

    #[test]
    fn a_whole_document_is_merged_only_with_its_own_heads_and_complete_history() {
        let (report, mut doc) = device_doc();
        let saved = doc.save();
        let push = ReportPush {
            id: report.id,
            heads: doc.heads().iter().map(hash_hex).collect(),
            changes: vec![],
            document: Some(Bytes(saved.clone())),
        };
        let merged = merge_push(None, &push, NOW).unwrap();
        assert!(merged.changed);
        assert_eq!(merged.report, report);
        assert!(!merge_push(Some(&merged.doc), &push, NOW).unwrap().changed);

        let claimed_nothing = ReportPush {
            heads: vec![],
            ..push.clone()
        };
        let reason = merge_push(None, &claimed_nothing, NOW).unwrap_err().to_string();
        assert!(reason.contains("not the heads"), "{reason}");

        // The document followed by a change whose parent is missing: Automerge loads it
        // and quietly queues the orphan.
        let mut later = doc.clone();
        let mut edited = report.clone();
        edited.title = "Spill, cleaned".into();
        later.edit(&report, &edited, NOW).unwrap();
        let mut again = edited.clone();
        again.title = "Spill, cleaned and signed off".into();
        let middle = later.heads();
        later.edit(&edited, &again, NOW).unwrap();
        let orphan = later.changes_since(&middle).remove(0);
        let mut document = saved;
        document.extend_from_slice(&orphan);
        let with_orphan = ReportPush {
            document: Some(Bytes(document)),
            ..push
        };
        let reason = merge_push(None, &with_orphan, NOW).unwrap_err().to_string();
        assert!(reason.contains("missing dependencies"), "{reason}");
    }

    #[test]
    fn a_damaged_stored_document_is_poisoned_not_refused() {
        let (report, mut doc) = device_doc();
        let push = ReportPush {
            id: report.id,
            heads: vec![],
            changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
            document: None,
        };
        let mut stored = doc.save();
        let middle = stored.len() / 2;
        stored[middle] ^= 0xff;
        stored.truncate(middle + 3);
        assert!(matches!(
            merge_push(Some(&stored), &push, NOW),
            Err(MergeError::Poisoned(_))
        ));
        assert!(matches!(changes_for(&stored, &[]), Err(MergeError::Poisoned(_))));
    }
}
