//! The built site over real HTTP: hashed assets served from their brotli or gzip copy with
//! `Vary` and a year's immutable caching, fixed-name files and pages revalidated, pages
//! compressed on the fly, and each page linking the bundle of its kind (field or desk).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use muster_tests::{Db, TestServer};

const JS: &[u8] = b"export function hydrate() {} // the field bundle's glue, long enough to compress well";

/// A site as `scripts/build-site` lays it out, with its own file contents so answers can be
/// told apart: each compressed copy is marked, not really compressed, and the server must
/// send it as it is.
fn built_site(root: &Path) -> app::Assets {
    let assets = app::Assets {
        css: "muster-00aa.css".into(),
        field: app::Bundle {
            js: "field-11bb.js".into(),
            wasm: "field_bg-22cc.wasm".into(),
        },
        desk: app::Bundle {
            js: "desk-33dd.js".into(),
            wasm: "desk_bg-44ee.wasm".into(),
        },
    };
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(root.join("icons")).unwrap();
    std::fs::write(pkg.join(&assets.field.js), JS).unwrap();
    std::fs::write(pkg.join(format!("{}.br", assets.field.js)), b"brotli copy").unwrap();
    std::fs::write(pkg.join(format!("{}.gz", assets.field.js)), b"gzip copy").unwrap();
    std::fs::write(pkg.join(&assets.css), b"body { margin: 0 }").unwrap();
    std::fs::write(root.join("sw.js"), b"// service worker").unwrap();
    std::fs::write(root.join("sw.js.br"), b"brotli sw").unwrap();
    std::fs::write(root.join("icons/icon-192.png"), b"png").unwrap();
    std::fs::write(root.join("assets.json"), serde_json::to_vec(&assets).unwrap()).unwrap();
    assets
}

/// A server on SQLite serving a site laid out by [`built_site`] (kept while the folder is).
async fn serving_a_built_site() -> (tempfile::TempDir, app::Assets, TestServer) {
    let site = tempfile::tempdir().unwrap();
    let assets = built_site(site.path());
    let root = site.path().to_owned();
    let server = TestServer::start_with(Db::Sqlite, move |c| c.site_root = root)
        .await
        .unwrap();
    (site, assets, server)
}

/// `path`, as the signed-in tester, accepting `accept` encodings.
async fn fetch(server: &TestServer, path: &str, accept: &str) -> reqwest::Response {
    muster_tests::signed_in_client()
        .get(format!("{}{path}", server.base))
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_assets_come_compressed_and_cached_for_a_year() {
    let (_site, assets, server) = serving_a_built_site().await;
    let path = format!("/pkg/{}", assets.field.js);

    for (accept, encoding, body) in [
        ("gzip, deflate, br", "br", &b"brotli copy"[..]),
        ("gzip", "gzip", b"gzip copy"),
        ("identity", "", JS),
    ] {
        let response = fetch(&server, &path, accept).await;
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(header(&response, "content-encoding"), encoding, "{accept}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(header(&response, "vary").contains("accept-encoding"), "{accept}");
        assert!(
            header(&response, "content-type").starts_with("text/javascript"),
            "{accept}"
        );
        assert_eq!(response.bytes().await.unwrap(), body, "{accept}");
    }

    // A name no build made: not found, and not cached.
    let missing = fetch(&server, "/pkg/field-ffff.js", "br").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "cache-control"), "");

    // Fixed names are asked for again each time.
    let sw = fetch(&server, "/sw.js", "br").await;
    assert_eq!(sw.status(), 200);
    assert_eq!(header(&sw, "cache-control"), "no-cache");
    assert_eq!(header(&sw, "content-encoding"), "br");
    let icon = fetch(&server, "/icons/icon-192.png", "br").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, "cache-control"), "no-cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_revalidated_link_their_bundle_and_come_compressed() {
    let (_site, assets, server) = serving_a_built_site().await;

    for (path, bundle, other) in [
        ("/login", &assets.field, &assets.desk),
        ("/report", &assets.field, &assets.desk),
        ("/", &assets.field, &assets.desk),
        ("/incidents", &assets.desk, &assets.field),
        ("/admin/people", &assets.desk, &assets.field),
    ] {
        let response = fetch(&server, path, "gzip").await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        let body = gzip_text(response).await;
        assert!(body.contains(&format!("/pkg/{}", assets.css)), "{path}");
        assert!(body.contains(&format!("/pkg/{}", bundle.js)), "{path}: {body}");
        assert!(body.contains(&format!("/pkg/{}", bundle.wasm)), "{path}");
        assert!(!body.contains(&other.js) && !body.contains(&other.wasm), "{path}");
        if path == "/admin/people" {
            // The part streamed after the data was read arrived too (a supervisor may not
            // list accounts).
            assert!(body.contains("Could not load people"), "{body}");
        }
    }
}

/// The body of `response`, checked to be gzip-compressed with `Vary`, then decoded.
async fn gzip_text(response: reqwest::Response) -> String {
    assert_eq!(header(&response, "content-encoding"), "gzip");
    assert!(header(&response, "vary").contains("accept-encoding"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&response.bytes().await.unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// A server started without a built site links the unhashed default names; one whose
/// asset list is broken does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_asset_list_stops_the_start() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("assets.json"), b"{ not json").unwrap();
    let config = server::config::Config {
        database_url: "sqlite::memory:".into(),
        site_root: site.path().to_owned(),
        ..server::config::Config::default()
    };
    let error = server::build(&config).await.unwrap_err();
    assert!(error.to_string().contains("assets.json"), "{error}");
}

/// The field bundle routes exactly the field pages, each a page of the whole app, so every
/// field page hydrates with the field bundle and every other page loads the desk's.
#[test]
fn the_field_bundle_routes_exactly_the_field_pages() {
    let paths = |routes: Vec<leptos_axum::AxumRouteListing>| -> BTreeSet<String> {
        routes.iter().map(|r| r.path().to_owned()).collect()
    };
    let field = paths(leptos_axum::generate_route_list(app::FieldApp));
    let all = paths(leptos_axum::generate_route_list(app::App));
    let named: BTreeSet<String> = app::FIELD_PATHS.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(field, named);
    assert!(field.is_subset(&all));
    assert!(all.len() > field.len(), "the desk has pages of its own");
    for path in &all {
        assert_eq!(app::is_field_path(path), field.contains(path), "{path}");
    }
}

/// In demo mode the sign-in page lists the demo accounts, in its HTML and in the data the
/// page hydrates from (so the browser shows the same table without asking again);
/// otherwise it lists none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_lists_the_demo_accounts_only_in_demo_mode() {
    let demo = TestServer::start_with(Db::Sqlite, |c| c.demo = true)
        .await
        .unwrap();
    let page = fetch(&demo, "/login", "identity").await.text().await.unwrap();
    assert!(page.contains("Demo accounts"), "{page}");
    for (login, password, ..) in server::demo::DEMO_USERS {
        assert!(page.contains(&format!("<td>{login}")), "{login}: {page}");
        assert!(page.contains(&format!("<td>{password}")), "{login}: {page}");
        let shared = format!("\\\"login\\\":\\\"{login}\\\"");
        assert!(page.contains(&shared), "{login} is in the hydration data: {page}");
    }

    let plain = TestServer::start_on(Db::Sqlite).await.unwrap();
    let page = fetch(&plain, "/login", "identity").await.text().await.unwrap();
    assert!(!page.contains("Demo accounts"), "{page}");
}
