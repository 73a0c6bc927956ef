//! `host-example demo`: the broker with one Hugging Face connector pointed at an embedded Hub
//! sandbox on loopback, so that a newcomer can click through a whole sign-in offline.

use hub_sandbox::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSandbox, SandboxConfig};
use serde_json::json;

use crate::config::{BrokerConfig, ConnectorConfig};

/// The demo's instance id (its routes are `/sign-in/huggingface`, `/callback/huggingface`).
pub const INSTANCE_ID: &str = "huggingface";

/// Starts the sandbox on `127.0.0.1` and an ephemeral port; it stops when dropped.
pub async fn start_hub() -> std::io::Result<HubSandbox> {
    HubSandbox::start(SandboxConfig::default()).await
}

/// One `huggingface-universal` instance with the sandbox's OAuth app, scope `openid profile email`:
/// the demo signs in with OpenID Connect, its id_token verified against the sandbox's keys.
pub fn config(public_url: &str, hub_endpoint: &str) -> BrokerConfig {
    BrokerConfig {
        public_url: public_url.trim_end_matches('/').to_string(),
        connectors: vec![ConnectorConfig {
            id: INSTANCE_ID.into(),
            factory: "huggingface-universal".into(),
            config: json!({
                "clientId": DEFAULT_CLIENT_ID,
                "clientSecret": DEFAULT_CLIENT_SECRET,
                "scope": "openid profile email",
                "endpoint": hub_endpoint,
            }),
        }],
        session_store: None,
        session_prefix: crate::config::DEFAULT_SESSION_PREFIX.into(),
        server: Default::default(),
        sign_in: Default::default(),
        max_pending: crate::config::DEFAULT_MAX_PENDING,
    }
}
