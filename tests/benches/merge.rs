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
            text: format!("Update {k}: checked the beam clips and the load plate; photos taken."),
        });
        doc.edit(&base, &next, now).unwrap();
    }
    let push = ReportPush {
        id: report.id,
        heads: doc.heads().iter().map(hash_hex).collect(),
        changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
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
        merge_push(Some(&saved), &push, now).unwrap();
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
    time("save", &mut || {
        black_box(full.save());
    });
    println!("saved_bytes {}", saved.len());
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
    time("hydrate from AutoCommit", &mut || {
        let _: Report = autosurgeon::hydrate_prop(&ac, automerge::ROOT, "report").unwrap();
    });
    time("hydrate from Automerge", &mut || {
        let _: Report = autosurgeon::hydrate_prop(&am, automerge::ROOT, "report").unwrap();
    });
    time("validate", &mut || {
        report.validate(now).unwrap();
    });
}
