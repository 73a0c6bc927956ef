//! `GET /api/connectors` and `GET /healthz`.

use axum::Json;
use axum::extract::State;
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

/// Liveness, with the generations in service (current first).
pub async fn healthz(State(broker): State<Broker>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "generation": broker.current().number,
        "liveGenerations": broker.live_generations(),
        "demo": broker.inner.demo,
    }))
}
