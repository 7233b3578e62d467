//! Stored documents: loading and storing them (compressed), the commit of a group of
//! merges in one transaction, receipts of what was received, and quarantine.

use super::*;

/// Who a write is for: the device that will hold the result (it follows the reports), and
/// who reports it creates belong to. Server-side writers (desk edits of existing reports,
/// tests) may leave either out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Writer {
    /// The device's key in `following` (see [`following_key`]).
    pub device: Option<uuid::Uuid>,
    /// Owner and team of reports this write creates; never changed afterwards.
    pub owner: Ownership,
    /// Who pushed the changes, for the change receipts (`None`: written by the server
    /// itself).
    pub from: Option<Sender>,
}

/// Who pushed changes: the person, and from which sign-in (`None`: the desk).
#[derive(Debug, Clone, Copy)]
pub struct Sender {
    /// The person.
    pub user: uuid::Uuid,
    /// Their session, if they pushed from a device.
    pub session: Option<uuid::Uuid>,
}

/// A device's key in `following`: its id within its user's namespace, so a person who
/// learns someone else's device id cannot read or reset what that device follows.
#[must_use]
pub fn following_key(user: uuid::Uuid, device: uuid::Uuid) -> uuid::Uuid {
    uuid::Uuid::new_v5(&user, device.as_bytes())
}

/// A stored document as loaded for merging.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    /// The merged document.
    pub doc: Vec<u8>,
    /// Its heads, space-separated hex.
    pub heads: String,
    /// Its feed sequence number.
    pub seq: i64,
    /// Held back for an administrator: never merged or served.
    pub quarantined: bool,
}

/// One report's merged state, to store: what the projection, the feed and the receipts
/// need of it.
#[derive(Debug)]
pub struct Write {
    /// The merged report.
    pub report: Report,
    /// The whole document, packed (see [`pack`]); empty when nothing `changed`.
    pub doc: Vec<u8>,
    /// Its heads, hex.
    pub heads: Vec<String>,
    /// Changes in its history.
    pub change_count: usize,
    /// How many fields hold concurrent values.
    pub conflicts: usize,
    /// Whether anything new arrived (if not, only what the device holds is recorded).
    pub changed: bool,
    /// Whether an accepted change wrote injury details (the report stays sensitive).
    pub sensitive: bool,
    /// The changes received from a device: hash (hex) and size.
    pub received: Vec<(String, usize)>,
}

/// One request's writes, made against `stored` (the documents as they were loaded).
#[derive(Debug)]
pub struct Batch {
    /// Who the writes are for.
    pub writer: Writer,
    /// The documents the writes were merged onto.
    pub stored: Arc<HashMap<ReportId, StoredDoc>>,
    /// The writes, one per report.
    pub writes: Vec<Write>,
}

/// A write placed in the feed: its sequence number after the commit.
#[derive(Debug)]
pub(super) struct Placed {
    pub(super) write: Write,
    pub(super) seq: i64,
}

/// A report id and its heads, as several queries read them.
#[derive(sqlx::FromRow)]
struct IdHeads {
    report_id: String,
    heads: String,
}

/// What a refused quarantined report is told.
pub const QUARANTINE_REASON: &str = "this report is held for review on the server because its stored copy is damaged; \
     your changes are kept on this device";

impl Store {
    /// The stored document of a report, if any.
    #[tracing::instrument(name = "db.load_doc", skip_all)]
    pub async fn load_doc(&self, id: ReportId) -> Result<Option<StoredDoc>, DbError> {
        Ok(self.load_docs(&[id]).await?.remove(&id))
    }

    /// The stored documents among `ids`.
    #[tracing::instrument(name = "db.load_docs", skip_all, fields(n = ids.len()))]
    pub async fn load_docs(&self, ids: &[ReportId]) -> Result<HashMap<ReportId, StoredDoc>, DbError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = self.sql_for_ids(
            "SELECT d.report_id, d.doc, d.heads, d.seq,
               CAST(CASE WHEN q.report_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS quarantined
             FROM documents d LEFT JOIN quarantine q ON q.report_id = d.report_id
             WHERE d.report_id IN ({ids})",
            ids.len(),
        );
        /// A stored document as loaded.
        #[derive(sqlx::FromRow)]
        struct Row {
            report_id: String,
            doc: Vec<u8>,
            heads: String,
            seq: i64,
            quarantined: i64,
        }
        let rows: Vec<Row> = rows_of(
            bind_ids(&sql, ids).fetch_all(&self.pool).await,
            "loading documents",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.report_id.parse().ok()?,
                    StoredDoc {
                        doc: unpack(r.doc),
                        heads: r.heads,
                        seq: r.seq,
                        quarantined: r.quarantined != 0,
                    },
                ))
            })
            .collect())
    }

    /// Records that a report's stored document is damaged. Its document stays as it is,
    /// for an administrator; syncs of it are refused and the feed skips it.
    #[tracing::instrument(name = "db.quarantine", skip_all, fields(report = %id))]
    pub async fn quarantine(&self, id: ReportId, reason: &str, now: Timestamp) -> Result<(), DbError> {
        tracing::error!(report = %id, reason, "document quarantined");
        sqlx::query(&self.sql(
            "INSERT INTO quarantine (report_id, reason, detected_at) VALUES ($1, $2, $3)
             ON CONFLICT (report_id) DO NOTHING",
        ))
        .bind(id.to_string())
        .bind(reason.to_owned())
        .bind(now.0)
        .execute(&self.pool)
        .await
        .context("quarantining a document")?;
        Ok(())
    }

    /// Every quarantined document, newest first.
    #[tracing::instrument(name = "db.quarantined", skip_all)]
    pub async fn quarantined(&self) -> Result<Vec<QuarantinedDoc>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            report_id: String,
            reason: String,
            detected_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query("SELECT report_id, reason, detected_at FROM quarantine ORDER BY detected_at DESC")
                .fetch_all(&self.pool)
                .await,
            "listing quarantined documents",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(QuarantinedDoc {
                    id: r.report_id.parse().ok()?,
                    reason: r.reason,
                    detected_at: Timestamp(r.detected_at),
                })
            })
            .collect())
    }

    /// One transaction for several requests' merges (no report in two of them). Returns,
    /// per request, whether it was stored: `false` if its documents changed since it
    /// loaded them (nothing of it is stored; it merges again).
    #[tracing::instrument(name = "db.commit_together", skip_all)]
    pub async fn commit_together(&self, commits: Vec<Batch>, now: Timestamp) -> Result<Vec<bool>, DbError> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        // A fixed order, so concurrent transactions lock rows in the same order.
        let mut ids: Vec<ReportId> = commits
            .iter()
            .flat_map(|c| c.writes.iter().map(|m| m.report.id))
            .collect();
        ids.sort_unstable();
        let mut current: HashMap<ReportId, String> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let lock = match self.backend {
                Backend::Postgres => " ORDER BY report_id FOR UPDATE",
                Backend::Sqlite => "",
            };
            let sql = self.sql_for_ids(
                &format!("SELECT report_id, heads FROM documents WHERE report_id IN ({{ids}}){lock}"),
                chunk.len(),
            );
            let rows: Vec<IdHeads> = rows_of(
                bind_ids(&sql, chunk).fetch_all(&mut *tx).await,
                "locking documents",
            )?;
            current.extend(
                rows.into_iter()
                    .filter_map(|r| Some((r.report_id.parse().ok()?, r.heads))),
            );
        }
        // Requests whose documents someone changed since they were loaded merge again.
        let unchanged = |c: &Batch| {
            c.writes
                .iter()
                .all(|m| current.get(&m.report.id) == c.stored.get(&m.report.id).map(|s| &s.heads))
        };
        let commits: Vec<Option<Batch>> = commits.into_iter().map(|c| unchanged(&c).then_some(c)).collect();
        let changed = commits
            .iter()
            .flatten()
            .flat_map(|c| &c.writes)
            .filter(|m| m.changed)
            .count();
        let mut next_seq = 0;
        if changed > 0 {
            let last: i64 = sqlx::query_scalar(
                &self.sql("UPDATE sync_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq"),
            )
            .bind(i64::try_from(changed).unwrap_or(i64::MAX))
            .fetch_one(&mut *tx)
            .await
            .context("taking feed sequence numbers")?;
            next_seq = last - i64::try_from(changed).unwrap_or(0) + 1;
        }
        let results: Vec<Option<(Writer, Vec<Placed>)>> = commits
            .into_iter()
            .map(|c| {
                let c = c?;
                let applied = c
                    .writes
                    .into_iter()
                    .map(|m| {
                        let stored = c.stored.get(&m.report.id);
                        let seq = if m.changed {
                            next_seq += 1;
                            next_seq - 1
                        } else {
                            stored.map_or(0, |s| s.seq)
                        };
                        Placed { write: m, seq }
                    })
                    .collect::<Vec<_>>();
                Some((c.writer, applied))
            })
            .collect();
        // A few multi-row statements instead of three per report: each statement is a
        // round trip to the database (for SQLite, to its worker thread).
        let all = || results.iter().flatten().flat_map(|(_, applied)| applied.iter());
        let (known, new): (Vec<&Placed>, Vec<&Placed>) = all()
            .filter(|a| a.write.changed)
            .partition(|a| current.contains_key(&a.write.report.id));
        for chunk in known.chunks(ROWS_PER_STATEMENT) {
            self.store_documents(&mut tx, chunk, now, true).await?;
        }
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            if self.store_documents(&mut tx, chunk, now, false).await? != chunk.len() as u64 {
                // Another writer created one of them first: everyone merges again
                // (rare; the transaction is rolled back when dropped).
                return Ok(vec![false; results.len()]);
            }
        }
        let changed: Vec<(&Placed, Ownership)> = results
            .iter()
            .flatten()
            .flat_map(|(writer, applied)| applied.iter().map(|a| (a, writer.owner)))
            .filter(|(a, _)| a.write.changed)
            .collect();
        for chunk in changed.chunks(ROWS_PER_STATEMENT) {
            self.project(&mut tx, chunk, now).await?;
        }
        self.escalate(&mut tx, &changed, now).await?;
        let following: Vec<(uuid::Uuid, &Placed)> = results
            .iter()
            .flatten()
            .filter_map(|(writer, applied)| Some((writer.device.as_ref()?, applied)))
            .flat_map(|(device, applied)| applied.iter().map(|a| (*device, a)))
            .collect();
        for chunk in following.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO following (device_id, report_id, known_heads) VALUES {}
                 ON CONFLICT (device_id, report_id) DO UPDATE SET known_heads = excluded.known_heads",
                values_list(chunk.len(), 3)
            );
            let sql = self.sql(&sql);
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, (device, a)| {
                    q.bind(device.to_string())
                        .bind(a.write.report.id.to_string())
                        .bind(a.write.heads.join(" "))
                })
                .execute(&mut *tx)
                .await
                .context("recording what the device holds")?;
        }
        // One receipt per report per sync, naming the changes it brought.
        let receipts: Vec<(&Placed, Option<Sender>)> = results
            .iter()
            .flatten()
            .flat_map(|(writer, applied)| {
                applied
                    .iter()
                    .filter(|a| a.write.changed && !a.write.received.is_empty())
                    .map(move |a| (a, writer.from))
            })
            .collect();
        for chunk in receipts.chunks(ROWS_PER_STATEMENT) {
            let sql = self.sql(&format!(
                "INSERT INTO change_receipts (report_id, received_at, user_id, session_id, bytes, hashes)
                 VALUES {}",
                typed_values_list(chunk.len(), &[None, None, Some("TEXT"), Some("TEXT"), None, None])
            ));
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, (a, from)| {
                    let received = &a.write.received;
                    let bytes: usize = received.iter().map(|(_, b)| b).sum();
                    let hashes: Vec<&str> = received.iter().map(|(h, _)| h.as_str()).collect();
                    q.bind(a.write.report.id.to_string())
                        .bind(now.0)
                        .bind(from.map(|f| f.user.to_string()))
                        .bind(from.and_then(|f| f.session).map(|s| s.to_string()))
                        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
                        .bind(hashes.join(" "))
                })
                .execute(&mut *tx)
                .await
                .context("recording when changes were received")?;
        }
        tx.commit().await.context("committing")?;
        Ok(results.iter().map(Option::is_some).collect())
    }

    /// When the server received each change of report `id` (by hash, hex), if it
    /// recorded it (changes stored before receipts existed have none).
    #[tracing::instrument(name = "db.receipts", skip_all)]
    pub async fn receipts(&self, id: ReportId) -> Result<HashMap<String, Timestamp>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            hashes: String,
            received_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(&self.sql("SELECT hashes, received_at FROM change_receipts WHERE report_id = $1"))
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await,
            "reading when changes were received",
        )?;
        Ok(rows
            .iter()
            .flat_map(|r| {
                let at = Timestamp(r.received_at);
                r.hashes.split_whitespace().map(move |h| (h.to_owned(), at))
            })
            .collect())
    }

    /// Bytes of changes `person` pushed that the server stored since `since`.
    #[tracing::instrument(name = "db.received_bytes_since", skip_all)]
    pub async fn received_bytes_since(&self, person: uuid::Uuid, since: Timestamp) -> Result<i64, DbError> {
        sqlx::query_scalar(&self.sql(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS total FROM change_receipts
             WHERE user_id = $1 AND received_at >= $2",
        ))
        .bind(person.to_string())
        .bind(since.0)
        .fetch_one(&self.pool)
        .await
        .context("reading what a person sent today")
    }

    /// Every stored document id with its heads, for consistency checks.
    #[tracing::instrument(name = "db.all_heads", skip_all)]
    pub async fn all_heads(&self) -> Result<Vec<(ReportId, String)>, DbError> {
        let rows: Vec<IdHeads> = rows_of(
            sqlx::query("SELECT report_id, heads FROM documents ORDER BY report_id")
                .fetch_all(&self.pool)
                .await,
            "listing documents",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.report_id.parse().ok()?, r.heads)))
            .collect())
    }

    /// How many documents are stored, and their total size in bytes.
    #[tracing::instrument(name = "db.document_stats", skip_all)]
    pub async fn document_stats(&self) -> Result<(i64, i64), DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            n: i64,
            bytes: i64,
        }
        let row: Row = row_of(
            sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(LENGTH(doc)), 0) AS BIGINT) AS bytes FROM documents",
            )
            .fetch_one(&self.pool)
            .await,
            "counting documents",
        )?;
        Ok((row.n, row.bytes))
    }

    /// The database's size on disk, in bytes (SQLite: pages in use; PostgreSQL: the
    /// database's relations).
    #[tracing::instrument(name = "db.size_on_disk", skip_all)]
    pub async fn size_on_disk(&self) -> Result<i64, DbError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database()) AS bytes",
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .context("measuring the database")
    }

    /// Writes merged documents: replacing stored ones (`stored_already`), or inserting new
    /// ones unless another writer got there first. Returns how many rows were written.
    pub(super) async fn store_documents(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chunk: &[&Placed],
        now: Timestamp,
        stored_already: bool,
    ) -> Result<u64, DbError> {
        let conflict = if stored_already {
            "DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
               schema_version = excluded.schema_version, change_count = excluded.change_count,
               updated_at = excluded.updated_at, seq = excluded.seq"
        } else {
            "DO NOTHING"
        };
        let sql = self.sql(&format!(
            "INSERT INTO documents (report_id, doc, heads, schema_version, change_count, updated_at, seq)
             VALUES {} ON CONFLICT (report_id) {conflict}",
            values_list(chunk.len(), 7)
        ));
        let done = chunk
            .iter()
            .fold(sqlx::query(&sql), |q, a| {
                let m = &a.write;
                q.bind(m.report.id.to_string())
                    .bind(m.doc.clone())
                    .bind(m.heads.join(" "))
                    .bind(i64::try_from(app::document::SCHEMA_VERSION).unwrap_or(i64::MAX))
                    .bind(i64::try_from(m.change_count).unwrap_or(i64::MAX))
                    .bind(now.0)
                    .bind(a.seq)
            })
            .execute(&mut **tx)
            .await
            .context("storing documents")?;
        Ok(done.rows_affected())
    }
}

/// The first bytes of a zstd frame.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The largest document a stored frame may expand to (far above any valid report).
pub(super) const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// A document as stored: saved without Automerge's per-column DEFLATE and compressed whole
/// with zstd (level 1): smaller and faster to write than Automerge's own compression
/// (`cargo bench -p muster-tests --bench merge` prints both).
pub fn pack(doc: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(doc, 1).unwrap_or_else(|_| doc.to_vec())
}

/// The Automerge bytes of a stored document. Documents stored before compression (plain
/// Automerge bytes) are returned as they are; a damaged frame is too, so loading it fails
/// like any other damaged document and it is quarantined.
pub(crate) fn unpack(stored: Vec<u8>) -> Vec<u8> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return stored;
    }
    match zstd::zstd_safe::get_frame_content_size(&stored) {
        Ok(Some(size)) if size <= MAX_UNPACKED_BYTES => {
            zstd::bulk::decompress(&stored, usize::try_from(size).unwrap_or(0)).unwrap_or(stored)
        }
        _ => stored,
    }
}

#[cfg(test)]
mod tests {
    use app::document::{ReportDoc, actor_from_uuid};

    use super::*;

    const NOW: Timestamp = Timestamp(1_760_000_000_000);

    fn actor(n: u8) -> automerge::ActorId {
        actor_from_uuid(uuid::Uuid::from_u128(u128::from(n)))
    }

    #[test]
    fn unpacking_passes_plain_and_damaged_bytes_through() {
        let mut doc = ReportDoc::create(
            &Report::blank(ReportId::new_v7(NOW, [1; 10]), NOW, "Dana Okafor"),
            actor(1),
            NOW,
        )
        .unwrap();
        let plain = doc.save();
        assert_eq!(unpack(plain.clone()), plain, "stored before compression");
        let packed = pack(&doc.save_uncompressed());
        assert_eq!(unpack(packed.clone()), doc.save_uncompressed());
        let mut damaged = packed.clone();
        damaged.truncate(packed.len() / 2);
        assert_eq!(unpack(damaged.clone()), damaged, "left for the loader to refuse");
    }
}
