//! The write policy at the sync boundary, through a real server on both databases: an
//! adversarial client (raw Automerge changes, `muster_tests::adversary`) tries every role
//! × path × workflow state × kind of write, and each is refused by the policy exactly
//! when the table does not allow it.

use std::sync::Arc;

use app::domain::ReportId;
use app::domain::access::{Ownership, Role};
use app::protocol::{Bytes, ReportPush, SyncError, SyncRequest};
use muster_tests::adversary::{self, People};
use muster_tests::{Db, T0, TestServer, add_user_with_session, on_both_databases, post_as};
use server::db::Writer;
use server::sync::Job;

on_both_databases!(every_cell_of_the_policy_table_is_enforced_at_the_sync_boundary);

async fn every_cell_of_the_policy_table_is_enforced_at_the_sync_boundary(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let team = "North site";
    let (field, field_token, _) = add_user_with_session(store, "ana", Role::Field, &[team]).await;
    let (supervisor, supervisor_token, _) =
        add_user_with_session(store, "sam", Role::Supervisor, &[team]).await;
    let (admin, admin_token, _) = add_user_with_session(store, "ada", Role::Admin, &[]).await;
    let people = People {
        field: store.viewer(field).await.unwrap().unwrap(),
        supervisor: store.viewer(supervisor).await.unwrap().unwrap(),
        admin: store.viewer(admin).await.unwrap().unwrap(),
    };
    let team_id = people.field.home_team();
    let mut n: u128 = 0;
    let cases = adversary::cases(&people, || {
        n += 1;
        ReportId(uuid::Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | n))
    });

    // Every case's report, stored as the reporter's, as honest devices left it.
    for chunk in cases.chunks(200) {
        let jobs = chunk
            .iter()
            .map(|case| {
                let push = ReportPush {
                    id: case.push.id,
                    heads: app::document::ReportDoc::load(
                        &case.stored,
                        app::document::actor_from_uuid(uuid::Uuid::nil()),
                    )
                    .unwrap()
                    .heads()
                    .iter()
                    .map(app::document::hash_hex)
                    .collect(),
                    changes: vec![],
                    document: Some(Bytes(case.stored.clone())),
                };
                Job {
                    id: case.push.id,
                    merge: Arc::new(move |stored| app::merge::merge_push(stored, &push, T0)),
                }
            })
            .collect();
        let writer = Writer {
            device: None,
            owner: Ownership {
                owner: Some(field),
                team: team_id,
                sensitive: false,
            },
            from: None,
        };
        server.committer.apply(writer, jobs, T0).await.unwrap();
    }

    // Each case pushed by its person, on its own.
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    let mut allowed = 0;
    for case in &cases {
        let token = match case.role {
            Role::Field => &field_token,
            Role::Supervisor => &supervisor_token,
            Role::Admin => &admin_token,
        };
        let request = SyncRequest::new(uuid::Uuid::from_u128(0xde), vec![case.push.clone()]);
        let (status, body) = post_as(
            &http,
            &server.base,
            Some(token),
            serde_json::to_vec(&request).unwrap(),
        )
        .await
        .unwrap();
        let refusal = (status != 200).then(|| {
            let error: SyncError = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{}: {status} {}", case.name(), String::from_utf8_lossy(&body)));
            error
                .rejected
                .first()
                .map_or(error.message.clone(), |r| r.reason.clone())
        });
        let policy_refused = refusal.as_deref().is_some_and(adversary::refused_by_policy);
        allowed += usize::from(case.allowed);
        if policy_refused == case.allowed {
            wrong.push(format!(
                "{}: the table {} it, the server answered {status}: {}",
                case.name(),
                if case.allowed { "allows" } else { "forbids" },
                refusal.as_deref().unwrap_or("stored")
            ));
        }
    }
    println!(
        "{:?}: {} generated cases ({allowed} allowed) over {} policy rows, {} table cells",
        db,
        cases.len(),
        app::domain::policy::RULES.len(),
        app::domain::policy::cells()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} cases disagree:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert!(cases.len() > 1_000, "every cell has a case");
}
