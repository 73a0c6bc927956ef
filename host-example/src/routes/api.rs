//! `GET /api/connectors` and `GET /healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::broker::Broker;

/// The configured connectors of the current generation: instance id, the plugin's metadata and
/// which build serves it.
pub async fn connectors(State(broker): State<Broker>) -> Json<Value> {
    let generation = broker.current();
    let connectors: Vec<Value> = generation
        .instances
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "factory": i.metadata.id,
                "metadata": i.metadata,
                "build": {
                    "file": i.library.source.file_name().map(|n| n.to_string_lossy()),
                    "sha256": i.library.sha256,
                    "apiVersion": i.library.plugin.api_version(),
                },
            })
        })
        .collect();
    Json(json!({"generation": generation.number, "connectors": connectors}))
}

/// Liveness, with the generations in service (current first) and the pending sign-in store:
/// 200 `{"status": "ok", "store": "memory"|"redis", …}`, or 503 `{"status": "degraded",
/// "store": "unreachable", …}` while a shared store does not answer (sign-ins and callbacks
/// then answer 503 too, until it is back).
pub async fn healthz(State(broker): State<Broker>) -> Response {
    let store = broker.store();
    let (status, health, store_state) = match store.check().await {
        Ok(()) => (StatusCode::OK, "ok", store.kind()),
        Err(e) => {
            tracing::warn!(error = ?e.to_string(), "health check: the pending sign-in store is unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "degraded", "unreachable")
        }
    };
    let body = json!({
        "status": health,
        "store": store_state,
        "generation": broker.current().number,
        "liveGenerations": broker.live_generations(),
        "demo": broker.inner.demo,
    });
    (status, Json(body)).into_response()
}
