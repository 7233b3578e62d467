//! Feed, replay, truncation, reordering, long offline periods and quarantine, over real
//! HTTP on both databases.

use app::desk::IncidentDesk;
use app::domain::Severity;
use muster_tests::{Db, Device, TESTER_LOGIN, TestServer, check_invariants, on_both_databases, viewer_of};

on_both_databases!(
    the_feed_brings_server_changes_and_a_quiet_reconnect_is_one_small_round_trip,
    the_feed_finds_a_change_behind_many_others_and_right_after_the_cursor,
    replayed_duplicated_reordered_and_truncated_requests_store_nothing_twice,
    a_device_offline_for_long_syncs_1000_edits_across_100_reports_at_once,
    a_damaged_document_is_quarantined_and_everything_else_keeps_syncing,
    many_devices_editing_the_same_reports_at_once_lose_nothing,
);

/// The feed looks changes up from either side (`db::feed_sql`): from the reports the
/// device follows when many changes happened since its cursor, from the changes when
/// few did. Both find exactly what the device lacks.
async fn the_feed_finds_a_change_behind_many_others_and_right_after_the_cursor(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let ids: Vec<_> = (0..3)
        .map(|i| a.create(&format!("Incident {i}"), "Yard"))
        .collect();
    a.sync(&server.base).await.unwrap();
    let mut b = Device::new(2);
    for i in 0..300 {
        b.create(&format!("Other incident {i}"), "Depot");
    }
    b.sync_all(&server.base).await.unwrap();
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    desk.add_update(
        &tester,
        ids[1],
        "Called the contractor".into(),
        app::domain::Audience::Team,
    )
    .await
    .unwrap();
    let before = server.store.current_seq().await.unwrap();

    let answer = a.sync(&server.base).await.unwrap();
    assert_eq!(answer.feed.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
    assert!(!answer.more);
    assert_eq!(answer.cursor, u64::try_from(before).unwrap());
    assert_eq!(a.read(ids[1]).timeline.len(), 1);

    desk.add_update(
        &tester,
        ids[2],
        "Barrier replaced".into(),
        app::domain::Audience::Team,
    )
    .await
    .unwrap();
    let answer = a.sync(&server.base).await.unwrap();
    assert_eq!(answer.feed.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(a.read(ids[2]).timeline.len(), 1);
    assert!(a.sync(&server.base).await.unwrap().feed.is_empty());
}

async fn the_feed_brings_server_changes_and_a_quiet_reconnect_is_one_small_round_trip(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let ids: Vec<_> = (0..3)
        .map(|i| a.create(&format!("Incident {i}"), "Yard"))
        .collect();
    a.sync(&server.base).await.unwrap();
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    desk.add_update(
        &tester,
        ids[1],
        "Called the contractor".into(),
        app::domain::Audience::Team,
    )
    .await
    .unwrap();

    // The next exchange carries only the feed: the supervisor's update.
    let answer = a.sync(&server.base).await.unwrap();
    assert!(answer.reports.is_empty());
    assert_eq!(answer.feed.len(), 1);
    assert_eq!(answer.feed[0].id, ids[1]);
    assert_eq!(a.read(ids[1]).timeline[0].text, "Called the contractor");

    // The server remembers what it sent: the next change travels alone.
    desk.add_update(
        &tester,
        ids[1],
        "Contractor on site".into(),
        app::domain::Audience::Team,
    )
    .await
    .unwrap();
    let answer = a.sync(&server.base).await.unwrap();
    assert_eq!(answer.feed.len(), 1);
    assert_eq!(
        answer.feed[0].changes.len(),
        1,
        "only the change the device lacks"
    );
    assert_eq!(a.read(ids[1]).timeline.len(), 2);

    // Nothing changed anywhere: one round trip, both bodies small.
    let body = serde_json::to_vec(&a.request()).unwrap();
    let (status, answer) = server.post_sync_bytes(body.clone()).await;
    assert_eq!(status, 200);
    assert!(body.len() <= 240, "request {} B", body.len());
    assert!(answer.len() <= 200, "answer {} B", answer.len());
    let answer: app::protocol::SyncResponse = serde_json::from_slice(&answer).unwrap();
    assert!(answer.feed.is_empty() && !answer.more);

    // A device that never saw a report does not get it; one that follows it does.
    let mut b = Device::new(2);
    b.sync(&server.base).await.unwrap();
    assert!(b.report_ids().is_empty());
    b.follow(ids[0]);
    b.sync(&server.base).await.unwrap();
    assert_eq!(b.read(ids[0]), a.read(ids[0]));
    b.edit(ids[0], |r| r.severity = Severity::Critical);
    b.sync(&server.base).await.unwrap();
    a.sync(&server.base).await.unwrap();
    assert_eq!(a.read(ids[0]).severity, Severity::Critical);
}

async fn replayed_duplicated_reordered_and_truncated_requests_store_nothing_twice(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    // Changes, not whole documents, so they can be reordered and repeated.
    a.send_documents = false;
    let first = a.create("Cable across walkway", "Hall");
    a.edit(first, |r| r.what_happened = "Trip hazard by the door".into());
    a.add_update(first, "Taped down");
    let second = a.create("Broken fire door closer", "Stair B");
    let recorded = a.request();
    let body = serde_json::to_vec(&recorded).unwrap();

    // Every truncation of the recorded request is refused, and nothing is stored.
    let empty = server.snapshot().await;
    for cut in 0..body.len() {
        let (status, json) = server.post_sync(body[..cut].to_vec()).await;
        assert_eq!(status, 400, "cut at {cut}: {json}");
    }
    assert_eq!(server.snapshot().await, empty, "no truncation stored anything");

    // Reordered: reports and changes in reverse order, each change twice.
    let mut shuffled = recorded.clone();
    shuffled.reports.reverse();
    for push in &mut shuffled.reports {
        push.changes.reverse();
        let twice = push.changes.clone();
        push.changes.extend(twice);
    }
    let (status, json) = server.post_sync(serde_json::to_vec(&shuffled).unwrap()).await;
    assert_eq!(status, 200, "{json}");
    let stored = server.snapshot().await;

    // The original order, then replays of both: nothing changes.
    for request in [&body, &body, &serde_json::to_vec(&shuffled).unwrap()] {
        let (status, _) = server.post_sync(request.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(server.snapshot().await, stored, "a replay stored nothing");
    }
    let answer = a.sync(&server.base).await.unwrap();
    assert!(answer.reports.iter().all(|ack| ack.changes.is_empty()));
    assert!(server.store.load_doc(second).await.unwrap().is_some());
    assert_eq!(check_invariants(&server.store, &mut [a], true).await, 2);
}

async fn a_device_offline_for_long_syncs_1000_edits_across_100_reports_at_once(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(5);
    let ids: Vec<_> = (0..100)
        .map(|i| a.create(&format!("Incident {i}"), "Site"))
        .collect();
    let mut rng = fastrand::Rng::with_seed(5);
    for n in 0..1_000 {
        let id = ids[rng.usize(..ids.len())];
        match n % 3 {
            0 => a.edit(id, |r| r.title = format!("Title {n}")),
            1 => a.add_update(id, &format!("Update {n}")),
            _ => a.edit(id, |r| r.what_happened = format!("Observation {n}")),
        }
    }
    let edits = a.made.len();
    assert_eq!(edits, 1_100, "100 creations and 1,000 edits");
    let rounds = a.sync_all(&server.base).await.unwrap();
    assert_eq!(rounds, 1, "one sync");
    assert_eq!(check_invariants(&server.store, &mut [a], true).await, 100);
}

/// Concurrent syncs are committed in groups; requests of one group that touch the same
/// report, or whose documents changed since they were loaded, merge again. Nothing of
/// anyone's may be lost or stored twice.
async fn many_devices_editing_the_same_reports_at_once_lose_nothing(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut first = Device::new(1);
    let ids: Vec<_> = (0..6)
        .map(|i| first.create(&format!("Incident {i}"), "Dock"))
        .collect();
    first.sync(&server.base).await.unwrap();
    let mut devices = vec![first];
    for n in 2..=12 {
        let mut device = Device::new(n);
        for id in &ids {
            device.follow(*id);
        }
        device.sync(&server.base).await.unwrap();
        devices.push(device);
    }
    for round in 0..4 {
        let mut syncing = tokio::task::JoinSet::new();
        for mut device in devices.drain(..) {
            // Half the reports each round, so groups mix overlapping and disjoint ones.
            for id in ids
                .iter()
                .skip(usize::from(device.id.as_bytes()[15] % 2))
                .step_by(2)
            {
                device.add_update(*id, &format!("Round {round} from {}", device.id));
            }
            let base = server.base.clone();
            syncing.spawn(async move {
                device.sync_retrying(|| base.clone()).await;
                device
            });
        }
        devices = syncing.join_all().await;
        // Everything acknowledged is stored (the devices would re-push a lost change
        // later and hide the loss, so check right away).
        check_invariants(&server.store, &mut devices, false).await;
    }
    // Everyone catches up; every update is on the server exactly once.
    for _ in 0..2 {
        for device in &mut devices {
            device.sync_all(&server.base).await.unwrap();
        }
    }
    assert_eq!(check_invariants(&server.store, &mut devices, true).await, 6);
    let updates: usize = ids.iter().map(|id| devices[0].read(*id).timeline.len()).sum();
    assert_eq!(updates, 12 * 4 * 3, "every device added 3 updates per round");
}

async fn a_damaged_document_is_quarantined_and_everything_else_keeps_syncing(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut a = Device::new(1);
    let damaged = a.create("Will be damaged", "Roof");
    let healthy = a.create("Stays healthy", "Roof");
    a.sync(&server.base).await.unwrap();

    // The stored copy is damaged behind the server's back (a disk fault, a bad restore).
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&server.db.url).await.unwrap();
        let sql = match db {
            Db::Sqlite => "UPDATE documents SET doc = ?1 WHERE report_id = ?2",
            Db::Postgres => "UPDATE documents SET doc = $1 WHERE report_id = $2",
        };
        sqlx::query(sql)
            .bind(b"\x85\x6f\x4a\x83 not a document".to_vec())
            .bind(damaged.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    a.edit(damaged, |r| r.title = "Edited after the damage".into());
    a.edit(healthy, |r| r.title = "Edited too".into());
    let error = a.sync(&server.base).await.unwrap_err();
    assert_eq!(error.rejected.len(), 1);
    assert_eq!(error.rejected[0].id, damaged);
    assert!(error.rejected[0].reason.contains("held for review"), "{error:?}");

    // Listed for an administrator; the other report still syncs.
    let listed = server.store.quarantined().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, damaged);
    let (_, admin) =
        muster_tests::add_user(&server.store, "admin", app::domain::access::Role::Admin, &[]).await;
    let page = muster_tests::client_with_session(&admin)
        .get(format!("{}/admin/quarantine", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&damaged.to_string()), "the admin page lists it");
    let snapshot = server.snapshot().await;
    a.forget_ack(damaged);
    let body = {
        let mut request = a.request();
        request.reports.retain(|p| p.id == healthy);
        serde_json::to_vec(&request).unwrap()
    };
    let (status, json) = server.post_sync(body).await;
    assert_eq!(status, 200, "{json}");
    assert_ne!(server.snapshot().await, snapshot);
    assert_eq!(server.get("/readyz").await.0, 200);
}
