//! Test harness: a real Muster server on 127.0.0.1 port 0 with its own temporary SQLite
//! database, and simulated field devices that keep Automerge documents and speak the sync
//! protocol over real HTTP, exactly as the browser's sync engine does.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use app::document::{ReportDoc, actor_from_uuid, hash_hex, parse_hash};
use app::domain::{Report, ReportId, Timestamp};
use app::protocol::{Bytes, PROTOCOL_VERSION, ReportPush, SyncError, SyncRequest, SyncResponse};
use automerge::ChangeHash;
use server::Config;
use server::db::Store;
use sqlx::Row;
use tempfile::TempDir;

/// A running server with a temporary database, stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub store: Store,
    pub database_url: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/muster.db", dir.path().display());
        let config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            database_url: database_url.clone(),
            site_root: dir.path().join("site"),
            demo: false,
        };
        let muster = server::build(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            server::serve(listener, muster.router).await.unwrap();
        });
        Self {
            base,
            store: muster.store,
            database_url,
            http: reqwest::Client::new(),
            task,
            _dir: dir,
        }
    }

    /// Posts raw bytes to `/api/sync`; returns the status and the raw answer.
    pub async fn post_sync_bytes(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        let response = self
            .http
            .post(format!("{}/api/sync", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    /// Posts raw bytes to `/api/sync`; returns the status and the JSON answer.
    pub async fn post_sync(&self, body: Vec<u8>) -> (u16, serde_json::Value) {
        let (status, bytes) = self.post_sync_bytes(body).await;
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Every stored row of both tables, to prove a request changed nothing.
    pub async fn snapshot(&self) -> Vec<String> {
        let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
        let mut out = Vec::new();
        for row in sqlx::query(
            "SELECT report_id, hex(doc) AS doc, heads, updated_at FROM documents ORDER BY report_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        {
            let id: String = row.get("report_id");
            let doc: String = row.get("doc");
            let heads: String = row.get("heads");
            let at: i64 = row.get("updated_at");
            out.push(format!("doc {id} {doc} {heads} {at}"));
        }
        for row in sqlx::query("SELECT id, title, severity, status, updated_at FROM reports ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let id: String = row.get("id");
            let title: String = row.get("title");
            let at: i64 = row.get("updated_at");
            out.push(format!("row {id} {title} {at}"));
        }
        pool.close().await;
        out
    }
}

/// One report as a device holds it.
#[derive(Debug)]
struct Local {
    doc: ReportDoc,
    acked: Vec<ChangeHash>,
}

/// A simulated field device: offline until it syncs.
#[derive(Debug)]
pub struct Device {
    pub id: uuid::Uuid,
    reports: BTreeMap<ReportId, Local>,
    http: reqwest::Client,
    clock: i64,
}

pub const T0: Timestamp = Timestamp(1_764_000_000_000);

impl Device {
    pub fn new(n: u8) -> Self {
        let id = uuid::Uuid::from_bytes([n; 16]);
        Self {
            id,
            reports: BTreeMap::new(),
            http: reqwest::Client::new(),
            clock: T0.0,
        }
    }

    fn tick(&mut self) -> Timestamp {
        self.clock += 1_000;
        Timestamp(self.clock)
    }

    /// Files a new report offline; returns its id.
    pub fn create(&mut self, title: &str, place: &str) -> ReportId {
        let at = self.tick();
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&u64::try_from(self.clock).unwrap().to_be_bytes());
        random[8] = self.id.as_bytes()[0];
        let mut report = Report::blank(
            ReportId::new_v7(at, random),
            at,
            &format!("Device {}", self.id.as_bytes()[0]),
        );
        report.title = title.to_owned();
        report.location.place = place.to_owned();
        let doc = ReportDoc::create(&report, actor_from_uuid(self.id), at).unwrap();
        self.reports.insert(
            report.id,
            Local {
                doc,
                acked: Vec::new(),
            },
        );
        report.id
    }

    /// Edits a report offline.
    pub fn edit(&mut self, id: ReportId, change: impl FnOnce(&mut Report)) {
        let at = self.tick();
        let local = self.reports.get_mut(&id).expect("the device has this report");
        let base = local.doc.read().unwrap();
        let mut edited = base.clone();
        change(&mut edited);
        local.doc.edit(&base, &edited, at).unwrap();
    }

    pub fn read(&self, id: ReportId) -> Report {
        self.reports[&id].doc.read().unwrap()
    }

    pub fn conflicts(&self, id: ReportId) -> Vec<app::document::FieldConflict> {
        self.reports[&id].doc.conflicts()
    }

    pub fn heads(&mut self, id: ReportId) -> Vec<String> {
        self.reports
            .get_mut(&id)
            .unwrap()
            .doc
            .heads()
            .iter()
            .map(hash_hex)
            .collect()
    }

    /// Starts following a report this device did not create (it arrives on next sync).
    pub fn follow(&mut self, id: ReportId) {
        let mut doc = ReportDoc::empty(actor_from_uuid(self.id));
        doc.set_actor(actor_from_uuid(self.id));
        self.reports.insert(
            id,
            Local {
                doc,
                acked: Vec::new(),
            },
        );
    }

    /// The request the device would send now.
    pub fn request(&mut self) -> SyncRequest {
        let reports = self
            .reports
            .iter_mut()
            .map(|(id, local)| ReportPush {
                id: *id,
                heads: local.doc.heads().iter().map(hash_hex).collect(),
                changes: local
                    .doc
                    .changes_since(&local.acked)
                    .into_iter()
                    .map(Bytes)
                    .collect(),
            })
            .collect();
        SyncRequest {
            protocol_version: PROTOCOL_VERSION,
            device_id: self.id,
            reports,
        }
    }

    /// Syncs over HTTP and applies the answer.
    pub async fn sync(&mut self, server: &TestServer) -> Result<SyncResponse, SyncError> {
        let request = self.request();
        let response = self
            .http
            .post(format!("{}/api/sync", server.base))
            .json(&request)
            .send()
            .await
            .unwrap();
        if !response.status().is_success() {
            return Err(response.json().await.unwrap());
        }
        let answer: SyncResponse = response.json().await.unwrap();
        self.apply(&answer);
        Ok(answer)
    }

    /// Applies a sync answer.
    pub fn apply(&mut self, answer: &SyncResponse) {
        for ack in &answer.reports {
            let local = self.reports.get_mut(&ack.id).unwrap();
            let changes: Vec<Vec<u8>> = ack.changes.iter().map(|b| b.0.clone()).collect();
            local.doc.apply_changes(&changes).unwrap();
            local.acked = ack.heads.iter().map(|h| parse_hash(h).unwrap()).collect();
        }
    }
}
