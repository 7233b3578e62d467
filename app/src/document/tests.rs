//! Properties of the document as a whole: what is written reads back, replicas converge
//! and lose no value, merges never lower a judgement, status moves settle by the rule.

use proptest::prelude::*;

use super::fields::display_value;
use super::*;
use crate::domain::{
    ActionKind, Category, GpsFix, Impact, Location, Outcome, Severity, TimelineEntry, Urgency,
};

pub(super) const NOW: Timestamp = Timestamp(1_764_000_000_000);

pub(super) fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('a'), Just('Z'), Just(' '), Just('é'), Just('<'), Just('1')],
        0..max,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn name() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{1,8} [A-Z][a-z]{1,10}"
}

fn arb_report() -> impl Strategy<Value = Report> {
    (
        arb_base_report(),
        proptest::sample::select(Impact::ALL.to_vec()),
        proptest::sample::select(Urgency::ALL.to_vec()),
        proptest::sample::select(Outcome::ALL.to_vec()),
        arb_response(),
        proptest::collection::vec(("[a-z]{1,12}", name(), text(40), 0i64..NOW.0), 0..3),
        (
            arb_injury(),
            proptest::collection::vec(arb_witness(), 0..3),
            proptest::collection::btree_set(any::<u8>(), 0..3),
        ),
    )
        .prop_map(
            |(mut report, impact, urgency, outcome, response, ticks, (injury, witnesses, photos))| {
                report.response = response;
                report.photos = photos.into_iter().map(photo).collect();
                for w in witnesses {
                    if !report.witnesses.contains(&w) {
                        report.witnesses.push(w);
                    }
                }
                for (text, role, by, at) in ticks {
                    let step = crate::domain::PlanStep::new(&role, &text);
                    if report.plan_ticks.iter().all(|t| t.step != step.id) {
                        report.plan_ticks.push(crate::domain::PlanTick::of(
                            &step,
                            &by,
                            uuid::Uuid::from_u128(at.unsigned_abs().into()),
                            Timestamp(at),
                        ));
                    }
                }
                report.impact = impact;
                report.urgency = urgency;
                if report.category.0 == "injury_illness" {
                    report.outcome = outcome;
                    report.injury = injury;
                    if report.injury.treatment == Treatment::HospitalisedOvernight && outcome == Outcome::None
                    {
                        report.injury.treatment = Treatment::EmergencyRoom;
                    }
                    if outcome == Outcome::Fatality {
                        report.injury.died_on = Timestamp(NOW.0 - 86_400_000).date();
                    }
                }
                report
            },
        )
}

fn arb_injury() -> impl Strategy<Value = Injury> {
    (
        proptest::collection::vec(proptest::option::of(text(30)), 7),
        proptest::option::of((0u8..24, 0u8..60)),
        proptest::sample::select(Treatment::ALL.to_vec()),
    )
        .prop_map(|(texts, began, treatment)| {
            let mut injury = Injury {
                treatment,
                ..Injury::default()
            };
            let keys = [
                "employee",
                "job_title",
                "activity",
                "how",
                "injury",
                "body_part",
                "object",
            ];
            for (key, text) in keys.into_iter().zip(texts) {
                if let (Some(text), Some(part)) = (text, injury.text_mut(key)) {
                    *part = text;
                }
            }
            if let Some((h, m)) = began {
                injury.work_began = format!("{h:02}:{m:02}");
            }
            injury
        })
}

fn arb_witness() -> impl Strategy<Value = Witness> {
    (name(), proptest::option::of("[0-9 +]{3,15}"), text(60)).prop_map(|(name, contact, statement)| Witness {
        name,
        contact: contact.unwrap_or_default(),
        statement,
    })
}

fn arb_base_report() -> impl Strategy<Value = Report> {
    let gps = proptest::option::of((-90.0f64..=90.0, -180.0f64..=180.0, 0.0f64..5000.0).prop_map(
        |(latitude, longitude, accuracy_m)| GpsFix {
            latitude,
            longitude,
            accuracy_m,
        },
    ));
    (
        any::<[u8; 10]>(),
        "[A-Za-z][A-Za-z ]{0,40}",
        text(200),
        proptest::sample::select(Category::DEFAULTS.map(|(k, _)| k).to_vec()),
        proptest::sample::select(Severity::ALL.to_vec()),
        proptest::sample::select(Status::ALL.to_vec()),
        0i64..NOW.0,
        (gps, "[A-Za-z0-9][A-Za-z0-9 ,]{0,29}"),
        name(),
        proptest::collection::vec(name(), 0..5),
        text(100),
        proptest::collection::vec(
            (
                any::<u128>(),
                0i64..NOW.0,
                name(),
                "[a-z][a-z .]{0,30}",
                any::<bool>(),
            ),
            0..4,
        ),
    )
        .prop_map(
            |(
                rand,
                title,
                what,
                category,
                severity,
                status,
                occurred,
                (gps, place),
                reporter,
                people,
                actions,
                timeline,
            )| {
                Report {
                    id: ReportId::new_v7(NOW, rand),
                    title,
                    what_happened: what,
                    category: Category::new(category),
                    severity,
                    impact: Impact::Unsure,
                    urgency: Urgency::Unsure,
                    outcome: Outcome::None,
                    occurred_at: Timestamp(occurred),
                    reported_at: NOW,
                    location: Location { gps, place },
                    reporter,
                    people_involved: people,
                    immediate_actions: actions,
                    status,
                    timeline: timeline
                        .into_iter()
                        .map(|(id, at, author, text, shared)| TimelineEntry {
                            id: uuid::Uuid::from_u128(id),
                            at: Timestamp(at),
                            author,
                            author_id: (id % 2 == 0).then(|| uuid::Uuid::from_u128(id ^ 7)),
                            text,
                            audience: if shared {
                                crate::domain::Audience::Reporter
                            } else {
                                crate::domain::Audience::Team
                            },
                        })
                        .collect(),
                    response: Response::default(),
                    plan_ticks: Vec::new(),
                    injury: Injury::default(),
                    witnesses: Vec::new(),
                    photos: Vec::new(),
                    drill: None,
                }
            },
        )
}

fn arb_action() -> impl Strategy<Value = crate::domain::Action> {
    use crate::domain::{Action, ActionKind, ActionState, Effectiveness};
    (
        any::<u128>(),
        proptest::sample::select(ActionKind::ALL.to_vec()),
        "[A-Za-z][A-Za-z ]{0,30}",
        proptest::option::of(any::<u128>()),
        proptest::option::of(0i64..NOW.0),
        proptest::sample::select(ActionState::ALL.to_vec()),
        proptest::sample::select(Effectiveness::ALL.to_vec()),
        text(40),
    )
        .prop_map(|(id, kind, text, owner, due, state, check, note)| Action {
            id: uuid::Uuid::from_u128(id),
            kind,
            text,
            owner: owner
                .map(|o| uuid::Uuid::from_u128(o).to_string())
                .unwrap_or_default(),
            due_at: due.map(Timestamp),
            state,
            // Checked only once done (a domain rule).
            check: if state == ActionState::Done {
                check
            } else {
                Effectiveness::NotChecked
            },
            check_note: note,
        })
}

fn arb_response() -> impl Strategy<Value = Response> {
    (
        proptest::option::of(any::<u128>()),
        proptest::option::of(0i64..NOW.0),
        proptest::collection::vec(text(60), 0..6),
        proptest::collection::vec(name(), 0..4),
        proptest::collection::vec(arb_action(), 0..4),
        proptest::collection::vec(text(60), 8),
    )
        .prop_map(|(assignee, due, whys, factors, mut actions, parts)| {
            actions.sort_by_key(|a| a.id);
            actions.dedup_by_key(|a| a.id);
            let mut review = Review::default();
            for ((key, ..), text) in Review::default().parts().into_iter().zip(parts) {
                *review.part_mut(key).unwrap_or(&mut String::new()) = text;
            }
            Response {
                assignee: assignee
                    .map(|a| uuid::Uuid::from_u128(a).to_string())
                    .unwrap_or_default(),
                due_at: due.map(Timestamp),
                whys,
                factors,
                actions,
                review,
            }
        })
}

proptest! {
    #[test]
    fn read_of_write_is_the_report(report in arb_report()) {
        prop_assert_eq!(report.validate(NOW), Ok(()));
        let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
        prop_assert_eq!(doc.read().unwrap(), report.clone());
        // And after a save/load cycle, and from changes alone.
        let loaded = ReportDoc::load(&doc.save(), actor(2)).unwrap();
        prop_assert_eq!(loaded.read_valid(report.id, NOW).unwrap(), report.clone());
        let mut server = ReportDoc::empty(actor(3));
        prop_assert_eq!(server.apply_changes(&doc.changes_since(&[])).unwrap(), 1);
        prop_assert_eq!(server.read().unwrap(), report);
    }
}

/// One edit a replica may make.
#[derive(Clone, Debug)]
enum Edit {
    Title(String),
    WhatHappened(String),
    Severity(Severity),
    Status(Status),
    Place(String),
    Gps(Option<(f64, f64, f64)>),
    AddPerson(String),
    RemoveFirstPerson,
    AddUpdate(u128, String),
    Assignee(u128),
    AddFactor(String),
    Why(usize, String),
    Lessons(String),
    AddAction(u128, String),
    FirstActionDone,
    FirstActionDue(i64),
    BodyPart(String),
    AddWitness(String, String),
    RestateFirstWitness(String),
    /// One of a few photos, so replicas sometimes add the same one.
    AddPhoto(u8),
}

/// A photo reference named by `n` (its hash is of the byte `n`).
fn photo(n: u8) -> crate::domain::PhotoRef {
    crate::domain::PhotoRef {
        sha256: crate::domain::photo::sha256_hex(&[n]),
        size: 1000 + u64::from(n),
        width: 1600,
        height: 1200,
        at: Timestamp(NOW.0 - i64::from(n)),
    }
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        "[a-z]{1,12}".prop_map(Edit::Title),
        text(40).prop_map(Edit::WhatHappened),
        proptest::sample::select(Severity::ALL.to_vec()).prop_map(Edit::Severity),
        proptest::sample::select(Status::ALL.to_vec()).prop_map(Edit::Status),
        "[a-z]{1,12}".prop_map(Edit::Place),
        proptest::option::of((-90.0f64..90.0, -180.0f64..180.0, 1.0f64..100.0)).prop_map(Edit::Gps),
        name().prop_map(Edit::AddPerson),
        Just(Edit::RemoveFirstPerson),
        (any::<u128>(), "[a-z]{1,20}").prop_map(|(id, text)| Edit::AddUpdate(id, text)),
        (0u128..3).prop_map(Edit::Assignee),
        name().prop_map(Edit::AddFactor),
        (0usize..6, "[a-z]{1,12}").prop_map(|(i, t)| Edit::Why(i, t)),
        text(30).prop_map(Edit::Lessons),
        (any::<u128>(), "[a-z]{1,12}").prop_map(|(id, t)| Edit::AddAction(id, t)),
        Just(Edit::FirstActionDone),
        (0i64..NOW.0).prop_map(Edit::FirstActionDue),
        "[a-z]{1,12}".prop_map(Edit::BodyPart),
        (name(), text(20)).prop_map(|(n, t)| Edit::AddWitness(n, t)),
        text(20).prop_map(Edit::RestateFirstWitness),
        (0u8..4).prop_map(Edit::AddPhoto),
    ]
}

fn apply(report: &mut Report, edit: &Edit) {
    match edit.clone() {
        Edit::Title(t) => report.title = t,
        Edit::WhatHappened(t) => report.what_happened = t,
        Edit::Severity(s) => report.severity = s,
        Edit::Status(s) => report.status = s,
        Edit::Place(p) => report.location.place = p,
        Edit::Gps(g) => {
            report.location.gps = g.map(|(latitude, longitude, accuracy_m)| GpsFix {
                latitude,
                longitude,
                accuracy_m,
            });
        }
        Edit::AddPerson(p) => {
            if !report.people_involved.contains(&p) {
                report.people_involved.push(p);
            }
        }
        Edit::RemoveFirstPerson => {
            if !report.people_involved.is_empty() {
                report.people_involved.remove(0);
            }
        }
        Edit::AddUpdate(id, text) => {
            let id = uuid::Uuid::from_u128(id);
            if report.timeline.iter().all(|e| e.id != id) {
                report.timeline.push(TimelineEntry {
                    id,
                    at: NOW,
                    author: "Sam Lead".into(),
                    author_id: None,
                    text,
                    audience: Default::default(),
                });
            }
        }
        Edit::Assignee(n) => report.response.assignee = uuid::Uuid::from_u128(n).to_string(),
        Edit::AddFactor(f) => {
            if !report.response.factors.contains(&f) {
                report.response.factors.push(f);
            }
        }
        Edit::Why(i, text) => match report.response.whys.get_mut(i) {
            Some(why) => *why = text,
            None => report.response.whys.push(text),
        },
        Edit::Lessons(text) => report.response.review.lessons = text,
        Edit::AddAction(id, text) => {
            let id = uuid::Uuid::from_u128(id);
            if report.response.actions.iter().all(|a| a.id != id) {
                report.response.actions.push(crate::domain::Action::new(
                    id,
                    crate::domain::ActionKind::Preventive,
                    &text,
                    "",
                    None,
                ));
                report.response.actions.sort_by_key(|a| a.id);
            }
        }
        Edit::FirstActionDone => {
            if let Some(a) = report.response.actions.first_mut() {
                a.state = crate::domain::ActionState::Done;
            }
        }
        Edit::FirstActionDue(at) => {
            if let Some(a) = report.response.actions.first_mut() {
                a.due_at = Some(Timestamp(at));
            }
        }
        Edit::BodyPart(part) => report.injury.body_part = part,
        Edit::AddWitness(name, statement) => {
            let witness = Witness {
                name,
                contact: String::new(),
                statement,
            };
            if !report.witnesses.contains(&witness) {
                report.witnesses.push(witness);
            }
        }
        Edit::RestateFirstWitness(statement) => {
            let restated = report.witnesses.first().map(|w| Witness {
                statement,
                ..w.clone()
            });
            // The old entry goes and the new one joins the end (a set keeps no order).
            if let Some(w) = restated
                && !report.witnesses.contains(&w)
            {
                report.witnesses.remove(0);
                report.witnesses.push(w);
            }
        }
        Edit::AddPhoto(n) => {
            let photo = photo(n);
            if report.photos.iter().all(|p| p.sha256 != photo.sha256) {
                report.photos.push(photo);
            }
        }
    }
}

/// Every value a document holds for a field, readable (none if it has no such field).
fn values_of(doc: &ReportDoc, field: &str) -> Vec<String> {
    let Some((obj, key)) = doc.locate(field) else {
        return Vec::new();
    };
    doc.doc
        .get_all(&obj, &key)
        .unwrap()
        .iter()
        .map(|(v, _)| display_value(&key, v))
        .collect()
}

fn field_display(report: &Report, field: &str) -> String {
    // An action path names its action by id.
    let action = field
        .strip_prefix("response.actions.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|id| report.response.actions.iter().find(|a| a.id.to_string() == id));
    match field {
        "response.assignee" => report.response.assignee.clone(),
        "response.review.lessons" => report.response.review.lessons.clone(),
        f if f.ends_with(".state") => action.map_or_else(String::new, |a| a.state.label().to_owned()),
        f if f.ends_with(".due_at") => action
            .and_then(|a| a.due_at)
            .map_or_else(|| "(empty)".to_owned(), Timestamp::display_utc),
        "title" => report.title.clone(),
        "what_happened" => report.what_happened.clone(),
        "severity" => report.severity.label().to_owned(),
        "status" => report.status.label().to_owned(),
        "location.place" => report.location.place.clone(),
        "injury.body_part" => report.injury.body_part.clone(),
        "location.gps" => report
            .location
            .gps
            .map_or_else(|| "(empty)".to_owned(), |g| g.to_string()),
        other => panic!("untracked field {other}"),
    }
}

/// The field path an edit writes, if it writes a single field (`base` names the
/// first action).
fn touched(edit: &Edit, base: &Report) -> Option<String> {
    let first = || {
        base.response
            .actions
            .first()
            .map(|a| format!("response.actions.{}", a.id))
    };
    Some(match edit {
        Edit::Title(_) => "title".into(),
        Edit::WhatHappened(_) => "what_happened".into(),
        Edit::Severity(_) => "severity".into(),
        Edit::Status(_) => "status".into(),
        Edit::Place(_) => "location.place".into(),
        Edit::Gps(_) => "location.gps".into(),
        Edit::Assignee(_) => "response.assignee".into(),
        Edit::Lessons(_) => "response.review.lessons".into(),
        Edit::BodyPart(_) => "injury.body_part".into(),
        // The base's first action (a replica may have added one before it since; its
        // value in the replica's final report is what must be held).
        Edit::FirstActionDone => format!("{}.state", first()?),
        Edit::FirstActionDue(_) => format!("{}.due_at", first()?),
        Edit::AddPerson(_)
        | Edit::RemoveFirstPerson
        | Edit::AddUpdate(..)
        | Edit::AddFactor(_)
        | Edit::Why(..)
        | Edit::AddAction(..)
        | Edit::AddWitness(..)
        | Edit::RestateFirstWitness(_)
        | Edit::AddPhoto(_) => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// Replicas fork one report, edit it concurrently (each edit its own commit), and
    /// merge in arbitrary orders: all end identical, and every replica's last value for
    /// every field it touched is still held by the merged document.
    #[test]
    fn replicas_converge_and_lose_no_value(
        base in arb_report(),
        programs in proptest::collection::vec(proptest::collection::vec(arb_edit(), 1..6), 2..5),
        orders in proptest::collection::vec(any::<proptest::sample::Index>(), 16),
    ) {
        let origin = ReportDoc::create(&base, actor(0), NOW).unwrap();
        let mut replicas = Vec::new();
        let mut finals = Vec::new();
        for (i, program) in programs.iter().enumerate() {
            let mut doc = origin.clone();
            doc.doc.set_actor(actor(u8::try_from(i + 1).unwrap()));
            let mut current = base.clone();
            for edit in program {
                let mut next = current.clone();
                apply(&mut next, edit);
                doc.edit(&current, &next, NOW).unwrap();
                current = next;
            }
            prop_assert_eq!(doc.read().unwrap(), current.clone());
            replicas.push(doc);
            finals.push(current);
        }

        // Each replica merges all the others, in an order drawn for it.
        let n = replicas.len();
        let mut merged = Vec::new();
        for i in 0..n {
            let mut doc = replicas[i].clone();
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            let mut k = 0;
            while !others.is_empty() {
                let pick = orders[(i + k) % orders.len()].index(others.len());
                let j = others.remove(pick);
                doc.merge(&mut replicas[j].clone()).unwrap();
                k += 1;
            }
            merged.push(doc);
        }
        let first_heads = { let mut h = merged[0].heads(); h.sort(); h };
        let first_report = merged[0].read().unwrap();
        let first_conflicts = merged[0].conflicts();
        for doc in &mut merged[1..] {
            let mut h = doc.heads();
            h.sort();
            prop_assert_eq!(&h, &first_heads);
            prop_assert_eq!(&doc.read().unwrap(), &first_report);
            prop_assert_eq!(&doc.conflicts(), &first_conflicts);
        }

        // No value lost: each replica's final value of each field it touched is held.
        let doc = &merged[0];
        // The one-pass reader's conflict flags find exactly the fields that hold
        // several values when every field is asked.
        let every_field = REPORT_SCALARS
            .iter()
            .map(|k| (*k).to_owned())
            .chain(LOCATION_SCALARS.iter().map(|k| format!("location.{k}")))
            .chain(INJURY_SCALARS.iter().map(|k| format!("injury.{k}")))
            .chain(RESPONSE_SCALARS.iter().map(|k| format!("response.{k}")))
            .chain(Review::default().parts().map(|(k, ..)| format!("response.review.{k}")))
            .chain(first_report.response.actions.iter().flat_map(|a| {
                ACTION_SCALARS.iter().map(move |k| format!("response.actions.{}.{k}", a.id))
            }));
        let asked: Vec<FieldConflict> = every_field
            .filter_map(|field| {
                let mut values = values_of(doc, &field);
                values.reverse();
                let agree = values.iter().all(|v| Some(v) == values.first());
                (!agree).then_some(FieldConflict { field, values, by: Vec::new() })
            })
            .collect();
        // Judgements list the gravest first and the status its settled value (see
        // `snapshot`), the rest Automerge's winner.
        let judged_sorted = |conflicts: &[FieldConflict]| -> Vec<FieldConflict> {
            conflicts
                .iter()
                .cloned()
                .map(|mut c| {
                    if ["severity", "impact", "urgency", "outcome", "status"].contains(&c.field.as_str()) {
                        c.values.sort();
                    }
                    c.by.clear();
                    c
                })
                .collect()
        };
        prop_assert_eq!(judged_sorted(&first_conflicts), judged_sorted(&asked));
        for (program, fin) in programs.iter().zip(&finals) {
            for field in program.iter().filter_map(|e| touched(e, &base)) {
                let field = field.as_str();
                let want = field_display(fin, field);
                if want == field_display(&base, field) {
                    continue; // nothing was written, or it was put back
                }
                let held = values_of(doc, field);
                prop_assert!(held.contains(&want), "{field}: {want:?} not in {held:?}");
            }
            // Lists are unions: every person and witness a replica added is present.
            for p in fin.people_involved.iter().filter(|p| !base.people_involved.contains(p)) {
                prop_assert!(first_report.people_involved.contains(p));
            }
            for w in fin.witnesses.iter().filter(|w| !base.witnesses.contains(w)) {
                prop_assert!(first_report.witnesses.contains(w), "witness {w:?} lost");
            }
            // Photos are append-only: every photo any replica added is there once, even
            // when two replicas each made the list with their first photo.
            for p in &fin.photos {
                prop_assert_eq!(
                    first_report.photos.iter().filter(|m| m.sha256 == p.sha256).count(),
                    1,
                    "photo {} lost or doubled",
                    p.sha256
                );
            }
            // The timeline is append-only: every update any replica added is there once.
            for e in &fin.timeline {
                prop_assert_eq!(first_report.timeline.iter().filter(|m| m.id == e.id).count(), 1);
            }
            // Every action any replica added is there once; factors merge as a union.
            for a in &fin.response.actions {
                prop_assert_eq!(first_report.response.actions.iter().filter(|m| m.id == a.id).count(), 1);
            }
            for f in fin.response.factors.iter().filter(|f| !base.response.factors.contains(f)) {
                prop_assert!(first_report.response.factors.contains(f));
            }
        }
    }
}

proptest! {
    /// However two people judge a report at the same time, the merged report carries
    /// the graver judgement of each (in either merge order, whichever actor Automerge
    /// lets win) and shows it first among the concurrent values.
    #[test]
    fn a_merge_never_lowers_a_judgement(
        sa in proptest::sample::select(Severity::ALL.to_vec()),
        sb in proptest::sample::select(Severity::ALL.to_vec()),
        ia in proptest::sample::select(Impact::ALL.to_vec()),
        ib in proptest::sample::select(Impact::ALL.to_vec()),
        ua in proptest::sample::select(Urgency::ALL.to_vec()),
        ub in proptest::sample::select(Urgency::ALL.to_vec()),
        oa in proptest::sample::select(Outcome::ALL.to_vec()),
        ob in proptest::sample::select(Outcome::ALL.to_vec()),
        swap_actors in any::<bool>(),
    ) {
        let mut report = Report::blank(ReportId::new_v7(NOW, [7; 10]), NOW, "Ana");
        report.title = "Fall".into();
        report.location.place = "Mezzanine".into();
        report.category = Category::new("injury_illness");
        report.severity = Severity::Minor;
        report.impact = Impact::Low;
        report.urgency = Urgency::Low;
        let origin = ReportDoc::create(&report, actor(1), NOW).unwrap();
        let (na, nb) = if swap_actors { (3, 2) } else { (2, 3) };
        let mut a = origin.clone();
        a.set_actor(actor(na));
        let mut b = origin.clone();
        b.set_actor(actor(nb));
        let judged = |s, i, u, o| {
            let mut r = report.clone();
            (r.severity, r.impact, r.urgency, r.outcome) = (s, i, u, o);
            r
        };
        a.edit(&report, &judged(sa, ia, ua, oa), NOW).unwrap();
        b.edit(&report, &judged(sb, ib, ub, ob), NOW).unwrap();
        let mut ab = a.clone();
        ab.merge(&mut b.clone()).unwrap();
        let mut ba = b.clone();
        ba.merge(&mut a.clone()).unwrap();
        for merged in [ab, ba] {
            let Snapshot { report: r, conflicts } = merged.snapshot().unwrap();
            prop_assert_eq!(r.severity, sa.max(sb));
            prop_assert_eq!(r.impact.gravity(), ia.gravity().max(ib.gravity()));
            prop_assert_eq!(r.urgency.gravity(), ua.gravity().max(ub.gravity()));
            prop_assert_eq!(r.outcome.gravity(), oa.gravity().max(ob.gravity()));
            prop_assert!(r.priority() <= crate::domain::priority::priority(ia, ua, oa));
            prop_assert!(r.priority() <= crate::domain::priority::priority(ib, ub, ob));
            if let Some(c) = conflicts.iter().find(|c| c.field == "severity") {
                prop_assert_eq!(&c.values[0], r.severity.label());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Two people move an incident through the workflow concurrently (each only by
    /// allowed steps): every replica settles on the workflow's rule for their last
    /// moves (a reopen wins, else the furthest), whatever the merge or actor order.
    #[test]
    fn concurrent_status_moves_settle_by_the_workflow_rule(
        mut base in arb_report(),
        start in proptest::sample::select(Status::ALL.to_vec()),
        walks in proptest::collection::vec(proptest::collection::vec(any::<proptest::sample::Index>(), 1..4), 2),
        swap_actors in any::<bool>(),
    ) {
        base.status = start;
        base.response.review.summary = "s".into();
        base.response.review.lessons = "l".into();
        let origin = ReportDoc::create(&base, actor(0), NOW).unwrap();
        let mut replicas = Vec::new();
        let mut last_moves = Vec::new();
        for (i, walk) in walks.iter().enumerate() {
            let mut doc = origin.clone();
            let n = u8::try_from(i + 1).unwrap();
            doc.set_actor(actor(if swap_actors { 3 - n } else { n }));
            let mut current = base.clone();
            let mut last = None;
            for step in walk {
                let choices: Vec<Status> =
                    current.status.next_choices().into_iter().filter(|s| *s != current.status).collect();
                let to = *step.get(&choices);
                let mut next = current.clone();
                next.status = to;
                doc.edit(&current, &next, NOW).unwrap();
                last = Some((to, Some(current.status)));
                current = next;
            }
            last_moves.extend(last);
            replicas.push(doc);
        }
        let want = Status::settle(&last_moves).unwrap();
        let (mut a, mut b) = (replicas[0].clone(), replicas[1].clone());
        a.merge(&mut replicas[1].clone()).unwrap();
        b.merge(&mut replicas[0].clone()).unwrap();
        for merged in [&a, &b] {
            let snapshot = merged.snapshot().unwrap();
            prop_assert_eq!(snapshot.report.status, want);
            let listed = snapshot.conflicts.iter().find(|c| c.field == "status");
            let distinct = last_moves[0].0 != last_moves[1].0;
            prop_assert_eq!(listed.is_some(), distinct);
            if let Some(c) = listed {
                prop_assert_eq!(&c.values[0], want.label(), "the standing value is listed first");
            }
        }
    }
}

#[test]
fn photos_two_replicas_add_first_are_all_kept_once() {
    let report = Report::blank(ReportId::new_v7(NOW, [9; 10]), NOW, "Ana");
    let origin = ReportDoc::create(&report, actor(1), NOW).unwrap();
    assert!(
        origin
            .object(&origin.object(&ROOT, REPORT_KEY).unwrap(), PHOTOS_KEY)
            .is_err(),
        "a new report without photos has no photos list"
    );
    // Two replicas each add a first photo (each makes a list), one of them the same
    // photo as the other.
    let mut replicas: Vec<ReportDoc> = [[0u8, 1], [1, 2]]
        .iter()
        .zip(2u8..)
        .map(|(photos, n)| {
            let mut doc = origin.clone();
            doc.doc.set_actor(actor(n));
            let mut edited = report.clone();
            edited.photos = photos.iter().map(|&p| photo(p)).collect();
            doc.edit(&report, &edited, NOW).unwrap();
            doc
        })
        .collect();
    let (mut a, mut b) = (replicas.remove(0), replicas.remove(0));
    let (a2, b2) = (a.clone(), b.clone());
    a.doc.merge(&mut b2.doc.clone()).unwrap();
    b.doc.merge(&mut a2.doc.clone()).unwrap();
    let (ra, rb) = (a.read().unwrap(), b.read().unwrap());
    assert_eq!(ra, rb);
    let mut names: Vec<_> = ra.photos.iter().map(|p| p.sha256.clone()).collect();
    names.sort();
    let mut want: Vec<_> = (0..3).map(|n| photo(n).sha256).collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(a.guarded().unwrap().photos.len(), 3);
    // A further photo goes into one of the lists and is read with the rest.
    let mut more = ra.clone();
    more.photos.push(photo(3));
    a.edit(&ra, &more, NOW).unwrap();
    assert_eq!(a.read().unwrap().photos.len(), 4);
}

#[test]
fn a_report_written_whole_again_has_exactly_its_lists() {
    // Lists are written as they stand (`domain::list_as_is`), not diffed: writing a whole
    // report over a document leaves each list as the report has it.
    let mut report = Report::blank(ReportId::new_v7(NOW, [8; 10]), NOW, "Ana");
    report.people_involved = vec!["Ana".into(), "Ben".into(), "Cy".into()];
    report.response.whys = vec!["Wet floor".into(), "Leak".into()];
    report.photos = vec![photo(0), photo(1)];
    let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
    assert_eq!(doc.read().unwrap(), report);
    let mut again = report.clone();
    again.people_involved = vec!["Cy".into()];
    again.response.whys = vec!["Leak".into(), "Worn seal".into(), "No checks".into()];
    again.photos = vec![photo(2)];
    autosurgeon::reconcile_prop(&mut doc.doc, ROOT, REPORT_KEY, &again).unwrap();
    assert_eq!(doc.read().unwrap(), again);
}

#[test]
fn a_document_from_before_prioritisation_reads_as_not_judged() {
    let mut report = Report::blank(ReportId::new_v7(NOW, [6; 10]), NOW, "Ana");
    report.title = "Spill".into();
    report.location.place = "Dock".into();
    report.impact = Impact::Low;
    let mut doc = ReportDoc::create(&report, actor(1), NOW).unwrap();
    let root = doc.object(&ROOT, REPORT_KEY).unwrap();
    for key in ["impact", "urgency", "outcome"] {
        doc.doc.delete(&root, key).unwrap();
    }
    doc.doc.commit();
    let read = doc.read_valid(report.id, NOW).unwrap();
    assert_eq!(
        (read.impact, read.urgency, read.outcome),
        (Impact::Unsure, Urgency::Unsure, Outcome::None)
    );
    assert_eq!(
        read.priority(),
        crate::domain::Priority::P1,
        "not judged counts as high"
    );

    // A stored value that is not one of the keys is a shape error, not a default.
    doc.doc.put(&root, "urgency", "whenever").unwrap();
    assert!(matches!(doc.read(), Err(DocError::Shape(_))));
}

/// A report with every field filled, its response started, and an injury.
pub(super) fn full_report() -> Report {
    let mut r = Report::blank(ReportId::new_v7(NOW, [5; 10]), NOW, "Ana Field");
    r.title = "Hand caught in press".into();
    r.what_happened = "The guard was open.".into();
    r.category = Category::new(crate::domain::INJURY_CATEGORY);
    r.location.place = "Press shop".into();
    r.people_involved = vec!["Ben".into()];
    r.immediate_actions = "First aid".into();
    r.timeline.push(TimelineEntry {
        id: uuid::Uuid::from_u128(1),
        at: NOW,
        author: "Ana".into(),
        author_id: None,
        text: "Ambulance called".into(),
        audience: crate::domain::Audience::Team,
    });
    r.plan_ticks.push(crate::domain::PlanTick::of(
        &crate::domain::PlanStep {
            id: "s1".into(),
            role: "Whoever reports".into(),
            text: "Make the area safe".into(),
        },
        "Ana",
        uuid::Uuid::from_u128(4),
        NOW,
    ));
    r.injury.employee = "Ben Jones".into();
    r.witnesses.push(Witness {
        name: "Cleo".into(),
        contact: String::new(),
        statement: String::new(),
    });
    r.photos.push(photo(1));
    r.response.assignee = "someone".into();
    r.response.due_at = Some(NOW);
    r.response.whys = vec!["Guard open".into()];
    r.response.factors = vec!["Training".into()];
    r.response.actions.push(crate::domain::Action::new(
        uuid::Uuid::from_u128(2),
        ActionKind::Corrective,
        "Fix the guard",
        "",
        None,
    ));
    r.response.review.summary = "Guard left open".into();
    r
}

/// Changes the field `key` of `report` (and nothing else).
pub(super) fn change_field(r: &mut Report, key: &str, now: Timestamp) {
    match key {
        "title" => r.title.push('!'),
        "category" => r.category = Category::new("near_miss"),
        "severity" => r.severity = Severity::Critical,
        "impact" => r.impact = Impact::High,
        "urgency" => r.urgency = Urgency::High,
        "outcome" => r.outcome = Outcome::Fatality,
        "status" => r.status = Status::Triaged,
        "occurred_at" => r.occurred_at = Timestamp(now.0 - 1),
        "location" => r.location.place.push('!'),
        "what_happened" => r.what_happened.push('!'),
        "people_involved" => r.people_involved.push("Dee".into()),
        "immediate_actions" => r.immediate_actions.push('!'),
        "reporter" => r.reporter.push('!'),
        "timeline" => {
            let mut entry = r.timeline[0].clone();
            entry.id = uuid::Uuid::from_u128(3);
            r.timeline.push(entry);
        }
        "reported_at" => r.reported_at = Timestamp(now.0 - 1),
        "assignee" => r.response.assignee.push('!'),
        "due_at" => r.response.due_at = None,
        "whys" => r.response.whys.push("Rushed".into()),
        "factors" => r.response.factors.push("Noise".into()),
        "actions" => r.response.actions[0].text.push('!'),
        "review" => r.response.review.lessons = "Check guards".into(),
        "plan_ticks" => {
            let mut tick = r.plan_ticks[0].clone();
            tick.step = "s2".into();
            r.plan_ticks.push(tick);
        }
        "injury" => r.injury.body_part = "Hand".into(),
        "witnesses" => r.witnesses[0].statement = "Saw it".into(),
        "photos" => r.photos.push(photo(2)),
        "drill" => r.drill = Some(uuid::Uuid::from_u128(77)),
        other => panic!("no edit for {other}"),
    }
}
