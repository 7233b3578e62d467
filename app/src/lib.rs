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
pub mod error;
pub mod field;
pub mod intake;
pub mod merge;
pub mod pages;
pub mod protocol;
pub mod sync;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::pages::{
    AlertsPage, CategoriesPage, IncidentListPage, IncidentPage, MyActionsPage, NotFound, OutboxPage,
    PeoplePage, PlansPage, QuarantinePage, ReportFormPage, SignInPage, SyncBar, WebhooksPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The app: the sync bar on every page, and the routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let _ = field::use_field_state();
    view! {
        <Stylesheet id="muster" href="/pkg/muster.css" />
        <Link rel="manifest" href="/manifest.webmanifest" />
        <Link rel="icon" href="/icons/icon-192.png" />
        <Meta name="theme-color" content="#1f4e79" />
        <Title text="Muster" />
        <Router>
            <SyncBar />
            <main id="main">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=OutboxPage />
                    <Route path=path!("/report") view=ReportFormPage />
                    <Route path=path!("/incidents") view=IncidentListPage />
                    <Route path=path!("/incidents/:id") view=IncidentPage />
                    <Route path=path!("/actions") view=MyActionsPage />
                    <Route path=path!("/alerts") view=AlertsPage />
                    <Route path=path!("/admin/webhooks") view=WebhooksPage />
                    <Route path=path!("/admin/plans") view=PlansPage />
                    <Route path=path!("/admin/categories") view=CategoriesPage />
                    <Route path=path!("/admin/quarantine") view=QuarantinePage />
                    <Route path=path!("/admin/people") view=PeoplePage />
                    <Route path=path!("/login") view=SignInPage />
                </Routes>
            </main>
        </Router>
    }
}
