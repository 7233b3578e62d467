//! The built site's static files: content-hashed assets under `/pkg` served from their
//! brotli or gzip copy (whichever the browser accepts) and cached for a year, and the few
//! files with fixed names (service worker, manifest, icons) revalidated on every use.
//!
//! `scripts/build-site` writes the files, their compressed copies and `assets.json` (the
//! hashed names the pages link to, read here once at start-up).

use std::path::Path;

use app::Assets;
use axum::Router;
use axum::http::{HeaderValue, Response, header};
use tower::ServiceBuilder;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// How long a hashed asset may be kept: its name changes whenever its content does.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Files whose name stays across builds, and every page: ask the server each time (a
/// conditional request when the browser has a copy).
pub const REVALIDATE: &str = "no-cache";

/// The files at the site root with fixed names, served with [`REVALIDATE`].
const FIXED: [&str; 2] = ["/sw.js", "/manifest.webmanifest"];

/// Why the site's asset list could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AssetsError {
    path: String,
    message: String,
}

/// The asset names of the site built at `site_root`; the unhashed defaults when no site
/// has been built there (a server run from the tests).
///
/// # Errors
/// When `assets.json` exists but cannot be read or parsed.
pub fn load_assets(site_root: &Path) -> Result<Assets, AssetsError> {
    let path = site_root.join("assets.json");
    let error = |message: String| AssetsError {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| error(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "no built site: pages name unhashed assets");
            Ok(Assets::default())
        }
        Err(e) => Err(error(e.to_string())),
    }
}

/// The routes of the static files under `site_root`.
pub fn routes<S: Clone + Send + Sync + 'static>(site_root: &Path) -> Router<S> {
    let pkg = ServiceBuilder::new()
        .layer(cache_control(immutable))
        .layer(vary_accept_encoding())
        .service(
            ServeDir::new(site_root.join("pkg"))
                .precompressed_br()
                .precompressed_gzip(),
        );
    let icons = ServiceBuilder::new()
        .layer(cache_control(revalidate))
        .service(ServeDir::new(site_root.join("icons")));
    let fixed = FIXED.into_iter().fold(Router::new(), |router, path| {
        router.route_service(
            path,
            ServiceBuilder::new()
                .layer(cache_control(revalidate))
                .layer(vary_accept_encoding())
                .service(
                    ServeFile::new(site_root.join(path.trim_start_matches('/')))
                        .precompressed_br()
                        .precompressed_gzip(),
                ),
        )
    });
    fixed.nest_service("/pkg", pkg).nest_service("/icons", icons)
}

type HeaderFn<B> = fn(&Response<B>) -> Option<HeaderValue>;

/// Sets `Cache-Control` to what `make` says: [`immutable`] or [`revalidate`].
fn cache_control<B>(make: HeaderFn<B>) -> SetResponseHeaderLayer<HeaderFn<B>> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, make)
}

/// [`IMMUTABLE`] on successful answers only: a missing file must not be cached.
fn immutable<B>(res: &Response<B>) -> Option<HeaderValue> {
    res.status()
        .is_success()
        .then(|| HeaderValue::from_static(IMMUTABLE))
}

/// [`REVALIDATE`] on successful answers.
fn revalidate<B>(res: &Response<B>) -> Option<HeaderValue> {
    res.status()
        .is_success()
        .then(|| HeaderValue::from_static(REVALIDATE))
}

/// The answer depends on `Accept-Encoding` (the brotli, gzip or plain copy), so caches
/// must keep them apart.
fn vary_accept_encoding() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::appending(header::VARY, HeaderValue::from_static("accept-encoding"))
}
