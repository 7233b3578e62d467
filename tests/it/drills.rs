//! Drills, through a real server on both databases: drill reports stay out of real records,
//! and a report's kind (real or drill) never changes, whoever writes and however.

use app::domain::access::Role;
use app::domain::drill::{Cadence, Drill, DueState, Happening, Rating, Scenario};
use app::domain::{Category, INJURY_CATEGORY, Impact, Outcome, Report, ReportId, Urgency};
use app::domain::{PlanStep, PlanTick, Timestamp};
use app::drills::DrillDesk as _;
use app::protocol::{Bytes, ErrorCode, ReportPush, SyncError, SyncRequest};
use automerge::transaction::Transactable as _;
use automerge::{ReadDoc as _, ScalarValue};
use muster_tests::{
    Db, Device, T0, TestServer, add_user_with_session, client_with_session, on_both_databases, post_as,
};

const DAY: i64 = 86_400_000;

/// The drill desk as the server's pages use it.
fn drills(server: &TestServer) -> server::drills::Drills {
    server::drills::Drills::new(server.store.clone(), server::clock::system())
}

/// A scenario for `team` of three injects (at 0:30, 1:00 and 2:00) exercising the injury
/// plan, written by `by` through the desk, and a drill of it open from a day before `T0`,
/// due `due_in` after `T0`, quarterly. Returns the drill.
async fn scenario_and_drill(
    server: &TestServer,
    by: &app::domain::access::Viewer,
    team: uuid::Uuid,
    due_in: i64,
) -> (Scenario, Drill) {
    let desk = drills(server);
    let scenario = Scenario {
        id: uuid::Uuid::now_v7(),
        team,
        title: "Fall from the loading dock".into(),
        category: Category::new(INJURY_CATEGORY),
        objectives: vec!["Report within two minutes".into(), "Make the area safe".into()],
        injects: Scenario::parse_injects(
            "0:30 A forklift is still moving in the bay\n1 First aider: the worker cannot feel his legs\n2:00 A visitor walks into the area",
        )
        .unwrap(),
        version: 0,
        updated_at: Timestamp(0),
    };
    desk.save_scenario(by, scenario.clone()).await.unwrap();
    let drill = Drill {
        id: uuid::Uuid::now_v7(),
        scenario: scenario.id,
        team: uuid::Uuid::nil(),
        opens_at: Timestamp(T0.0 - DAY),
        due_at: Timestamp(T0.0 + due_in),
        cadence: Cadence::Quarterly,
        completed_at: None,
    };
    desk.schedule(by, drill.clone()).await.unwrap();
    (scenario, Drill { team, ..drill })
}

/// A drill report filed on `phone` during `drill`, with the plan's first step ticked.
fn file_drill_report(phone: &mut Device, name: &str, drill: uuid::Uuid, title: &str) -> ReportId {
    let at = phone.now();
    let id = ReportId(phone.fresh_uuid());
    let mut report = Report::blank(id, at, name);
    report.title = title.to_owned();
    report.location.place = "Bay 3".into();
    report.category = Category::new(INJURY_CATEGORY);
    report.drill = Some(drill);
    report.plan_ticks = vec![PlanTick::of(
        &PlanStep::new("Whoever reports", "Make the area safe"),
        name,
        phone.user,
        Timestamp(at.0 + 20_000),
    )];
    phone.create_report(&report)
}

on_both_databases!(
    drill_reports_stay_out_of_real_records,
    a_reports_kind_never_changes_for_any_role_or_path,
    a_scenario_reaches_the_team_s_phones_and_two_phones_make_one_run,
    the_review_s_improvement_actions_reach_my_actions,
    drills_are_listed_due_soon_overdue_or_scheduled,
);

const DRILL: uuid::Uuid = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_d111);

/// A report that would be P1 with a legal clock if it were real: a fatality.
fn grave(id: ReportId, title: &str, drill: Option<uuid::Uuid>) -> Report {
    let mut report = Report::blank(id, T0, "ana (test)");
    report.title = title.to_owned();
    report.location.place = "Yard".into();
    report.category = Category::new(INJURY_CATEGORY);
    report.outcome = Outcome::Fatality;
    report.impact = Impact::High;
    report.urgency = Urgency::High;
    report.drill = drill;
    report
}

/// A drill report never reaches the incident list, the CSV export, a supervisor's alerts or
/// the webhook, and no legal clock runs for it; the real report beside it reaches them all.
async fn drill_reports_stay_out_of_real_records(db: Db) {
    let Some(server) = TestServer::start_with(db, |config| {
        config.webhook = Some(server::webhook::WebhookConfig {
            // Nothing listens: deliveries are only queued here.
            url: "http://127.0.0.1:9/hook".to_owned(),
            secret: "a test secret of some length".to_owned(),
            retry_after: std::time::Duration::from_secs(3600),
            max_attempts: 1,
            public_url: None,
        });
    })
    .await
    else {
        return;
    };
    let store = &server.store;
    let team = "Depot";
    let (ana, ana_token, ana_session) = add_user_with_session(store, "ana", Role::Field, &[team]).await;
    let (sam, sam_token, _) = add_user_with_session(store, "sam", Role::Supervisor, &[team]).await;
    let mut phone = Device::new(1);
    phone.sign_in_as(ana, ana_session, &ana_token);
    let real = phone.create_report(&grave(
        ReportId::new_v7(T0, [1; 10]),
        "Real: fall from the dock",
        None,
    ));
    let drill = phone.create_report(&grave(
        ReportId::new_v7(T0, [2; 10]),
        "Drill: fall from the dock",
        Some(DRILL),
    ));
    phone.sync(&server.base).await.unwrap();

    let viewer = store.viewer(sam).await.unwrap().unwrap();
    let listed: Vec<ReportId> = store.list(&viewer).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [real], "the incident list has the real report only");
    let (status, csv) = {
        let response = client_with_session(&sam_token)
            .get(format!("{}/export/incidents.csv", server.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert!(
        csv.contains(&real.to_string()) && !csv.contains(&drill.to_string()),
        "{csv}"
    );
    let alerts: Vec<ReportId> = store
        .notices(sam)
        .await
        .unwrap()
        .iter()
        .map(|n| n.report_id)
        .collect();
    assert_eq!(alerts, [real], "only the real report alerts the supervisor");
    let deliveries: Vec<ReportId> = store
        .deliveries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.report_id)
        .collect();
    assert_eq!(deliveries, [real], "only the real report reaches the webhook");
    let projected = store.projection(drill).await.unwrap().unwrap();
    assert_eq!(projected.kind, "drill");
    assert_eq!(projected.drill_id, Some(DRILL.to_string()));
    assert_eq!(
        projected.report_due_at, None,
        "no legal clock runs for a drill report"
    );
    let projected = store.projection(real).await.unwrap().unwrap();
    assert_eq!(projected.kind, "real");
    assert!(
        projected.report_due_at.is_some(),
        "the real fatality's clock runs"
    );
    // Its reporter still has it on the phone, marked as a drill report.
    assert_eq!(phone.read(drill).drill, Some(DRILL));
}

/// One write to the stored document's `drill` key, as raw Automerge by `by`.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Delete it (a drill report made real).
    Delete,
    /// Put another drill's id.
    Other,
    /// Put one on a real report (a real report made practice).
    Add,
}

async fn push_raw(
    server: &TestServer,
    id: ReportId,
    (by, session, token): (uuid::Uuid, uuid::Uuid, &str),
    tamper: Tamper,
) -> (u16, SyncError) {
    let stored = server.store.load_doc(id).await.unwrap().unwrap();
    let mut doc = automerge::AutoCommit::load(&stored.doc)
        .unwrap()
        .with_actor(app::document::actor_for(by, session, [7; 4]));
    let before = doc.get_heads();
    let (_, report) = doc.get(automerge::ROOT, "report").unwrap().unwrap();
    match tamper {
        Tamper::Delete => doc.delete(&report, "drill").unwrap(),
        Tamper::Other | Tamper::Add => doc
            .put(
                &report,
                "drill",
                ScalarValue::Str(uuid::Uuid::from_u128(42).to_string().into()),
            )
            .unwrap(),
    }
    doc.commit();
    let request = SyncRequest::new(
        uuid::Uuid::from_u128(7),
        vec![ReportPush {
            id,
            heads: doc.get_heads().iter().map(app::document::hash_hex).collect(),
            changes: doc
                .get_changes(&before)
                .iter()
                .map(|c| Bytes(c.raw_bytes().to_vec()))
                .collect(),
            document: None,
        }],
    );
    let (status, body) = post_as(
        &reqwest::Client::new(),
        &server.base,
        Some(token),
        serde_json::to_vec(&request).unwrap(),
    )
    .await
    .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// A drill report cannot be made real nor moved to another drill, and a real report
/// cannot be made a drill report: by its reporter, a supervisor or an administrator, as raw
/// Automerge changes or through the desk. Each is refused by the write policy and stores
/// nothing.
async fn a_reports_kind_never_changes_for_any_role_or_path(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let team = "Depot";
    let (ana, ana_token, ana_session) = add_user_with_session(store, "ana", Role::Field, &[team]).await;
    let (sam, sam_token, sam_session) = add_user_with_session(store, "sam", Role::Supervisor, &[team]).await;
    let (ada, ada_token, ada_session) = add_user_with_session(store, "ada", Role::Admin, &[]).await;
    let mut phone = Device::new(1);
    phone.sign_in_as(ana, ana_session, &ana_token);
    let real = phone.create_report(&grave(ReportId::new_v7(T0, [1; 10]), "Real", None));
    let drill = phone.create_report(&grave(ReportId::new_v7(T0, [2; 10]), "Drill", Some(DRILL)));
    phone.sync(&server.base).await.unwrap();

    let before = server.snapshot().await;
    for writer in [
        (ana, ana_session, ana_token.as_str()),
        (sam, sam_session, sam_token.as_str()),
        (ada, ada_session, ada_token.as_str()),
    ] {
        for (id, tamper) in [
            (drill, Tamper::Delete),
            (drill, Tamper::Other),
            (real, Tamper::Add),
        ] {
            let (status, error) = push_raw(&server, id, writer, tamper).await;
            assert_eq!(
                (status, error.error),
                (422, ErrorCode::RejectedReports),
                "{tamper:?}"
            );
            let reason = &error.rejected[0].reason;
            assert!(reason.contains("writes `report.drill`"), "{tamper:?}: {reason}");
        }
    }
    // Through the desk, as the supervisor: the same gate.
    let desk = server.desk();
    let viewer = store.viewer(sam).await.unwrap().unwrap();
    for (id, kind) in [(drill, None), (real, Some(DRILL))] {
        let base = phone.read(id);
        let mut edited = base.clone();
        edited.drill = kind;
        edited.title.push_str(" (edited)");
        let refused = app::desk::IncidentDesk::edit(&desk, &viewer, base, edited).await;
        assert!(refused.is_err(), "the desk changed a report's kind");
    }
    assert_eq!(server.snapshot().await, before, "nothing stored");
    assert_eq!(store.projection(drill).await.unwrap().unwrap().kind, "drill");
    assert_eq!(store.projection(real).await.unwrap().unwrap().kind, "real");
}

/// A supervisor writes a scenario and schedules it; it reaches the phones of that team
/// only, with sync. Two phones run it offline and sync in turn (one twice): the desk sees
/// one run with both people, times measured from the phones' clocks, the first report, the
/// step ticked and the injects acknowledged. The first end completes the drill and
/// schedules the next one. Events from another team's phone, or out of any window, are
/// refused and stored nowhere.
async fn a_scenario_reaches_the_team_s_phones_and_two_phones_make_one_run(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let (ana, ana_token, ana_session) = add_user_with_session(store, "ana", Role::Field, &["North"]).await;
    let (ben, ben_token, ben_session) = add_user_with_session(store, "ben", Role::Field, &["North"]).await;
    let (cat, cat_token, cat_session) = add_user_with_session(store, "cat", Role::Field, &["South"]).await;
    let (sam, _, _) = add_user_with_session(store, "sam", Role::Supervisor, &["North"]).await;
    let sam = store.viewer(sam).await.unwrap().unwrap();
    let north = sam.home_team().unwrap();
    let mut ana_phone = Device::new(1);
    ana_phone.sign_in_as(ana, ana_session, &ana_token);
    let mut ben_phone = Device::new(2);
    ben_phone.sign_in_as(ben, ben_session, &ben_token);
    let mut cat_phone = Device::new(3);
    cat_phone.sign_in_as(cat, cat_session, &cat_token);

    let before = ana_phone.sync(&server.base).await.unwrap();
    assert_eq!(before.drills.as_deref(), Some(&[][..]), "no drills yet");
    let (scenario, drill) = scenario_and_drill(&server, &sam, north, 30 * DAY).await;
    let answer = ana_phone.sync(&server.base).await.unwrap();
    let brought = answer.drills.expect("the new drill travels");
    assert_eq!(brought.len(), 1);
    assert_eq!(brought[0].scenario.injects, scenario.injects, "with its scenario");
    assert_eq!(brought[0].scenario.version, 1);
    println!(
        "FIGURE bytes a scenario (3 injects, 2 objectives) adds to a phone's sync answer: {}",
        serde_json::to_vec(&brought).unwrap().len()
    );
    let again = ana_phone.sync(&server.base).await.unwrap();
    assert!(again.drills.is_none(), "sent once, until it changes");
    ben_phone.sync(&server.base).await.unwrap();
    cat_phone.sync(&server.base).await.unwrap();
    assert!(
        cat_phone.drills().is_empty(),
        "another team's phone does not get it"
    );

    // Offline, on both phones: Ben starts first and ends; Ana files the report.
    ben_phone.drill_event(drill.id, Happening::Started);
    ana_phone.drill_event(drill.id, Happening::Started);
    ana_phone.drill_event(drill.id, Happening::Acknowledged(0));
    let report = file_drill_report(
        &mut ana_phone,
        "ana (test)",
        drill.id,
        "Drill: worker fell from the dock",
    );
    ben_phone.drill_event(drill.id, Happening::Acknowledged(0));
    ben_phone.drill_event(drill.id, Happening::Acknowledged(1));
    ben_phone.drill_event(drill.id, Happening::Ended);
    // Ana's phone syncs first, then Ben's, then Ana's again: order and repeats do not matter.
    let answer = ana_phone.sync(&server.base).await.unwrap();
    assert!(answer.events_refused.is_empty(), "{:?}", answer.events_refused);
    assert_eq!(ana_phone.drill_events_pending(), 0);
    ben_phone.sync(&server.base).await.unwrap();
    ana_phone.sync(&server.base).await.unwrap();

    let detail = drills(&server)
        .run(&sam, drill.id)
        .await
        .unwrap()
        .expect("the run");
    let run = &detail.run;
    let mut people = run.participants.clone();
    people.sort();
    let mut both = vec![ana, ben];
    both.sort();
    assert_eq!(people, both, "one run, both phones");
    let ben_start = T0.0 + 1_000;
    assert_eq!(run.started_at, Some(Timestamp(ben_start)), "the earliest start");
    let filed = ana_phone.read(report).reported_at;
    assert_eq!(run.first_report_ms, Some(filed.0 - ben_start));
    assert_eq!(run.steps.len(), 1);
    assert_eq!(run.steps[0].after_ms, filed.0 + 20_000 - ben_start);
    let acknowledged: Vec<u16> = run.acknowledged.iter().map(|(i, ..)| *i).collect();
    assert_eq!(acknowledged, [0, 1]);
    assert_eq!(run.acknowledged[0].2.len(), 2, "inject 0 by both");
    assert!(run.duration_ms.is_some());
    assert_eq!(detail.reports.len(), 1);
    assert_eq!(detail.history.len(), 1, "the team's first run");
    assert_eq!(detail.state, DueState::Completed, "ended on a phone: done");
    println!(
        "FIGURE drill run documents: {} events, drill report document {} bytes",
        store.drill_events(drill.id).await.unwrap().len(),
        store.load_doc(report).await.unwrap().unwrap().doc.len()
    );

    // The next drill, due a quarter after the day it was done, reaches the phones.
    ana_phone.sync(&server.base).await.unwrap();
    let next = ana_phone.drills();
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].drill.id, drill.id);
    let done = store
        .drill(drill.id)
        .await
        .unwrap()
        .unwrap()
        .completed_at
        .unwrap();
    assert_eq!(next[0].drill.due_at, done.add_months(3));

    // Another team's phone cannot write into this run; nor can an event from before the
    // window; a repeated event is stored once.
    let before = store.drill_events(drill.id).await.unwrap().len();
    cat_phone.drill_event(drill.id, Happening::Started);
    let answer = cat_phone.sync(&server.base).await.unwrap();
    assert_eq!(answer.events_refused.len(), 1);
    assert!(
        answer.events_refused[0].reason.contains("no such drill"),
        "{:?}",
        answer.events_refused
    );
    assert_eq!(cat_phone.drill_events_pending(), 0, "dropped, with the reason");
    let request = {
        let mut request = ben_phone.request();
        request.drill_events = vec![
            app::domain::DrillEvent {
                id: uuid::Uuid::now_v7(),
                drill: drill.id,
                happening: Happening::Started,
                at: Timestamp(T0.0 - 5 * DAY),
            },
            store.drill_events(drill.id).await.unwrap()[0].event,
        ];
        request
    };
    let (status, body) = post_as(
        &reqwest::Client::new(),
        &server.base,
        Some(&ben_token),
        serde_json::to_vec(&request).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let answer: app::protocol::SyncResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer.events_refused.len(), 1, "the one before the window");
    assert_eq!(
        store.drill_events(drill.id).await.unwrap().len(),
        before,
        "nothing new stored"
    );
}

/// The supervisor rates the objectives and adds an improvement action for a field
/// employee: it is in that person's "My actions" with the drill it came from.
async fn the_review_s_improvement_actions_reach_my_actions(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let (ana, ana_token, ana_session) = add_user_with_session(store, "ana", Role::Field, &["North"]).await;
    let (sam, _, _) = add_user_with_session(store, "sam", Role::Supervisor, &["North"]).await;
    let (other, _, _) = add_user_with_session(store, "sue", Role::Supervisor, &["South"]).await;
    let sam = store.viewer(sam).await.unwrap().unwrap();
    let other = store.viewer(other).await.unwrap().unwrap();
    let (_, drill) = scenario_and_drill(&server, &sam, sam.home_team().unwrap(), 30 * DAY).await;
    let desk = drills(&server);
    let review = app::domain::drill::AfterAction {
        ratings: [Some(Rating::SomeChallenges), Some(Rating::Performed)]
            .into_iter()
            .map(|rating| app::domain::drill::ObjectiveRating {
                objective: String::new(),
                rating,
            })
            .collect(),
        strengths: "Area made safe fast".into(),
        improvements: "Radio check before starting".into(),
        updated_at: None,
    };
    desk.review(&sam, drill.id, review.clone()).await.unwrap();
    assert!(
        desk.review(&other, drill.id, review.clone()).await.is_err(),
        "another team's supervisor cannot"
    );
    let action = app::domain::Action::new(
        uuid::Uuid::now_v7(),
        app::domain::ActionKind::Preventive,
        "Carry a radio on the dock",
        &ana.to_string(),
        Some(Timestamp(T0.0 + 10 * DAY)),
    );
    desk.save_action(&sam, drill.id, action.clone()).await.unwrap();
    let detail = desk.run(&sam, drill.id).await.unwrap().unwrap();
    assert_eq!(detail.review.ratings[0].rating, Some(Rating::SomeChallenges));
    assert_eq!(detail.review.ratings[0].objective, "Report within two minutes");
    assert_eq!(detail.actions, std::slice::from_ref(&action));
    assert!(desk.run(&other, drill.id).await.unwrap().is_none(), "nor read it");

    let mut phone = Device::new(1);
    phone.sign_in_as(ana, ana_session, &ana_token);
    phone.sync(&server.base).await.unwrap();
    let mine = phone.actions().expect("the actions came");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].from, app::protocol::ActionFrom::Drill(drill.id));
    assert_eq!(mine[0].title, "Fall from the loading dock");
    assert_eq!(mine[0].action, action);
    // Done and checked: the list follows.
    let done = app::domain::Action {
        state: app::domain::ActionState::Done,
        check: app::domain::Effectiveness::Effective,
        ..action
    };
    desk.save_action(&sam, drill.id, done.clone()).await.unwrap();
    phone.sync(&server.base).await.unwrap();
    assert_eq!(phone.actions().unwrap()[0].action, done);
}

/// The board lists each drill as overdue, due soon or scheduled by the server's clock, and
/// the team's phones get every drill not yet done.
async fn drills_are_listed_due_soon_overdue_or_scheduled(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let (ana, ana_token, ana_session) = add_user_with_session(store, "ana", Role::Field, &["North"]).await;
    let (sam, _, _) = add_user_with_session(store, "sam", Role::Supervisor, &["North"]).await;
    let sam = store.viewer(sam).await.unwrap().unwrap();
    let (scenario, _overdue) = scenario_and_drill(&server, &sam, sam.home_team().unwrap(), 0).await;
    let now = server::clock::system().now();
    let desk = drills(&server);
    for (opens, due) in [
        (now.0 - DAY, now.0 + 3 * DAY),
        (now.0 + 50 * DAY, now.0 + 60 * DAY),
    ] {
        let drill = Drill {
            id: uuid::Uuid::now_v7(),
            scenario: scenario.id,
            team: uuid::Uuid::nil(),
            opens_at: Timestamp(opens),
            due_at: Timestamp(due),
            cadence: Cadence::Once,
            completed_at: None,
        };
        desk.schedule(&sam, drill).await.unwrap();
    }
    let board = desk.board(&sam).await.unwrap();
    let states: Vec<DueState> = board.drills.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [DueState::Overdue, DueState::DueSoon, DueState::Scheduled]
    );
    let mut phone = Device::new(1);
    phone.sign_in_as(ana, ana_session, &ana_token);
    phone.sync(&server.base).await.unwrap();
    assert_eq!(phone.drills().len(), 3);
    let field = store.viewer(ana).await.unwrap().unwrap();
    assert!(
        matches!(desk.board(&field).await, Err(app::error::AppError::Forbidden(_))),
        "a field employee gets drills on the phone, not the board"
    );
}
