//! Fault schedules: real server processes are SIGKILLed at random points while devices
//! sync, then restarted on the same database; devices retry. After every schedule, every
//! change any device made is stored exactly once, the projection matches the documents
//! and all devices converge. Also: two server processes on one PostgreSQL database, and a
//! graceful shutdown that finishes the sync in flight.
//!
//! `MUSTER_FAULT_SCHEDULES` sets the number of schedules per database (default 200);
//! `MUSTER_FAULT_SEED` the first seed (default 1), to replay a failing schedule.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use muster_tests::{Db, Device, ServerProcess, TestDb, check_invariants, post_raw, random_edit, server_bin};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One schedule: three devices with shared reports edit and sync in rounds while the
/// server is killed once or twice at random moments.
async fn schedule(db: &TestDb, seed: u64) -> (usize, usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let site = db.dir().join("site");
    let server = ServerProcess::start(server_bin!(), &db.url, &site).await;
    let base = Arc::new(RwLock::new(server.base.clone()));
    let mut devices: Vec<Device> = (0..3u8)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&seed.to_be_bytes());
            id[8] = i;
            Device::with_id(uuid::Uuid::from_bytes(id))
        })
        .collect();

    // Calm start: everyone files a few reports; each follows one of the next device's.
    for device in &mut devices {
        for _ in 0..rng.usize(1..4) {
            random_edit(device, &mut rng);
        }
        device.sync_all(&server.base).await.unwrap();
    }
    for i in 0..devices.len() {
        let theirs = devices[(i + 1) % devices.len()].report_ids();
        let pick = theirs[rng.usize(..theirs.len())];
        devices[i].follow(pick);
        devices[i].sync_all(&server.base).await.unwrap();
    }

    // Storm: devices edit and sync in rounds; the server dies at random moments.
    let mut tasks = Vec::new();
    for mut device in devices {
        let base = Arc::clone(&base);
        let mut rng = fastrand::Rng::with_seed(rng.u64(..));
        tasks.push(tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..rng.usize(2..5) {
                for _ in 0..rng.usize(1..10) {
                    random_edit(&mut device, &mut rng);
                }
                failures += device.sync_retrying(|| base.read().unwrap().clone()).await;
            }
            (device, failures)
        }));
    }
    let mut server = Some(server);
    let kills = rng.usize(1..3);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.u64(0..40))).await;
        server.take().unwrap().kill().await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..20))).await;
        let restarted = ServerProcess::start(server_bin!(), &db.url, &site).await;
        *base.write().unwrap() = restarted.base.clone();
        server = Some(restarted);
    }
    let mut devices = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (device, f) = task.await.unwrap();
        devices.push(device);
        failures += f;
    }

    // Calm end: everyone syncs until the feed has carried every change everywhere.
    let url = base.read().unwrap().clone();
    for _ in 0..2 {
        for device in &mut devices {
            device.sync_all(&url).await.unwrap();
        }
    }
    let store = db.store().await;
    let checked = check_invariants(&store, &mut devices, true).await;
    store.close().await;
    server.take().unwrap().kill().await;
    (checked, failures)
}

/// Names the schedule that failed, and how to replay it alone, when a schedule panics
/// (an invariant, a device task, a refusal).
struct Replay {
    kind: Db,
    seed: u64,
}

impl Drop for Replay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{:?}: fault schedule {} failed; replay it alone with MUSTER_FAULT_SEED={} MUSTER_FAULT_SCHEDULES=1",
                self.kind, self.seed, self.seed
            );
        }
    }
}

async fn run_schedules(kind: Db) {
    let Some(db) = TestDb::new(kind).await else { return };
    let count = env_u64("MUSTER_FAULT_SCHEDULES", 200);
    let first = env_u64("MUSTER_FAULT_SEED", 1);
    let (mut reports, mut failures) = (0, 0);
    for seed in first..first + count {
        let _replay = Replay { kind, seed };
        let (checked, failed) = schedule(&db, seed).await;
        reports += checked;
        failures += failed;
    }
    eprintln!(
        "{kind:?}: {count} fault schedules, {reports} report checks, {failures} syncs failed by kills and retried"
    );
    assert!(failures > 0, "the kills must have interrupted some syncs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_random_kills() {
    run_schedules(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_random_kills() {
    run_schedules(Db::Postgres).await;
}

/// Two server processes on one PostgreSQL database behave as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_converge() {
    let Some(db) = TestDb::new(Db::Postgres).await else {
        return;
    };
    let site = db.dir().join("site");
    let one = ServerProcess::start(server_bin!(), &db.url, &site).await;
    let two = ServerProcess::start(server_bin!(), &db.url, &site).await;
    let mut rng = fastrand::Rng::with_seed(7);

    // A reports through instance 1; B, on instance 2, follows every one of A's reports.
    let mut a = Device::new(1);
    for i in 0..20 {
        a.create(&format!("Shared incident {i}"), "Depot");
    }
    a.sync_all(&one.base).await.unwrap();
    let mut b = Device::new(2);
    for id in a.report_ids() {
        b.follow(id);
    }
    b.sync_all(&two.base).await.unwrap();
    assert_eq!(b.read(a.report_ids()[0]), a.read(a.report_ids()[0]));

    // Both edit the same reports and sync at the same time, many times over, each to
    // its own instance: concurrent merges of one document on two instances.
    let mut devices = vec![(a, one.base.clone()), (b, two.base.clone())];
    for round in 0..15 {
        let mut tasks = Vec::new();
        for (mut device, base) in devices {
            let mut rng = fastrand::Rng::with_seed(rng.u64(..) ^ round);
            tasks.push(tokio::spawn(async move {
                for _ in 0..rng.usize(5..30) {
                    random_edit(&mut device, &mut rng);
                }
                device.sync_all(&base).await.unwrap();
                (device, base)
            }));
        }
        devices = Vec::new();
        for task in tasks {
            devices.push(task.await.unwrap());
        }
    }
    // A supervisor-style edit on instance 2 reaches A through instance 1's feed.
    let (mut a, base_one) = devices.remove(0);
    let (mut b, base_two) = devices.remove(0);
    let shared = a.report_ids()[0];
    b.edit(shared, |r| r.title = "Renamed via instance two".into());
    b.sync_all(&base_two).await.unwrap();
    a.sync_all(&base_one).await.unwrap();
    assert_eq!(a.read(shared).title, "Renamed via instance two");
    b.sync_all(&base_two).await.unwrap();

    let store = db.store().await;
    let mut devices = vec![a, b];
    let checked = check_invariants(&store, &mut devices, true).await;
    assert!(checked >= 20);
    store.close().await;
    one.kill().await;
    two.kill().await;
}

/// SIGTERM while a large sync is being merged: the sync completes and is stored, then
/// the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_sync_in_flight() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let site = db.dir().join("site");
    // The trace layer logs each request as it starts being handled.
    let server = ServerProcess::start_logging(server_bin!(), &db.url, &site, "tower_http=debug").await;
    let mut device = Device::new(3);
    let mut rng = fastrand::Rng::with_seed(3);
    for i in 0..200 {
        let id = device.create(&format!("Incident {i}"), "Quay");
        for _ in 0..5 {
            device.add_update(id, &format!("Update {}", rng.u32(..)));
        }
    }
    let body = serde_json::to_vec(&device.request()).unwrap();
    let base = server.base.clone();
    let sync = tokio::spawn(async move { post_raw(&reqwest::Client::new(), &base, body).await });
    // SIGTERM only once the server is handling the request, so it is truly in flight.
    server.wait_for_log("started processing request").await;
    assert!(server.terminate().await, "the server exits cleanly");
    let (status, answer) = sync.await.unwrap().expect("the sync in flight was answered");
    assert_eq!(status, 200);
    device.apply(&serde_json::from_slice(&answer).unwrap());
    assert!(!device.has_pending(), "everything was acknowledged");
    let store = db.store().await;
    assert_eq!(check_invariants(&store, &mut [device], true).await, 200);
}
