//! Signing in and out over HTTP, and finding who each request acts for.
//!
//! * `POST /login` (form: `login`, `password`): checks the password (throttled per login
//!   and per address), starts a session, sets the session cookie, and sends the browser
//!   to `/`. A failure sends it back to `/login` with the reason; nothing says whether the
//!   login exists.
//! * `POST /logout`: revokes the session, clears the cookie, and asks the browser to clear
//!   this site's storage and caches (`Clear-Site-Data`). The app asks first if reports
//!   are unsynced and wipes the device's documents itself as well.
//! * `GET /api/me`: who is signed in and until when, for the device to keep offline.
//! * [`authenticate`]: middleware putting the request's [`Session`] and its
//!   [`Viewer`](app::domain::access::Viewer) in its extensions; pages other than the
//!   sign-in page send people without a session to `/login`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::Me;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;

use crate::AppState;
use crate::accounts::{SESSION_COOKIE, Session, Throttle};

/// Sign-in settings and state shared by the handlers.
#[derive(Debug)]
pub struct SignIn {
    /// How long a session stays valid (also offline) after signing in.
    pub session_ttl: Duration,
    /// Failed attempts, per login and per address.
    pub throttle: Throttle,
    /// Mark the cookie `Secure` (served over TLS).
    pub secure_cookie: bool,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// What the person signs in with.
    pub login: String,
    /// Their password (never logged).
    pub password: String,
}

/// Reads the session token from the request's cookies.
fn session_token(request: &Request) -> Option<&str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|token| !token.is_empty())
}

/// Paths anyone may fetch without signing in: the sign-in page and what it needs, the
/// device pages' shell (outbox, report form, alerts, my actions, drills: it holds no report data,
/// which lives on the device, and the page asks the person to sign in if the device has
/// no session), health checks, and the API (which answers `401` itself).
fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/"
        || path == "/report"
        || path == "/alerts"
        || path == "/actions"
        || path == "/drill"
        || path == "/logout"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/sw.js"
        || path == "/manifest.webmanifest"
        || path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path.starts_with("/icons/")
}

/// Middleware: finds the request's session (if its cookie names a live one) and puts it
/// and its viewer in the request's extensions; sends page requests without one to the
/// sign-in page.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(token) = session_token(&request) {
        match state.store.session(token, state.clock.now()).await {
            Ok(Some(session)) => {
                request.extensions_mut().insert(session.viewer.clone());
                request.extensions_mut().insert(session);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading a session");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server cannot reach its database right now; try again shortly",
                )
                    .into_response();
            }
        }
    }
    let signed_in = request.extensions().get::<Session>().is_some();
    if !signed_in && request.method() == Method::GET && !is_public(request.uri().path()) {
        return Redirect::to("/login").into_response();
    }
    next.run(request).await
}

fn cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request_headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let addr = connect.map(|Extension(ConnectInfo(a))| a.ip());
    let sign_in = &state.sign_in;
    if let Some(wait) = sign_in.throttle.wait(&form.login, addr, Instant::now()) {
        tracing::warn!("sign-in throttled");
        return Redirect::to(&format!("/login?wait={}", wait.as_secs().max(1))).into_response();
    }
    let user = match state.store.check_credentials(&form.login, &form.password).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "checking a sign-in");
            return Redirect::to("/login?error=unavailable").into_response();
        }
    };
    let Some(user) = user else {
        sign_in.throttle.failed(&form.login, addr, Instant::now());
        tracing::info!("sign-in refused");
        return Redirect::to("/login?error=wrong").into_response();
    };
    sign_in.throttle.succeeded(&form.login);
    let agent = request_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown browser");
    match state
        .store
        .create_session(user, agent, state.clock.now(), sign_in.session_ttl)
        .await
    {
        Ok((id, token)) => {
            tracing::info!(user = %user, session = %id, "signed in");
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&token, sign_in.session_ttl, sign_in.secure_cookie),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "starting a session");
            Redirect::to("/login?error=unavailable").into_response()
        }
    }
}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, session: Option<Extension<Session>>) -> Response {
    if let Some(Extension(session)) = session {
        if let Err(e) = state.store.revoke_session(session.id, state.clock.now()).await {
            tracing::error!(error = %e, "revoking a session at sign-out");
            return Redirect::to("/?error=signout").into_response();
        }
        tracing::info!(session = %session.id, "signed out");
    }
    let mut response = Redirect::to("/login?signed_out=1").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        cookie("", Duration::ZERO, state.sign_in.secure_cookie),
    );
    headers.insert(
        header::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    response
}

/// `GET /api/plans`: every response plan, for the device to keep offline.
pub async fn plans(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    session: Option<Extension<Session>>,
) -> Response {
    if session.is_none() {
        return crate::error::signed_out().into_response();
    }
    match state.store.plans().await {
        Ok(plans) => Json(plans).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading response plans");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the response plans are unavailable right now",
            )
                .into_response()
        }
    }
}

/// `GET /api/me`.
pub async fn me(session: Option<Extension<Session>>) -> Response {
    let Some(Extension(session)) = session else {
        return crate::error::signed_out().into_response();
    };
    Json(Me {
        expires_at: session.expires_at,
        session: session.id,
        viewer: session.viewer,
    })
    .into_response()
}

/// The shared sign-in state for [`AppState`].
#[must_use]
pub fn sign_in(session_ttl: Duration, secure_cookie: bool) -> Arc<SignIn> {
    Arc::new(SignIn {
        session_ttl,
        throttle: Throttle::default(),
        secure_cookie,
    })
}
