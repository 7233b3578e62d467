//! Defences every request and response goes through: response security headers (a strict
//! Content-Security-Policy with a fresh nonce per response), refusal of cross-site
//! state-changing requests, and request body limits.
//!
//! The nonce is made here, handed to Leptos through the request's extensions (see
//! [`provide_nonce`]) so the hydration scripts it renders carry it, and put in the
//! `Content-Security-Policy` header of the same response. No inline script runs without
//! it; WebAssembly compiles under `'wasm-unsafe-eval'`, nothing else is evaluated.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// The largest body accepted by anything but `POST /api/sync` (forms, server functions):
/// a report's fields are a few kilobytes at most.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// This response's CSP nonce, in the request's extensions.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

/// How the server is reached, for the headers that depend on it.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Served over TLS (`MUSTER_PUBLIC_URL` is `https://…`): send HSTS.
    pub tls: bool,
    /// The public origin (`https://muster.example.org`), also accepted as `Origin`.
    pub public_origin: Option<String>,
}

/// A nonce: 128 random bits from the operating system, URL-safe base64.
///
/// # Panics
/// If the operating system has no randomness to give, which makes serving pages unsafe.
#[must_use]
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The Content-Security-Policy for a response whose inline scripts carry `nonce`.
#[must_use]
pub fn content_security_policy(nonce: &str) -> String {
    [
        "default-src 'self'".to_owned(),
        format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        "style-src 'self'".to_owned(),
        "img-src 'self' data: blob:".to_owned(),
        "connect-src 'self'".to_owned(),
        "worker-src 'self'".to_owned(),
        "manifest-src 'self'".to_owned(),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}

/// Leptos context: render this request's inline scripts with its nonce (the one in the
/// response header). Call from the router's additional-context closure.
pub fn provide_nonce() {
    let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Middleware: refuses cross-site state-changing requests, then sets the security
/// headers on whatever the inner service answers.
pub async fn guard(State(policy): State<Arc<Policy>>, mut request: Request, next: Next) -> Response {
    if changes_state(request.method())
        && let Err(reason) = same_origin(request.headers(), policy.public_origin.as_deref())
    {
        tracing::warn!(method = %request.method(), path = request.uri().path(), reason, "cross-site request refused");
        return refuse_cross_site(request.uri().path(), reason);
    }
    let nonce = new_nonce();
    request
        .extensions_mut()
        .insert(CspNonce(Arc::from(nonce.as_str())));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_SECURITY_POLICY, &content_security_policy(&nonce));
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("permissions-policy"),
        "geolocation=(self), camera=(self), microphone=(), payment=(), usb=()",
    );
    if policy.tls {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a state-changing request comes from this site's own pages. Browsers say where
/// a request comes from (`Sec-Fetch-Site`, and `Origin` on every cross-origin and every
/// POST request); a request with neither is not from a browser page, so it carries no
/// ambient credentials another site could abuse.
fn same_origin(headers: &axum::http::HeaderMap, public_origin: Option<&str>) -> Result<(), &'static str> {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(&HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => Err("the request came from another site"),
        };
    }
    let Some(origin) = text(&header::ORIGIN) else {
        return Ok(());
    };
    if public_origin.is_some_and(|public| public.trim_end_matches('/') == origin) {
        return Ok(());
    }
    let host = text(&header::HOST).ok_or("the request names no host")?;
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("the request came from an opaque origin")?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("the request came from another origin")
    }
}

fn refuse_cross_site(path: &str, reason: &'static str) -> Response {
    let message = format!("refused: {reason}; open Muster itself and try again");
    if path.starts_with("/api/") {
        let body = app::protocol::SyncError {
            error: app::protocol::ErrorCode::Forbidden,
            message,
            rejected: Vec::new(),
        };
        (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
    } else {
        (StatusCode::FORBIDDEN, Body::from(message)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn only_same_origin_browsers_and_non_browsers_may_change_state() {
        let allowed: &[&[(&str, &str)]] = &[
            &[],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            &[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")],
            &[
                ("host", "muster.example.org"),
                ("origin", "https://Muster.example.org"),
            ],
        ];
        for pairs in allowed {
            assert_eq!(same_origin(&headers(pairs), None), Ok(()), "{pairs:?}");
        }
        let refused: &[&[(&str, &str)]] = &[
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000"),
            ],
            &[("host", "127.0.0.1:3000"), ("origin", "http://evil.example")],
            &[("host", "127.0.0.1:3000"), ("origin", "null")],
            &[("origin", "http://127.0.0.1:3000")],
        ];
        for pairs in refused {
            assert!(same_origin(&headers(pairs), None).is_err(), "{pairs:?}");
        }
        // Behind a proxy that rewrites Host, the configured public origin is accepted.
        let proxied = headers(&[
            ("host", "10.0.0.5:3000"),
            ("origin", "https://muster.example.org"),
        ]);
        assert!(same_origin(&proxied, None).is_err());
        assert_eq!(same_origin(&proxied, Some("https://muster.example.org/")), Ok(()));
    }

    #[test]
    fn the_policy_allows_no_inline_code_but_the_nonce_and_wasm() {
        let nonce = new_nonce();
        assert_eq!(nonce.len(), 22, "128 bits in URL-safe base64");
        assert_ne!(nonce, new_nonce());
        let csp = content_security_policy(&nonce);
        assert!(csp.contains(&format!("'nonce-{nonce}'")));
        assert!(csp.contains("'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(!csp.contains("'unsafe-eval'"));
    }
}
