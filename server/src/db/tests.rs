//! The store's own tests: documents are stored compressed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use app::document::{ReportDoc, actor_from_uuid, hash_hex};
use app::merge::merge_push;
use app::protocol::{Bytes, ReportPush};

use super::documents::ZSTD_MAGIC;
use super::*;
use crate::sync::{Committer, Job};

const NOW: Timestamp = Timestamp(1_760_000_000_000);

fn actor(n: u8) -> automerge::ActorId {
    actor_from_uuid(uuid::Uuid::from_u128(u128::from(n)))
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("muster.db").display());
    let store = Store::open(&url).await.unwrap();
    (dir, store)
}

/// A new report, stored; returns the device's document.
async fn filed(store: &Store, n: u8) -> ReportDoc {
    let mut report = Report::blank(ReportId::new_v7(NOW, [n; 10]), NOW, "Dana Okafor");
    report.title = format!("Incident {n}");
    report.location.place = "Yard".into();
    let mut doc = ReportDoc::create(&report, actor(n), NOW).unwrap();
    let push = ReportPush {
        id: report.id,
        heads: doc.heads().iter().map(hash_hex).collect(),
        changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
        document: None,
    };
    let job = Job {
        id: report.id,
        merge: Arc::new(move |stored| merge_push(stored, &push, NOW)),
    };
    Committer::new(store.clone())
        .apply(Writer::default(), vec![job], NOW)
        .await
        .unwrap();
    doc
}

#[tokio::test]
async fn documents_are_stored_compressed_and_read_back_whole() {
    let (_dir, store) = store().await;
    let mut doc = filed(&store, 1).await;
    let id = doc.read().unwrap().id;
    let row = sqlx::query(&store.sql("SELECT doc FROM documents WHERE report_id = $1"))
        .bind(id.to_string())
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let raw: Vec<u8> = row.get("doc");
    assert!(raw.starts_with(&ZSTD_MAGIC), "stored as a zstd frame");
    assert!(
        raw.len() < doc.save().len(),
        "smaller than Automerge's own compression"
    );
    let loaded = store.load_docs(&[id]).await.unwrap().remove(&id).unwrap();
    let back = ReportDoc::load(&loaded.doc, actor(9)).unwrap();
    assert_eq!(back.read().unwrap(), doc.read().unwrap());
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
