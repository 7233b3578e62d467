//! The attacks that were shown against the sync boundary with a stock Automerge client,
//! each replayed against a real server on both databases: refused with a reason, nothing
//! stored. (The same attacks at the merge level, one test each, are in
//! `app/src/document/gate.rs`; every cell of the policy is in `policy.rs`.)

use std::io::Write as _;

use app::domain::access::Role;
use app::domain::{Category, Severity, Status};
use app::protocol::{Bytes, ErrorCode, ReportPush};
use muster_tests::{
    Db, Device, ServerProcess, TESTER_LOGIN, TestDb, TestServer, add_user_with_session, on_both_databases,
    post_raw, server_bin, viewer_of,
};
use sha2::{Digest, Sha256};

on_both_databases!(
    a_compressed_chunk_is_refused_unread_and_memory_stays_flat,
    the_reporter_cannot_lower_the_severity_after_triage,
    an_injury_report_recategorised_before_its_first_sync_stays_private,
    a_forged_desk_base_does_not_skip_the_workflow,
);

/// `n` as unsigned LEB128, as Automerge writes lengths.
fn uleb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap();
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// An Automerge chunk of `kind` around `data`, with a correct checksum.
fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
    let len = uleb(data.len());
    let hash = Sha256::new()
        .chain_update([kind])
        .chain_update(&len)
        .chain_update(data)
        .finalize();
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.push(kind);
    out.extend_from_slice(&len);
    out.extend_from_slice(data);
    out
}

/// Raw DEFLATE of `mib` MiB of zeros.
fn deflated_zeros(mib: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = flate2::write::DeflateEncoder::new(&mut out, flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap();
    out
}

/// A process's memory figure from `/proc/<pid>/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Files a report on `device` in the name `reporter`.
fn file_as(device: &mut Device, reporter: &str, title: &str) -> app::domain::ReportId {
    let random: [u8; 10] = device.fresh_uuid().as_bytes()[6..].try_into().unwrap();
    let id = app::domain::ReportId::new_v7(muster_tests::T0, random);
    let mut report = app::domain::Report::blank(id, muster_tests::T0, reporter);
    report.title = title.into();
    report.location.place = "Dock".into();
    device.create_report(&report)
}

/// One sync request from `device` whose only report carries `push`.
fn request_with(device: &mut Device, push: ReportPush) -> Vec<u8> {
    let mut request = device.request();
    request.reports = vec![push];
    serde_json::to_vec(&request).unwrap()
}

async fn a_compressed_chunk_is_refused_unread_and_memory_stays_flat(db: Db) {
    let Some(db) = TestDb::new(db).await else {
        return;
    };
    let site = db.dir().join("site");
    let server = ServerProcess::start(server_bin!(), &db.url, &site).await;
    let pid = server.pid();
    let http = reqwest::Client::new();
    let mut device = Device::new(1);
    let id = device.create("Ladder", "Stores");
    device.sync(&server.base).await.unwrap();
    // The server's peak memory from here on.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = proc_kib(pid, "VmRSS:");

    // A compressed change chunk that inflates to 256 MiB (the attack used 255 KB).
    let bomb = chunk(2, &deflated_zeros(256));
    let body = request_with(
        &mut device,
        ReportPush {
            id,
            heads: vec![],
            changes: vec![Bytes(bomb.clone())],
            document: None,
        },
    );
    assert!(body.len() < 1024 * 1024, "{} bytes", body.len());
    let (status, answer) = post_raw(&http, &server.base, body).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("compressed changes are not accepted"), "{answer}");

    // The same bytes as a whole document, and a document whose one column is a DEFLATE
    // bomb: refused before they are inflated past the request's budget.
    let body = request_with(
        &mut device,
        ReportPush {
            id,
            heads: vec![],
            changes: vec![],
            document: Some(Bytes(bomb)),
        },
    );
    let (status, answer) = post_raw(&http, &server.base, body).await.unwrap();
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&answer));
    let column = deflated_zeros(256);
    let mut data = vec![0u8, 0, 0, 1]; // no actors, no heads, no change columns, one op column
    let spec = (1u32 << 4) | 0b1000 | 2;
    data.push(u8::try_from(spec).unwrap());
    data.extend(uleb(column.len()));
    data.extend_from_slice(&column);
    let body = request_with(
        &mut device,
        ReportPush {
            id,
            heads: vec![],
            changes: vec![],
            document: Some(Bytes(chunk(0, &data))),
        },
    );
    let (status, answer) = post_raw(&http, &server.base, body).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("inflate to too many bytes"), "{answer}");
    assert!(answer.contains(r#""error":"too_large""#), "{answer}");

    let peak = proc_kib(pid, "VmHWM:");
    let growth = peak.saturating_sub(before);
    println!(
        "{db:?}: server RSS {before} KiB before, peak {peak} KiB after the bombs (+{growth} KiB)",
        db = db.kind
    );
    assert!(growth < 64 * 1024, "the server's memory grew by {growth} KiB");
    // It still serves.
    device.edit(id, |r| r.title = "Ladder, tagged out".into());
    device.sync(&server.base).await.unwrap();
}

async fn the_reporter_cannot_lower_the_severity_after_triage(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let team = "North site";
    let (ana, token, session) = add_user_with_session(&server.store, "ana", Role::Field, &[team]).await;
    let (_, _, _) = add_user_with_session(&server.store, "sam", Role::Supervisor, &[team]).await;
    let mut phone = Device::new(3);
    phone.sign_in_as(ana, session, &token);
    let id = file_as(&mut phone, "ana (test)", "Forklift clipped racking");
    phone.edit(id, |r| r.severity = Severity::Critical);
    phone.sync(&server.base).await.unwrap();
    let desk = server.desk();
    let sam = viewer_of(&server.store, "sam").await;
    let base = phone.read(id);
    let mut triaged = base.clone();
    triaged.status = Status::Triaged;
    app::desk::IncidentDesk::edit(&desk, &sam, base, triaged)
        .await
        .unwrap();
    phone.sync(&server.base).await.unwrap();
    assert_eq!(phone.read(id).status, Status::Triaged);

    phone.edit(id, |r| r.severity = Severity::Minor);
    let before = server.snapshot().await;
    let error = phone.sync(&server.base).await.unwrap_err();
    assert_eq!(error.error, ErrorCode::RejectedReports);
    let reason = &error.rejected[0].reason;
    assert!(
        reason.contains("writes `report.severity`") && reason.contains("Triaged"),
        "{reason}"
    );
    assert_eq!(server.snapshot().await, before, "nothing stored");
}

async fn an_injury_report_recategorised_before_its_first_sync_stays_private(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let team = "North site";
    let (ana, token, session) = add_user_with_session(&server.store, "ana", Role::Field, &[team]).await;
    let (bo, bo_token, bo_session) = add_user_with_session(&server.store, "bo", Role::Field, &[team]).await;
    let secret = "Fractured left wrist q7x";
    let mut phone = Device::new(4);
    phone.sign_in_as(ana, session, &token);
    let id = file_as(&mut phone, "ana (test)", "Fell from the loading ramp");
    phone.edit(id, |r| {
        r.category = Category::new(app::domain::INJURY_CATEGORY);
        r.injury.injury = secret.into();
    });
    // Thought better of it before the first sync: not an injury, details cleared.
    phone.edit(id, |r| {
        r.category = Category::new("other");
        r.injury = app::domain::Injury::default();
    });
    phone.sync(&server.base).await.unwrap();
    assert!(!phone.read(id).category.is_injury());
    let owners = server.store.ownership(&[id]).await.unwrap();
    assert!(owners[&id].sensitive, "the history holds injury details");

    // A teammate's device asks for it: refused, and fed nothing of it.
    let mut colleague = Device::new(5);
    colleague.sign_in_as(bo, bo_session, &bo_token);
    colleague.follow(id);
    let error = colleague.sync(&server.base).await.unwrap_err();
    assert!(
        error.rejected[0].reason.contains("privacy-sensitive"),
        "{error:?}"
    );
    let mut plain = Device::new(6);
    plain.sign_in_as(bo, bo_session, &bo_token);
    let answer = plain.sync(&server.base).await.unwrap();
    assert!(answer.feed.iter().all(|entry| entry.id != id));
    let bytes = serde_json::to_string(&answer).unwrap();
    assert!(!bytes.contains(&id.to_string()));
}

async fn a_forged_desk_base_does_not_skip_the_workflow(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let mut phone = Device::new(7);
    let id = phone.create("Blocked fire exit", "Stairs B");
    phone.sync(&server.base).await.unwrap();
    let desk = server.desk();
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let stored = phone.read(id);
    let mut triaged = stored.clone();
    triaged.status = Status::Triaged;
    app::desk::IncidentDesk::edit(&desk, &tester, stored.clone(), triaged.clone())
        .await
        .unwrap();

    // The browser claims the report is already Resolved, so Reviewed looks one step away.
    let mut forged = triaged.clone();
    forged.status = Status::Resolved;
    let mut reviewed = forged.clone();
    reviewed.status = Status::Reviewed;
    reviewed.response.review.summary = "Done".into();
    reviewed.response.review.lessons = "Keep exits clear".into();
    let before = server.snapshot().await;
    let reason = app::desk::IncidentDesk::edit(&desk, &tester, forged, reviewed)
        .await
        .unwrap_err();
    assert!(
        matches!(&reason, app::error::AppError::Invalid { message, .. } if message.contains("from Triaged to Reviewed")),
        "{reason:?}"
    );
    assert_eq!(server.snapshot().await, before, "nothing stored");
}

/// Writes the head of a sync request declaring a `length`-byte body, with `token`'s
/// session cookie if any, then the body's first byte.
async fn start_body(base: &str, token: Option<&str>, length: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = token.map_or(String::new(), |t| {
        format!("Cookie: {}={t}\r\n", server::accounts::SESSION_COOKIE)
    });
    let head = format!(
        "POST /api/sync HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{cookie}\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status line of the answer on `stream`.
async fn status_line(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.contains(&b'\n') {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection without answering");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// A request without a session is answered 401 before its body is read: the test sends
/// only the head and the body's first byte of a 1 MB body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_session_is_refused_before_its_body_is_read() {
    let server = TestServer::start().await;
    let mut stream = start_body(&server.base, None, 1_000_000).await;
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), status_line(&mut stream))
        .await
        .expect("answered without waiting for the body");
    assert!(line.contains(" 401 "), "{line}");
}

/// Clients that trickle their bodies, from more people than the server has merge slots,
/// hold none of them: an honest device syncs meanwhile within its deadline; a body that
/// stops coming is abandoned with 408 once it has paused for the idle time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricklers_do_not_hold_up_an_honest_device() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;
    let idle = std::time::Duration::from_secs(2);
    let server = TestServer::start_with(Db::Sqlite, |config| config.sync_body_idle = idle)
        .await
        .unwrap();
    let slots = 8 * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let people = slots / server::admission::SYNCS_PER_PERSON + 2;
    let keep_going = Arc::new(AtomicBool::new(true));
    let mut tricklers = Vec::new();
    for p in 0..people {
        let (_, token, _) =
            add_user_with_session(&server.store, &format!("slow{p}"), Role::Field, &["Yard"]).await;
        for _ in 0..server::admission::SYNCS_PER_PERSON {
            let mut stream = start_body(&server.base, Some(&token), 100_000).await;
            let keep_going = Arc::clone(&keep_going);
            tricklers.push(tokio::spawn(async move {
                // A byte well within the idle time, for as long as the test says.
                let mut tick = tokio::time::interval(idle / 4);
                while keep_going.load(Ordering::SeqCst) {
                    tick.tick().await;
                    stream.write_all(b" ").await.unwrap();
                }
                status_line(&mut stream).await
            }));
        }
    }
    assert!(tricklers.len() > slots, "more tricklers than merge slots");

    // An honest device of someone else syncs meanwhile, within a device's deadline.
    let (user, token, session) = add_user_with_session(&server.store, "honest", Role::Field, &["Yard"]).await;
    let mut device = Device::new(9);
    device.sign_in_as(user, session, &token);
    let mut report = app::domain::Report::blank(
        app::domain::ReportId::new_v7(muster_tests::T0, [9; 10]),
        muster_tests::T0,
        "honest (test)",
    );
    report.title = "Wet floor by the lifts".into();
    report.location.place = "Lobby".into();
    let id = device.create_report(&report);
    tokio::time::timeout(std::time::Duration::from_secs(30), device.sync(&server.base))
        .await
        .expect("the honest device's sync was held past its deadline")
        .unwrap();
    assert!(server.store.ownership(&[id]).await.unwrap().contains_key(&id));

    // The tricklers stop sending: each is abandoned with 408.
    keep_going.store(false, Ordering::SeqCst);
    for trickler in tricklers {
        let line = trickler.await.unwrap();
        assert!(line.contains(" 408 "), "{line}");
    }
}

/// The server records when it received each change, and from whom: the history shows the
/// device's time and the receipt, and flags a device clock set ahead of the server's (a
/// backdated or postdated device time is not evidence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_receive_times_and_flags_device_clocks_ahead() {
    let server = TestServer::start().await;
    let tester = viewer_of(&server.store, TESTER_LOGIN).await;
    let mut device = Device::new(11);
    device.sign_in_as(
        tester.user_id,
        muster_tests::TEST_SESSION_ID,
        muster_tests::TEST_TOKEN,
    );
    // Filed with the device's clock (the harness's, in 2025), then edited on a phone
    // whose clock says next year.
    let id = device.create("Loose handrail", "Stairs A");
    device.sync(&server.base).await.unwrap();
    let stored = server.store.load_doc(id).await.unwrap().unwrap();
    let future = app::domain::Timestamp(
        server::clock::Clock::now(&server::clock::SystemClock).0 + 365 * 24 * 3_600_000,
    );
    let mut doc = app::document::ReportDoc::load(&stored.doc, device.actor()).unwrap();
    let before = doc.heads();
    let base = doc.read().unwrap();
    let mut edited = base.clone();
    edited.title = "Loose handrail, taped off".into();
    doc.edit(&base, &edited, future).unwrap();
    let push = ReportPush {
        id,
        heads: doc.heads().iter().map(app::document::hash_hex).collect(),
        changes: doc.changes_since(&before).into_iter().map(Bytes).collect(),
        document: None,
    };
    let body = request_with(&mut device, push);
    let (status, answer) = post_raw(&reqwest::Client::new(), &server.base, body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));

    let desk = server.desk();
    let detail = app::desk::IncidentDesk::detail(&desk, &tester, id)
        .await
        .unwrap()
        .unwrap();
    let [filed, edit] = detail.history.as_slice() else {
        panic!("two changes: {:?}", detail.history);
    };
    let now = server::clock::Clock::now(&server::clock::SystemClock);
    for line in [filed, edit] {
        let received = line.received_at.expect("a receipt");
        assert!(received.0 <= now.0 && now.0 - received.0 < 3_600_000, "{line:?}");
    }
    assert!(
        !filed.clock_ahead(),
        "a device clock behind is no cause for a flag"
    );
    assert!(edit.clock_ahead(), "{edit:?}");
    // The page says so.
    let (_, page) = server.get(&format!("/incidents/{id}")).await;
    assert!(page.contains("received "), "{page}");
    assert!(page.contains("device clock ahead of the server"));
}

/// What one person may have stored per day is capped: past it, syncs are answered 429
/// (retried later) and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_past_the_daily_cap_is_asked_to_wait() {
    let server = TestServer::start_with(Db::Sqlite, |config| config.bytes_per_person_per_day = 4_000)
        .await
        .unwrap();
    let mut device = Device::new(12);
    let first = device.create("Spill by the press", "Press shop");
    device.sync(&server.base).await.unwrap();
    assert!(
        server
            .store
            .ownership(&[first])
            .await
            .unwrap()
            .contains_key(&first)
    );
    let mut refused = None;
    for n in 0..20 {
        let id = device.create(&format!("Report {n}"), "Yard");
        device.edit(id, |r| {
            r.what_happened = format!("{n}: {}", "oil on the floor ".repeat(25))
        });
        let body = serde_json::to_vec(&device.request()).unwrap();
        let before = server.snapshot().await;
        let (status, answer) = post_raw(&reqwest::Client::new(), &server.base, body)
            .await
            .unwrap();
        if status == 429 {
            assert_eq!(server.snapshot().await, before, "nothing stored");
            refused = Some(String::from_utf8_lossy(&answer).into_owned());
            break;
        }
        assert_eq!(status, 200);
        device.apply(&serde_json::from_slice(&answer).unwrap());
    }
    let refused = refused.expect("the cap was reached");
    assert!(refused.contains("in the last 24 hours"), "{refused}");
}
