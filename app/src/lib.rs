//! Muster's shared core, compiled into both the server (feature `ssr`) and the browser
//! (feature `hydrate`).
//!
//! * [`domain`]: incident reports, severity, workflow: pure rules, no IO.
//! * [`mod@document`]: the one definition of the report's Automerge document.
//! * [`protocol`]: the versioned device ↔ server sync messages.
//! * [`intake`]: uploaded Automerge bytes walked and bounded before Automerge reads them.
//! * [`field`]: the port through which pages reach the device (storage, sync, GPS).
//! * [`connectivity`]: whether the device can reach the server, and when it retries.
//! * [`desk`]: server functions for supervisors, and the port the server implements.
//! * [`pages`]: the Leptos pages, server-rendered and hydrated.
//!
//! Data comes in from forms (field pages) and server functions (desk pages); it leaves
//! through the [`field::Device`] port and server-function responses.

#![recursion_limit = "256"]

pub mod admin;
pub mod connectivity;
pub mod desk;
pub mod document;
pub mod domain;
pub mod drills;
pub mod error;
pub mod field;
pub mod intake;
pub mod merge;
pub mod pages;
pub mod protocol;
pub mod sync;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{any_nested_route::IntoAnyNestedRoute, path};

use crate::pages::{
    AlertsPage, CategoriesPage, DrillBoardPage, DrillPage, DrillRunPage, ElsewherePage, IncidentListPage,
    IncidentPage, MyActionsPage, NotFound, OutboxPage, PeoplePage, PlansPage, QuarantinePage, ReportFormPage,
    SignInPage, SyncBar, WebhooksPage,
};

/// The paths of the field pages: the pages a phone opens, served with the field bundle
/// (see [`FieldApp`]). Every other page is served with the desk bundle ([`App`]).
pub const FIELD_PATHS: [&str; 6] = ["/", "/report", "/actions", "/alerts", "/drill", "/login"];

/// Whether `path` is a field page's, so its HTML loads the field bundle.
#[must_use]
pub fn is_field_path(path: &str) -> bool {
    FIELD_PATHS.contains(&path)
}

/// The file names of one build's assets under `/pkg`, which carry a content hash. Written
/// by `scripts/build-site` as `assets.json` in the site root, read once by the server.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assets {
    /// The stylesheet.
    pub css: String,
    /// The phone's bundle: the field pages only.
    pub field: Bundle,
    /// The desk's bundle: every page.
    pub desk: Bundle,
}

/// One WASM bundle: its JavaScript glue and its module.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bundle {
    /// The JavaScript module that loads the WASM and exports `hydrate`.
    pub js: String,
    /// The WASM module.
    pub wasm: String,
}

impl Default for Assets {
    /// Unhashed names, for a server run without a built site (the tests).
    fn default() -> Self {
        Self {
            css: "muster.css".to_owned(),
            field: Bundle {
                js: "field.js".to_owned(),
                wasm: "field_bg.wasm".to_owned(),
            },
            desk: Bundle {
                js: "desk.js".to_owned(),
                wasm: "desk_bg.wasm".to_owned(),
            },
        }
    }
}

/// The HTML document around the app, rendered on the server: the stylesheet, and the
/// field or the desk bundle depending on the page (the [`Assets`] in context name them).
pub fn shell(_options: LeptosOptions) -> impl IntoView {
    let assets = use_context::<Assets>().unwrap_or_default();
    let path = current_path();
    let bundle = if is_field_path(&path) {
        assets.field
    } else {
        assets.desk
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="stylesheet" href=format!("/pkg/{}", assets.css) />
                <BundleScripts bundle />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="icon" href="/icons/icon-192.png" />
                <meta name="theme-color" content="#1f4e79" />
                <title>"Muster"</title>
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The path of the page being rendered (on the server, from the request).
fn current_path() -> String {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .map(|parts| parts.uri.path().to_owned())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        String::new()
    }
}

/// Loads one bundle and hydrates the page with it, starting once the page has painted: on
/// a slow link the page's own HTML and style get the bandwidth first, so the form shows
/// while the bundle downloads. A page opened in the background starts at once (it paints
/// nothing until shown). The inline script carries this response's CSP nonce.
#[component]
fn BundleScripts(bundle: Bundle) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce();
    let js = format!("/pkg/{}", bundle.js);
    let wasm = format!("/pkg/{}", bundle.wasm);
    let script = format!(
        "const load = () => import(\"{js}\").then(m => m.default({{ module_or_path: \"{wasm}\" }}).then(() => m.hydrate()));\n\
         if (document.visibilityState === \"visible\") requestAnimationFrame(() => setTimeout(load, 0)); else load();"
    );
    view! { <script type="module" nonce=nonce>{script}</script> }
}

/// The frame of every page: the router, the sync bar and `<main>` around the routes. The
/// head is the [`shell`]'s, rendered on the server only.
#[component]
fn Frame(children: Children) -> impl IntoView {
    let _ = field::use_field_state();
    view! {
        <Router>
            <SyncBar />
            <main id="main">{children()}</main>
        </Router>
    }
}

/// The whole app, every page: what the server renders, and the desk bundle.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Frame>
            <Routes fallback=NotFound>
                <FieldRoutes />
                <Route path=path!("/incidents") view=IncidentListPage />
                <Route path=path!("/incidents/:id") view=IncidentPage />
                <Route path=path!("/drills") view=DrillBoardPage />
                <Route path=path!("/drills/:id") view=DrillRunPage />
                <Route path=path!("/admin/webhooks") view=WebhooksPage />
                <Route path=path!("/admin/plans") view=PlansPage />
                <Route path=path!("/admin/categories") view=CategoriesPage />
                <Route path=path!("/admin/quarantine") view=QuarantinePage />
                <Route path=path!("/admin/people") view=PeoplePage />
            </Routes>
        </Frame>
    }
}

/// The field pages only ([`FIELD_PATHS`]): the phone's bundle. The same frame and the same
/// page components as [`App`], so it hydrates what the server rendered. A link to any other
/// page loads that page from the server, with the desk bundle.
#[component]
pub fn FieldApp() -> impl IntoView {
    view! {
        <Frame>
            <Routes fallback=ElsewherePage>
                <FieldRoutes />
            </Routes>
        </Frame>
    }
}

/// The field pages' routes ([`FIELD_PATHS`]), in both apps.
#[component(transparent)]
fn FieldRoutes() -> impl leptos_router::MatchNestedRoutes + Clone {
    view! {
        <Route path=path!("/") view=OutboxPage />
        <Route path=path!("/report") view=ReportFormPage />
        <Route path=path!("/actions") view=MyActionsPage />
        <Route path=path!("/alerts") view=AlertsPage />
        <Route path=path!("/drill") view=DrillPage />
        <Route path=path!("/login") view=SignInPage />
    }
    .into_inner()
    // One type with and without `--cfg erase_components` (which the build sets).
    .into_any_nested_route()
}
