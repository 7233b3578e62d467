//! Sync benchmark: one device files 1,000 reports offline, then syncs them to a real server
//! on 127.0.0.1 with a real (temporary) SQLite database. Prints one line per figure.
//!
//! `cargo bench -p muster-tests --bench sync` (REPORTS=n to change the count).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use app::protocol::{MAX_REPORTS_PER_REQUEST, SyncRequest, SyncResponse};
use muster_tests::{Device, TestServer};

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let server = TestServer::start().await;
    let mut device = Device::new(7);
    let started = Instant::now();
    for i in 0..count {
        let id = device.create(&format!("Benchmark incident {i}"), "Warehouse B, aisle 14");
        device.edit(id, |r| {
            r.what_happened =
                "A pallet slipped from the second beam while being put away; nobody hurt.".into();
            r.people_involved = vec!["Dana Okafor".into(), "Luis Ortega".into()];
            r.immediate_actions = "Area taped off, racking inspected.".into();
        });
    }
    println!(
        "reports_created_offline {count} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let full = device.request();
    let (mut sent, mut received, mut requests) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    for chunk in full.reports.chunks(MAX_REPORTS_PER_REQUEST) {
        let request = SyncRequest {
            protocol_version: full.protocol_version,
            device_id: full.device_id,
            reports: chunk.to_vec(),
        };
        let body = serde_json::to_vec(&request).unwrap();
        sent += body.len();
        let (status, bytes) = server.post_sync_bytes(body).await;
        assert_eq!(status, 200);
        received += bytes.len();
        requests += 1;
        let answer: SyncResponse = serde_json::from_slice(&bytes).unwrap();
        device.apply(&answer);
    }
    let elapsed = started.elapsed();
    let (docs, doc_bytes) = server.store.document_stats().await.unwrap();
    println!("sync_reports {count}");
    println!("sync_requests {requests}");
    println!("sync_time_ms {:.1}", elapsed.as_secs_f64() * 1e3);
    println!("sync_reports_per_s {:.0}", count as f64 / elapsed.as_secs_f64());
    println!(
        "sync_bytes_up {sent} ({:.0} B/report)",
        sent as f64 / count as f64
    );
    println!(
        "sync_bytes_down {received} ({:.0} B/report)",
        received as f64 / count as f64
    );
    println!(
        "stored_documents {docs}, {doc_bytes} B ({:.0} B/report)",
        doc_bytes as f64 / docs.max(1) as f64
    );
}
