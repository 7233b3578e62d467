//! Sync benchmarks over real HTTP on 127.0.0.1, against the real server binary (release)
//! on SQLite and on PostgreSQL. Prints one line per figure.
//!
//! * W1: `REPORTS` reports (default 10,000; 14 fields and 20 timeline entries each, every
//!   entry its own change) from `DEVICES` (default 100) concurrent devices, one request
//!   per device; total time, p50/p99 request latency, server peak RSS.
//! * W2: steady-state edits on existing reports: every device edits 20 of its reports and
//!   syncs, 5 rounds, all devices at once; edits committed per second.
//! * W3: every device reconnects with nothing changed: round trips and bytes per device.
//! * W4: database bytes per report after W1, against the raw JSON of the same reports.
//!
//! `scripts/bench` starts a throwaway PostgreSQL and runs this; by hand:
//! `cargo bench -p muster-tests --bench sync` (PostgreSQL only if `MUSTER_TEST_PG` is set).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use app::domain::access::Role;
use app::domain::{GpsFix, Report, ReportId, Severity, TimelineEntry, Timestamp};
use app::protocol::SyncResponse;
use muster_tests::{
    Db, Device, ServerProcess, TEST_TEAM, TestDb, add_user_with_session, post_as, server_bin,
};

/// The session `device` syncs with.
fn token_of(device: &Device) -> String {
    device.session.clone().expect("signed in")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A full report, as a field employee would file it, with its 20 timeline entries added
/// one change at a time.
fn file_report(device: &mut Device, reporter: &str, n: usize) -> (ReportId, usize) {
    let at = Timestamp(muster_tests::T0.0 + i64::try_from(n).unwrap());
    let uuid = device.fresh_uuid();
    let mut random = [0u8; 10];
    random.copy_from_slice(&uuid.as_bytes()[6..]);
    let mut report = Report::blank(ReportId::new_v7(at, random), at, reporter);
    report.title = format!("Pallet slipped from racking, aisle {}", n % 40);
    report.what_happened =
        "A pallet of bottled water slipped from the second beam while being put away; the load \
         fell into the aisle. Nobody was under it."
            .into();
    report.category = app::domain::Category::new("near_miss");
    report.severity = Severity::ALL[n % 4];
    report.location.place = "Warehouse B, aisle 14, bay 3".into();
    report.location.gps = Some(GpsFix {
        latitude: 51.5 + (n % 100) as f64 * 1e-4,
        longitude: -0.12,
        accuracy_m: 8.0,
    });
    report.people_involved = vec!["Dana Okafor".into(), "Luis Ortega".into()];
    report.immediate_actions = "Area taped off, racking inspected, pallet restacked.".into();
    let id = device.create_report(&report);
    for k in 0..20 {
        let entry = TimelineEntry {
            id: device.fresh_uuid(),
            at,
            author: "Dana Okafor".into(),
            author_id: Some(device.user),
            text: format!("Update {k}: checked the beam clips and the load plate; photos taken."),
            audience: Default::default(),
        };
        device.edit(id, |r| r.timeline.push(entry));
    }
    let json = serde_json::to_vec(&device.read(id)).unwrap().len();
    (id, json)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) the process has used so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // Linux reports in clock ticks of 1/100 s on every platform this runs on.
    ticks / 100.0
}

/// CPU seconds since boot the whole machine spent busy (user, system, interrupts), and
/// stolen by the hypervisor for other guests (the noisy neighbours of a shared host).
fn machine_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return (0.0, 0.0);
    };
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy / 100.0, at(7) / 100.0)
}

/// Posts every body at once (one task per device); returns the answers, per-request
/// latencies and the wall time.
async fn post_all(base: &str, bodies: Vec<(String, Vec<u8>)>) -> (Vec<Vec<u8>>, Vec<Duration>, Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|(token, body)| {
            let (http, base) = (http.clone(), base.to_owned());
            tokio::spawn(async move {
                let sent = Instant::now();
                let (status, answer) = post_as(&http, &base, Some(&token), body).await.unwrap();
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                (answer, sent.elapsed())
            })
        })
        .collect();
    let mut answers = Vec::new();
    let mut latencies = Vec::new();
    for task in tasks {
        let (answer, latency) = task.await.unwrap();
        answers.push(answer);
        latencies.push(latency);
    }
    let wall = started.elapsed();
    latencies.sort();
    (answers, latencies, wall)
}

async fn bench(kind: Db) {
    let Some(db) = TestDb::new(kind).await else {
        println!("{kind:?}: skipped (set MUSTER_TEST_PG, or use scripts/bench)");
        return;
    };
    let name = format!("{kind:?}").to_lowercase();
    let reports = env_usize("REPORTS", 10_000);
    let device_count = env_usize("DEVICES", 100);
    let per_device = reports / device_count;

    // Each device is its own field employee's (a person runs only a few syncs at once;
    // field employees, so escalations alert only the team's one supervisor), and files
    // its reports offline (not timed).
    let people = db.store().await;
    let mut devices = Vec::with_capacity(device_count);
    for i in 0..device_count {
        let mut device = Device::with_id(uuid::Uuid::from_u128(0x1000 + i as u128));
        let (user, token, session) =
            add_user_with_session(&people, &format!("bench{i}"), Role::Field, &[TEST_TEAM]).await;
        device.sign_in_as(user, session, &token);
        devices.push(device);
    }
    people.close().await;
    let mut raw_json = 0;
    for (d, device) in devices.iter_mut().enumerate() {
        for k in 0..per_device {
            raw_json += file_report(device, &format!("bench{d} (test)"), d * per_device + k).1;
        }
    }
    let total = per_device * device_count;
    let server = ServerProcess::start(server_bin!(), &db.url, &db.dir().join("site")).await;

    // W1: everything at once.
    let bodies: Vec<(String, Vec<u8>)> = devices
        .iter_mut()
        .map(|d| (token_of(d), serde_json::to_vec(&d.request()).unwrap()))
        .collect();
    let up: usize = bodies.iter().map(|(_, b)| b.len()).sum();
    let cpu_before = cpu_seconds(server.pid());
    let (answers, latencies, wall) = post_all(&server.base, bodies).await;
    let w1_cpu = cpu_seconds(server.pid()) - cpu_before;
    for (device, answer) in devices.iter_mut().zip(&answers) {
        device.apply(&serde_json::from_slice::<SyncResponse>(answer).unwrap());
    }
    let store = db.store().await;
    let (stored, doc_bytes) = store.document_stats().await.unwrap();
    assert_eq!(usize::try_from(stored).unwrap(), total, "every report committed");
    let rss = peak_rss_mb(server.pid());
    println!("{name} W1 reports {total} from {device_count} devices");
    println!("{name} W1 total_s {:.2}", wall.as_secs_f64());
    println!("{name} W1 reports_per_s {:.0}", total as f64 / wall.as_secs_f64());
    println!("{name} W1 request_p50_ms {:.0}", percentile(&latencies, 0.5));
    println!("{name} W1 request_p99_ms {:.0}", percentile(&latencies, 0.99));
    println!("{name} W1 server_peak_rss_mb {rss:.0}");
    println!(
        "{name} W1 server_cpu_s {w1_cpu:.2} ({:.2} cores busy, {:.0} µs per report)",
        w1_cpu / wall.as_secs_f64(),
        w1_cpu * 1e6 / total as f64
    );
    println!("{name} W1 bytes_up_per_report {}", up / total);

    // W4: storage against raw JSON.
    let on_disk = store.size_on_disk().await.unwrap();
    println!("{name} W4 raw_json_bytes_per_report {}", raw_json / total);
    println!(
        "{name} W4 document_bytes_per_report {}",
        usize::try_from(doc_bytes).unwrap() / total
    );
    println!(
        "{name} W4 database_bytes_per_report {} ({:.2}x raw JSON)",
        usize::try_from(on_disk).unwrap() / total,
        on_disk as f64 / raw_json as f64
    );

    // W2: steady-state edits on existing reports.
    let rounds = 5;
    let edits_per_round = 20.min(per_device);
    let mut rng = fastrand::Rng::with_seed(2);
    let mut timed = Duration::ZERO;
    let mut w2_latencies = Vec::new();
    let mut w2_cpu = 0.0;
    let mut w2_client_cpu = 0.0;
    let mut w2_machine_cpu = 0.0;
    let mut w2_stolen = 0.0;
    let (mut w2_up, mut w2_down) = (0, 0);
    for _ in 0..rounds {
        for device in &mut devices {
            let ids = device.report_ids();
            for k in 0..edits_per_round {
                let id = ids[(k * 7 + rng.usize(..ids.len())) % ids.len()];
                match k % 3 {
                    0 => device.edit(id, |r| r.severity = Severity::ALL[k % 4]),
                    1 => device.edit(id, |r| r.title = format!("Revised title {k}")),
                    _ => device.add_update(id, "Contractor booked for Monday"),
                }
            }
        }
        let bodies: Vec<(String, Vec<u8>)> = devices
            .iter_mut()
            .map(|d| (token_of(d), serde_json::to_vec(&d.request()).unwrap()))
            .collect();
        let bodies_len: usize = bodies.iter().map(|(_, b)| b.len()).sum();
        let cpu_before = cpu_seconds(server.pid());
        let client_before = cpu_seconds(std::process::id());
        let machine_before = machine_seconds();
        let (answers, latencies, wall) = post_all(&server.base, bodies).await;
        w2_cpu += cpu_seconds(server.pid()) - cpu_before;
        w2_client_cpu += cpu_seconds(std::process::id()) - client_before;
        let machine_after = machine_seconds();
        w2_machine_cpu += machine_after.0 - machine_before.0;
        w2_stolen += machine_after.1 - machine_before.1;
        timed += wall;
        w2_latencies.extend(latencies);
        w2_up += bodies_len;
        w2_down += answers.iter().map(Vec::len).sum::<usize>();
        for (device, answer) in devices.iter_mut().zip(&answers) {
            device.apply(&serde_json::from_slice::<SyncResponse>(answer).unwrap());
        }
    }
    w2_latencies.sort();
    let edits = rounds * edits_per_round * device_count;
    println!("{name} W2 edits {edits} in {rounds} rounds of {device_count} concurrent syncs");
    println!("{name} W2 edits_per_s {:.0}", edits as f64 / timed.as_secs_f64());
    println!(
        "{name} W2 server_cpu_s {w2_cpu:.2} ({:.2} cores busy, {:.0} µs per edit)",
        w2_cpu / timed.as_secs_f64(),
        w2_cpu * 1e6 / edits as f64
    );
    println!(
        "{name} W2 load_generator_cpu_s {w2_client_cpu:.2} ({:.2} cores busy)",
        w2_client_cpu / timed.as_secs_f64()
    );
    println!(
        "{name} W2 machine_cpu_s {w2_machine_cpu:.2} ({:.2} of {} cores busy: server, database, load generator)",
        w2_machine_cpu / timed.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    println!(
        "{name} W2 stolen_cpu_s {w2_stolen:.2} ({:.2} cores taken by the hypervisor)",
        w2_stolen / timed.as_secs_f64()
    );
    println!(
        "{name} W2 body_bytes_per_request {} up + {} down",
        w2_up / w2_latencies.len(),
        w2_down / w2_latencies.len()
    );
    println!("{name} W2 request_p50_ms {:.0}", percentile(&w2_latencies, 0.5));
    println!("{name} W2 request_p99_ms {:.0}", percentile(&w2_latencies, 0.99));

    // Settle the feed (everyone receives the others' nothing; their own edits are acked).
    for device in &mut devices {
        device.sync_all(&server.base).await.unwrap();
    }

    // W3: reconnect with nothing changed.
    let http = reqwest::Client::new();
    let (mut trips, mut bytes_up, mut bytes_down) = (0, 0, 0);
    let started = Instant::now();
    for device in &mut devices {
        loop {
            let body = serde_json::to_vec(&device.request()).unwrap();
            bytes_up += body.len();
            let (status, answer) = post_as(&http, &server.base, Some(&token_of(device)), body)
                .await
                .unwrap();
            assert_eq!(status, 200);
            bytes_down += answer.len();
            trips += 1;
            let answer: SyncResponse = serde_json::from_slice(&answer).unwrap();
            device.apply(&answer);
            if !answer.more && !device.has_pending() {
                break;
            }
        }
    }
    let n = devices.len();
    println!("{name} W3 round_trips_per_device {:.2}", trips as f64 / n as f64);
    println!(
        "{name} W3 body_bytes_per_device {} up + {} down = {}",
        bytes_up / n,
        bytes_down / n,
        (bytes_up + bytes_down) / n
    );
    println!(
        "{name} W3 time_per_reconnect_ms {:.2}",
        started.elapsed().as_secs_f64() * 1e3 / n as f64
    );
    println!("{name} server_peak_rss_mb_end {:.0}", peak_rss_mb(server.pid()));
    store.close().await;
    server.kill().await;
}

#[tokio::main]
async fn main() {
    let only = std::env::var("DB").unwrap_or_default();
    if only.is_empty() || only == "sqlite" {
        bench(Db::Sqlite).await;
    }
    if only.is_empty() || only == "postgres" {
        bench(Db::Postgres).await;
    }
}
