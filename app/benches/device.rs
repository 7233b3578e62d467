//! What a phone's sync engine does with 500 reports on the device: an idle sync round (a
//! request with nothing to send and an answer with nothing new, as every timer tick and
//! every return to the page makes), a round with one edited report, and the outbox list.
//! Each is timed reading storage the way the browser does (JSON text, parsed on every
//! read) with and without the engine's in-memory index ([`Indexed`]).
//!
//! `cargo bench -p app --bench device` (REPORTS sets the count). With `DEVICE_DUMP=file`
//! it also writes the device's storage as `localStorage` keys and values (JSON), which
//! `scripts/bench-web` loads into a browser to time the same work there.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use app::document::ReportDoc;
use app::domain::{CategoryDef, Plan, Report, ReportId, TimelineEntry, Timestamp};
use app::protocol::{ActionRow, Notice, ReportAck, SyncResponse};
use app::sync::client::{
    INDEX_KEY, Indexed, Local, Pass, REPORT_KEY_PREFIX, StoreError, StoredReport, outbox, report_key,
};
use automerge::ActorId;

/// Storage as `localStorage` holds it: every value a JSON string, parsed on each read.
#[derive(Debug, Default)]
struct JsonStorage {
    items: HashMap<String, String>,
}

impl JsonStorage {
    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.items.get(key)?).ok()
    }

    fn set<T: serde::Serialize>(&mut self, key: &str, value: &T) {
        self.items
            .insert(key.to_owned(), serde_json::to_string(value).unwrap());
    }
}

impl Local for JsonStorage {
    fn ids(&self) -> Vec<ReportId> {
        self.get(INDEX_KEY).unwrap_or_default()
    }

    fn load(&self, id: ReportId) -> Option<StoredReport> {
        self.get(&report_key(id))
    }

    fn save(&mut self, id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
        self.set(&report_key(id), report);
        let mut ids = self.ids();
        if !ids.contains(&id) {
            ids.push(id);
            self.set(INDEX_KEY, &ids);
        }
        Ok(())
    }

    fn cursor(&self) -> Option<u64> {
        self.get("cursor")
    }

    fn set_cursor(&mut self, cursor: u64) -> Result<(), StoreError> {
        self.set("cursor", &cursor);
        Ok(())
    }

    fn versions(&self) -> (Option<String>, Option<String>) {
        self.get("versions").unwrap_or_default()
    }

    fn set_notices(&mut self, _: &[Notice], version: &str) -> Result<(), StoreError> {
        let (_, lists) = self.versions();
        self.set("versions", &(Some(version), lists));
        Ok(())
    }

    fn set_lists(&mut self, _: &[Plan], _: &[CategoryDef], version: &str) -> Result<(), StoreError> {
        let (notices, _) = self.versions();
        self.set("versions", &(notices, Some(version)));
        Ok(())
    }

    fn actions_seen(&self) -> Option<String> {
        self.get("actions_version")
    }

    fn set_actions(&mut self, actions: &[ActionRow], version: &str) -> Result<(), StoreError> {
        self.set("actions", &actions);
        self.set("actions_version", &version);
        Ok(())
    }

    fn mark_read(&mut self, id: &str) -> Result<(), StoreError> {
        let mut read = self.notices_read();
        read.push(id.to_owned());
        self.set("notices_read", &read);
        Ok(())
    }

    fn notices_read(&self) -> Vec<String> {
        self.get("notices_read").unwrap_or_default()
    }

    fn told_read(&mut self, ids: &[String]) -> Result<(), StoreError> {
        let mut read = self.notices_read();
        read.retain(|id| !ids.contains(id));
        self.set("notices_read", &read);
        Ok(())
    }

    fn drills_seen(&self) -> Option<String> {
        self.get("drills_version")
    }

    fn set_drills(
        &mut self,
        drills: &[app::domain::drill::DrillBrief],
        version: &str,
    ) -> Result<(), StoreError> {
        self.set("drills", &drills);
        self.set("drills_version", &version);
        Ok(())
    }

    fn record_event(&mut self, event: app::domain::DrillEvent) -> Result<(), StoreError> {
        let mut events = self.drill_events();
        events.push(event);
        self.set("drill_events", &events);
        Ok(())
    }

    fn drill_events(&self) -> Vec<app::domain::DrillEvent> {
        self.get("drill_events").unwrap_or_default()
    }

    fn told_events(&mut self, ids: &[uuid::Uuid]) -> Result<(), StoreError> {
        let mut events = self.drill_events();
        events.retain(|e| !ids.contains(&e.id));
        self.set("drill_events", &events);
        Ok(())
    }
}

const NOW: Timestamp = Timestamp(1_764_000_000_000);

/// A device holding `count` synced reports, each with a few timeline entries.
fn device(count: usize) -> (JsonStorage, Vec<ReportId>) {
    let mut storage = JsonStorage::default();
    let mut ids = Vec::new();
    for n in 0..count {
        let at = Timestamp(NOW.0 + n as i64);
        let id = ReportId::new_v7(at, [n as u8; 10]);
        let mut report = Report::blank(id, at, "Dana Okafor");
        report.title = format!("Pallet slipped from racking, aisle {n}");
        report.location.place = "Warehouse B".into();
        report.what_happened = "A pallet slipped from the second beam while being put away.".into();
        let mut doc = ReportDoc::create(&report, ActorId::from([7u8; 16].as_slice()), at).unwrap();
        for k in 0..3u128 {
            let base = doc.read().unwrap();
            let mut next = base.clone();
            next.timeline.push(TimelineEntry {
                id: uuid::Uuid::from_u128(n as u128 * 10 + k + 1),
                at,
                author: "Dana Okafor".into(),
                author_id: None,
                text: format!("Update {k}: checked the beam clips and the load plate."),
                audience: Default::default(),
            });
            doc.edit(&base, &next, at).unwrap();
        }
        let heads: Vec<String> = doc.heads().iter().map(app::document::hash_hex).collect();
        let stored = StoredReport::of(&mut doc, None, Some(&heads)).unwrap();
        storage.save(id, &stored).unwrap();
        ids.push(id);
    }
    (storage, ids)
}

fn empty_answer(cursor: u64, acks: Vec<ReportAck>) -> SyncResponse {
    SyncResponse::new(acks, Vec::new(), cursor, false)
}

/// One idle round: the request (nothing to send) and the answer (nothing new).
fn idle_round(local: &mut impl Local) {
    let mut pass = Pass::new(local);
    let request = pass.request(local, uuid::Uuid::nil());
    assert!(request.reports.is_empty());
    let round = pass.answer(local, Ok(empty_answer(1, Vec::new()))).unwrap();
    assert!(!round.again);
}

/// A round after the person edited report `id`: the request carries its new change; the
/// answer acknowledges it.
fn edited_round(local: &mut impl Local, id: ReportId, n: u128) {
    let stored = local.load(id).unwrap();
    let mut doc = ReportDoc::load(&stored.doc.0, ActorId::from([7u8; 16].as_slice())).unwrap();
    let base = doc.read().unwrap();
    let mut next = base.clone();
    next.immediate_actions = format!("Area closed off ({n}).");
    doc.edit(&base, &next, NOW).unwrap();
    let edited = StoredReport::of(&mut doc, Some(&stored), None).unwrap();
    local.save(id, &edited).unwrap();
    let mut pass = Pass::new(local);
    let request = pass.request(local, uuid::Uuid::nil());
    assert_eq!(request.reports.len(), 1);
    let ack = ReportAck {
        id,
        heads: request.reports[0].heads.clone(),
        changes: Vec::new(),
    };
    let round = pass.answer(local, Ok(empty_answer(1, vec![ack]))).unwrap();
    assert!(!round.again);
}

fn time(runs: u32, mut f: impl FnMut(u32)) -> Duration {
    let start = Instant::now();
    for run in 0..runs {
        f(run);
    }
    start.elapsed() / runs
}

/// What `storage` holds under the browser's keys: the reports and their index, as
/// `localStorage` holds them.
fn as_local_storage(storage: &JsonStorage) -> serde_json::Map<String, serde_json::Value> {
    storage
        .items
        .iter()
        .filter(|(key, _)| *key == INDEX_KEY || key.starts_with(REPORT_KEY_PREFIX))
        .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
        .collect()
}

fn main() {
    let count: usize = std::env::var("REPORTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    if let Ok(path) = std::env::var("DEVICE_DUMP") {
        let (storage, _) = device(count);
        std::fs::write(&path, serde_json::to_vec(&as_local_storage(&storage)).unwrap()).unwrap();
        println!("wrote {count} reports as localStorage to {path}");
    }
    let runs = 20;
    println!("device engine, {count} reports on the device, mean of {runs} runs");
    println!("{:<28} {:>14} {:>14}", "", "re-read", "indexed");

    let (mut plain, ids) = device(count);
    let (storage, _) = device(count);
    let started = Instant::now();
    let mut indexed = Indexed::new(storage);
    let _ = indexed.ids();
    let first_read = started.elapsed();

    let rows: [(&str, Duration, Duration); 3] = [
        (
            "idle sync round",
            time(runs, |_| idle_round(&mut plain)),
            time(runs, |_| idle_round(&mut indexed)),
        ),
        (
            "round with one edit",
            time(runs, |n| {
                edited_round(&mut plain, ids[n as usize % ids.len()], n.into())
            }),
            time(runs, |n| {
                edited_round(&mut indexed, ids[n as usize % ids.len()], n.into())
            }),
        ),
        (
            "outbox list",
            time(runs, |_| {
                black_box(outbox(&plain));
            }),
            time(runs, |_| {
                black_box(outbox(&indexed));
            }),
        ),
    ];
    for (name, before, after) in rows {
        println!("{name:<28} {:>11.2} ms {:>11.2} ms", ms(before), ms(after));
    }
    println!(
        "{:<28} {:>14} {:>11.2} ms",
        "index read (once per start)",
        "",
        ms(first_read)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
