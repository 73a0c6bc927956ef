//! The HTTP routes, one module per concern.

mod admin;
mod api;
mod callback;
mod headers;
mod index;
mod sign_in;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::broker::Broker;

pub use admin::{ADMIN_HEADER, ADMIN_HEADER_VALUE, AdminRefusal, ReloadGate, is_loopback};

/// Every route of the broker, each answer with the security headers.
pub fn router(broker: Broker) -> Router {
    let https = broker.config().is_https();
    Router::new()
        .route("/", get(index::index))
        .route("/sign-in/{id}", get(sign_in::sign_in))
        .route(
            "/callback/{id}",
            get(callback::callback_get).post(callback::callback_post),
        )
        .route("/api/connectors", get(api::connectors))
        .route("/healthz", get(api::healthz))
        .route("/admin/reload", post(admin::reload))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            https,
            headers::security_headers,
        ))
        .with_state(broker)
}

async fn not_found() -> Response {
    let body = json!({"error": {"code": "not_found", "message": "There is nothing here."}});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
