//! Photos over real HTTP, on both databases: uploaded in chunks after the report's text,
//! resumed after an interruption, stored once however often they are sent, refused with a
//! reason when they are not the photo the report names, and reached only by people who may
//! hold the report.

use app::domain::access::Role;
use app::domain::photo::{CHUNK_BYTES, MAX_PHOTO_BYTES};
use app::domain::{PhotoRef, Report, ReportId};
use app::protocol::{ErrorCode, SyncError};
use muster_tests::{
    Db, Device, PhotoAnswer, T0, TestServer, add_user_with_session, client_with_session, jpeg,
    on_both_databases, photo_request, upload_photo,
};
use reqwest::Method;

on_both_databases!(
    a_photo_travels_in_chunks_resumes_after_an_interruption_and_is_stored_once,
    photos_that_are_not_what_the_report_names_are_refused_with_a_reason_and_nothing_is_kept,
    only_people_who_may_hold_the_report_reach_its_photos,
    a_person_with_too_many_unfinished_uploads_is_asked_to_wait,
);

/// A person with a signed-in device and an HTTP client.
struct Person {
    device: Device,
    client: reqwest::Client,
}

async fn person(server: &TestServer, login: &str, role: Role, team: &str, n: u8) -> Person {
    let (user, token, session) = add_user_with_session(&server.store, login, role, &[team]).await;
    let mut device = Device::new(n);
    device.sign_in_as(user, session, &token);
    Person {
        device,
        client: client_with_session(&token),
    }
}

/// Files a report naming `photos` from `who`'s device and syncs its text.
async fn file_with(
    server: &TestServer,
    who: &mut Person,
    login: &str,
    n: u8,
    photos: Vec<PhotoRef>,
) -> ReportId {
    let mut report = Report::blank(ReportId::new_v7(T0, [n; 10]), T0, &format!("{login} (test)"));
    report.title = format!("Photographed {n}");
    report.location.place = "Loading bay".into();
    report.photos = photos;
    let id = who.device.create_report(&report);
    who.device.sync(&server.base).await.unwrap();
    id
}

/// The number of rows in `table`.
async fn count(server: &TestServer, table: &str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&server.db.url).await.unwrap();
    sqlx::query(&format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("n")
}

fn code(answer: &PhotoAnswer) -> ErrorCode {
    serde_json::from_slice::<SyncError>(&answer.body)
        .unwrap_or_else(|_| panic!("an error body, got {}: {}", answer.status, answer.text()))
        .error
}

async fn a_photo_travels_in_chunks_resumes_after_an_interruption_and_is_stored_once(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let base = server.base.as_str();
    let mut dana = person(&server, "dana", Role::Field, "North", 1).await;
    // Noise compresses badly: this photo spans several chunks.
    let bytes = jpeg(1200, 900, 1);
    let chunks = bytes.len().div_ceil(CHUNK_BYTES);
    assert!(chunks >= 3, "{} bytes make {chunks} chunks", bytes.len());
    let named = PhotoRef::of(&bytes, T0).unwrap();
    let sha = named.sha256.clone();
    let id = file_with(&server, &mut dana, "dana", 1, vec![named.clone()]).await;
    let client = &dana.client.clone();

    // Nothing held yet; the length is the one the report names.
    let head = photo_request(client, base, Method::HEAD, id, &sha, None).await;
    assert_eq!((head.status, head.offset), (200, Some(0)));

    // The first chunk arrives, then the connection drops.
    let first = &bytes[..CHUNK_BYTES];
    let answer = photo_request(client, base, Method::PATCH, id, &sha, Some((0, first))).await;
    assert_eq!((answer.status, answer.offset), (204, Some(CHUNK_BYTES as u64)));
    assert_eq!(
        photo_request(client, base, Method::GET, id, &sha, None)
            .await
            .status,
        404,
        "half a photo is not shown"
    );

    // Back online: the device asks where to go on from. A stale retry of the first
    // chunk is told the same and changes nothing.
    let head = photo_request(client, base, Method::HEAD, id, &sha, None).await;
    assert_eq!((head.status, head.offset), (200, Some(CHUNK_BYTES as u64)));
    let stale = photo_request(client, base, Method::PATCH, id, &sha, Some((0, first))).await;
    assert_eq!((stale.status, stale.offset), (409, Some(CHUNK_BYTES as u64)));
    assert_eq!(code(&stale), ErrorCode::OffsetMismatch);
    let done = upload_photo(client, base, id, &sha, &bytes, head.offset.unwrap()).await;
    assert_eq!(
        (done.status, done.offset),
        (204, Some(bytes.len() as u64)),
        "{}",
        done.text()
    );

    let got = photo_request(client, base, Method::GET, id, &sha, None).await;
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the stored photo is the one sent");
    let head = photo_request(client, base, Method::HEAD, id, &sha, None).await;
    assert_eq!(head.offset, Some(bytes.len() as u64));

    // A retry of the whole upload is a no-op: answered at once, nothing stored twice.
    let again = upload_photo(client, base, id, &sha, &bytes, 0).await;
    assert_eq!((again.status, again.offset), (204, Some(bytes.len() as u64)));
    assert_eq!(count(&server, "photos").await, 1);
    assert_eq!(count(&server, "photo_chunks").await, 0);

    // The same photo on a second report is uploaded for that report (so a hash alone
    // opens nothing) but its bytes are kept once.
    let other = file_with(&server, &mut dana, "dana", 2, vec![named]).await;
    assert_eq!(
        photo_request(client, base, Method::GET, other, &sha, None)
            .await
            .status,
        404,
        "not shown on a report it was not uploaded for"
    );
    let done = upload_photo(client, base, other, &sha, &bytes, 0).await;
    assert_eq!(done.status, 204);
    assert_eq!(count(&server, "photos").await, 1);
    assert_eq!(count(&server, "report_photos").await, 2);
}

async fn photos_that_are_not_what_the_report_names_are_refused_with_a_reason_and_nothing_is_kept(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let base = server.base.as_str();
    let mut dana = person(&server, "dana", Role::Field, "North", 1).await;

    // A document's reference is checked when the report syncs: too large, too wide.
    let real = jpeg(64, 48, 2);
    let good = PhotoRef::of(&real, T0).unwrap();
    let (rita, token, session) = add_user_with_session(&server.store, "rita", Role::Field, &["North"]).await;
    for (n, (bad, why)) in (10u8..).zip([
        (
            PhotoRef {
                size: MAX_PHOTO_BYTES + 1,
                ..good.clone()
            },
            "at most 4 MB",
        ),
        (
            PhotoRef {
                width: 1700,
                ..good.clone()
            },
            "at most 1600 pixels",
        ),
    ]) {
        // Each on a device of its own: a refused report stays on its device.
        let mut report = Report::blank(ReportId::new_v7(T0, [n; 10]), T0, "rita (test)");
        report.title = "Refused".into();
        report.location.place = "Yard".into();
        report.photos = vec![bad];
        let mut device = Device::new(n);
        device.sign_in_as(rita, session, &token);
        device.create_report(&report);
        let error = device.sync(&server.base).await.unwrap_err();
        assert!(error.rejected[0].reason.contains(why), "{error:?}");
    }

    // The bytes are checked when the last of them arrives; refused ones are dropped.
    let text = b"Not a photo at all, just words pretending to be one.".to_vec();
    let lying_text = PhotoRef {
        sha256: app::domain::photo::sha256_hex(&text),
        size: text.len() as u64,
        ..good.clone()
    };
    let wide = jpeg(1700, 40, 3);
    let lying_wide = PhotoRef {
        sha256: app::domain::photo::sha256_hex(&wide),
        size: wide.len() as u64,
        width: 1600,
        height: 40,
        at: T0,
    };
    let other_bytes = jpeg(64, 48, 4);
    let id = file_with(
        &server,
        &mut dana,
        "dana",
        1,
        vec![good.clone(), lying_text.clone(), lying_wide.clone()],
    )
    .await;
    let client = &dana.client;
    for (named, bytes, why) in [
        (&lying_text, &text, "not a JPEG"),
        (&lying_wide, &wide, "1700×40 pixels"),
        (&good, &other_bytes, "not the photo the report names"),
    ] {
        let sent = if named.size == bytes.len() as u64 {
            bytes.clone()
        } else {
            // Same length as named, other bytes.
            let mut b = bytes.clone();
            b.resize(usize::try_from(named.size).unwrap(), 0);
            b
        };
        let answer = upload_photo(client, base, id, &named.sha256, &sent, 0).await;
        assert_eq!(answer.status, 422, "{why}: {}", answer.text());
        assert_eq!(code(&answer), ErrorCode::PhotoRefused);
        assert!(answer.text().contains(why), "{why}: {}", answer.text());
        let head = photo_request(client, base, Method::HEAD, id, &named.sha256, None).await;
        assert_eq!(head.offset, Some(0), "{why}: the refused bytes are dropped");
        assert_eq!(
            photo_request(client, base, Method::GET, id, &named.sha256, None)
                .await
                .status,
            404
        );
    }
    assert_eq!(count(&server, "photos").await, 0);
    assert_eq!(count(&server, "photo_chunks").await, 0);

    // A photo the report does not name, a chunk past the named end, a chunk too large,
    // a request without its offset.
    let unnamed = app::domain::photo::sha256_hex(b"unnamed");
    let answer = photo_request(client, base, Method::PATCH, id, &unnamed, Some((0, &real))).await;
    assert_eq!((answer.status, code(&answer)), (409, ErrorCode::NotNamed));
    let mut long = real.clone();
    long.push(0);
    let answer = photo_request(client, base, Method::PATCH, id, &good.sha256, Some((0, &long))).await;
    assert_eq!((answer.status, code(&answer)), (400, ErrorCode::MalformedRequest));
    let huge = vec![0u8; CHUNK_BYTES + 1];
    let answer = photo_request(client, base, Method::PATCH, id, &good.sha256, Some((0, &huge))).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    let answer = client
        .patch(format!("{base}/api/reports/{id}/photos/{}", good.sha256))
        .body(real.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // From another site: refused before anything is read.
    let answer = client
        .patch(format!("{base}/api/reports/{id}/photos/{}", good.sha256))
        .header("origin", "https://elsewhere.example")
        .header("sec-fetch-site", "cross-site")
        .header("upload-offset", "0")
        .body(real.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert_eq!(count(&server, "photo_chunks").await, 0);
    assert_eq!(count(&server, "photos").await, 0);

    // The real photo still goes through.
    let answer = upload_photo(client, base, id, &good.sha256, &real, 0).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
}

async fn only_people_who_may_hold_the_report_reach_its_photos(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let base = server.base.as_str();
    let mut dana = person(&server, "dana", Role::Field, "North", 1).await;
    let teammate = person(&server, "fran", Role::Field, "North", 2).await;
    let supervisor = person(&server, "sam", Role::Supervisor, "North", 3).await;
    let stranger = person(&server, "kim", Role::Field, "South", 4).await;
    let other_supervisor = person(&server, "kelly", Role::Supervisor, "South", 5).await;
    let signed_out = reqwest::Client::new();

    let bytes = jpeg(80, 60, 5);
    let named = PhotoRef::of(&bytes, T0).unwrap();
    let sha = named.sha256.clone();
    let id = file_with(&server, &mut dana, "dana", 1, vec![named.clone()]).await;

    // Before upload, and for people who may not read the report: nothing, and nothing
    // said about whether it exists. Signed out: sign in.
    for (who, client) in [
        ("stranger", &stranger.client),
        ("other supervisor", &other_supervisor.client),
    ] {
        for method in [Method::HEAD, Method::GET] {
            let answer = photo_request(client, base, method.clone(), id, &sha, None).await;
            assert_eq!(answer.status, 404, "{who} {method}");
        }
        let answer = upload_photo(client, base, id, &sha, &bytes, 0).await;
        assert_eq!(answer.status, 404, "{who} upload");
    }
    let answer = photo_request(&signed_out, base, Method::GET, id, &sha, None).await;
    assert_eq!(answer.status, 401);
    // A teammate may see the report but not add to it.
    let answer = upload_photo(&teammate.client, base, id, &sha, &bytes, 0).await;
    assert_eq!((answer.status, code(&answer)), (403, ErrorCode::NotAllowed));
    assert_eq!(count(&server, "photo_chunks").await, 0);

    assert_eq!(
        upload_photo(&dana.client, base, id, &sha, &bytes, 0).await.status,
        204
    );
    for (who, client, allowed) in [
        ("reporter", &dana.client, true),
        ("teammate", &teammate.client, true),
        ("supervisor", &supervisor.client, true),
        ("stranger", &stranger.client, false),
        ("other supervisor", &other_supervisor.client, false),
    ] {
        let answer = photo_request(client, base, Method::GET, id, &sha, None).await;
        assert_eq!(answer.status == 200, allowed, "{who}: {}", answer.status);
        if allowed {
            assert!(answer.body == bytes);
        }
    }

    // An injury report's photos are as private as its details: the teammate no longer
    // reaches them, the reporter and the supervisor still do.
    dana.device.edit(id, |r| {
        r.category = app::domain::Category::new(app::domain::INJURY_CATEGORY);
    });
    dana.device.sync(&server.base).await.unwrap();
    for (who, client, allowed) in [
        ("reporter", &dana.client, true),
        ("teammate", &teammate.client, false),
        ("supervisor", &supervisor.client, true),
    ] {
        let answer = photo_request(client, base, Method::GET, id, &sha, None).await;
        assert_eq!(answer.status == 200, allowed, "{who}: {}", answer.status);
    }
    // The incident page shows them to the supervisor, not to the teammate.
    let page = |client: &reqwest::Client| {
        let client = client.clone();
        let url = format!("{base}/incidents/{id}");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let photo_src = format!("/api/reports/{id}/photos/{sha}");
    assert!(page(&supervisor.client).await.contains(&photo_src));
    let seen_by_teammate = page(&teammate.client).await;
    assert!(
        seen_by_teammate.contains("Photographed 1"),
        "the teammate still reads the report"
    );
    assert!(!seen_by_teammate.contains(&photo_src));
}

/// What one person has in unfinished uploads is capped: past it, a new chunk is answered
/// 429 (the device keeps the photo and retries), and finishing an upload frees its share.
async fn a_person_with_too_many_unfinished_uploads_is_asked_to_wait(db: Db) {
    let Some(server) = TestServer::start_with(db, |config| {
        config.pending_photo_bytes_per_person = 2 * CHUNK_BYTES;
    })
    .await
    else {
        return;
    };
    let base = server.base.as_str();
    let mut dana = person(&server, "dana", Role::Field, "North", 1).await;
    let photos: Vec<Vec<u8>> = (1..=3).map(|n| jpeg(1200, 900, n)).collect();
    let named: Vec<PhotoRef> = photos.iter().map(|p| PhotoRef::of(p, T0).unwrap()).collect();
    assert!(
        photos.iter().all(|p| p.len() > CHUNK_BYTES),
        "each takes several chunks"
    );
    let id = file_with(&server, &mut dana, "dana", 1, named.clone()).await;
    let client = &dana.client.clone();
    // Two uploads started, one chunk each: the cap is reached.
    for (bytes, photo) in photos.iter().zip(&named).take(2) {
        let answer = photo_request(
            client,
            base,
            Method::PATCH,
            id,
            &photo.sha256,
            Some((0, &bytes[..CHUNK_BYTES])),
        )
        .await;
        assert_eq!(answer.status, 204, "{}", answer.text());
    }
    let third = photo_request(
        client,
        base,
        Method::PATCH,
        id,
        &named[2].sha256,
        Some((0, &photos[2][..CHUNK_BYTES])),
    )
    .await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert_eq!(code(&third), ErrorCode::Unavailable);
    assert!(third.text().contains("not finished"), "{}", third.text());
    // Other people are not held back by Dana's uploads.
    let mut sam = person(&server, "sam", Role::Supervisor, "North", 2).await;
    let theirs = jpeg(300, 200, 9);
    let ref_theirs = PhotoRef::of(&theirs, T0).unwrap();
    let other = file_with(&server, &mut sam, "sam", 2, vec![ref_theirs.clone()]).await;
    let answer = upload_photo(&sam.client.clone(), base, other, &ref_theirs.sha256, &theirs, 0).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    // Finishing one of hers frees its share.
    let answer = photo_request(client, base, Method::HEAD, id, &named[0].sha256, None).await;
    let done = upload_photo(
        client,
        base,
        id,
        &named[0].sha256,
        &photos[0],
        answer.offset.unwrap(),
    )
    .await;
    assert_eq!(done.status, 204, "{}", done.text());
    let third = photo_request(
        client,
        base,
        Method::PATCH,
        id,
        &named[2].sha256,
        Some((0, &photos[2][..CHUNK_BYTES])),
    )
    .await;
    assert_eq!(third.status, 204, "{}", third.text());
}
