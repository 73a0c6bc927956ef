//! What the connector keeps between the authorization URI and the callback (held by the host).

use connector_api::ConnectorError;
use serde::{Deserialize, Serialize};

/// The connector session. The PKCE verifier makes it a secret: the host keeps it server-side.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub redirect_uri: String,
    pub code_verifier: String,
    /// Set when the scope asked for `openid`: the id_token must carry it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl Session {
    /// Reads the session handed back by the host; a missing part is `general`, as in Logto.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ConnectorError> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    ConnectorError::general(format!("Cannot find `{name}` from connector session."))
                })
        };
        Ok(Self {
            redirect_uri: field("redirectUri")?,
            code_verifier: field("codeVerifier")?,
            nonce: value
                .get("nonce")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }
}
