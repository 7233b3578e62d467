//! Bounded reading of uploaded Automerge bytes, before Automerge parses any of them.
//!
//! automerge 0.12 trusts its input more than a server can: it inflates compressed change
//! chunks and DEFLATE columns with no size limit (before any checksum is verified), expands
//! a few bytes of run-length encoding into as many operations as they claim, and on a
//! change naming an actor it does not carry it panics inside `apply_changes` in a way that
//! aborts the process whatever `catch_unwind` does. So every uploaded change and document
//! is walked here first, chunk by chunk and column by column, in time and memory bounded by
//! its own length and the caps below:
//!
//! * each chunk's magic bytes, type, LEB128 length and checksum (the first 4 bytes of the
//!   SHA-256 of type, length and data);
//! * compressed change chunks and bundles are refused: devices send changes as Automerge
//!   encodes them, uncompressed;
//! * a document's DEFLATE columns are inflated through a reader that stops at what is
//!   left of the request's decoding budget, so the bytes Automerge later inflates are
//!   known to fit;
//! * every column's rows are counted against the caps (so no operation count, predecessor
//!   list or change list grows past them), and every actor index is checked against the
//!   actors the chunk carries.
//!
//! Only bytes that pass reach Automerge.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::protocol::{MAX_CHANGES_PER_REPORT, ReportPush};

/// Most operations one uploaded change may hold. A new report is about sixty; an edit a
/// handful. Every column of a change (operations, their predecessors) is held to it.
pub const MAX_OPS_PER_CHANGE: u64 = 5_000;
/// Most rows any column of an uploaded document may hold (its operations, its changes).
pub const MAX_ROWS_PER_DOCUMENT: u64 = 200_000;
/// Most operations one sync request may carry across all its reports.
pub const MAX_OPS_PER_REQUEST: u64 = 400_000;
/// Largest a report's document may be once merged, uncompressed. A report's text,
/// history and photo references (the photos themselves are stored apart) stay far below
/// this; merging loads a document several times its size, so this bounds what one
/// report costs the server.
pub const MAX_STORED_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
/// Most actors (people's devices) one chunk may name.
pub const MAX_ACTORS_PER_CHUNK: u64 = 10_000;
/// Most dependencies one change, or heads one document, may have.
pub const MAX_DEPS: u64 = 1_000;
/// Longest commit message a change may carry, in bytes.
pub const MAX_MESSAGE_BYTES: u64 = 4_096;
/// What a request may decode to, as a multiple of its body (DEFLATE columns of honest
/// documents inflate two to five times).
pub const DECODE_BUDGET_FACTOR: usize = 8;
/// The decoding budget of even a small request: twice the largest document a report may
/// be stored as, so a device's first sync of a large, well-compressed report (kept
/// compressed on the phone) is never refused for inflating.
pub const MIN_DECODE_BUDGET: usize = 2 * MAX_STORED_DOCUMENT_BYTES;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;
/// More columns than any Automerge encoding has.
const MAX_COLUMNS: u64 = 64;
const DEFLATE_BIT: u32 = 0b1000;

/// Why uploaded bytes were refused before Automerge saw them. Each message names the cap
/// or the rule, in words a device shows next to the report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// Not a well-formed Automerge chunk.
    #[error("not an Automerge change or document: {0}")]
    Malformed(String),
    /// A compressed change chunk or a bundle.
    #[error("{0} are not accepted; send changes uncompressed")]
    Compressed(&'static str),
    /// Over one of the request's caps: the whole request is refused (413).
    #[error("{what} ({found}); the limit is {limit}")]
    OverRequest {
        /// Which cap, in words.
        what: &'static str,
        /// How much was found (or the most that was counted before giving up).
        found: u64,
        /// The cap.
        limit: u64,
    },
    /// Over one of a report's caps: that report is refused (422).
    #[error("{what} ({found}); the limit is {limit}")]
    OverCap {
        /// Which cap, in words.
        what: &'static str,
        /// How much was found (or the most that was counted before giving up).
        found: u64,
        /// The cap.
        limit: u64,
    },
}

impl IntakeError {
    fn malformed(what: impl Into<String>) -> Self {
        Self::Malformed(what.into())
    }

    /// Whether this is one of a report's size caps.
    #[must_use]
    pub fn is_cap(&self) -> bool {
        matches!(self, Self::OverCap { .. } | Self::OverRequest { .. })
    }

    /// Whether the whole request is over a cap (413), not one report (422).
    #[must_use]
    pub fn is_request_cap(&self) -> bool {
        matches!(self, Self::OverRequest { .. })
    }
}

/// What one request may still decode: operations and inflated bytes.
#[derive(Clone, Debug)]
pub struct Budget {
    ops: u64,
    bytes: usize,
}

impl Budget {
    /// The budget of a request whose body is `body_len` bytes.
    #[must_use]
    pub fn for_body(body_len: usize) -> Self {
        Self {
            ops: MAX_OPS_PER_REQUEST,
            bytes: body_len
                .saturating_mul(DECODE_BUDGET_FACTOR)
                .max(MIN_DECODE_BUDGET),
        }
    }

    fn spend_ops(&mut self, ops: u64) -> Result<(), IntakeError> {
        self.ops = self.ops.checked_sub(ops).ok_or(IntakeError::OverRequest {
            what: "the request holds more operations than one sync takes; send fewer reports at a time",
            found: MAX_OPS_PER_REQUEST.saturating_add(ops),
            limit: MAX_OPS_PER_REQUEST,
        })?;
        Ok(())
    }
}

/// Checks one report's upload: its change count, each change, and its document.
/// Returns the operations it holds, spent from `budget`.
pub fn check_push(push: &ReportPush, budget: &mut Budget) -> Result<u64, IntakeError> {
    if push.changes.len() > MAX_CHANGES_PER_REPORT {
        return Err(IntakeError::OverCap {
            what: "too many changes for one report in one request; send them in parts",
            found: push.changes.len() as u64,
            limit: MAX_CHANGES_PER_REPORT as u64,
        });
    }
    let mut ops = 0;
    for change in &push.changes {
        ops += check_change(&change.0)?;
    }
    if let Some(document) = &push.document {
        ops += check_document(&document.0, budget)?;
    }
    budget.spend_ops(ops)?;
    Ok(ops)
}

/// Checks one encoded change (a single uncompressed change chunk). Returns its operations.
pub fn check_change(bytes: &[u8]) -> Result<u64, IntakeError> {
    let mut input = Input(bytes);
    let (kind, data) = input.chunk()?;
    if !input.0.is_empty() {
        return Err(IntakeError::malformed("bytes after the change"));
    }
    match kind {
        CHANGE => change_body(data),
        COMPRESSED_CHANGE => Err(IntakeError::Compressed("compressed changes")),
        BUNDLE => Err(IntakeError::Compressed("bundles of changes")),
        DOCUMENT => Err(IntakeError::malformed("a whole document where a change belongs")),
        other => Err(IntakeError::malformed(format!("unknown chunk type {other}"))),
    }
}

/// Checks a saved document (a document chunk, possibly followed by change chunks, as
/// Automerge saves and loads them), inflating DEFLATE columns against `budget`. Returns
/// the rows it holds.
pub fn check_document(bytes: &[u8], budget: &mut Budget) -> Result<u64, IntakeError> {
    let mut input = Input(bytes);
    let mut rows = 0;
    if input.0.is_empty() {
        return Err(IntakeError::malformed("an empty document"));
    }
    while !input.0.is_empty() {
        let (kind, data) = input.chunk()?;
        rows += match kind {
            DOCUMENT => document_body(data, budget)?,
            CHANGE => change_body(data)?,
            COMPRESSED_CHANGE => return Err(IntakeError::Compressed("compressed changes")),
            BUNDLE => return Err(IntakeError::Compressed("bundles of changes")),
            other => return Err(IntakeError::malformed(format!("unknown chunk type {other}"))),
        };
        if rows > MAX_ROWS_PER_DOCUMENT {
            return Err(IntakeError::OverCap {
                what: "the document holds too many operations",
                found: rows,
                limit: MAX_ROWS_PER_DOCUMENT,
            });
        }
    }
    Ok(rows)
}

/// The data of a change chunk: header fields, then its operation columns.
fn change_body(data: &[u8]) -> Result<u64, IntakeError> {
    let mut input = Input(data);
    let deps = input.count("dependencies of a change", MAX_DEPS)?;
    input.take(deps * 32)?;
    input.actor()?;
    let seq = input.uleb()?;
    let start_op = input.uleb()?;
    if start_op == 0 || start_op > u64::from(u32::MAX) || seq > u64::from(u32::MAX) {
        return Err(IntakeError::malformed(
            "a change's sequence or start operation is out of range",
        ));
    }
    input.sleb()?;
    let message = input.uleb()?;
    if message > MAX_MESSAGE_BYTES {
        return Err(IntakeError::OverCap {
            what: "a change's message is too long",
            found: message,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    input.take(message)?;
    let others = input.count("actors named by a change", MAX_ACTORS_PER_CHUNK - 1)?;
    for _ in 0..others {
        input.actor()?;
    }
    let columns = input.columns()?;
    let mut ops = 0;
    for (spec, len) in columns {
        if spec & DEFLATE_BIT != 0 {
            return Err(IntakeError::Compressed("compressed change columns"));
        }
        let column = input.take(len)?;
        let rows = column_rows(
            spec,
            column,
            others + 1,
            MAX_OPS_PER_CHANGE,
            "a change holds too many operations",
        )?;
        ops = ops.max(rows);
    }
    if start_op + ops > u64::from(u32::MAX) {
        return Err(IntakeError::malformed(
            "a change's operation counters run out of range",
        ));
    }
    // What is left is the change's extra bytes, which Automerge keeps as they are.
    Ok(ops)
}

/// The data of a document chunk: actors, heads, the change and operation column
/// metadata, the columns, and the head indices.
fn document_body(data: &[u8], budget: &mut Budget) -> Result<u64, IntakeError> {
    let mut input = Input(data);
    let actors = input.count("actors named by a document", MAX_ACTORS_PER_CHUNK)?;
    for _ in 0..actors {
        input.actor()?;
    }
    let heads = input.count("heads of a document", MAX_DEPS)?;
    input.take(heads * 32)?;
    let change_columns = input.columns()?;
    let op_columns = input.columns()?;
    let mut rows = 0;
    for (spec, len) in change_columns.into_iter().chain(op_columns) {
        let column = input.take(len)?;
        let inflated;
        let column = if spec & DEFLATE_BIT == 0 {
            column
        } else {
            inflated = inflate(column, budget)?;
            &inflated
        };
        let counted = column_rows(
            spec,
            column,
            actors,
            MAX_ROWS_PER_DOCUMENT,
            "the document holds too many operations",
        )?;
        rows = rows.max(counted);
    }
    // Head indices: one LEB128 number per head.
    for _ in 0..heads {
        input.uleb()?;
    }
    Ok(rows)
}

/// Inflates a DEFLATE column, refusing it once it passes what is left of `budget`.
fn inflate(column: &[u8], budget: &mut Budget) -> Result<Vec<u8>, IntakeError> {
    let limit = budget.bytes;
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(column)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IntakeError::malformed(format!("a compressed column does not inflate: {e}")))?;
    if out.len() > limit {
        return Err(IntakeError::OverRequest {
            what: "the request's compressed columns inflate to too many bytes",
            found: out.len() as u64,
            limit: limit as u64,
        });
    }
    budget.bytes -= out.len();
    Ok(out)
}

/// Counts the rows of one column, refusing more than `cap` and, in actor columns, any
/// index past the `actors` the chunk names.
fn column_rows(
    spec: u32,
    data: &[u8],
    actors: u64,
    cap: u64,
    what: &'static str,
) -> Result<u64, IntakeError> {
    let over = |found| IntakeError::OverCap {
        what,
        found,
        limit: cap,
    };
    let mut input = Input(data);
    let mut rows: u64 = 0;
    let mut add = |n: u64| -> Result<(), IntakeError> {
        rows = rows
            .checked_add(n)
            .filter(|r| *r <= cap)
            .ok_or_else(|| over(rows.saturating_add(n)))?;
        Ok(())
    };
    match spec & 0b111 {
        // Raw values: their lengths are in the metadata column beside them.
        7 => return Ok(0),
        // Booleans: alternating run lengths, starting with false.
        4 => {
            while !input.0.is_empty() {
                add(input.uleb()?)?;
            }
        }
        kind => {
            while !input.0.is_empty() {
                let count = input.sleb()?;
                if count > 0 {
                    input.value(kind, actors)?;
                    add(count.unsigned_abs())?;
                } else if count < 0 {
                    for _ in 0..count.unsigned_abs() {
                        input.value(kind, actors)?;
                        add(1)?;
                    }
                } else {
                    add(input.uleb()?)?;
                }
            }
        }
    }
    Ok(rows)
}

/// A cursor over untrusted bytes: every read checks what is left.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], IntakeError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or_else(|| IntakeError::malformed("it ends early"))?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uleb(&mut self) -> Result<u64, IntakeError> {
        leb128::read::unsigned(&mut self.0)
            .map_err(|_| IntakeError::malformed("a number is cut short or too large"))
    }

    fn sleb(&mut self) -> Result<i64, IntakeError> {
        leb128::read::signed(&mut self.0)
            .map_err(|_| IntakeError::malformed("a number is cut short or too large"))
    }

    /// A count of items that each take at least one byte, at most `cap`.
    fn count(&mut self, what: &'static str, cap: u64) -> Result<u64, IntakeError> {
        let n = self.uleb()?;
        if n > cap {
            return Err(IntakeError::OverCap {
                what: match what {
                    "dependencies of a change" => "a change has too many dependencies",
                    "heads of a document" => "a document has too many heads",
                    _ => "a chunk names too many actors",
                },
                found: n,
                limit: cap,
            });
        }
        if n > self.0.len() as u64 {
            return Err(IntakeError::malformed(format!(
                "it claims more {what} than it holds"
            )));
        }
        Ok(n)
    }

    fn actor(&mut self) -> Result<(), IntakeError> {
        let len = self.uleb()?;
        if len > 64 {
            return Err(IntakeError::malformed("an actor id is longer than 64 bytes"));
        }
        self.take(len).map(drop)
    }

    /// Column metadata: how many, then (specification, length) pairs.
    fn columns(&mut self) -> Result<Vec<(u32, u64)>, IntakeError> {
        let n = self.uleb()?;
        if n > MAX_COLUMNS {
            return Err(IntakeError::malformed(format!("{n} columns")));
        }
        let mut columns = Vec::new();
        let mut total: u64 = 0;
        for _ in 0..n {
            let spec = u32::try_from(self.uleb()?)
                .map_err(|_| IntakeError::malformed("a column specification is too large"))?;
            let len = self.uleb()?;
            total = total.saturating_add(len);
            columns.push((spec, len));
        }
        if total > self.0.len() as u64 {
            return Err(IntakeError::malformed("its columns are longer than it is"));
        }
        Ok(columns)
    }

    /// One value of a run-length encoded column of this type.
    fn value(&mut self, kind: u32, actors: u64) -> Result<(), IntakeError> {
        match kind {
            // Actor indices.
            1 => {
                let index = self.uleb()?;
                if index >= actors {
                    return Err(IntakeError::malformed(format!(
                        "an operation names actor {index} of {actors}"
                    )));
                }
            }
            // Deltas.
            3 => {
                self.sleb()?;
            }
            // Strings.
            5 => {
                let len = self.uleb()?;
                self.take(len)?;
            }
            // Group counts, integers, value metadata.
            _ => {
                self.uleb()?;
            }
        }
        Ok(())
    }

    /// One chunk: magic, checksum, type, length, data; the checksum verified.
    fn chunk(&mut self) -> Result<(u8, &'a [u8]), IntakeError> {
        if self.take(4).ok() != Some(MAGIC.as_slice()) {
            return Err(IntakeError::malformed(
                "it does not start with Automerge's magic bytes",
            ));
        }
        let checksum = self.take(4)?;
        let kind = self.take(1)?[0];
        let before = self.0;
        let len = self.uleb()?;
        let len_bytes = &before[..before.len() - self.0.len()];
        let data = self.take(len)?;
        if kind != COMPRESSED_CHANGE {
            // A compressed chunk's checksum is over the inflated bytes: it is refused
            // unread.
            let hash = Sha256::new()
                .chain_update([kind])
                .chain_update(len_bytes)
                .chain_update(data)
                .finalize();
            if hash[..4] != *checksum {
                return Err(IntakeError::malformed("its checksum does not match"));
            }
        }
        Ok((kind, data))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::document::ReportDoc;
    use crate::domain::{Report, ReportId, Timestamp};
    use automerge::ActorId;
    use std::io::Write;

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn doc() -> ReportDoc {
        let mut report = Report::blank(ReportId::new_v7(NOW, [3; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.what_happened = "Oil on the loading dock floor, ".repeat(40);
        report.location.place = "Dock".into();
        ReportDoc::create(&report, ActorId::from([5u8; 16].as_slice()), NOW).unwrap()
    }

    /// A chunk of `kind` around `data`, with a correct checksum.
    pub(crate) fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut len = Vec::new();
        leb128::write::unsigned(&mut len, data.len() as u64).unwrap();
        let hash = Sha256::new()
            .chain_update([kind])
            .chain_update(&len)
            .chain_update(data)
            .finalize();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&hash[..4]);
        out.push(kind);
        out.extend_from_slice(&len);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn honest_changes_and_documents_pass_with_their_counts() {
        let mut doc = doc();
        let changes = doc.changes_since(&[]);
        let ops = check_change(&changes[0]).unwrap();
        assert!(ops > 20 && ops < 200, "{ops}");
        let mut budget = Budget::for_body(0);
        // Saved compressed (as devices keep them) and uncompressed (as the server does).
        assert!(check_document(&doc.save(), &mut budget).unwrap() > 0);
        assert!(check_document(&doc.save_uncompressed(), &mut budget).unwrap() > 0);
    }

    #[test]
    fn compressed_chunks_are_refused_unread() {
        let mut deflated = Vec::new();
        let mut encoder = flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::best());
        encoder.write_all(&vec![0u8; 10 * 1024 * 1024]).unwrap();
        encoder.finish().unwrap();
        let bomb = chunk(COMPRESSED_CHANGE, &deflated);
        assert_eq!(
            check_change(&bomb),
            Err(IntakeError::Compressed("compressed changes"))
        );
        assert!(matches!(
            check_document(&bomb, &mut Budget::for_body(bomb.len())),
            Err(IntakeError::Compressed(_))
        ));
        assert!(matches!(
            check_change(&chunk(BUNDLE, b"x")),
            Err(IntakeError::Compressed(_))
        ));
    }

    #[test]
    fn a_column_inflating_past_the_budget_is_refused() {
        // A document whose one op column is a DEFLATE bomb.
        let mut deflated = Vec::new();
        let mut encoder = flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::best());
        encoder.write_all(&vec![0u8; 64 * 1024 * 1024]).unwrap();
        encoder.finish().unwrap();
        let mut data = vec![0u8, 0]; // no actors, no heads
        data.push(0); // no change columns
        data.push(1); // one op column
        leb128::write::unsigned(&mut data, u64::from((1u32 << 4) | DEFLATE_BIT | 2)).unwrap();
        leb128::write::unsigned(&mut data, deflated.len() as u64).unwrap();
        data.extend_from_slice(&deflated);
        let bomb = chunk(DOCUMENT, &data);
        let err = check_document(&bomb, &mut Budget::for_body(bomb.len())).unwrap_err();
        assert!(err.is_cap(), "{err}");
        assert!(err.to_string().contains("inflate"), "{err}");
    }

    #[test]
    fn run_lengths_past_the_cap_and_foreign_actor_indices_are_refused() {
        // A change whose action column claims 2^40 operations in three bytes.
        let mut data = vec![0u8]; // no deps
        data.extend_from_slice(&[1, 7]); // actor: one byte
        data.extend_from_slice(&[1, 1, 0, 0]); // seq 1, start op 1, time 0, no message
        data.push(0); // no other actors
        let mut column = Vec::new();
        leb128::write::signed(&mut column, 1 << 40).unwrap();
        column.push(1);
        data.push(1);
        leb128::write::unsigned(&mut data, u64::from((4u32 << 4) | 2)).unwrap();
        leb128::write::unsigned(&mut data, column.len() as u64).unwrap();
        data.extend_from_slice(&column);
        let err = check_change(&chunk(CHANGE, &data)).unwrap_err();
        assert!(
            matches!(
                err,
                IntakeError::OverCap {
                    limit: MAX_OPS_PER_CHANGE,
                    ..
                }
            ),
            "{err}"
        );

        // An object actor column naming actor 3 of the one the change carries.
        let mut data = vec![0u8, 1, 7, 1, 1, 0, 0, 0, 1];
        leb128::write::unsigned(&mut data, 1 /* column 0, actor */).unwrap();
        data.extend_from_slice(&[2, 1, 3]);
        let err = check_change(&chunk(CHANGE, &data)).unwrap_err();
        assert!(err.to_string().contains("actor 3 of 1"), "{err}");
    }

    #[test]
    fn the_abort_found_by_fuzzing_is_refused_before_automerge_reads_it() {
        // Automerge does not check a change's checksum; this walk does, and that alone
        // refuses the finding (with its checksum mended, the write policy refuses its
        // ops: see `merge`).
        let finding =
            include_bytes!("../../fuzz/corpus/apply_changes/regression-apply-changes-abort-1669810f");
        let changes = crate::merge::split_changes(finding);
        assert_eq!(
            check_change(&changes[0]),
            Err(IntakeError::malformed("its checksum does not match"))
        );
    }

    #[test]
    fn damaged_chunks_are_malformed() {
        let mut doc = doc();
        let change = doc.changes_since(&[]).remove(0);
        for cut in [0, 3, 8, 12, change.len() - 1] {
            assert!(check_change(&change[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = change.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            check_change(&flipped),
            Err(IntakeError::malformed("its checksum does not match"))
        );
        let mut trailing = change;
        trailing.push(0);
        assert!(check_change(&trailing).is_err());
    }

    #[test]
    fn the_request_budget_bounds_operations_across_reports() {
        let mut doc = doc();
        let change = doc.changes_since(&[]).remove(0);
        let ops = check_change(&change).unwrap();
        let push = ReportPush {
            id: ReportId::new_v7(NOW, [1; 10]),
            heads: vec![],
            changes: vec![crate::protocol::Bytes(change)],
            document: None,
        };
        let mut budget = Budget::for_body(0);
        let fits = MAX_OPS_PER_REQUEST / ops;
        for _ in 0..fits {
            check_push(&push, &mut budget).unwrap();
        }
        let err = check_push(&push, &mut budget).unwrap_err();
        assert!(err.is_cap() && err.to_string().contains("operations"), "{err}");
    }
}
