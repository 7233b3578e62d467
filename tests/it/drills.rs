//! Drills, through a real server on both databases: drill reports stay out of real records,
//! and a report's kind (real or drill) never changes, whoever writes and however.

use app::domain::access::Role;
use app::domain::{Category, INJURY_CATEGORY, Impact, Outcome, Report, ReportId, Urgency};
use app::protocol::{Bytes, ErrorCode, PROTOCOL_VERSION, ReportPush, SyncError, SyncRequest};
use automerge::transaction::Transactable as _;
use automerge::{ReadDoc as _, ScalarValue};
use muster_tests::{
    Db, Device, T0, TestServer, add_user_with_session, client_with_session, on_both_databases, post_as,
};

on_both_databases!(
    drill_reports_stay_out_of_real_records,
    a_reports_kind_never_changes_for_any_role_or_path,
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
    let request = SyncRequest {
        protocol_version: PROTOCOL_VERSION,
        device_id: uuid::Uuid::from_u128(7),
        since: None,
        reports: vec![ReportPush {
            id,
            heads: doc.get_heads().iter().map(app::document::hash_hex).collect(),
            changes: doc
                .get_changes(&before)
                .iter()
                .map(|c| Bytes(c.raw_bytes().to_vec()))
                .collect(),
            document: None,
        }],
        notices_seen: None,
        lists_seen: None,
        actions_seen: None,
        notices_read: Vec::new(),
    };
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
