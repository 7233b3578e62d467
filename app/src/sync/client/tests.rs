//! The engine against a simulated server that merges with the real merge
//! (`crate::merge::merge_push`), through lost, duplicated and refused answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::document::{actor_for, hash_hex};
use crate::protocol::Rejection;

const NOW: Timestamp = Timestamp(1_764_000_000_000);

/// The device's storage in these tests.
type Memory = InMemory;

/// A server that merges pushes with the real merge and keeps one document per report;
/// its feed is every document changed after the cursor (a sequence number per store).
#[derive(Debug, Default)]
struct Server {
    docs: HashMap<ReportId, (Vec<u8>, u64)>,
    seq: u64,
    /// Reports it refuses, with the reason.
    refuse: HashMap<ReportId, String>,
}

impl Server {
    fn exchange(&mut self, request: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let rejected: Vec<Rejection> = (request.reports.iter())
            .filter_map(|p| {
                self.refuse.get(&p.id).map(|r| Rejection {
                    id: p.id,
                    reason: r.clone(),
                })
            })
            .collect();
        if !rejected.is_empty() {
            return Err(SyncError {
                error: ErrorCode::RejectedReports,
                message: "refused".into(),
                rejected,
            });
        }
        let mut acks = Vec::new();
        for push in &request.reports {
            let stored = self.docs.get(&push.id).map(|(d, _)| d.as_slice());
            let merged = crate::merge::merge_push(stored, push, NOW).unwrap();
            if merged.changed {
                self.seq += 1;
                self.docs.insert(push.id, (merged.doc.clone(), self.seq));
            }
            acks.push(merged.ack);
        }
        let since = request.since.unwrap_or(0);
        let feed = (self.docs.iter())
            .filter(|(id, (_, seq))| *seq > since && request.reports.iter().all(|p| p.id != **id))
            .map(|(id, (doc, _))| {
                let mut doc = ReportDoc::load(doc, automerge::ActorId::random()).unwrap();
                ReportAck {
                    id: *id,
                    heads: doc.heads().iter().map(hash_hex).collect(),
                    changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
                }
            })
            .collect();
        Ok(SyncResponse::new(acks, feed, self.seq, false))
    }

    fn heads(&self, id: ReportId) -> Vec<String> {
        let mut doc = ReportDoc::load(&self.docs[&id].0, automerge::ActorId::random()).unwrap();
        doc.heads().iter().map(hash_hex).collect()
    }
}

fn device() -> uuid::Uuid {
    uuid::Uuid::from_u128(1)
}

fn actor() -> automerge::ActorId {
    actor_for(uuid::Uuid::from_u128(2), uuid::Uuid::from_u128(3), [1, 2, 3, 4])
}

/// Files a report on the device, as the form does.
fn file(local: &mut impl Local, n: u8) -> ReportId {
    let mut report = Report::blank(ReportId::new_v7(NOW, [n; 10]), NOW, "Ana");
    report.title = format!("Report {n}");
    report.location.place = "Yard".into();
    let mut doc = ReportDoc::create(&report, actor(), NOW).unwrap();
    let stored = StoredReport::of(&mut doc, None, None).unwrap();
    local.save(report.id, &stored).unwrap();
    report.id
}

/// Edits a report's title on the device, as the form does.
fn retitle(local: &mut impl Local, id: ReportId, title: &str) {
    let previous = local.load(id).unwrap();
    let mut doc = ReportDoc::load(&previous.doc.0, actor()).unwrap();
    let base = doc.read().unwrap();
    let mut edited = base.clone();
    edited.title = title.to_owned();
    doc.edit(&base, &edited, NOW).unwrap();
    let stored = StoredReport::of(&mut doc, Some(&previous), None).unwrap();
    local.save(id, &stored).unwrap();
}

/// Runs passes until the device has nothing to send; returns the exchanges.
fn sync(local: &mut impl Local, server: &mut Server) -> usize {
    let mut pass = Pass::new(local);
    for round in 1..=20 {
        let request = pass.request(local, device());
        let answer = server.exchange(&request);
        if !pass.answer(local, answer).unwrap().again {
            return round;
        }
    }
    panic!("the pass did not settle");
}

#[test]
fn a_new_report_goes_whole_and_is_synced_once_acknowledged() {
    let (mut local, mut server) = (Memory::default(), Server::default());
    let id = file(&mut local, 1);
    let mut pass = Pass::new(&local);
    let request = pass.request(&mut local, device());
    assert_eq!(request.reports.len(), 1);
    assert!(
        request.reports[0].document.is_some(),
        "never acknowledged: the whole document"
    );
    let round = pass.answer(&mut local, server.exchange(&request)).unwrap();
    assert!(!round.again);
    assert_eq!(local.load(id).unwrap().sync, ReportSync::Synced);
    assert!(pending(&local).is_empty());
    assert_eq!(local.cursor, Some(1));
    // Then only changes after what was acknowledged.
    retitle(&mut local, id, "Renamed");
    let request = Pass::new(&local).request(&mut local, device());
    assert!(request.reports[0].document.is_none());
    assert_eq!(request.reports[0].changes.len(), 1);
}

#[test]
fn a_lost_answer_resends_and_a_duplicated_answer_changes_nothing() {
    let (mut local, mut server) = (Memory::default(), Server::default());
    let id = file(&mut local, 1);
    let mut pass = Pass::new(&local);
    let request = pass.request(&mut local, device());
    let answer = server.exchange(&request);
    // Lost: the device stored nothing, so it sends the same again.
    assert_eq!(pending(&local).len(), 1);
    let again = Pass::new(&local).request(&mut local, device());
    assert_eq!(again.reports, request.reports);
    // Duplicated: the second delivery of the same answer leaves the device as the first.
    pass.answer(&mut local, answer.clone()).unwrap();
    let once = local.clone();
    pass.answer(&mut local, answer).unwrap();
    assert_eq!(local, once);
    assert_eq!(local.load(id).unwrap().heads, server.heads(id));
}

#[test]
fn a_refused_report_waits_until_it_changes_and_the_others_go_on() {
    let (mut local, mut server) = (Memory::default(), Server::default());
    let bad = file(&mut local, 1);
    let good = file(&mut local, 2);
    server.refuse.insert(bad, "the title is rude".into());
    assert_eq!(sync(&mut local, &mut server), 2, "refused, then the others again");
    assert_eq!(
        local.load(bad).unwrap().sync,
        ReportSync::Error("the title is rude".into())
    );
    assert_eq!(local.load(good).unwrap().sync, ReportSync::Synced);
    assert!(pending(&local).is_empty(), "not resent as it is");
    // Changed, it goes again (and this time the server takes it).
    server.refuse.clear();
    retitle(&mut local, bad, "Polite");
    assert_eq!(pending(&local).len(), 1);
    sync(&mut local, &mut server);
    assert_eq!(local.load(bad).unwrap().sync, ReportSync::Synced);
    assert_eq!(
        local.load(bad).unwrap().refused_heads,
        None,
        "an acknowledgement clears it"
    );
}

#[test]
fn drill_events_stay_on_the_device_until_an_answer_takes_them() {
    use crate::domain::drill::Happening;
    let (mut local, mut server) = (Memory::default(), Server::default());
    let bad = file(&mut local, 1);
    let event = |n: u128, happening| DrillEvent {
        id: uuid::Uuid::from_u128(n),
        drill: uuid::Uuid::from_u128(9),
        happening,
        at: NOW,
    };
    local.record_event(event(1, Happening::Started)).unwrap();
    // A refused report: the request stored nothing, so the events go again.
    server.refuse.insert(bad, "no".into());
    let mut pass = Pass::new(&local);
    let request = pass.request(&mut local, device());
    assert_eq!(request.drill_events.len(), 1);
    let round = pass.answer(&mut local, server.exchange(&request)).unwrap();
    assert!(round.again);
    assert_eq!(
        local.drill_events().len(),
        1,
        "kept while the request was refused"
    );
    // Recorded while a request is out: kept for the next one.
    let request = pass.request(&mut local, device());
    local.record_event(event(2, Happening::Ended)).unwrap();
    pass.answer(&mut local, server.exchange(&request)).unwrap();
    let left: Vec<uuid::Uuid> = local.drill_events().iter().map(|e| e.id).collect();
    assert_eq!(
        left,
        [uuid::Uuid::from_u128(2)],
        "the one sent is gone, the new one stays"
    );
    sync(&mut local, &mut server);
    assert!(local.drill_events().is_empty());
}

#[test]
fn the_cursor_moves_only_when_the_whole_feed_is_stored() {
    let (mut phone, mut server) = (Memory::default(), Server::default());
    let id = file(&mut phone, 1);
    sync(&mut phone, &mut server);
    retitle(&mut phone, id, "Second");
    sync(&mut phone, &mut server);
    // Another device, holding nothing, is sent only the latest changes of the report
    // (its feed entry lacks the first change): it cannot apply them, keeps its cursor and
    // pulls the report in full.
    let mut other = Memory::default();
    let mut pass = Pass::new(&other);
    let request = pass.request(&mut other, uuid::Uuid::from_u128(9));
    let mut answer = server.exchange(&request).unwrap();
    let mut doc = ReportDoc::load(&server.docs[&id].0, automerge::ActorId::random()).unwrap();
    let first = doc.changes_since(&[]).into_iter().map(Bytes).collect::<Vec<_>>();
    answer.feed[0].changes = first[1..].to_vec();
    let round = pass.answer(&mut other, Ok(answer)).unwrap();
    assert_eq!(other.cursor, None, "not everything up to the cursor is stored");
    assert!(round.again);
    assert_eq!(pass.pulls, [id]);
    let request = pass.request(&mut other, uuid::Uuid::from_u128(9));
    assert_eq!(request.reports[0].changes.len(), 0, "a pull sends no changes");
    pass.answer(&mut other, server.exchange(&request)).unwrap();
    assert_eq!(other.load(id).unwrap().heads, server.heads(id));
    assert_eq!(other.cursor, Some(server.seq));
}

#[test]
fn unavailable_retries_and_a_revoked_session_signs_out() {
    let mut local = Memory::default();
    file(&mut local, 1);
    let error = |code: ErrorCode| SyncError {
        error: code,
        message: "no".into(),
        rejected: Vec::new(),
    };
    let mut pass = Pass::new(&local);
    let stop = pass
        .answer(&mut local, Err(error(ErrorCode::Unavailable)))
        .unwrap_err();
    assert!(stop.retry && !stop.signed_out);
    let stop = pass
        .answer(&mut local, Err(error(ErrorCode::SignedOut)))
        .unwrap_err();
    assert!(!stop.retry && stop.signed_out);
    assert_eq!(pending(&local).len(), 1, "the report stays to be sent");
}

/// What happens to one exchange's answer on the way back.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    Delivered,
    Lost,
    Twice,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever answers are lost or delivered twice, once the network is reliable again
    /// the device and the server hold the same heads for every report, and every change
    /// the device made is on the server.
    #[test]
    fn lost_and_repeated_answers_lose_nothing(
        steps in proptest::collection::vec((0u8..4, 0u8..3, prop_oneof![
            Just(Delivery::Delivered), Just(Delivery::Lost), Just(Delivery::Twice)
        ]), 1..24)
    ) {
        let (mut local, mut server) = (Memory::default(), Server::default());
        let mut ids = Vec::new();
        for (i, (what, which, delivery)) in steps.into_iter().enumerate() {
            match what {
                0 => ids.push(file(&mut local, u8::try_from(i).unwrap())),
                1 if !ids.is_empty() => {
                    let id = ids[usize::from(which) % ids.len()];
                    retitle(&mut local, id, &format!("Edit {i}"));
                }
                _ => {
                    let mut pass = Pass::new(&local);
                    let request = pass.request(&mut local, device());
                    let answer = server.exchange(&request);
                    match delivery {
                        Delivery::Delivered => { pass.answer(&mut local, answer).unwrap(); }
                        Delivery::Lost => {}
                        Delivery::Twice => {
                            pass.answer(&mut local, answer.clone()).unwrap();
                            pass.answer(&mut local, answer).unwrap();
                        }
                    }
                }
            }
        }
        sync(&mut local, &mut server);
        prop_assert!(pending(&local).is_empty());
        for id in &ids {
            let held = local.load(*id).unwrap();
            prop_assert!(same_heads(&held.heads, &server.heads(*id)));
            prop_assert_eq!(&held.sync, &ReportSync::Synced);
        }
    }
}

/// Every report's state as read from the documents themselves.
fn states_read_whole(local: &impl Local) -> Vec<(ReportId, ReportState)> {
    (local.ids().into_iter())
        .filter_map(|id| Some((id, local.load(id)?.state())))
        .collect()
}

fn states(local: &impl Local) -> Vec<(ReportId, ReportState)> {
    let mut all = Vec::new();
    local.each_state(&mut |id, state| all.push((id, state.clone())));
    all
}

#[test]
fn the_index_follows_writes_and_is_read_again_once_forgotten() {
    let mut local = Indexed::new(Memory::default());
    let a = file(&mut local, 1);
    let b = file(&mut local, 2);
    retitle(&mut local, a, "Edited");
    assert_eq!(states(&local), states_read_whole(&local));
    assert_eq!(
        outbox(&local).iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![a, b]
    );
    assert_eq!(outbox(&local)[0].title, "Edited");

    // Another tab writes to the same storage: unseen until the index is forgotten.
    let mut other = local.inner.clone();
    retitle(&mut other, b, "From the other tab");
    local.inner = other;
    assert_eq!(local.state(b).unwrap().summary.title, "Report 2");
    local.forget();
    assert_eq!(local.state(b).unwrap().summary.title, "From the other tab");
    assert_eq!(states(&local), states_read_whole(&local));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A device with the index sends exactly the requests a device reading every document
    /// sends, shows the same outbox, and its index always equals what the documents say.
    #[test]
    fn the_index_changes_nothing_the_device_does(
        steps in proptest::collection::vec((0u8..4, 0u8..3, any::<bool>()), 1..24)
    ) {
        let (mut plain, mut plain_server) = (Memory::default(), Server::default());
        let (mut indexed, mut indexed_server) = (Indexed::new(Memory::default()), Server::default());
        let mut ids = Vec::new();
        for (i, (what, which, delivered)) in steps.into_iter().enumerate() {
            match what {
                0 => {
                    let n = u8::try_from(i).unwrap();
                    ids.push(file(&mut plain, n));
                    file(&mut indexed, n);
                }
                1 if !ids.is_empty() => {
                    let id = ids[usize::from(which) % ids.len()];
                    retitle(&mut plain, id, &format!("Edit {i}"));
                    retitle(&mut indexed, id, &format!("Edit {i}"));
                }
                _ => {
                    let (mut a, mut b) = (Pass::new(&plain), Pass::new(&indexed));
                    let (request_a, request_b) = (a.request(&mut plain, device()), b.request(&mut indexed, device()));
                    prop_assert_eq!(serde_json::to_string(&request_a).unwrap(), serde_json::to_string(&request_b).unwrap());
                    let (answer_a, answer_b) = (plain_server.exchange(&request_a), indexed_server.exchange(&request_b));
                    if delivered {
                        let round_a = a.answer(&mut plain, answer_a).unwrap();
                        let round_b = b.answer(&mut indexed, answer_b).unwrap();
                        prop_assert_eq!(round_a, round_b);
                    }
                }
            }
            prop_assert_eq!(outbox(&plain), outbox(&indexed));
            prop_assert_eq!(states(&indexed), states_read_whole(&indexed));
        }
        sync(&mut indexed, &mut indexed_server);
        prop_assert!(pending(&indexed).is_empty());
    }
}
