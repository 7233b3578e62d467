//! Hardening over real HTTP: security headers and the CSP nonce on every page,
//! cross-site state-changing requests refused without effect, body limits on every route.

use leptos::server_fn::ServerFn;
use muster_tests::{Db, Device, TestServer};

/// A `POST /api/sync` of `body` to `server`, for adding headers to.
fn sync_post(http: &reqwest::Client, server: &TestServer, body: Vec<u8>) -> reqwest::RequestBuilder {
    http.post(format!("{}/api/sync", server.base))
        .header("content-type", "application/json")
        .body(body)
}

/// The nonce of a response's `Content-Security-Policy`, after checking the policy.
fn checked_nonce(response: &reqwest::Response) -> String {
    let headers = response.headers();
    let csp = headers
        .get("content-security-policy")
        .expect("every response has a CSP")
        .to_str()
        .unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("object-src 'none'") && csp.contains("base-uri 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    let start = csp.find("'nonce-").expect("a nonce") + "'nonce-".len();
    let end = start + csp[start..].find('\'').unwrap();
    csp[start..end].to_owned()
}

#[tokio::test]
async fn every_page_has_a_strict_policy_and_every_inline_script_its_nonce() {
    let server = TestServer::start().await;
    let http = muster_tests::signed_in_client();
    let mut nonces = Vec::new();
    for path in ["/", "/report", "/incidents", "/admin/quarantine", "/no-such-page"] {
        let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert!(
            response.headers().get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
        let nonce = checked_nonce(&response);
        let html = response.text().await.unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(
            !scripts.is_empty(),
            "{path} hydrates with an inline module script"
        );
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: <script{tag}>"
            );
        }
        assert!(!html.contains(" style=\""), "{path}: no inline style attributes");
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 5, "a fresh nonce per response");

    // JSON and static answers carry the headers too.
    let response = http.get(format!("{}/healthz", server.base)).send().await.unwrap();
    checked_nonce(&response);
}

#[tokio::test]
async fn behind_tls_pages_ask_for_https_and_the_public_origin_is_accepted() {
    let server = TestServer::start_public(Db::Sqlite, Some("https://muster.example.org/"))
        .await
        .unwrap();
    let http = muster_tests::signed_in_client();
    let response = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let mut device = Device::new(1);
    device.create("Loose handrail", "Stair A");
    let body = serde_json::to_vec(&device.request()).unwrap();
    let response = sync_post(&http, &server, body)
        .header("origin", "https://muster.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cross_site_requests_that_change_state_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let http = muster_tests::signed_in_client();
    let mut device = Device::new(1);
    let id = device.create("Blocked fire exit", "Loading bay");
    let body = serde_json::to_vec(&device.request()).unwrap();
    let host = server.base.trim_start_matches("http://").to_owned();
    let empty = server.snapshot().await;

    let cross_site: [&[(&str, &str)]; 4] = [
        &[("origin", "http://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://evil.example:3000"),
        ],
    ];
    let add_update = format!("{}{}", server.base, app::desk::AddUpdate::PATH);
    for headers in cross_site {
        let mut sync = sync_post(&http, &server, body.clone());
        let mut update = http
            .post(&add_update)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("id={id}&text=forged&audience=team"));
        for (name, value) in headers {
            sync = sync.header(*name, *value);
            update = update.header(*name, *value);
        }
        let refused = sync.send().await.unwrap();
        assert_eq!(refused.status(), 403, "{headers:?}");
        let error: app::protocol::SyncError = refused.json().await.unwrap();
        assert_eq!(error.error, app::protocol::ErrorCode::Forbidden);
        assert!(error.message.starts_with("refused: "), "{}", error.message);
        assert_eq!(update.send().await.unwrap().status(), 403, "{headers:?}");
        assert_eq!(server.snapshot().await, empty, "nothing stored for {headers:?}");
    }

    // The same request from the app's own page (or from no browser at all) is served.
    let own = sync_post(&http, &server, body)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(server.store.load_doc(id).await.unwrap().is_some());
}

#[tokio::test]
async fn every_route_limits_its_body() {
    let server = TestServer::start().await;
    let http = muster_tests::signed_in_client();
    let big = "x".repeat(server::security::FORM_BODY_LIMIT + 1);
    let add_update = format!("{}{}", server.base, app::desk::AddUpdate::PATH);
    let response = http
        .post(&add_update)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("id=0&text={big}&audience=team"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "server functions");
    let response = http
        .post(format!("{}/no-such-route", server.base))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "anything else");
    let response = sync_post(&http, &server, vec![b' '; app::protocol::MAX_REQUEST_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "the sync API");
    assert!(server.snapshot().await.iter().all(|row| !row.starts_with("doc")));
}

#[tokio::test]
async fn even_at_trace_level_the_log_holds_no_report_text() {
    let db = muster_tests::TestDb::new(Db::Sqlite).await.unwrap();
    let server = muster_tests::ServerProcess::start_logging(
        muster_tests::server_bin!(),
        &db.url,
        &db.dir().join("site"),
        "trace",
    )
    .await;
    // Signing in: neither the password nor the session token may be logged.
    let store = db.store().await;
    store
        .create_user(
            server::accounts::NewUser {
                login: "canary".into(),
                name: "Canary Name".into(),
                role: app::domain::access::Role::Field,
                password: "Canary password 7f3a".into(),
                teams: vec!["Canary site".into()],
            },
            muster_tests::T0,
        )
        .await
        .unwrap();
    store.close().await;
    let (_, token) = muster_tests::sign_in(&server.base, "canary", "Canary password 7f3a", "browser")
        .await
        .unwrap();
    assert!(token.len() > 30);
    let mut device = Device::new(1);
    let id = device.create("Canary title 7f3a", "Canary place 7f3a");
    device.edit(id, |r| {
        r.what_happened = "Canary account of what happened 7f3a".into();
        r.people_involved.push("Canary Person 7f3a".into());
    });
    device.add_update(id, "Canary update 7f3a");
    device.sync(&server.base).await.unwrap();
    // A refused request and a supervisor's update through a server function, too.
    let http = muster_tests::signed_in_client();
    let mut broken = serde_json::to_vec(&device.request()).unwrap();
    broken.extend_from_slice(b"Canary trailing 7f3a");
    let refused = muster_tests::post_raw(&http, &server.base, broken).await.unwrap();
    assert_eq!(refused.0, 400);
    let update = http
        .post(format!("{}{}", server.base, app::desk::AddUpdate::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "id={id}&text=Canary%20supervisor%207f3a&audience=reporter"
        ))
        .send()
        .await
        .unwrap();
    assert!(update.status().is_success());
    let page = http
        .get(format!("{}/incidents/{id}", server.base))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("Canary supervisor 7f3a"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let log = server.log();
    assert!(log.contains("sync"), "the log is on: {} bytes", log.len());
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("7f3a") || l.contains(&token) || l.contains(muster_tests::TEST_TOKEN))
        .collect();
    assert!(leaks.is_empty(), "report text in the log:\n{}", leaks.join("\n"));
}

#[tokio::test]
async fn the_csv_export_never_hands_a_spreadsheet_a_formula() {
    let server = TestServer::start().await;
    let mut device = Device::new(1);
    let hostile = ["=cmd|' /C calc'!A0", "+SUM(1,1)", "-2+3", "@A1", "\t=1"];
    let id = device.create(hostile[0], hostile[1]);
    device.edit(id, |r| {
        r.what_happened = hostile[2].into();
        r.immediate_actions = hostile[3].into();
        r.people_involved = vec![hostile[4].into(), "=HYPERLINK(\"http://evil.example\")".into()];
    });
    device.sync(&server.base).await.unwrap();
    let response = muster_tests::signed_in_client()
        .get(format!("{}/export/incidents.csv", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(reader.headers().unwrap().len(), server::export::COLUMNS.len());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    for cell in &rows[0] {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would evaluate: {cell:?}"
        );
    }
    // The text itself is all there, behind the quote.
    assert_eq!(&rows[0][1], "'=cmd|' /C calc'!A0");
    assert_eq!(&rows[0][7], "'+SUM(1,1)");
    // Signed out, there is no export.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/export/incidents.csv", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
}
