//! Where a server merge spends its time: one W1-style report (creation + 20 timeline
//! entries, each its own change), each step timed over many runs. Prints µs per step.
//!
//! `cargo bench -p muster-tests --bench merge`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use app::document::{ReportDoc, hash_hex};
use app::domain::{Report, ReportId, TimelineEntry, Timestamp};
use app::merge::merge_push;
use app::protocol::{Bytes, ReportPush};
use automerge::ActorId;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runs = 300;
    let now = Timestamp(1_764_000_000_000);
    let mut report = Report::blank(ReportId::new_v7(now, [1; 10]), now, "Dana Okafor");
    report.title = "Pallet slipped from racking".into();
    report.location.place = "Warehouse B".into();
    report.what_happened = "A pallet slipped from the second beam while being put away.".into();
    let mut doc = ReportDoc::create(&report, ActorId::from([9u8; 16].as_slice()), now).unwrap();
    for k in 0..20u128 {
        let base = doc.read().unwrap();
        let mut next = base.clone();
        next.timeline.push(TimelineEntry {
            id: uuid::Uuid::from_u128(k + 1),
            at: now,
            author: "Dana Okafor".into(),
            author_id: None,
            text: format!("Update {k}: checked the beam clips and the load plate; photos taken."),
            audience: Default::default(),
        });
        doc.edit(&base, &next, now).unwrap();
    }
    let push = ReportPush {
        id: report.id,
        heads: doc.heads().iter().map(hash_hex).collect(),
        changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
        document: None,
    };
    let raw: Vec<Vec<u8>> = push.changes.iter().map(|b| b.0.clone()).collect();
    let saved = doc.save();

    let time = |name: &str, f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..runs {
            f();
        }
        println!(
            "{name:<28} {:>8.1} µs",
            started.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
        );
    };
    time("merge_push (new report)", &mut || {
        merge_push(None, &push, now).unwrap();
    });
    time("merge_push (replay)", &mut || {
        merge_push(Some(saved.as_slice()), &push, now).unwrap();
    });
    let edit_push = {
        let mut device = ReportDoc::load(&saved, ActorId::from([9u8; 16].as_slice())).unwrap();
        let base = device.read().unwrap();
        let mut next = base.clone();
        next.title = "Pallet slipped from racking, aisle 3".into();
        let before = device.heads();
        device.edit(&base, &next, now).unwrap();
        ReportPush {
            id: report.id,
            heads: device.heads().iter().map(hash_hex).collect(),
            changes: device.changes_since(&before).into_iter().map(Bytes).collect(),
            document: None,
        }
    };
    time("merge_push (one edit)", &mut || {
        merge_push(Some(saved.as_slice()), &edit_push, now).unwrap();
    });
    time("apply 21 changes to empty", &mut || {
        ReportDoc::empty(ActorId::random()).apply_changes(&raw).unwrap();
    });
    let mut full = ReportDoc::empty(ActorId::random());
    full.apply_changes(&raw).unwrap();
    time("load saved document", &mut || {
        ReportDoc::load(&saved, ActorId::random()).unwrap();
    });
    time("read_valid", &mut || {
        full.read_valid(report.id, now).unwrap();
    });
    time("conflicts", &mut || {
        black_box(full.conflicts());
    });
    time("change_count", &mut || {
        black_box(full.change_count());
    });
    time("heads", &mut || {
        black_box(full.heads());
    });
    time("changes_since(heads)", &mut || {
        let heads = full.heads();
        black_box(full.changes_since(&heads));
    });
    time("actors_since(nothing): a new report's writers", &mut || {
        black_box(full.actors_since(&[]));
    });
    time("actors_since(heads): nothing new", &mut || {
        let heads = full.heads();
        black_box(full.actors_since(&heads));
    });
    time("history(200)", &mut || {
        black_box(full.history(200));
    });
    time("save", &mut || {
        black_box(full.save());
    });
    println!("saved_bytes {}", saved.len());
    let mut raw_doc = automerge::AutoCommit::load(&saved).unwrap();
    time("save_nocompress", &mut || {
        black_box(raw_doc.save_nocompress());
    });
    let uncompressed = raw_doc.save_nocompress();
    println!("saved_nocompress_bytes {}", uncompressed.len());
    time("load unverified", &mut || {
        black_box(automerge::AutoCommit::load_unverified_heads(&saved).unwrap());
    });
    time("load uncompressed unverified", &mut || {
        black_box(automerge::AutoCommit::load_unverified_heads(&uncompressed).unwrap());
    });
    time("load uncompressed", &mut || {
        black_box(automerge::AutoCommit::load(&uncompressed).unwrap());
    });
    for level in [1, 3] {
        let packed = zstd::bulk::compress(&uncompressed, level).unwrap();
        println!("zstd{level}_bytes {}", packed.len());
        time(&format!("zstd{level} compress"), &mut || {
            black_box(zstd::bulk::compress(&uncompressed, level).unwrap());
        });
        time(&format!("zstd{level} decompress"), &mut || {
            black_box(zstd::bulk::decompress(&packed, 1 << 20).unwrap());
        });
    }
    let changes: Vec<automerge::Change> = raw
        .iter()
        .map(|r| automerge::Change::from_bytes(r.clone()).unwrap())
        .collect();
    time("decode 21 changes", &mut || {
        let _: Vec<automerge::Change> = raw
            .iter()
            .map(|r| automerge::Change::from_bytes(r.clone()).unwrap())
            .collect();
    });
    time("Automerge::apply_changes", &mut || {
        let mut d = automerge::Automerge::new();
        d.apply_changes(changes.clone()).unwrap();
    });
    time("AutoCommit::apply_changes", &mut || {
        let mut d = automerge::AutoCommit::new();
        d.apply_changes(changes.clone()).unwrap();
    });
    let joined: Vec<u8> = raw.concat();
    time("Automerge::load(changes)", &mut || {
        automerge::Automerge::load(&joined).unwrap();
    });
    let mut ac = automerge::AutoCommit::new();
    ac.apply_changes(changes.clone()).unwrap();
    let am = ac.document().clone();
    time("automerge hydrate (whole doc)", &mut || {
        black_box(am.hydrate(None));
    });
    {
        let mut bare = ReportDoc::create(&report, ActorId::from([8u8; 16].as_slice()), now).unwrap();
        let bare = automerge::AutoCommit::load(&bare.save()).unwrap();
        time("hydrate, no timeline", &mut || {
            black_box(automerge::ReadDoc::hydrate(&bare, automerge::ROOT, None).unwrap());
        });
    }
    time("stats", &mut || {
        black_box(automerge::ReadDoc::stats(&am));
    });
    time("missing_deps(hashes)", &mut || {
        let hashes: Vec<_> = changes.iter().map(automerge::Change::hash).collect();
        black_box(automerge::ReadDoc::get_missing_deps(&am, &hashes));
    });
    time("validate", &mut || {
        report.validate(now).unwrap();
    });
    // What a loaded document costs in memory: RSS growth over many copies.
    let before = resident_bytes();
    let copies: Vec<ReportDoc> = (0..2_000)
        .map(|_| ReportDoc::load(&saved, ActorId::random()).unwrap())
        .collect();
    let after = resident_bytes();
    println!("loaded_document_bytes {}", (after - before) / copies.len() as u64);
}

/// This process's resident set size, from `/proc/self/statm` (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}
