//! PostgreSQL itself restarts (immediate mode: no checkpoint, connections cut) while
//! devices sync. The server answers 503 meanwhile, recovers its connections by itself,
//! and nothing is lost or duplicated. Its own test binary, because restarting the shared
//! cluster would disturb other tests running in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use muster_tests::{Db, Device, TestServer, check_invariants, random_edit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_sync_loses_nothing() {
    let Some(server) = TestServer::start_on(Db::Postgres).await else {
        return;
    };
    let restart = std::env::var("MUSTER_TEST_PG_RESTART")
        .expect("MUSTER_TEST_PG_RESTART: a command that restarts the test cluster");
    let mut rng = fastrand::Rng::with_seed(11);
    let mut devices: Vec<Device> = (20..24).map(Device::new).collect();
    for device in &mut devices {
        for _ in 0..5 {
            random_edit(device, &mut rng);
        }
        device.sync_all(&server.base).await.unwrap();
    }
    let mut tasks = Vec::new();
    for mut device in devices {
        let base = server.base.clone();
        let mut rng = fastrand::Rng::with_seed(rng.u64(..));
        tasks.push(tokio::spawn(async move {
            let mut unavailable = 0;
            for _ in 0..30 {
                for _ in 0..rng.usize(1..10) {
                    random_edit(&mut device, &mut rng);
                }
                unavailable += device.sync_retrying(|| base.clone()).await;
            }
            (device, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = tokio::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "the cluster restarted");
    let mut devices = Vec::new();
    let mut unavailable = 0;
    for task in tasks {
        let (device, u) = task.await.unwrap();
        devices.push(device);
        unavailable += u;
    }
    eprintln!("{unavailable} syncs failed during the restart and were retried");
    for _ in 0..2 {
        for device in &mut devices {
            device.sync_all(&server.base).await.unwrap();
        }
    }
    assert_eq!(server.get("/readyz").await.0, 200);
    check_invariants(&server.store, &mut devices, true).await;
}
