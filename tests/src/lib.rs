//! Test harness: real Muster servers on 127.0.0.1 port 0 with their own real databases
//! (a temporary SQLite file, or a fresh database on the PostgreSQL cluster named by
//! `MUSTER_TEST_PG`), in process or as separate processes that tests can SIGKILL, and
//! simulated field devices that keep Automerge documents and speak the sync protocol over
//! real HTTP, exactly as the browser's sync engine does.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod adversary;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use app::document::{ReportDoc, actor_for, hash_hex};
use app::domain::{Report, ReportId, Timestamp};
use app::field::ReportSync;
use app::protocol::{ReportPush, SyncError, SyncRequest, SyncResponse};
use app::sync::client::{self, InMemory, Local, Pass, StoredReport};
use automerge::ChangeHash;
use server::Config;
use server::db::{Projection, Store};
use sqlx::Row;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs each named `async fn(Db)` as one test per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(muster_tests::Db::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(muster_tests::Db::Postgres).await;
            })*
        }
    };
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub kind: Db,
    dir: TempDir,
}

impl TestDb {
    /// A new database, or `None` (with a note) when PostgreSQL is asked for but not
    /// configured. `MUSTER_TEST_REQUIRE_PG=1` (set by `scripts/test`) turns that into a
    /// failure, so the README's test command can never skip PostgreSQL silently.
    pub async fn new(kind: Db) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let url = match kind {
            Db::Sqlite => format!("sqlite://{}/muster.db", dir.path().display()),
            Db::Postgres => {
                let Ok(admin) = std::env::var("MUSTER_TEST_PG") else {
                    assert!(
                        std::env::var("MUSTER_TEST_REQUIRE_PG").is_err(),
                        "MUSTER_TEST_PG (a PostgreSQL admin URL) is required"
                    );
                    eprintln!("PostgreSQL not configured (MUSTER_TEST_PG unset): test skipped");
                    return None;
                };
                let name = format!("muster_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::AnyConnection::connect_any(&admin).await;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        };
        seed_tester(&url).await;
        Some(Self { url, kind, dir })
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Every stored row of every table, to prove a request changed nothing.
    pub async fn snapshot(&self) -> Vec<String> {
        let mut conn = sqlx::AnyConnection::connect_any(&self.url).await;
        let mut out = Vec::new();
        for row in
            sqlx::query("SELECT report_id, doc, heads, updated_at, seq FROM documents ORDER BY report_id")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        {
            let id: String = row.get("report_id");
            let doc: Vec<u8> = row.get("doc");
            let heads: String = row.get("heads");
            let at: i64 = row.get("updated_at");
            let seq: i64 = row.get("seq");
            out.push(format!("doc {id} {} {heads} {at} {seq}", hex::encode(&doc)));
        }
        for row in sqlx::query("SELECT id, title, severity, status, updated_at FROM reports ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
        {
            let id: String = row.get("id");
            let title: String = row.get("title");
            let at: i64 = row.get("updated_at");
            out.push(format!("row {id} {title} {at}"));
        }
        for row in sqlx::query(
            "SELECT device_id, report_id, known_heads FROM following ORDER BY device_id, report_id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        {
            let d: String = row.get("device_id");
            let r: String = row.get("report_id");
            let h: String = row.get("known_heads");
            out.push(format!("follow {d} {r} {h}"));
        }
        let seq: i64 = sqlx::query("SELECT seq FROM sync_counter")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("seq");
        out.push(format!("counter {seq}"));
        out
    }

    /// Opens the database as a server would (for checks made while no server runs).
    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// The session every simulated [`Device`] syncs with unless told otherwise: the
/// tester's, seeded into every test database.
pub const TEST_TOKEN: &str = "harness-session-token-0000000000000000000000";
/// The tester: a supervisor of [`TEST_TEAM`], so that test devices may file and edit
/// each other's reports.
pub const TESTER_LOGIN: &str = "tester";
pub const TESTER_PASSWORD: &str = "tester-password-for-tests";
pub const TESTER_NAME: &str = "Tess Tester";
pub const TEST_TEAM: &str = "Test site";
pub const TESTER_ID: uuid::Uuid = uuid::Uuid::from_u128(0x7e57);
pub const TEST_SESSION_ID: uuid::Uuid = uuid::Uuid::from_u128(0x5e55_0000_0000_0000_0000_0000_0000_5e55);

/// The tester's password hash, made once per test process (hashing takes ~50 ms).
fn tester_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| server::accounts::hash_password(TESTER_PASSWORD).unwrap())
}

/// Migrates a fresh database and adds the tester, their team and the [`TEST_TOKEN`]
/// session (directly, so hundreds of test databases do not each pay for hashing).
async fn seed_tester(url: &str) {
    let store = Store::open(url).await.unwrap();
    let team = store.ensure_team(TEST_TEAM, T0).await.unwrap();
    store.close().await;
    let user = TESTER_ID;
    let mut conn = sqlx::AnyConnection::connect_any(url).await;
    let far = i64::MAX / 2;
    for sql in [
        format!(
            "INSERT INTO users (id, login, name, role, password_hash, active, created_at)
             VALUES ('{user}', '{TESTER_LOGIN}', '{TESTER_NAME}', 'supervisor', '{}', 1, 0)",
            tester_hash()
        ),
        format!("INSERT INTO memberships (user_id, team_id, position) VALUES ('{user}', '{team}', 0)"),
        format!(
            "INSERT INTO sessions (id, token_hash, user_id, user_agent, created_at, last_seen_at, expires_at)
             VALUES ('{}', '{}', '{user}', 'harness', 0, {far}, {far})",
            TEST_SESSION_ID,
            server::accounts::token_hash(TEST_TOKEN)
        ),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
}

/// An HTTP client that sends the tester's session cookie ([`TEST_TOKEN`]) with every
/// request and does not follow redirects.
pub fn signed_in_client() -> reqwest::Client {
    client_with_session(TEST_TOKEN)
}

/// An HTTP client that sends session `token` with every request and does not follow
/// redirects.
pub fn client_with_session(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("{}={token}", server::accounts::SESSION_COOKIE)
            .parse()
            .unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        // A request that never finishes fails the test instead of hanging the suite.
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A real JPEG of `width`×`height`, its pixels drawn from `seed`: noise compresses badly,
/// so a large one spans several upload chunks, and another seed makes other bytes.
pub fn jpeg(width: u16, height: u16, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
        .map(|_| rng.u8(..))
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// The answer to one photo request: status, `Upload-Offset` (if given), body.
#[derive(Debug)]
pub struct PhotoAnswer {
    /// The HTTP status.
    pub status: u16,
    /// How many bytes the server holds, if it said.
    pub offset: Option<u64>,
    /// The body (JSON for errors).
    pub body: Vec<u8>,
}

impl PhotoAnswer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `method` on the photo `sha256` of report `id`, with `body` at `offset` for uploads.
pub async fn photo_request(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    id: ReportId,
    sha256: &str,
    upload: Option<(u64, &[u8])>,
) -> PhotoAnswer {
    let mut request = client.request(method, format!("{base}/api/reports/{id}/photos/{sha256}"));
    if let Some((offset, chunk)) = upload {
        request = request
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(chunk.to_vec());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let offset = response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    PhotoAnswer {
        status,
        offset,
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// Uploads `bytes` from `from` in chunks of [`app::domain::photo::CHUNK_BYTES`]; returns
/// the last answer (the first refusal, or the one that completed it).
pub async fn upload_photo(
    client: &reqwest::Client,
    base: &str,
    id: ReportId,
    sha256: &str,
    bytes: &[u8],
    from: u64,
) -> PhotoAnswer {
    let mut offset = usize::try_from(from).unwrap();
    loop {
        let end = (offset + app::domain::photo::CHUNK_BYTES).min(bytes.len());
        let answer = photo_request(
            client,
            base,
            reqwest::Method::PATCH,
            id,
            sha256,
            Some((offset as u64, &bytes[offset..end])),
        )
        .await;
        if answer.status != 204 || end == bytes.len() {
            return answer;
        }
        offset = end;
    }
}

/// Creates an account (`login`, named after it, password `login` + "-password-1") in
/// `teams`, and a session for it; returns the user id and the session token.
pub async fn add_user(
    store: &Store,
    login: &str,
    role: app::domain::access::Role,
    teams: &[&str],
) -> (uuid::Uuid, String) {
    let (user, token, _) = add_user_with_session(store, login, role, teams).await;
    (user, token)
}

/// [`add_user`], also returning the session's id.
pub async fn add_user_with_session(
    store: &Store,
    login: &str,
    role: app::domain::access::Role,
    teams: &[&str],
) -> (uuid::Uuid, String, uuid::Uuid) {
    let user = store
        .create_user(
            server::accounts::NewUser {
                login: login.to_owned(),
                name: format!("{login} (test)"),
                role,
                password: format!("{login}-password-1"),
                teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            },
            T0,
        )
        .await
        .unwrap();
    let (session, token) = store
        .create_session(user, "harness", T0, Duration::from_secs(3600 * 24 * 365 * 50))
        .await
        .unwrap();
    (user, token, session)
}

/// Signs in through `POST /login` as `login` with `password` from a browser calling
/// itself `user_agent`; returns the whole `Set-Cookie` header and the session token, or
/// `None` if the server sent the browser back to the sign-in page.
pub async fn sign_in(base: &str, login: &str, password: &str, user_agent: &str) -> Option<(String, String)> {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap()
        .post(format!("{base}/login"))
        .form(&[("login", login), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    if response.headers()["location"] != "/" {
        return None;
    }
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie.split(';').next()?.split_once('=')?.1.to_owned();
    Some((cookie, token))
}

/// The person signed in as `login`, as requests act for them.
pub async fn viewer_of(store: &Store, login: &str) -> app::domain::access::Viewer {
    let user = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.login == login)
        .unwrap_or_else(|| panic!("no account {login}"));
    store.viewer(user.id).await.unwrap().unwrap()
}

trait ConnectAny {
    async fn connect_any(url: &str) -> Self;
}

impl ConnectAny for sqlx::AnyConnection {
    async fn connect_any(url: &str) -> Self {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(url).await.unwrap()
    }
}

/// A running in-process server, stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub store: Store,
    /// The server's writer of documents (what sync and the desk write through).
    pub committer: server::sync::Committer,
    pub db: TestDb,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    deliverer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(deliverer) = &self.deliverer {
            deliverer.abort();
        }
    }
}

impl TestServer {
    /// The desk as the server's pages use it: writing through the server's committer.
    #[must_use]
    pub fn desk(&self) -> server::desk::Desk {
        server::desk::Desk::new(self.committer.clone(), server::clock::system())
    }

    /// A server on a fresh SQLite database.
    pub async fn start() -> Self {
        Self::start_on(Db::Sqlite).await.unwrap()
    }

    /// A server on a fresh database of `kind`, or `None` if that is not configured.
    pub async fn start_on(kind: Db) -> Option<Self> {
        Self::start_public(kind, None).await
    }

    /// A server on a fresh database of `kind`, told it is reached at `public_url`.
    pub async fn start_public(kind: Db, public_url: Option<&str>) -> Option<Self> {
        let public_url = public_url.map(str::to_owned);
        Self::start_with(kind, move |config| config.public_url = public_url).await
    }

    /// A server on a fresh database of `kind`, its configuration adjusted by `adjust`.
    pub async fn start_with(kind: Db, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let db = TestDb::new(kind).await?;
        let mut config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            site_root: db.dir().join("site"),
            demo: false,
            ..Config::default()
        };
        adjust(&mut config);
        let muster = server::build(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = muster.router;
        let task = tokio::spawn(async move {
            server::serve(listener, router).await.unwrap();
        });
        Some(Self {
            base,
            store: muster.store,
            committer: muster.committer,
            db,
            http: signed_in_client(),
            task,
            deliverer: muster.deliverer,
        })
    }

    /// Posts raw bytes to `/api/sync`; returns the status and the raw answer.
    pub async fn post_sync_bytes(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        post_raw(&self.http, &self.base, body).await.unwrap()
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

    pub async fn snapshot(&self) -> Vec<String> {
        self.db.snapshot().await
    }
}

/// Posts raw bytes to `{base}/api/sync`.
pub async fn post_raw(http: &reqwest::Client, base: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    post_as(http, base, Some(TEST_TOKEN), body).await
}

/// Posts a sync request with the session `token` (none: signed out).
pub async fn post_as(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let mut request = http.post(format!("{base}/api/sync"));
    if let Some(token) = token {
        request = request.header("cookie", format!("{}={token}", server::accounts::SESSION_COOKIE));
    }
    let response = request
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, bytes.to_vec()))
}

/// The path of the server binary built for these tests (the same entry point as
/// `muster`); only integration tests and benchmarks know it.
#[macro_export]
macro_rules! server_bin {
    () => {
        env!("CARGO_BIN_EXE_muster-under-test")
    };
}

/// A server running as its own process, so it can be killed outright.
#[derive(Debug)]
pub struct ServerProcess {
    pub base: String,
    child: tokio::process::Child,
    log: Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts the server binary `bin` (see [`server_bin!`]) on `database_url`, port 0;
    /// waits until it listens.
    pub async fn start(bin: &str, database_url: &str, site_root: &std::path::Path) -> Self {
        Self::start_logging(bin, database_url, site_root, "error").await
    }

    /// [`Self::start`] with `RUST_LOG` set to `filter`; [`Self::log`] has what it wrote.
    pub async fn start_logging(
        bin: &str,
        database_url: &str,
        site_root: &std::path::Path,
        filter: &str,
    ) -> Self {
        let mut child = tokio::process::Command::new(bin)
            .env("MUSTER_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("MUSTER_SITE_ROOT", site_root)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut early = String::new();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the server printed its address");
                if let Some(address) = line.strip_prefix("listening on ") {
                    return address.trim().to_owned();
                }
                early.push_str(&line);
                early.push('\n');
            }
        })
        .await
        .expect("the server started within a minute");
        // Keep draining stdout (the log) so the server never blocks on a full pipe.
        let log = Arc::new(std::sync::Mutex::new(early));
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self { base, child, log }
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server has logged a line containing `text` (with a `RUST_LOG`
    /// filter from [`Self::start_logging`] that lets it through); panics after 30 s.
    pub async fn wait_for_log(&self, text: &str) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !self.log.lock().unwrap().contains(text) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the server logged {text:?} within 30 s"));
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// SIGKILL: no chance to finish anything.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then waits for the process to exit; returns whether it exited cleanly.
    pub async fn terminate(mut self) -> bool {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stopped within 30 s")
            .unwrap();
        exit.success()
    }
}

/// Why a device's sync failed.
#[derive(Debug)]
pub enum SyncFailure {
    /// The server could not be reached or the connection broke.
    Network(String),
    /// The server answered with an error.
    Refused(u16, SyncError),
}

/// A simulated field device: offline until it syncs. It runs the app's own sync engine
/// ([`app::sync::client`]) over HTTP, with its storage in memory.
#[derive(Debug)]
pub struct Device {
    pub id: uuid::Uuid,
    local: InMemory,
    /// Reports to ask for in full on the next sync (followed, or a feed entry that did
    /// not apply).
    pulls: Vec<ReportId>,
    /// Every change this device ever made, per report.
    pub made: Vec<(ReportId, ChangeHash)>,
    /// Like the app, send a report the server has never acknowledged as its whole
    /// document; tests of change handling turn this off to send changes only.
    pub send_documents: bool,
    /// The session token it syncs with ([`TEST_TOKEN`] unless signed in as someone else).
    pub session: Option<String>,
    /// Who it is signed in as, and the session's id: its changes are made under them.
    pub user: uuid::Uuid,
    pub session_id: uuid::Uuid,
    http: reqwest::Client,
    clock: i64,
    serial: u64,
}

pub const T0: Timestamp = Timestamp(1_764_000_000_000);

impl Device {
    pub fn new(n: u8) -> Self {
        Self::with_id(uuid::Uuid::from_bytes([n; 16]))
    }

    pub fn with_id(id: uuid::Uuid) -> Self {
        Self {
            id,
            local: InMemory::default(),
            pulls: Vec::new(),
            made: Vec::new(),
            send_documents: true,
            session: Some(TEST_TOKEN.to_owned()),
            user: TESTER_ID,
            session_id: TEST_SESSION_ID,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            clock: T0.0,
            serial: 0,
        }
    }

    /// The feed cursor, saved after the feed's changes are stored.
    #[must_use]
    pub fn cursor(&self) -> Option<u64> {
        self.local.cursor
    }

    /// Signs the device in as `user` with `session` (its id and token).
    pub fn sign_in_as(&mut self, user: uuid::Uuid, session_id: uuid::Uuid, token: &str) {
        self.user = user;
        self.session_id = session_id;
        self.session = Some(token.to_owned());
    }

    /// The actor this device writes as: its person and session, and 4 bytes of its own.
    pub fn actor(&self) -> automerge::ActorId {
        let hash = self.id.as_bytes().iter().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(16_777_619)
        });
        actor_for(self.user, self.session_id, hash.to_be_bytes())
    }

    fn tick(&mut self) -> Timestamp {
        self.clock += 1_000;
        Timestamp(self.clock)
    }

    /// A fresh id: the SHA-256 of this device's whole id and a serial number, so it is
    /// deterministic (a schedule replays exactly) and as unique across devices as the
    /// app's random UUIDv7 ids. Devices whose ids share a prefix (as a fault schedule's
    /// do) never mint the same report id.
    pub fn fresh_uuid(&mut self) -> uuid::Uuid {
        use sha2::Digest;
        self.serial += 1;
        let digest = sha2::Sha256::new()
            .chain_update(self.id.as_bytes())
            .chain_update(self.serial.to_be_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Uuid::from_bytes(bytes)
    }

    /// Files a new report offline; returns its id.
    pub fn create(&mut self, title: &str, place: &str) -> ReportId {
        let at = self.tick();
        let id = self.fresh_uuid();
        let mut random = [0u8; 10];
        random.copy_from_slice(&id.as_bytes()[6..]);
        let mut report = Report::blank(
            ReportId::new_v7(at, random),
            at,
            &format!("Device {}", self.id.as_bytes()[0]),
        );
        report.title = title.to_owned();
        report.location.place = place.to_owned();
        self.create_report(&report)
    }

    /// Files `report` offline.
    pub fn create_report(&mut self, report: &Report) -> ReportId {
        let at = self.tick();
        let mut doc = ReportDoc::create(report, self.actor(), at).unwrap();
        for h in doc.heads() {
            self.made.push((report.id, h));
        }
        let stored = StoredReport::of(&mut doc, None, None).unwrap();
        self.local.save(report.id, &stored).unwrap();
        report.id
    }

    /// The device's document of a report, writing as this device.
    fn doc(&self, id: ReportId) -> Option<ReportDoc> {
        let stored = self.local.reports.get(&id)?;
        Some(ReportDoc::load(&stored.doc.0, self.actor()).unwrap())
    }

    /// Edits a report offline.
    pub fn edit(&mut self, id: ReportId, change: impl FnOnce(&mut Report)) {
        let at = self.tick();
        let mut doc = self.doc(id).expect("the device has this report");
        let base = doc.read().unwrap();
        let mut edited = base.clone();
        change(&mut edited);
        if let Some(hash) = doc.edit(&base, &edited, at).unwrap() {
            self.made.push((id, hash));
            let previous = self.local.load(id);
            let stored = StoredReport::of(&mut doc, previous.as_ref(), None).unwrap();
            self.local.save(id, &stored).unwrap();
        }
    }

    /// Records a drill event offline, dated by this device's clock; returns its id.
    pub fn drill_event(&mut self, drill: uuid::Uuid, happening: app::domain::drill::Happening) -> uuid::Uuid {
        use app::sync::client::Local as _;
        let at = self.tick();
        let id = self.fresh_uuid();
        self.local
            .record_event(app::domain::DrillEvent {
                id,
                drill,
                happening,
                at,
            })
            .unwrap();
        id
    }

    /// The team's drills as the last sync that changed them brought them.
    #[must_use]
    pub fn drills(&self) -> &[app::domain::drill::DrillBrief] {
        self.local.drills.as_ref().map_or(&[], |(drills, _)| drills)
    }

    /// Drill events not yet taken by the server.
    #[must_use]
    pub fn drill_events_pending(&self) -> usize {
        self.local.drill_events.len()
    }

    /// This device's clock.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock)
    }

    /// Appends a timeline entry offline.
    pub fn add_update(&mut self, id: ReportId, text: &str) {
        let entry = app::domain::TimelineEntry {
            id: self.fresh_uuid(),
            at: Timestamp(self.clock),
            author: format!("Device {}", self.id.as_bytes()[0]),
            author_id: Some(self.user),
            text: text.to_owned(),
            audience: Default::default(),
        };
        self.edit(id, |r| r.timeline.push(entry));
    }

    /// Marks a notification read on the device: hidden at once, told on the next sync.
    pub fn mark_read(&mut self, id: &str) {
        self.local.mark_read(id).unwrap();
    }

    /// The notifications the device shows.
    pub fn notices(&self) -> &[app::protocol::Notice] {
        &self.local.notices
    }

    /// The person's actions as the device holds them (the last list a sync brought).
    pub fn actions(&self) -> Option<&[app::protocol::ActionRow]> {
        self.local.actions.as_ref().map(|(list, _)| list.as_slice())
    }

    pub fn report_ids(&self) -> Vec<ReportId> {
        self.local.ids()
    }

    pub fn has(&self, id: ReportId) -> bool {
        self.local.reports.contains_key(&id)
    }

    /// The report, if the device holds a readable copy.
    pub fn try_read(&self, id: ReportId) -> Option<Report> {
        self.doc(id).and_then(|d| d.read().ok())
    }

    pub fn read(&self, id: ReportId) -> Report {
        self.try_read(id).expect("the device holds this report")
    }

    pub fn conflicts(&self, id: ReportId) -> Vec<app::document::FieldConflict> {
        self.doc(id).expect("the device holds this report").conflicts()
    }

    /// The device's heads of a report, sorted.
    pub fn heads(&mut self, id: ReportId) -> Vec<String> {
        let mut heads = self.local.reports[&id].heads.clone();
        heads.sort();
        heads
    }

    /// Starts following a report: it arrives on next sync (a report the device already
    /// holds is only pulled: its document, with any unsynced edits, is kept).
    pub fn follow(&mut self, id: ReportId) {
        if !self.pulls.contains(&id) {
            self.pulls.push(id);
        }
    }

    /// Whether anything is waiting to be sent.
    pub fn has_pending(&mut self) -> bool {
        !self.pulls.is_empty() || !client::pending(&self.local).is_empty()
    }

    /// Every report this device would send now: those with unacknowledged changes and the
    /// pulls (not limited to one request's worth).
    pub fn pending(&mut self) -> Vec<ReportPush> {
        client::pushes(&self.local, &self.pulls, self.send_documents)
    }

    /// A pass of the engine as this device stands.
    fn pass(&self) -> Pass {
        Pass {
            cursor: self.local.cursor,
            pulls: self.pulls.clone(),
            whole_documents: self.send_documents,
            notices_read: Vec::new(),
            drill_events: Vec::new(),
        }
    }

    /// The next request the device would send (the engine's).
    pub fn request(&mut self) -> SyncRequest {
        let mut pass = self.pass();
        pass.request(&mut self.local, self.id)
    }

    /// One exchange over HTTP with the server at `base`, through the engine (a refusal
    /// of some reports is recorded, as the app does, and returned).
    pub async fn try_sync(&mut self, base: &str) -> Result<SyncResponse, SyncFailure> {
        let mut pass = self.pass();
        let request = pass.request(&mut self.local, self.id);
        let body = serde_json::to_vec(&request).unwrap();
        let (status, bytes) = post_as(&self.http, base, self.session.as_deref(), body)
            .await
            .map_err(SyncFailure::Network)?;
        if status != 200 {
            let error: SyncError = serde_json::from_slice(&bytes)
                .map_err(|_| SyncFailure::Network(format!("status {status}, not a sync error")))?;
            // Refusals are recorded (so refused reports wait until they change); the pass
            // goes no further.
            let _ = pass.answer(&mut self.local, Err(error.clone()));
            return Err(SyncFailure::Refused(status, error));
        }
        let answer: SyncResponse = serde_json::from_slice(&bytes).unwrap();
        pass.answer(&mut self.local, Ok(answer.clone()))
            .expect("an acknowledgement always applies");
        self.pulls = pass.pulls;
        Ok(answer)
    }

    /// One exchange; panics on a network failure, returns a refusal.
    pub async fn sync(&mut self, base: &str) -> Result<SyncResponse, SyncError> {
        match self.try_sync(base).await {
            Ok(answer) => Ok(answer),
            Err(SyncFailure::Refused(_, e)) => Err(e),
            Err(SyncFailure::Network(e)) => panic!("network failure: {e}"),
        }
    }

    /// Exchanges until nothing is pending and the feed is drained; returns the rounds.
    pub async fn sync_all(&mut self, base: &str) -> Result<usize, SyncFailure> {
        for round in 1..=100 {
            let answer = self.try_sync(base).await?;
            if !answer.more && !self.has_pending() {
                return Ok(round);
            }
        }
        panic!("sync did not settle in 100 rounds");
    }

    /// Syncs until one full exchange succeeds, retrying (every 5 ms) through connection
    /// failures and 503s, as the browser does while a server or its database restarts;
    /// `base` gives the server's current address. Returns how many attempts failed.
    pub async fn sync_retrying(&mut self, base: impl Fn() -> String) -> usize {
        let mut failures = 0;
        loop {
            match self.sync_all(&base()).await {
                Ok(_) => return failures,
                // Restarting, or another sync of the same person still running.
                Err(SyncFailure::Network(_) | SyncFailure::Refused(503 | 429, _)) => {
                    failures += 1;
                    assert!(failures < 2_000, "the server never came back");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(SyncFailure::Refused(status, e)) => panic!("refused with {status}: {e:?}"),
            }
        }
    }

    /// Applies a sync answer obtained elsewhere, through the engine: acknowledgements,
    /// then the feed; the cursor advances only if every feed entry applied.
    pub fn apply(&mut self, answer: &SyncResponse) {
        let mut pass = self.pass();
        pass.answer(&mut self.local, Ok(answer.clone()))
            .expect("an acknowledgement always applies");
        self.pulls = pass.pulls;
    }

    /// Forgets the heads of the last answer for `id` (as if the answer was lost before it
    /// was stored), keeping the document.
    pub fn forget_ack(&mut self, id: ReportId) {
        if let Some(stored) = self.local.reports.get_mut(&id) {
            stored.synced_heads.clear();
            stored.sync = ReportSync::NotSynced;
        }
    }
}

/// Checks the invariants that must hold after any sequence of syncs, kills and restarts,
/// for every report the `devices` made or hold: every change any device made is stored
/// exactly once, the projection matches each document, and (if `converged`) every device
/// holds exactly the server's heads for every report it has. Returns the number of
/// documents checked.
pub async fn check_invariants(store: &Store, devices: &mut [Device], converged: bool) -> usize {
    let mut made: BTreeMap<ReportId, BTreeSet<ChangeHash>> = BTreeMap::new();
    for device in devices.iter() {
        for id in device.report_ids() {
            made.entry(id).or_default();
        }
        for (id, hash) in &device.made {
            made.entry(*id).or_default().insert(*hash);
        }
    }
    let ids: Vec<ReportId> = made.keys().copied().collect();
    let mut docs = BTreeMap::new();
    for chunk in ids.chunks(500) {
        for (id, stored) in store.load_docs(chunk).await.unwrap() {
            docs.insert(
                id,
                ReportDoc::load(&stored.doc, automerge::ActorId::random()).unwrap(),
            );
        }
    }
    for (id, hashes) in &made {
        let doc = docs
            .get_mut(id)
            .unwrap_or_else(|| panic!("report {id} is on the server"));
        let hashes: Vec<ChangeHash> = hashes.iter().copied().collect();
        assert!(doc.contains_all(&hashes), "every change of {id} is stored");
    }
    for (id, doc) in &mut docs {
        let history = doc.changes_since(&[]);
        let distinct: BTreeSet<Vec<u8>> = history.iter().cloned().collect();
        assert_eq!(distinct.len(), history.len(), "no change of {id} is stored twice");
        // The projection says what the document says.
        let snapshot = doc.snapshot().unwrap();
        let row = store.projection(*id).await.unwrap().expect("projected");
        assert_eq!(
            row,
            Projection::of(&snapshot.report, snapshot.conflicts.len()),
            "projection of {id}"
        );
    }
    if converged {
        for device in devices.iter_mut() {
            for id in device.report_ids() {
                let mut server_heads: Vec<String> =
                    docs.get_mut(&id).unwrap().heads().iter().map(hash_hex).collect();
                server_heads.sort();
                assert_eq!(
                    device.heads(id),
                    server_heads,
                    "device {} holds the server's {id}",
                    device.id
                );
            }
        }
    }
    docs.len()
}

/// Makes one random offline edit on a random report of `device` (or files a new one).
pub fn random_edit(device: &mut Device, rng: &mut fastrand::Rng) {
    let ids: Vec<ReportId> = device
        .report_ids()
        .into_iter()
        .filter(|id| device.try_read(*id).is_some())
        .collect();
    if ids.is_empty() || rng.u8(..100) < 10 {
        let n = rng.u32(..);
        device.create(&format!("Incident {n}"), "Yard");
        return;
    }
    let id = ids[rng.usize(..ids.len())];
    match rng.u8(..5) {
        0 => {
            let n = rng.u32(..);
            device.edit(id, |r| r.title = format!("Title {n}"));
        }
        1 => {
            let s = app::domain::Severity::ALL[rng.usize(..4)];
            device.edit(id, |r| r.severity = s);
        }
        2 => {
            let n = rng.u32(..);
            device.edit(id, |r| {
                let name = format!("Person {n}");
                if !r.people_involved.contains(&name) && r.people_involved.len() < 50 {
                    r.people_involved.push(name);
                }
            });
        }
        3 => {
            let n = rng.u32(..);
            device.edit(id, |r| r.what_happened = format!("Observation {n}"));
        }
        _ => {
            let n = rng.u32(..);
            device.add_update(id, &format!("Update {n}"));
        }
    }
}
