//! Headers on every answer: what a browser must not do with the broker's pages (frame them,
//! sniff their type, send their URL, which may hold a code, as a `Referer`), a strict
//! Content-Security-Policy where a page did not set its own, HSTS on an https broker, and
//! `Cache-Control: no-store` on every callback answer and every error.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of answers that are not pages (JSON, redirects, errors of the framework):
/// nothing may load or frame them.
const NOTHING_ALLOWED: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One year; without `includeSubDomains`, which would bind sibling hosts the broker does not
/// run.
const HSTS: &str = "max-age=31536000";

/// The middleware; its state says whether the broker's `public_url` is https.
pub async fn security_headers(State(https): State<bool>, request: Request, next: Next) -> Response {
    let callback = request.uri().path().starts_with("/callback/");
    let mut response = next.run(request).await;
    let failed = response.status().is_client_error() || response.status().is_server_error();
    let headers = response.headers_mut();
    let fixed = |value: &'static str| HeaderValue::from_static(value);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, fixed("nosniff"));
    headers.insert(header::REFERRER_POLICY, fixed("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, fixed("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(fixed(NOTHING_ALLOWED));
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, fixed(HSTS));
    }
    if callback || failed {
        headers.insert(header::CACHE_CONTROL, fixed("no-store"));
    }
    response
}
