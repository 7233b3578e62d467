//! The fuzz targets' seed corpus (`fuzz/corpus/`) run through the same decoders on every
//! test run, so the seeds stay valid and the decoders are exercised even where cargo-fuzz
//! is not installed. `MUSTER_WRITE_CORPUS=1` regenerates the seeds from real devices.

use std::path::{Path, PathBuf};

use app::document::{ReportDoc, actor_for, actor_from_uuid};
use app::domain::{Report, Severity};
use app::merge::{
    FUZZ_REPORT, FUZZ_USER, fuzz_one_document, fuzz_one_push, fuzz_one_request, fuzz_pusher, join_changes,
    merge_push_checked, split_changes,
};
use app::protocol::{Bytes, ReportPush, decode_request};
use muster_tests::{Device, T0};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    out
}

/// An actor of the fuzz pusher (each seed's own session tag).
fn fuzz_actor(n: u128) -> automerge::ActorId {
    actor_for(FUZZ_USER, uuid::Uuid::from_u128(n), [0; 4])
}

fn write_seeds() {
    // Sync requests as devices send them: new reports, edits, pulls, a cursor, nothing.
    let mut device = Device::new(9);
    // Under the fuzz pusher's actor, so the fuzzer's merges get past authorship.
    device.sign_in_as(FUZZ_USER, uuid::Uuid::from_u128(9), "fuzz");
    let first = device.create("Forklift clipped racking", "Warehouse B");
    device.edit(first, |r| r.severity = Severity::Major);
    device.add_update(first, "Racking inspected");
    let second = device.create("Oil on walkway", "Yard");
    device.follow(app::domain::ReportId::new_v7(T0, [4; 10]));
    let mut requests = vec![device.request()];
    let mut quiet = device.request();
    quiet.reports.clear();
    quiet.since = Some(42);
    requests.push(quiet);
    let mut one = device.request();
    one.reports.retain(|p| p.id == second);
    requests.push(one);
    for (i, request) in requests.iter().enumerate() {
        std::fs::write(
            corpus("sync_request").join(format!("seed-{i}.json")),
            serde_json::to_vec(request).unwrap(),
        )
        .unwrap();
    }

    // Change histories of the fuzzed report: a creation, then edits on top.
    let mut report = Report::blank(FUZZ_REPORT, T0, "Ana Field");
    report.title = "Ladder with cracked stile".into();
    report.location.place = "Stores".into();
    let mut doc = ReportDoc::create(&report, fuzz_actor(1), T0).unwrap();
    std::fs::write(
        corpus("apply_changes").join("seed-create"),
        join_changes(&doc.changes_since(&[])),
    )
    .unwrap();
    let mut edited = report.clone();
    edited.people_involved.push("Olga Petrova".into());
    edited.timeline.push(app::domain::TimelineEntry {
        id: uuid::Uuid::from_u128(2),
        at: T0,
        author: "Sam Lead".into(),
        author_id: Some(FUZZ_USER),
        text: "Removed from use".into(),
        audience: Default::default(),
    });
    doc.edit(&report, &edited, T0).unwrap();
    std::fs::write(
        corpus("apply_changes").join("seed-edits"),
        join_changes(&doc.changes_since(&[])),
    )
    .unwrap();

    // Whole documents of the fuzzed report, as a device sends a new one.
    std::fs::write(corpus("merge_document").join("seed-edited"), doc.save()).unwrap();
    let fresh = ReportDoc::create(&report, fuzz_actor(3), T0).unwrap();
    std::fs::write(
        corpus("merge_document").join("seed-created"),
        fresh.clone().save(),
    )
    .unwrap();

    // Photos: a real one as a phone makes it, the smallest JPEG the check reads, and a
    // document naming a photo.
    let photo = muster_tests::jpeg(24, 16, 7);
    std::fs::write(corpus("photo_bytes").join("seed-encoded.jpg"), &photo).unwrap();
    let mut header_only = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x18];
    header_only.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
    std::fs::write(corpus("photo_bytes").join("seed-header-only.jpg"), header_only).unwrap();
    let mut photographed = edited.clone();
    photographed
        .photos
        .push(app::domain::PhotoRef::of(&photo, T0).unwrap());
    doc.edit(&edited, &photographed, T0).unwrap();
    std::fs::write(corpus("merge_document").join("seed-photos"), doc.save()).unwrap();
}

/// Whether a seed merges: through the write policy as the fuzz pusher, except documents
/// in shapes older Muster versions stored (`legacy-*`, written by actors of no account),
/// which the server only ever holds, never takes as an upload.
fn merges(name: &str, push: &ReportPush, now: app::domain::Timestamp) -> bool {
    if name.starts_with("legacy-") {
        app::merge::merge_push(None, push, now).is_ok()
    } else {
        merge_push_checked(None, push, now, &fuzz_pusher()).is_ok()
    }
}

#[test]
fn the_seed_corpus_decodes_without_panicking() {
    if std::env::var("MUSTER_WRITE_CORPUS").is_ok() {
        write_seeds();
    }
    let requests = files("sync_request");
    assert!(requests.len() >= 3, "sync_request seeds are committed");
    for (path, bytes) in &requests {
        assert!(
            decode_request(bytes).is_ok(),
            "{} is a valid request",
            path.display()
        );
        fuzz_one_request(bytes);
        // Each report in a seed gets past the gate, so the fuzzer starts from accepted
        // merges.
        let request = decode_request(bytes).unwrap();
        for push in request
            .reports
            .iter()
            .filter(|p| p.document.is_some() || !p.changes.is_empty())
        {
            let merged =
                merge_push_checked(None, push, app::domain::Timestamp(T0.0 + 60_000), &fuzz_pusher());
            assert!(merged.is_ok(), "{}: {merged:?}", path.display());
        }
        // Every truncation of a seed is refused cleanly.
        for cut in 0..bytes.len() {
            assert!(decode_request(&bytes[..cut]).is_err());
        }
    }
    let histories = files("apply_changes");
    assert!(
        histories.len() >= 3,
        "apply_changes seeds and regressions are committed"
    );
    let now = app::domain::Timestamp(T0.0 + 1_000);
    for (path, bytes) in &histories {
        fuzz_one_push(bytes);
        let push = ReportPush {
            id: FUZZ_REPORT,
            heads: vec![],
            changes: split_changes(bytes).into_iter().map(Bytes).collect(),
            document: None,
        };
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("regression-") {
            // Inputs that once made Automerge panic: refused with a reason, never a crash.
            let refused = merge_push_checked(None, &push, now, &fuzz_pusher()).unwrap_err();
            assert!(
                matches!(refused, app::merge::MergeError::Refused(_)),
                "{name}: {refused}"
            );
            continue;
        }
        assert!(merges(&name, &push, now), "{} merges", path.display());
        // Flipping any single byte never panics, and is refused or still a valid report.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0xa5;
            fuzz_one_push(&bad);
        }
    }

    let photos = files("photo_bytes");
    assert!(photos.len() >= 2, "photo_bytes seeds are committed");
    for (path, bytes) in &photos {
        let named = app::domain::PhotoRef::of(bytes, T0)
            .unwrap_or_else(|e| panic!("{} is a photo: {e}", path.display()));
        assert_eq!(app::domain::photo::verify(bytes, &named), Ok(()));
        // Every truncation and every flipped byte is refused or still within the limits.
        let within = |b: &[u8]| {
            app::domain::photo::inspect(b).map_or(true, |(w, h)| {
                (1..=app::domain::photo::MAX_SIDE).contains(&w)
                    && (1..=app::domain::photo::MAX_SIDE).contains(&h)
            })
        };
        for cut in 0..bytes.len() {
            assert!(
                app::domain::photo::inspect(&bytes[..cut]).is_err(),
                "a cut photo is not whole"
            );
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0xa5;
            assert!(within(&bad));
        }
    }

    let documents = files("merge_document");
    assert!(documents.len() >= 2, "merge_document seeds are committed");
    for (path, bytes) in &documents {
        fuzz_one_document(bytes);
        let doc = ReportDoc::load(bytes, actor_from_uuid(uuid::Uuid::from_u128(4))).unwrap();
        let push = ReportPush {
            id: FUZZ_REPORT,
            heads: doc.clone().heads().iter().map(app::document::hash_hex).collect(),
            changes: vec![],
            document: Some(Bytes(bytes.clone())),
        };
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(merges(&name, &push, now), "{} merges", path.display());
        // Every truncation and every flipped byte never panics, and is refused or still
        // a valid report.
        for cut in 0..bytes.len() {
            fuzz_one_document(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0xa5;
            fuzz_one_document(&bad);
        }
    }
}
