//! Muster's server: serves the Leptos app (SSR + hydration), accepts device syncs at
//! `POST /api/sync`, merges them into the stored Automerge documents and keeps the SQL
//! projection that supervisor pages read.
//!
//! Data path: device → [`http::sync`] (admits, decodes) → [`sync::Exchange`] (bounds,
//! caps, access) → [`app::merge::merge_push_checked`] (pure, gated) →
//! [`sync::Committer`] (group commit through [`db::Store::commit_together`]: documents,
//! projection, feed sequence and what the device holds, in one transaction) →
//! [`desk::Desk`] → supervisor pages; and back to devices through the feed in the same
//! exchange.
//!
//! `main.rs` only calls [`cli::main`], which reads configuration and calls [`build`] and
//! [`serve`]; tests do the same with a temporary database and port 0.
//!
//! Several instances: run N processes with the same PostgreSQL `DATABASE_URL` behind any
//! load balancer, no stickiness needed. They share nothing but the database: merges of one
//! report serialise on its row lock (and merge again if they raced), new documents on the
//! unique key, feed numbers on the counter row. `/readyz` says the database answers,
//! `/healthz` that the process is up; SIGTERM drains syncs in flight. SQLite is for one
//! instance.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod db;
pub mod demo;
pub mod desk;
pub mod drills;
pub mod error;
pub mod export;
pub mod http;
pub mod photos;
pub mod security;
pub mod signin;
pub mod site;
pub mod sync;
pub mod webhook;

use std::convert::Infallible;
use std::sync::Arc;

use app::desk::DeskHandle;
use app::{App, shell};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, header};
use axum::routing::{get, head, patch, post};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Merges allocate and free many short-lived buffers on several threads at once; with
/// mimalloc instead of glibc's allocator a sync costs less CPU (see the sync benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Leptos rendering options (asset paths).
    pub leptos_options: LeptosOptions,
    /// The database.
    pub store: db::Store,
    /// How the server is reached (TLS, public origin), for security headers and checks.
    pub policy: Arc<security::Policy>,
    /// Session lifetime and the sign-in throttle.
    pub sign_in: Arc<signin::SignIn>,
    /// In demo mode, the demo accounts (shown on the sign-in page).
    pub demo: Option<app::pages::DemoMode>,
    /// Whether an outgoing webhook is configured.
    pub webhook: bool,
    /// The sync slots (see [`admission`]).
    pub syncs: Arc<admission::Syncs>,
    /// The server's side of sync.
    pub sync: sync::Exchange,
    /// The one writer of documents (sync, desk, demo).
    pub committer: sync::Committer,
    /// The clock everything stamps times from.
    pub clock: clock::SharedClock,
    /// The built site's hashed asset names, which every page links to.
    pub assets: app::Assets,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] db::DbError),
    /// The demo could not be seeded.
    #[error("seeding the demo: {0}")]
    Demo(#[from] demo::DemoError),
    /// The built site's asset list could not be read.
    #[error("the built site: {0}")]
    Site(#[from] site::AssetsError),
}

/// A ready-to-serve server.
#[derive(Debug)]
pub struct Muster {
    /// The router with every route and layer.
    pub router: Router,
    /// The store, for tests and tools.
    pub store: db::Store,
    /// The one writer of documents, for tests and tools.
    pub committer: sync::Committer,
    /// The webhook deliverer, if a webhook is configured (runs until aborted or the
    /// process ends).
    pub deliverer: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the database (running migrations), seeds demo data if asked, builds the router.
pub async fn build(config: &Config) -> Result<Muster, StartError> {
    build_with_clock(config, clock::system()).await
}

/// [`build`], with times from `clock`.
pub async fn build_with_clock(config: &Config, clock: clock::SharedClock) -> Result<Muster, StartError> {
    let assets = site::load_assets(&config.site_root)?;
    let store = db::Store::open(&config.database_url).await?;
    let committer = sync::Committer::new(store.clone());
    if config.demo {
        let added = demo::seed(&committer, clock.now()).await?;
        tracing::info!(added, "demo incidents seeded");
    }
    let leptos_options = LeptosOptions::builder()
        .output_name("muster")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .env(leptos::config::Env::PROD)
        .build();
    let public_origin = config
        .public_url
        .as_ref()
        .map(|url| url.trim_end_matches('/').to_owned());
    let tls = public_origin
        .as_deref()
        .is_some_and(|o| o.starts_with("https://"));
    let state = AppState {
        leptos_options,
        store: store.clone(),
        policy: Arc::new(security::Policy { tls, public_origin }),
        sign_in: signin::sign_in(config.session_ttl, tls),
        demo: config.demo.then(demo::accounts),
        webhook: config.webhook.is_some(),
        syncs: Arc::new(admission::Syncs::new(
            syncs_at_once(),
            config.sync_body_idle,
            config.bytes_per_person_per_day,
            config.pending_photo_bytes_per_person,
        )),
        sync: sync::Exchange::new(
            store.clone(),
            committer.clone(),
            Arc::clone(&clock),
            config.bytes_per_person_per_day,
        ),
        committer,
        clock: Arc::clone(&clock),
        assets,
    };
    let deliverer = config
        .webhook
        .clone()
        .map(|webhook| webhook::spawn(store.clone(), webhook, Arc::clone(&clock)));
    Ok(Muster {
        committer: state.committer.clone(),
        router: router(state),
        store,
        deliverer,
    })
}

/// Every route: the sync API, health, the Leptos pages and server functions, static files;
/// every response gets the security headers, every state-changing request the same-origin
/// check, every body a limit (the sync API's own, [`security::FORM_BODY_LIMIT`] elsewhere).
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let desk = DeskHandle(Arc::new(
        desk::Desk::new(state.committer.clone(), Arc::clone(&state.clock)).with_webhook(state.webhook),
    ));
    let people = app::admin::AdminHandle(Arc::new(admin::Admin::new(
        state.store.clone(),
        Arc::clone(&state.clock),
    )));
    let drills = app::drills::DrillHandle(Arc::new(drills::Drills::new(
        state.store.clone(),
        Arc::clone(&state.clock),
    )));
    let options = state.leptos_options.clone();
    let demo_mode = state.demo.clone();
    let assets = state.assets.clone();
    let context = move || {
        provide_context(assets.clone());
        provide_context(desk.clone());
        provide_context(people.clone());
        provide_context(drills.clone());
        if let Some(demo) = &demo_mode {
            provide_context(demo.clone());
        }
        security::provide_nonce();
    };
    let api = api_routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler));
    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, context.clone(), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context, shell,
        ))
        .layer(RequestBodyLimitLayer::new(security::FORM_BODY_LIMIT))
        // Pages and server-function answers are made per request (and per person): the
        // browser asks again each time, and gets them compressed on the fly. The encoder
        // does not flush while a streamed page waits for data, so a desk page arrives
        // whole once its data is read (milliseconds), not in parts.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static(site::REVALIDATE),
        ))
        .layer(CompressionLayer::new());
    let site_root = std::path::PathBuf::from(state.leptos_options.site_root.as_ref());
    api.merge(site::routes(&site_root))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            signin::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.policy),
            security::guard,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// One route outside Leptos (the sync API, sign-in, health), with the method it answers.
#[derive(Debug)]
pub struct ApiRoute {
    /// The path.
    pub path: &'static str,
    /// The one method it answers.
    pub method: axum::http::Method,
    /// Its handler, with its own layers.
    pub handler: axum::routing::MethodRouter<AppState>,
}

/// A photo of a report: its upload (`HEAD`, `PATCH`) and its bytes (`GET`).
pub const PHOTO_PATH: &str = "/api/reports/{id}/photos/{sha256}";

/// Every route outside Leptos. The router is built from this list, and the access-control
/// test checks each of them against its matrix, so a new route cannot skip the matrix.
#[must_use]
pub fn api_routes() -> Vec<ApiRoute> {
    use axum::http::Method;
    let route = |path, method, handler| ApiRoute {
        path,
        method,
        handler,
    };
    vec![
        route(
            "/api/sync",
            Method::POST,
            // The handler admits the request (session, then the person's count, then the
            // body's share of memory), reads the body, then takes a merge slot: see
            // `admission`. The whole exchange may not outlast a device's longest deadline.
            post(http::sync).layer::<_, Infallible>(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                admission::REQUEST_LIMIT,
            )),
        ),
        route(PHOTO_PATH, Method::HEAD, head(photos::progress)),
        route(
            PHOTO_PATH,
            Method::PATCH,
            patch(photos::upload)
                // Enforced by the handler's body extractor, which answers 413 in JSON.
                .layer::<_, Infallible>(DefaultBodyLimit::max(photos::MAX_CHUNK_BODY)),
        ),
        route(PHOTO_PATH, Method::GET, get(photos::fetch)),
        route("/api/me", Method::GET, get(signin::me)),
        route("/api/plans", Method::GET, get(signin::plans)),
        route("/export/incidents.csv", Method::GET, get(export::incidents_csv)),
        route("/login", Method::POST, post(signin::login)),
        route("/logout", Method::POST, post(signin::logout)),
        route("/healthz", Method::GET, get(http::healthz)),
        route("/readyz", Method::GET, get(http::readyz)),
    ]
}

/// How many syncs are decoded and merged at once: eight per core, so merges (CPU)
/// overlap other requests' database round trips and each group commit gathers several
/// requests. Bodies waiting for a slot are bounded by the body budget (see `admission`).
fn syncs_at_once() -> usize {
    8 * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
