//! Changes and documents from elsewhere (a device, the store, a peer) applied to a
//! report: each decoded on its own, and every one checked to have joined the history.

use super::*;

impl ReportDoc {
    /// Whether `hash` is in this document's history. (Automerge's `get_change_by_hash`
    /// re-encodes the change; asking which of `[hash]` is missing does not.)
    pub(super) fn has_change(&mut self, hash: ChangeHash) -> bool {
        self.doc.get_missing_deps(&[hash]).is_empty()
    }

    /// Decodes and applies changes from a peer. Returns how many were new.
    ///
    /// Fails, leaving the caller to discard this document, if any change is undecodable or
    /// could not be applied because its dependencies are missing.
    pub fn apply_changes(&mut self, raw: &[impl AsRef<[u8]>]) -> Result<usize, DocError> {
        let changes = Self::decode_changes(raw)?;
        let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
        let mut new = 0;
        for hash in &hashes {
            if !self.has_change(*hash) {
                new += 1;
            }
        }
        self.doc
            .apply_changes(changes)
            .map_err(|e| DocError::CorruptChange {
                index: 0,
                reason: e.to_string(),
            })?;
        // A change whose dependencies are unknown is queued, not applied: the first hash
        // on each path back from the uploaded ones that is not applied names it.
        if let Some(missing) = self.doc.get_missing_deps(&hashes).first() {
            return Err(DocError::MissingDependencies {
                hash: hash_hex(missing),
            });
        }
        Ok(new)
    }

    /// Decodes uploaded changes, each on its own (their bytes walked by
    /// [`crate::intake`] first).
    pub fn decode_changes(raw: &[impl AsRef<[u8]>]) -> Result<Vec<Change>, DocError> {
        raw.iter()
            .enumerate()
            .map(|(index, bytes)| {
                Change::from_bytes(bytes.as_ref().to_vec()).map_err(|e| DocError::CorruptChange {
                    index,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The changes of a whole document a peer sent, dependencies first, once the bytes
    /// are known to be a complete Automerge document whose heads are `heads` (its bytes
    /// walked by [`crate::intake`] first).
    pub fn document_changes(
        bytes: &[u8],
        heads: &[ChangeHash],
    ) -> Result<(Vec<Change>, AutoCommit), DocError> {
        let mut other = Self::peer_document(bytes, heads)?;
        Ok((other.get_changes(&[]), other))
    }

    fn peer_document(bytes: &[u8], heads: &[ChangeHash]) -> Result<AutoCommit, DocError> {
        let mut other = AutoCommit::load(bytes).map_err(|e| DocError::CorruptDocument(e.to_string()))?;
        if !same_heads(heads, &other.get_heads()) {
            return Err(DocError::CorruptDocument(
                "its heads are not the heads the device sent".to_owned(),
            ));
        }
        if !other.get_missing_deps(&[]).is_empty() {
            return Err(DocError::CorruptDocument(
                "it holds changes with missing dependencies".to_owned(),
            ));
        }
        Ok(other)
    }

    /// Loads a whole document a peer sent (instead of its changes) and merges it in.
    /// Returns how many changes were new.
    ///
    /// Fails, leaving the caller to discard this document, if the bytes are not a complete
    /// Automerge document whose heads are `heads` (Automerge verifies the chunk's hashes).
    pub fn merge_document(&mut self, bytes: &[u8], heads: &[ChangeHash]) -> Result<usize, DocError> {
        let mut other = Self::peer_document(bytes, heads)?;
        if self.doc.is_empty() {
            // Nothing to merge with: take the loaded document as it is.
            let actor = self.doc.get_actor().clone();
            let added = changes_in(&other);
            self.doc = other.with_actor(actor);
            return Ok(added);
        }
        let before = self.change_count();
        self.doc.merge(&mut other)?;
        Ok(self.change_count() - before)
    }

    /// Merges every change of `other` into this document.
    pub fn merge(&mut self, other: &mut ReportDoc) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::{NOW, actor};
    use crate::domain::*;

    #[test]
    fn corrupt_and_orphaned_changes_are_refused() {
        let mut report = Report::blank(ReportId::new_v7(NOW, [1; 10]), NOW, "Ana");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        let mut edited = report.clone();
        edited.title = "Oil spill".into();
        doc.edit(&report, &edited, NOW).unwrap();
        let changes = doc.changes_since(&[]);

        let mut server = ReportDoc::empty(actor(9));
        let mut flipped = changes[0].clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(
            server.apply_changes(&[flipped]),
            Err(DocError::CorruptChange { .. })
        ));
        assert!(matches!(
            server.apply_changes(&[vec![1, 2, 3]]),
            Err(DocError::CorruptChange { .. })
        ));

        let mut server = ReportDoc::empty(actor(9));
        let err = server.apply_changes(&changes[1..]).unwrap_err();
        assert!(matches!(err, DocError::MissingDependencies { .. }), "{err}");

        let mut server = ReportDoc::empty(actor(9));
        assert_eq!(server.apply_changes(&changes).unwrap(), 2);
        assert_eq!(server.apply_changes(&changes).unwrap(), 0, "replays are harmless");
        let other = ReportId::new_v7(NOW, [2; 10]);
        assert!(matches!(
            server.read_valid(other, NOW),
            Err(DocError::WrongDocument { .. })
        ));
    }
}
