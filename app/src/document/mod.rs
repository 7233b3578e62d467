//! The one definition of the report's Automerge document. Browser and server read and write
//! reports only through [`ReportDoc`].
//!
//! # Shape (schema version 1)
//!
//! ```text
//! ROOT
//! ├── schema_version: u64            (SCHEMA_VERSION)
//! └── report: map
//!     ├── id: bytes (UUIDv7)          never changes after creation
//!     ├── title, what_happened, reporter, immediate_actions: str (scalar, not Text)
//!     ├── category, severity, status: str (keys)
//!     ├── impact, urgency: str (keys; absent in older documents: read as "unsure")
//!     ├── outcome: str (key; absent in older documents: read as "none")
//!     ├── occurred_at, reported_at: int (ms since epoch)
//!     ├── location: map { gps: str "lat lon accuracy" | null, place: str }
//!     ├── people_involved: list of str
//!     ├── plan_ticks: list of str, each one ticked plan step as JSON
//!     │               {"step", "role", "text", "at", "by"} (absent in older documents)
//!     ├── injury: map { employee, job_title, work_began, activity, how, injury,
//!     │                 body_part, object, treatment, died_on: str } — the OSHA 301
//!     │               details; made empty with every new document, each key written
//!     │               when first filled (absent in older documents and keys: empty)
//!     ├── witnesses: list of str, each one witness as JSON {"name", "contact",
//!     │              "statement"}, merged as a set (absent in older documents)
//!     ├── photos: list of str, each one photo as JSON {"sha256", "size", "width",
//!     │           "height", "at"}, append-only, read once per hash (absent in older
//!     │           documents and until the first photo)
//!     ├── response: map (absent until the response starts: nothing yet; created by the
//!     │             server's first write to it, under the report's lock)
//!     │   ├── assignee: str (user id, or empty)
//!     │   ├── due_at: int (ms) | null
//!     │   ├── whys: list of str           the "5 whys" chain, edited by position
//!     │   ├── factors: list of str        contributing factors, merged as a set
//!     │   ├── actions: map { <UUIDv7>: map { id, kind, text, owner, due_at, state,
//!     │   │                                  check, check_note } }
//!     │   └── review: map { summary, impact, timeline, went_well, went_badly,
//!     │                     root_cause, actions, lessons: str }
//!     └── timeline: list of str, each one entry as JSON
//!                   {"id": UUID, "at": ms, "author": str, "text": str}
//!                   (entries written before this shape are maps with those keys, the id
//!                   as 16 bytes, and are still read; documents from before the timeline
//!                   existed have none: read as empty)
//! ```
//!
//! Free text is stored as scalar strings, not Automerge `Text`: they load several times
//! faster, and two people rewriting the same sentence concurrently is better shown as a
//! conflict a supervisor resolves than silently interleaved character by character.
//!
//! A timeline entry is never edited once written, so merging it field by field buys
//! nothing: each is a single scalar, one operation instead of five, so a report with many
//! updates loads and reads several times faster (the merge benchmark,
//! `cargo bench -p muster-tests --bench merge`, prints the figures), and the server loads
//! and reads every report it merges.
//!
//! # Merge rules
//!
//! * An edit writes only the fields the person changed ([`ReportDoc::edit`] diffs the form's
//!   starting point against what was submitted). Re-writing an unchanged field would quietly
//!   resolve a pending conflict or manufacture a new one.
//! * Concurrent writes to one field are kept by Automerge; [`ReportDoc::conflicts`] lists
//!   every value so a supervisor can choose. No value silently disappears.
//! * `people_involved` merges as a union: an edit applies only its own additions and
//!   removals to the merged list. So does `witnesses`: changing a witness removes the old
//!   entry and adds the new one, so two concurrent changes keep both rather than one.
//! * `timeline` is append-only: an edit appends the entries it added (by id), so every
//!   device's and supervisor's updates survive, in a single order every replica agrees on.
//! * Concurrent status values settle by the workflow's rule ([`Status::settle`]): a reopen
//!   wins, else the furthest status, never the actor-order winner; the values stay listed
//!   as a conflict until a person chooses.
//! * Each action is a map under its id: concurrent additions all survive, and concurrent
//!   changes to different parts of one action both stand. `factors` merges as a union like
//!   `people_involved`; the `whys` chain is edited position by position.
//!
//! # Untrusted input
//!
//! [`ReportDoc::apply_changes`] decodes each change on its own, applies them and then checks
//! that every one of them really became part of the history (Automerge quietly queues changes
//! whose dependencies are missing). [`ReportDoc::read_valid`] then checks the result still
//! holds a valid report for the expected id. Callers discard the document on any error.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::{
    Injury, Report, ReportId, Response, Review, Status, TimelineEntry, Timestamp, Treatment, Witness,
};

mod gate;
mod snapshot;

pub use gate::{FOREIGN_ACTOR, Gated};

mod actor;
mod conflicts;
mod edit;
pub mod fields;
mod history;
mod ingest;
#[cfg(test)]
mod tests;

pub use actor::{ACTOR_LEN, actor_for, actor_from_uuid, actor_owner};
pub use conflicts::FieldConflict;
pub use fields::{FIELDS, FieldSpec};
pub use history::HistoryEntry;

/// The version of the document shape this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;
const SCHEMA_KEY: &str = "schema_version";
const REPORT_KEY: &str = "report";
const LOCATION_KEY: &str = "location";
const PEOPLE_KEY: &str = "people_involved";
const TIMELINE_KEY: &str = "timeline";
const RESPONSE_KEY: &str = "response";
const ACTIONS_KEY: &str = "actions";
const REVIEW_KEY: &str = "review";
const PLAN_TICKS_KEY: &str = "plan_ticks";
const INJURY_KEY: &str = "injury";
const WITNESSES_KEY: &str = "witnesses";
const PHOTOS_KEY: &str = "photos";

/// Scalar fields directly under `report`, in display order.
const REPORT_SCALARS: [&str; 12] = [
    "title",
    "what_happened",
    "category",
    "severity",
    "impact",
    "urgency",
    "outcome",
    "status",
    "occurred_at",
    "reporter",
    "immediate_actions",
    "reported_at",
];
/// Scalar fields under `report.location`.
const LOCATION_SCALARS: [&str; 2] = ["gps", "place"];
/// Scalar fields under `report.response`.
const RESPONSE_SCALARS: [&str; 2] = ["assignee", "due_at"];
/// Scalar fields under `report.injury`, in form order (the write policy's list).
const INJURY_SCALARS: &[&str] = crate::domain::policy::INJURY_KEYS;
/// Scalar fields of each action under `report.response.actions.<id>`.
const ACTION_SCALARS: [&str; 7] = ["kind", "text", "owner", "due_at", "state", "check", "check_note"];

/// Why a document or change was refused. Every message says what went wrong in words a
/// device can show next to the report.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DocError {
    /// Stored bytes are not an Automerge document.
    #[error("the stored document could not be read: {0}")]
    Load(String),
    /// One uploaded change could not be decoded.
    #[error("change {index} could not be decoded ({reason}); the upload was refused")]
    CorruptChange {
        /// Position of the change in the upload.
        index: usize,
        /// The decoder's complaint.
        reason: String,
    },
    /// An uploaded whole document could not be loaded or does not match its heads.
    #[error("the report's document could not be read ({0}); the upload was refused")]
    CorruptDocument(String),
    /// A change's dependencies are unknown, so it could not be applied.
    #[error(
        "change {hash} builds on changes the server does not have; the device must send the report's full history"
    )]
    MissingDependencies {
        /// Hex hash of the first change that was left unapplied.
        hash: String,
    },
    /// The document was written by an unknown version of Muster.
    #[error(
        "document schema version {} is not supported (this server reads version {SCHEMA_VERSION})",
        found.map_or_else(|| "(none)".to_owned(), |v| v.to_string())
    )]
    UnsupportedSchema {
        /// What the document says, if anything.
        found: Option<u64>,
    },
    /// The document does not hold a report of the expected shape.
    #[error("the document does not hold a readable report: {0}")]
    Shape(String),
    /// The changes belong to another report.
    #[error("the changes belong to report {found}, not {expected}")]
    WrongDocument {
        /// The report the upload claimed.
        expected: ReportId,
        /// The report the document holds.
        found: ReportId,
    },
    /// The report breaks a domain rule.
    #[error("the report is not valid: {0}")]
    Invalid(String),
    /// Writing an edit failed.
    #[error("the edit could not be written: {0}")]
    Write(String),
    /// An uploaded change does something the write policy does not allow.
    #[error("{0}; nothing was stored")]
    Forbidden(String),
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        Self::Write(e.to_string())
    }
}

impl From<autosurgeon::ReconcileError> for DocError {
    fn from(e: autosurgeon::ReconcileError) -> Self {
        Self::Write(e.to_string())
    }
}

/// A report read from its document, with the fields that hold concurrent values.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The report; where fields conflict, Automerge's winner.
    pub report: Report,
    /// Fields holding several concurrent values, in display order.
    pub conflicts: Vec<FieldConflict>,
}

/// A change hash as lowercase hex.
#[must_use]
pub fn hash_hex(hash: &ChangeHash) -> String {
    hex::encode(hash.0)
}

/// Parses a change hash from hex.
pub fn parse_hash(text: &str) -> Result<ChangeHash, String> {
    let bytes = hex::decode(text).map_err(|e| format!("head `{text}` is not hex: {e}"))?;
    ChangeHash::try_from(bytes.as_slice()).map_err(|_| format!("head `{text}` is not 32 bytes"))
}

/// One incident report as an Automerge document.
#[derive(Debug, Clone)]
pub struct ReportDoc {
    doc: AutoCommit,
}
impl ReportDoc {
    /// A new document holding `report`, written by `actor` at `at`.
    pub fn create(report: &Report, actor: ActorId, at: Timestamp) -> Result<Self, DocError> {
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, SCHEMA_KEY, SCHEMA_VERSION)?;
        autosurgeon::reconcile_prop(&mut doc, ROOT, REPORT_KEY, report)?;
        doc.commit_with(
            CommitOptions::default()
                .with_time(at.as_secs())
                .with_message("create"),
        );
        Ok(Self { doc })
    }

    /// An empty document, for a server that has not seen this report yet.
    #[must_use]
    pub fn empty(actor: ActorId) -> Self {
        Self {
            doc: AutoCommit::new().with_actor(actor),
        }
    }

    /// Loads a document saved with [`ReportDoc::save`].
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes).map_err(|e| DocError::Load(e.to_string()))?;
        Ok(Self {
            doc: doc.with_actor(actor),
        })
    }

    /// Writes further edits as `actor`.
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The whole document without Automerge's per-column compression: several times
    /// faster to write and a little faster to load, for a store that compresses whole
    /// documents itself (the server's; see `server::db`).
    pub fn save_uncompressed(&mut self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// The current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether every change named in `heads` is in this document's history.
    pub fn contains_all(&mut self, heads: &[ChangeHash]) -> bool {
        heads.iter().all(|h| self.has_change(*h))
    }

    /// Encoded changes that a peer whose heads are `have` lacks.
    pub fn changes_since(&mut self, have: &[ChangeHash]) -> Vec<Vec<u8>> {
        let known: Vec<ChangeHash> = have.iter().copied().filter(|h| self.has_change(*h)).collect();
        if same_heads(&known, &self.doc.get_heads()) {
            // The peer has everything (the usual answer to a push): nothing to collect.
            return Vec::new();
        }
        self.doc
            .get_changes(&known)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// Number of changes in the history.
    #[must_use]
    pub fn change_count(&self) -> usize {
        changes_in(&self.doc)
    }

    /// The document's schema version, if it has one.
    #[must_use]
    pub fn schema_version(&self) -> Option<u64> {
        match self.doc.get(ROOT, SCHEMA_KEY) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Uint(v) => Some(*v),
                ScalarValue::Int(v) => u64::try_from(*v).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The report as it stands after merging: where fields conflict, Automerge's winner.
    pub fn read(&self) -> Result<Report, DocError> {
        snapshot::report(&self.doc).map(|(report, _)| report)
    }

    /// The fields writes are checked against (reporter, status), read without the rest.
    pub fn guarded(&self) -> Result<crate::domain::access::Guarded, DocError> {
        snapshot::guarded(&self.doc)
    }

    /// The report and every field holding several concurrent values, in one pass over
    /// the document.
    pub fn snapshot(&self) -> Result<Snapshot, DocError> {
        let (report, conflicted) = snapshot::report(&self.doc)?;
        let mut conflicts = if conflicted.is_empty() {
            Vec::new()
        } else {
            self.conflicts_in(&conflicted)
        };
        // The value shown first: for judgements the worst stands and for the status the
        // workflow's rule (see `snapshot`), not Automerge's winner.
        for conflict in &mut conflicts {
            let shown = match conflict.field.as_str() {
                "severity" => report.severity.label(),
                "impact" => report.impact.label(),
                "urgency" => report.urgency.label(),
                "outcome" => report.outcome.label(),
                "status" => report.status.label(),
                _ => continue,
            };
            if let Some(at) = conflict.values.iter().position(|v| v == shown) {
                let value = conflict.values.remove(at);
                conflict.values.insert(0, value);
                if at < conflict.by.len() {
                    let by = conflict.by.remove(at);
                    conflict.by.insert(0, by);
                }
            }
        }
        Ok(Snapshot { report, conflicts })
    }

    /// Reads the report and checks it is `expected` and satisfies every domain rule.
    pub fn read_valid(&self, expected: ReportId, now: Timestamp) -> Result<Report, DocError> {
        self.snapshot_valid(expected, now).map(|s| s.report)
    }

    /// [`ReportDoc::snapshot`], checked like [`ReportDoc::read_valid`].
    pub fn snapshot_valid(&self, expected: ReportId, now: Timestamp) -> Result<Snapshot, DocError> {
        let snapshot = self.snapshot()?;
        let report = &snapshot.report;
        if report.id != expected {
            return Err(DocError::WrongDocument {
                expected,
                found: report.id,
            });
        }
        report.validate(now).map_err(|errors| {
            DocError::Invalid(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(snapshot)
    }
}

/// Whether two lists name the same set of heads (in any order, repeats ignored).
fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let sorted = |h: &[ChangeHash]| {
        let mut h = h.to_vec();
        h.sort_unstable();
        h.dedup();
        h
    };
    sorted(a) == sorted(b)
}

/// Number of changes in a document's history (cheap: Automerge keeps the count).
fn changes_in(doc: &AutoCommit) -> usize {
    usize::try_from(doc.stats().num_changes).unwrap_or(usize::MAX)
}
