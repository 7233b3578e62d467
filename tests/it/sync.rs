//! Sync over real HTTP against a real server, each test on a fresh SQLite database and
//! on a fresh PostgreSQL database.

use app::desk::IncidentDesk;
use app::domain::{Severity, Status};
use app::protocol::{Bytes, ErrorCode, PROTOCOL_VERSION, ReportPush, SyncRequest};
use muster_tests::{Db, Device, TESTER_LOGIN, TestServer, on_both_databases, viewer_of};
use server::db::Projection;

on_both_databases!(
    two_offline_devices_converge_and_the_projection_matches,
    concurrent_edits_of_one_field_are_all_kept_and_shown,
    the_same_request_twice_changes_nothing_the_second_time,
    a_supervisor_edit_flows_back_to_the_device,
    hostile_requests_get_clear_errors_and_change_nothing,
    a_report_that_breaks_the_rules_is_refused_with_the_rule,
    health_and_pages_answer,
    demo_mode_seeds_a_dozen_incidents_once,
    reports_with_and_without_a_position_are_stored_in_any_order,
    priority_and_the_regulatory_clock_reach_the_incident_list,
    a_response_from_triage_to_review_reaches_the_reporter_and_only_supervisors_write_it,
    p1_and_p2_notify_the_team_supervisors_and_a_signed_webhook_is_retried_until_delivered,
    response_plans_reach_signed_in_devices_and_ticked_steps_are_kept_in_the_report,
    categories_an_administrator_changes_reach_devices_and_the_desk,
);

/// Response plans: what an administrator saves is what `GET /api/plans` gives a signed-in
/// device (and nobody else); steps a reporter ticks are merged into the report with their
/// times, each step once, and the desk shows them.
async fn response_plans_reach_signed_in_devices_and_ticked_steps_are_kept_in_the_report(db: Db) {
    use app::domain::{Plan, PlanTick, Timestamp};
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let steps =
        Plan::parse_steps("Whoever reports: Make the area safe\nFirst aider: Treat the injured").unwrap();
    server
        .store
        .set_plan("injury_illness", &steps, uuid::Uuid::nil(), muster_tests::T0)
        .await
        .unwrap();
    let (status, body) = server.get("/api/plans").await;
    assert_eq!(status, 200);
    let plans: Vec<Plan> = serde_json::from_str(&body).unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].category.0, "injury_illness");
    assert_eq!(plans[0].steps, steps);
    let anonymous = reqwest::get(format!("{}/api/plans", server.base)).await.unwrap();
    assert_eq!(anonymous.status(), 401, "plans are for signed-in devices");
    // Sync brings them to a device once, then only when they change.
    let mut other = Device::new(6);
    assert_eq!(other.sync(&server.base).await.unwrap().plans, Some(plans.clone()));
    assert_eq!(other.sync(&server.base).await.unwrap().plans, None);
    let more = Plan::parse_steps("Whoever reports: Stop the leak").unwrap();
    server
        .store
        .set_plan(
            "environmental_release",
            &more,
            uuid::Uuid::nil(),
            muster_tests::T0,
        )
        .await
        .unwrap();
    assert_eq!(
        other.sync(&server.base).await.unwrap().plans.map(|p| p.len()),
        Some(2)
    );

    // The reporter ticks the first step, then (later, again offline) the second, and
    // ticks the first again by mistake: each step is kept once, with its first time.
    let mut phone = Device::new(5);
    let id = phone.create("Cut hand on sheet metal", "Press shop");
    let tess = phone.user;
    phone.edit(id, |r| {
        r.category = app::domain::Category::new("injury_illness");
        r.plan_ticks.push(PlanTick::of(
            &steps[0],
            "Tess Tester",
            tess,
            Timestamp(muster_tests::T0.0 + 1_000),
        ));
    });
    phone.sync(&server.base).await.unwrap();
    phone.edit(id, |r| {
        r.plan_ticks.push(PlanTick::of(
            &steps[1],
            "Tess Tester",
            tess,
            Timestamp(muster_tests::T0.0 + 2_000),
        ));
    });
    phone.edit(id, |r| {
        r.plan_ticks.push(PlanTick::of(
            &steps[0],
            "Tess Tester",
            tess,
            Timestamp(muster_tests::T0.0 + 3_000),
        ));
    });
    phone.sync(&server.base).await.unwrap();
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let report = desk.detail(&tester, id).await.unwrap().unwrap().report;
    let kept: Vec<(&str, i64)> = report
        .plan_ticks
        .iter()
        .map(|t| (t.text.as_str(), t.at.0 - muster_tests::T0.0))
        .collect();
    assert_eq!(
        kept,
        [("Make the area safe", 1_000), ("Treat the injured", 2_000)]
    );
    assert_eq!(report.plan_ticks[1].role, "First aider");
}

/// Categories: the nine seeded ones reach a device with its first sync; an added one and
/// a retired one reach it with the next sync (and only then), and the desk lists reports
/// under the administrators' labels. A report in a category the server does not know
/// (a device's list can be older) is still kept.
async fn categories_an_administrator_changes_reach_devices_and_the_desk(db: Db) {
    use app::domain::{Category, CategoryDef};
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut device = Device::new(7);
    let first = device.sync(&server.base).await.unwrap().categories.unwrap();
    assert_eq!(first, CategoryDef::defaults());
    assert_eq!(device.sync(&server.base).await.unwrap().categories, None);

    let added = CategoryDef {
        key: Category::key_for("Chemical spill").unwrap(),
        label: "Chemical spill".to_owned(),
        active: true,
    };
    server
        .store
        .save_category(&added, muster_tests::T0)
        .await
        .unwrap();
    let retired = CategoryDef {
        key: Category::new("vehicle"),
        label: "Vehicles and mobile plant".to_owned(),
        active: false,
    };
    server
        .store
        .save_category(&retired, muster_tests::T0)
        .await
        .unwrap();
    let next = device.sync(&server.base).await.unwrap().categories.unwrap();
    assert_eq!(next.len(), 10);
    assert_eq!(next.last(), Some(&added), "a new category is listed last");
    assert!(next.contains(&retired));
    assert_eq!(device.sync(&server.base).await.unwrap().categories, None);

    let spill = device.create("Solvent on the floor", "Paint shop");
    device.edit(spill, |r| r.category = added.key.clone());
    let van = device.create("Van reversed into bollard", "Yard");
    device.edit(van, |r| r.category = retired.key.clone());
    let odd = device.create("Something new", "Gate");
    device.edit(odd, |r| r.category = Category::new("from_an_older_list"));
    device.sync_all(&server.base).await.unwrap();
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let rows = desk.list(&tester).await.unwrap();
    let label = |id| rows.iter().find(|r| r.id == id).map(|r| r.category_label.clone());
    assert_eq!(label(spill).as_deref(), Some("Chemical spill"));
    assert_eq!(label(van).as_deref(), Some("Vehicles and mobile plant"));
    assert_eq!(label(odd).as_deref(), Some("from an older list"));
    let detail = desk.detail(&tester, van).await.unwrap().unwrap();
    assert_eq!(detail.category_label, "Vehicles and mobile plant");
}

/// What a webhook receiver on 127.0.0.1 got: (signature header, delivery header, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on 127.0.0.1 that answers 500 to the first request and 200 after.
async fn receiver() -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Received = Received::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut seen = seen.lock().unwrap();
                seen.push((header("muster-signature"), header("muster-delivery"), body));
                if seen.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Escalation: a report reaching P2, then P1, notifies its team's supervisors once per
/// level (in the sync answer of their devices, not of others), and the webhook receives
/// each escalation signed, retried after a failure, with the same body and delivery id,
/// and the delivery log says so.
async fn p1_and_p2_notify_the_team_supervisors_and_a_signed_webhook_is_retried_until_delivered(db: Db) {
    use app::domain::access::Role;
    use app::domain::{Impact, Urgency};
    use hmac::{KeyInit, Mac};
    const SECRET: &str = "a test secret of some length";
    let (url, received) = receiver().await;
    let Some(server) = TestServer::start_with(db, |config| {
        config.webhook = Some(server::webhook::WebhookConfig {
            url,
            secret: SECRET.to_owned(),
            retry_after: std::time::Duration::from_millis(100),
            max_attempts: 5,
            public_url: Some("https://muster.example.org".to_owned()),
        });
    })
    .await
    else {
        return;
    };
    let store = &server.store;
    let (field, field_token, field_session) =
        muster_tests::add_user_with_session(store, "fn", Role::Field, &["North"]).await;
    let (north_lead, north_token, north_session) =
        muster_tests::add_user_with_session(store, "ns", Role::Supervisor, &["North"]).await;
    let (south_lead, _, _) =
        muster_tests::add_user_with_session(store, "ss", Role::Supervisor, &["South"]).await;
    let mut phone = Device::new(3);
    phone.sign_in_as(field, field_session, &field_token);
    let mut report = app::domain::Report::blank(
        app::domain::ReportId::new_v7(muster_tests::T0, [3; 10]),
        muster_tests::T0,
        "fn (test)",
    );
    report.title = "Loose guard on conveyor".into();
    report.location.place = "Line 4".into();
    report.impact = Impact::Low;
    report.urgency = Urgency::Low;
    let id = phone.create_report(&report);
    phone.sync(&server.base).await.unwrap();
    assert!(
        store.notices(north_lead).await.unwrap().is_empty(),
        "P5: nobody is told"
    );

    // Raised to P2 (high impact, medium urgency): the North supervisor is told, once.
    phone.edit(id, |r| {
        r.impact = Impact::High;
        r.urgency = Urgency::Medium;
    });
    phone.sync(&server.base).await.unwrap();
    phone.edit(id, |r| r.what_happened = "The guard's bolts are missing".into());
    phone.sync(&server.base).await.unwrap();
    let told = store.notices(north_lead).await.unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0].report_id, told[0].priority),
        (id, app::domain::Priority::P2)
    );
    assert_eq!(told[0].title, "Loose guard on conveyor");
    assert!(
        store.notices(south_lead).await.unwrap().is_empty(),
        "another team's supervisor is not"
    );
    assert!(
        store.notices(field).await.unwrap().is_empty(),
        "nor the field employee"
    );

    // The webhook: refused once, then delivered; the same signed body both times.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while received.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook was not retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(got[0].2, got[1].2, "a retry sends the same body");
    assert_eq!(got[0].1, format!("{id}:2"));
    assert_eq!(got[1].1, got[0].1, "and the same delivery id");
    for (signature, _, body) in &got {
        let (t, v1) = signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
            .unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        mac.verify_slice(&hex::decode(v1).unwrap())
            .expect("a valid signature");
    }
    let body: serde_json::Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(body["event"], "incident.escalated");
    assert_eq!(body["priority"], "P2");
    assert_eq!(body["title"], "Loose guard on conveyor");
    assert_eq!(body["link"], format!("https://muster.example.org/incidents/{id}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let log = loop {
        let log = store.deliveries(10).await.unwrap();
        if log.first().is_some_and(|d| d.delivered_at.is_some()) {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery was not logged: {log:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempts, log[0].last_status), (2, Some(200)));

    // Raised to P1: told again; the supervisor's device gets both, then marks one read.
    phone.edit(id, |r| r.urgency = Urgency::High);
    phone.sync(&server.base).await.unwrap();
    let mut lead_device = Device::new(4);
    lead_device.sign_in_as(north_lead, north_session, &north_token);
    let answer = lead_device.sync(&server.base).await.unwrap();
    let notices = answer.notices.expect("a first sync brings the list");
    let priorities: Vec<_> = notices.iter().map(|n| n.priority.as_str()).collect();
    assert_eq!(priorities, ["P1", "P2"], "newest first");
    assert_eq!(
        lead_device.sync(&server.base).await.unwrap().notices,
        None,
        "an unchanged list is not sent again"
    );
    assert!(
        phone.sync(&server.base).await.unwrap().notices.is_none(),
        "field devices get none"
    );
    // Marked read on the device, offline: off its list at once, told with the next sync,
    // after which the server lists it to nobody's device.
    lead_device.mark_read(&notices[0].id);
    assert_eq!(lead_device.notices().len(), 1, "off the list at once");
    assert_eq!(lead_device.request().notices_read, [notices[0].id.clone()]);
    let left = lead_device
        .sync(&server.base)
        .await
        .unwrap()
        .notices
        .expect("the list changed");
    assert_eq!(left, notices[1..], "the server took the mark");
    assert_eq!(store.notices(north_lead).await.unwrap(), notices[1..]);
    assert!(lead_device.request().notices_read.is_empty(), "told once");
    // Someone else's notification cannot be marked read by sending its id.
    phone.mark_read(&notices[1].id);
    phone.sync(&server.base).await.unwrap();
    assert_eq!(store.notices(north_lead).await.unwrap(), notices[1..]);

    // The supervisor moves to the South site: the North report's alert is no longer
    // listed to them (they may no longer read it), on the next sync.
    store
        .set_role_and_teams(
            north_lead,
            Role::Supervisor,
            &["South".to_owned()],
            muster_tests::T0,
        )
        .await
        .unwrap();
    assert_eq!(
        lead_device.sync(&server.base).await.unwrap().notices,
        Some(vec![]),
        "an alert is listed only while its report may be read"
    );
}

/// The whole response over the desk: assignment, a "5 whys" chain, an action in its
/// owner's list (overdue), the review gate, the review's lessons on the reporter's device;
/// a field employee's device cannot write any of it, and its own edits leave it alone.
async fn a_response_from_triage_to_review_reaches_the_reporter_and_only_supervisors_write_it(db: Db) {
    use app::desk::NewAction;
    use app::domain::access::Role;
    use app::domain::{ActionKind, ActionState, Effectiveness, Timestamp};
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let (field_id, field_token, field_session) =
        muster_tests::add_user_with_session(&server.store, "fe", Role::Field, &["Yard team"]).await;
    let (lead_id, lead_token, lead_session) =
        muster_tests::add_user_with_session(&server.store, "lead", Role::Supervisor, &["Yard team"]).await;
    let (other_id, _) = muster_tests::add_user(&server.store, "far", Role::Supervisor, &["Far team"]).await;
    let mut phone = Device::new(7);
    phone.sign_in_as(field_id, field_session, &field_token);
    let mut lead_phone = Device::new(8);
    lead_phone.sign_in_as(lead_id, lead_session, &lead_token);
    assert_eq!(
        lead_phone.sync(&server.base).await.unwrap().actions,
        Some(vec![]),
        "the first sync brings the (empty) list of the person's actions"
    );
    let mut filed = app::domain::Report::blank(
        app::domain::ReportId::new_v7(muster_tests::T0, [7; 10]),
        muster_tests::T0,
        "fe (test)",
    );
    filed.title = "Pallet fell from top shelf".into();
    filed.location.place = "Yard racking".into();
    let id = phone.create_report(&filed);
    phone.sync(&server.base).await.unwrap();

    let desk = server.desk();
    let lead = viewer_of(&server.store, "lead").await;
    let detail = desk.detail(&lead, id).await.unwrap().unwrap();
    let team: Vec<String> = detail.people.iter().map(|p| p.id.clone()).collect();
    assert!(team.contains(&field_id.to_string()) && team.contains(&lead_id.to_string()));
    assert!(
        !team.contains(&other_id.to_string()),
        "people of another team are not offered"
    );

    // Triage: assigned, due; then the investigation.
    let base = detail.report;
    let mut next = base.clone();
    next.status = Status::Triaged;
    next.response.assignee = lead_id.to_string();
    next.response.due_at = Timestamp::end_of_day("2030-01-31");
    desk.edit(&lead, base.clone(), next.clone()).await.unwrap();
    let mut investigating = next.clone();
    investigating.status = Status::Investigating;
    investigating.response.whys = vec!["The pallet fell".into(), "It was stacked above the line".into()];
    investigating.response.factors = vec!["Night shift".into()];
    desk.edit(&lead, next, investigating.clone()).await.unwrap();

    // An action for the lead, due in the past: in their list on their phone, overdue; not
    // in anyone else's.
    desk.add_action(
        &lead,
        id,
        NewAction {
            kind: ActionKind::Corrective,
            text: "Repaint the stacking line".into(),
            owner: lead_id.to_string(),
            due_at: Timestamp::end_of_day("2020-01-01"),
        },
    )
    .await
    .unwrap();
    let mine = lead_phone
        .sync(&server.base)
        .await
        .unwrap()
        .actions
        .expect("the list changed");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].from, app::protocol::ActionFrom::Report(id));
    assert_eq!(mine[0].title, "Pallet fell from top shelf");
    assert!(mine[0].action.is_overdue(muster_tests::T0));
    assert_eq!(lead_phone.actions(), Some(mine.as_slice()), "kept on the phone");
    assert_eq!(
        lead_phone.sync(&server.base).await.unwrap().actions,
        None,
        "an unchanged list is not sent again"
    );
    let theirs = phone.sync(&server.base).await.unwrap().actions;
    assert!(theirs.as_ref().is_none_or(Vec::is_empty), "{theirs:?}");

    // Done and checked: no longer overdue.
    let current = desk.detail(&lead, id).await.unwrap().unwrap().report;
    let mut done = current.clone();
    done.response.actions[0].state = ActionState::Done;
    done.response.actions[0].check = Effectiveness::Effective;
    done.status = Status::Resolved;
    desk.edit(&lead, current, done.clone()).await.unwrap();
    let mine = lead_phone
        .sync(&server.base)
        .await
        .unwrap()
        .actions
        .expect("the list changed");
    assert_eq!(mine[0].action.state, ActionState::Done);
    assert!(!mine[0].action.is_overdue(muster_tests::T0));

    // Reviewed needs the summary and lessons.
    let mut reviewed = done.clone();
    reviewed.status = Status::Reviewed;
    let refused = desk
        .edit(&lead, done.clone(), reviewed.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, app::error::AppError::Invalid { message, .. } if message.contains("lessons")),
        "{refused:?}"
    );
    reviewed.response.review.summary = "A pallet stacked too high fell.".into();
    reviewed.response.review.lessons = "Never stack above the painted line.".into();
    desk.edit(&lead, done, reviewed).await.unwrap();

    // The reporter's phone gets the outcome and the lessons on its next sync.
    phone.sync(&server.base).await.unwrap();
    let on_phone = phone.read(id);
    assert_eq!(on_phone.status, Status::Reviewed);
    assert_eq!(
        on_phone.response.review.lessons,
        "Never stack above the painted line."
    );
    assert_eq!(
        on_phone.response.root_cause(),
        Some("It was stacked above the line")
    );

    // The field employee cannot rewrite the review from their device: refused, nothing stored.
    phone.edit(id, |r| r.response.review.lessons = "Nothing to learn".into());
    let before = server.snapshot().await;
    let error = phone.sync(&server.base).await.unwrap_err();
    assert_eq!(error.error, ErrorCode::RejectedReports);
    let reason = &error.rejected[0].reason;
    assert!(
        reason.contains("writes `report.response.review.lessons`") && reason.contains("Field employees"),
        "{error:?}"
    );
    assert_eq!(server.snapshot().await, before);
}

async fn priority_and_the_regulatory_clock_reach_the_incident_list(db: Db) {
    use app::domain::{Impact, Outcome, Priority, Urgency};
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let injury = a.create("Hand caught in press", "Press line 2");
    a.edit(injury, |r| {
        r.category = app::domain::Category::new("injury_illness");
        r.impact = Impact::Low;
        r.urgency = Urgency::Low;
        r.outcome = Outcome::Hospitalised;
    });
    let spill = a.create("Oil drip under forklift", "Bay 3");
    a.edit(spill, |r| {
        r.impact = Impact::Medium;
        r.urgency = Urgency::Low;
    });
    a.sync(&server.base).await.unwrap();

    let occurred = a.read(injury).occurred_at;
    let injured = server.store.projection(injury).await.unwrap().unwrap();
    assert_eq!(
        injured.priority_rank, 1,
        "a hospitalisation is P1 whatever the matrix says"
    );
    assert_eq!(injured.report_due_at, Some(occurred.0 + 24 * 3_600_000));
    let spilled = server.store.projection(spill).await.unwrap().unwrap();
    assert_eq!((spilled.priority_rank, spilled.report_due_at), (4, None));

    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let rows = desk.list(&tester).await.unwrap();
    let row = |id| rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row(injury).priority, Priority::P1);
    assert_eq!(
        row(injury).report_due_at,
        Some(app::domain::Timestamp(occurred.0 + 24 * 3_600_000))
    );
    assert_eq!(row(spill).priority, Priority::P4);

    // The supervisor raises the urgency: the list follows the document.
    let base = a.read(spill);
    let mut edited = base.clone();
    edited.urgency = Urgency::High;
    desk.edit(&tester, base, edited).await.unwrap();
    let rows = desk.list(&tester).await.unwrap();
    assert_eq!(
        rows.iter().find(|r| r.id == spill).unwrap().priority,
        Priority::P2
    );
    a.sync(&server.base).await.unwrap();
    assert_eq!(a.read(spill).priority(), Priority::P2, "and so does the device");
}

async fn two_offline_devices_converge_and_the_projection_matches(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let mut b = Device::new(2);

    // A files two reports offline, then syncs.
    let r1 = a.create("Forklift clipped racking", "Warehouse B");
    let r2 = a.create("Oil on walkway", "Yard");
    a.edit(r2, |r| r.what_happened = "Slick patch near the pumps".into());
    let answer = a.sync(&server.base).await.unwrap();
    assert_eq!(answer.reports.len(), 2);
    assert!(
        answer.reports.iter().all(|ack| ack.changes.is_empty()),
        "A already has everything"
    );

    // B picks r1 up, then both edit it while offline.
    b.follow(r1);
    b.sync(&server.base).await.unwrap();
    assert_eq!(b.read(r1), a.read(r1));
    a.edit(r1, |r| {
        r.title = "Forklift clipped racking in aisle 14".into();
        r.people_involved.push("Luis Ortega".into());
    });
    b.edit(r1, |r| {
        r.severity = Severity::Major;
        r.people_involved.push("Aisha Khan".into());
    });

    // Both sync (A twice, to receive B's edit), and everyone agrees.
    a.sync(&server.base).await.unwrap();
    b.sync(&server.base).await.unwrap();
    a.sync(&server.base).await.unwrap();
    let merged = a.read(r1);
    assert_eq!(b.read(r1), merged);
    assert_eq!(a.heads(r1), b.heads(r1));
    assert_eq!(merged.title, "Forklift clipped racking in aisle 14");
    assert_eq!(merged.severity, Severity::Major);
    let mut people = merged.people_involved.clone();
    people.sort();
    assert_eq!(
        people,
        ["Aisha Khan", "Luis Ortega"],
        "list edits merge as a union"
    );

    // The server's document and its projection say the same.
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    for id in [r1, r2] {
        let detail = desk.detail(&tester, id).await.unwrap().unwrap();
        assert_eq!(detail.report, a.read(id));
        let row = server.store.projection(id).await.unwrap().unwrap();
        assert_eq!(row, Projection::of(&detail.report, detail.conflicts.len()));
    }
    let list = desk.list(&tester).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, r2, "newest first");
}

async fn concurrent_edits_of_one_field_are_all_kept_and_shown(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let mut b = Device::new(2);
    let id = a.create("Gas smell", "Plant room");
    a.sync(&server.base).await.unwrap();
    b.follow(id);
    b.sync(&server.base).await.unwrap();
    a.edit(id, |r| r.severity = Severity::Major);
    b.edit(id, |r| r.severity = Severity::Critical);
    a.sync(&server.base).await.unwrap();
    b.sync(&server.base).await.unwrap();
    a.sync(&server.base).await.unwrap();
    let conflicts = a.conflicts(id);
    assert_eq!(conflicts.len(), 1);
    let mut values = conflicts[0].values.clone();
    values.sort();
    assert_eq!(values, ["Critical", "Major"]);

    // The detail page shows both values.
    let (status, html) = server.get(&format!("/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("2 concurrent values"), "{html}");
    assert!(html.contains("Critical") && html.contains("Major"));
    assert_eq!(
        server.store.projection(id).await.unwrap().unwrap().conflict_count,
        1
    );
    // Whichever value Automerge's actor order favours, the graver one stands.
    assert_eq!(a.read(id).severity, Severity::Critical);
    assert_eq!(
        server.store.projection(id).await.unwrap().unwrap().severity,
        "critical"
    );

    // Each value names who set it, and a supervisor keeps one: a new change everyone gets.
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let detail = desk.detail(&tester, id).await.unwrap().unwrap();
    assert_eq!(
        detail.conflicts[0].values[0], "Critical",
        "the graver value first"
    );
    assert_eq!(
        detail.conflicts[0].by,
        ["Tess Tester", "Tess Tester"],
        "named, not ids"
    );
    desk.choose(&tester, id, "severity".into(), "Major".into())
        .await
        .unwrap();
    let after = server.store.projection(id).await.unwrap().unwrap();
    assert_eq!((after.severity.as_str(), after.conflict_count), ("major", 0));
    a.sync(&server.base).await.unwrap();
    b.sync(&server.base).await.unwrap();
    for device in [&a, &b] {
        assert!(device.conflicts(id).is_empty());
        assert_eq!(device.read(id).severity, Severity::Major);
    }
    // A value that is not one of them is refused and changes nothing.
    let snapshot = server.snapshot().await;
    assert!(
        desk.choose(&tester, id, "severity".into(), "Minor".into())
            .await
            .is_ok(),
        "settled: nothing to do"
    );
    assert!(
        desk.choose(&tester, id, "reporter".into(), "x".into())
            .await
            .is_ok()
    );
    assert!(
        desk.choose(&tester, id, "timeline".into(), "x".into())
            .await
            .is_err()
    );
    assert_eq!(server.snapshot().await, snapshot);
}

async fn the_same_request_twice_changes_nothing_the_second_time(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let id = a.create("Ladder cracked", "Stores");
    a.edit(id, |r| r.immediate_actions = "Removed from use".into());
    let body = serde_json::to_vec(&a.request()).unwrap();

    let (status, first) = server.post_sync(body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let after_first = server.snapshot().await;
    assert_eq!(
        after_first.len(),
        4,
        "one document, one projection row, what the device holds, the feed counter"
    );

    let (status, second) = server.post_sync(body).await;
    assert_eq!(status, 200);
    assert_eq!(second, first, "same answer");
    assert_eq!(server.snapshot().await, after_first, "nothing rewritten");
}

async fn a_supervisor_edit_flows_back_to_the_device(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let id = a.create("Van hit bollard", "Dock");
    a.sync(&server.base).await.unwrap();
    let base = a.read(id);
    let mut edited = base.clone();
    edited.status = Status::Triaged;
    edited.severity = Severity::Moderate;
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    desk.edit(&tester, base.clone(), edited).await.unwrap();

    // A forbidden transition is refused and changes nothing.
    let snapshot = server.snapshot().await;
    let mut skip = base.clone();
    skip.status = Status::Closed;
    assert!(desk.edit(&tester, base, skip).await.is_err());
    assert_eq!(server.snapshot().await, snapshot);

    a.sync(&server.base).await.unwrap();
    let report = a.read(id);
    assert_eq!(report.status, Status::Triaged);
    assert_eq!(report.severity, Severity::Moderate);
}

pub(crate) async fn assert_refused(
    server: &TestServer,
    body: Vec<u8>,
    status: u16,
    code: &str,
) -> serde_json::Value {
    let before = server.snapshot().await;
    let (got, json) = server.post_sync(body).await;
    assert_eq!(got, status, "{json}");
    assert_eq!(json["error"], code, "{json}");
    assert!(
        json["message"].as_str().is_some_and(|m| m.len() > 10),
        "a clear reason: {json}"
    );
    assert_eq!(server.snapshot().await, before, "the database is unchanged");
    json
}

/// Posts `request`, expects the whole of it refused (422, nothing stored) and the first
/// refused report's reason to contain `reason`.
async fn assert_report_refused(
    server: &TestServer,
    request: &SyncRequest,
    reason: &str,
) -> serde_json::Value {
    let json = assert_refused(
        server,
        serde_json::to_vec(request).unwrap(),
        422,
        "rejected_reports",
    )
    .await;
    let got = json["rejected"][0]["reason"].as_str().unwrap();
    assert!(got.contains(reason), "{got:?} should say {reason:?}");
    json
}

async fn hostile_requests_get_clear_errors_and_change_nothing(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let stored = a.create("Already stored", "Gate");
    a.sync(&server.base).await.unwrap();
    a.edit(stored, |r| r.title = "Edited later".into());
    let fresh = a.create("Brand new", "Office");

    // A new report travels as its whole document: a damaged one (a flipped byte, a cut),
    // one whose heads are not the ones claimed, or another report's document under this
    // id are all refused with a reason.
    let request = a.request();
    let whole = |request: &SyncRequest| -> Vec<u8> {
        let push = request.reports.iter().find(|p| p.id == fresh).unwrap();
        push.document
            .as_ref()
            .expect("a new report is sent whole")
            .0
            .clone()
    };
    let with_document = |document: Vec<u8>, heads: Option<Vec<String>>| {
        let mut request = request.clone();
        let push = request.reports.iter_mut().find(|p| p.id == fresh).unwrap();
        push.document = Some(Bytes(document));
        if let Some(heads) = heads {
            push.heads = heads;
        }
        request
    };
    let mut flipped = whole(&request);
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    assert_report_refused(
        &server,
        &with_document(flipped, None),
        "not an Automerge change or document",
    )
    .await;
    let cut = whole(&request)[..whole(&request).len() - 7].to_vec();
    assert_report_refused(
        &server,
        &with_document(cut, None),
        "not an Automerge change or document",
    )
    .await;
    assert_report_refused(
        &server,
        &with_document(whole(&request), Some(vec![])),
        "not the heads",
    )
    .await;
    let mut b = Device::new(2);
    let elsewhere = b.create("Someone else's report", "Yard");
    let theirs = b.request();
    let their_push = theirs.reports.iter().find(|p| p.id == elsewhere).unwrap();
    assert_report_refused(
        &server,
        &with_document(
            their_push.document.as_ref().unwrap().0.clone(),
            Some(their_push.heads.clone()),
        ),
        "belong to report",
    )
    .await;

    // The rest of this test sends changes, as a device does once a report is stored.
    a.send_documents = false;

    // Not JSON at all; JSON of the wrong shape.
    assert_refused(&server, b"{not json".to_vec(), 400, "malformed_request").await;
    let json = assert_refused(
        &server,
        br#"{"protocol_version":2,"reports":"x"}"#.to_vec(),
        400,
        "malformed_request",
    )
    .await;
    assert!(
        json["message"].as_str().unwrap().contains("device_id")
            || json["message"].as_str().unwrap().contains("invalid type")
    );

    // A protocol version from the future.
    let mut request = a.request();
    request.protocol_version = PROTOCOL_VERSION + 1;
    let json = assert_refused(
        &server,
        serde_json::to_vec(&request).unwrap(),
        400,
        "unsupported_protocol",
    )
    .await;
    assert!(json["message"].as_str().unwrap().contains("Update the app"));

    // Corrupt Automerge bytes in one report: the whole request is refused, the good
    // report in it is not stored either, and the reason names the bad one.
    let mut request = a.request();
    let bad = request.reports.iter_mut().find(|p| p.id == fresh).unwrap();
    let last = bad.changes[0].0.len() - 1;
    bad.changes[0].0[last] ^= 0x5a;
    let json = assert_report_refused(&server, &request, "checksum does not match").await;
    assert_eq!(json["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(json["rejected"][0]["id"], fresh.to_string());

    // Garbage that is not an Automerge change at all.
    let request = SyncRequest::new(
        a.id,
        vec![ReportPush {
            id: fresh,
            heads: vec![],
            changes: vec![Bytes(b"hello".to_vec())],
            document: None,
        }],
    );
    assert_report_refused(&server, &request, "not an Automerge change").await;

    // Changes of one report sent under another report's id.
    let mut request = a.request();
    let other = app::domain::ReportId::new_v7(muster_tests::T0, [9; 10]);
    request.reports.retain(|p| p.id == fresh);
    request.reports[0].id = other;
    assert_report_refused(&server, &request, "belong to report").await;

    // A change whose history is missing (the edit without the creation).
    let mut request = a.request();
    request.reports.retain(|p| p.id == fresh);
    a.edit(fresh, |r| r.title = "Second".into());
    let full = a.request();
    let edit_only = full.reports.iter().find(|p| p.id == fresh).unwrap().changes[1].clone();
    request.reports[0].changes = vec![edit_only];
    assert_report_refused(&server, &request, "full history").await;

    // A body over the limit.
    let huge = vec![b' '; app::protocol::MAX_REQUEST_BYTES + 1];
    assert_refused(&server, huge, 413, "too_large").await;

    // After all that, an honest sync still works.
    a.sync(&server.base).await.unwrap();
    assert_eq!(a.read(stored).title, "Edited later");
    assert_eq!(server.store.document_stats().await.unwrap().0, 2);
}

async fn a_report_that_breaks_the_rules_is_refused_with_the_rule(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let id = a.create("Fine so far", "Dock");
    a.sync(&server.base).await.unwrap();
    a.edit(id, |r| r.title = "   ".into());
    let before = server.snapshot().await;
    let error = a.sync(&server.base).await.unwrap_err();
    assert_eq!(error.error, ErrorCode::RejectedReports);
    assert!(error.rejected[0].reason.contains("title"), "{error:?}");
    assert_eq!(server.snapshot().await, before);
}

async fn health_and_pages_answer(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    assert_eq!(server.get("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(server.get("/readyz").await, (200, "ready".to_owned()));
    let (status, html) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Your reports"));
    assert!(html.contains("/pkg/field.js"), "hydration script is linked");
    let (status, html) = server.get("/incidents").await;
    assert_eq!(status, 200);
    assert!(html.contains("No incidents have been reported yet"));
    if db != Db::Sqlite {
        return;
    }
    // The database file is in WAL mode (durable commits without blocking readers).
    let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A NULL bound by sqlx's `Any` driver used to fix a parameter's type in PostgreSQL's
/// prepared statement, so the next report on that connection with a position failed
/// ("incorrect binary data format").
async fn reports_with_and_without_a_position_are_stored_in_any_order(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut device = Device::new(3);
    for k in 0..24 {
        let id = device.create(&format!("Report {k}"), "Gate");
        if k % 2 == 1 {
            device.edit(id, |r| {
                r.location.gps = Some(app::domain::GpsFix {
                    latitude: 51.5,
                    longitude: -0.1,
                    accuracy_m: 8.0,
                });
            });
        }
        device.sync(&server.base).await.unwrap();
    }
    let rows = server
        .store
        .list(&viewer_of(&server.store, TESTER_LOGIN).await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 24);
}

async fn demo_mode_seeds_a_dozen_incidents_once(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let now = app::domain::Timestamp(1_764_000_000_000);
    assert_eq!(server::demo::seed(&server.committer, now).await.unwrap(), 12);
    assert_eq!(server::demo::seed(&server.committer, now).await.unwrap(), 0);
    let desk = server.desk();
    let admin = viewer_of(&server.store, "admin").await;
    let list = desk.list(&admin).await.unwrap();
    assert_eq!(list.len(), 12);
    // One of each role, with the documented passwords.
    for (login, password, ..) in server::demo::DEMO_USERS {
        assert!(
            server
                .store
                .check_credentials(login, password)
                .await
                .unwrap()
                .is_some(),
            "{login}"
        );
    }
    let north = desk.list(&viewer_of(&server.store, "sam").await).await.unwrap();
    let south = desk.list(&viewer_of(&server.store, "kelly").await).await.unwrap();
    assert_eq!(
        north.len() + south.len(),
        12,
        "each site's supervisor sees that site's"
    );
    assert!(!north.is_empty() && !south.is_empty());
    let with_conflict = list.iter().find(|r| r.title.starts_with("Near miss")).unwrap();
    let detail = desk.detail(&admin, with_conflict.id).await.unwrap().unwrap();
    assert_eq!(detail.conflicts.len(), 1, "the demo shows a concurrent edit");

    // Drills: a scenario per team; a completed run (with its drill report, its review and
    // an action for Dana) whose next drill is scheduled; and one due soon.
    use app::domain::drill::DueState;
    use app::drills::DrillDesk as _;
    let store = &server.store;
    let scenarios = store.scenarios(None).await.unwrap();
    let mut teams: Vec<uuid::Uuid> = scenarios.iter().map(|s| s.team).collect();
    teams.dedup();
    assert_eq!((scenarios.len(), teams.len()), (2, 2), "one scenario per team");
    let drills = store.drills(None).await.unwrap();
    let mut states: Vec<DueState> = drills.iter().map(|d| d.due_state(now)).collect();
    states.sort_by_key(|s| s.as_str());
    assert_eq!(
        states,
        [DueState::Completed, DueState::DueSoon, DueState::Scheduled]
    );
    let done = drills.iter().find(|d| d.completed_at.is_some()).unwrap();
    let run = server::drills::Drills::new(store.clone(), server::clock::system())
        .run(&admin, done.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.reports.len(), run.run.participants.len()), (1, 2));
    assert_eq!(run.run.steps.len(), 2);
    assert!(run.review.ratings.iter().all(|r| r.rating.is_some()));
    assert_eq!(run.actions.len(), 1);
    let dana = viewer_of(store, "dana").await;
    let mine = store.my_actions(&dana).await.unwrap();
    assert!(
        mine.iter()
            .any(|a| a.from == app::protocol::ActionFrom::Drill(done.id))
    );
    assert_eq!(list.len(), 12, "the drill report is not an incident");
}
