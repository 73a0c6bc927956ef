//! The HTTP routes, one module per concern.

mod admin;
mod api;
mod callback;
mod index;
mod sign_in;

use axum::Router;
use axum::routing::{get, post};

use crate::broker::Broker;

pub use admin::is_loopback;

/// Every route of the broker.
pub fn router(broker: Broker) -> Router {
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
        .with_state(broker)
}
