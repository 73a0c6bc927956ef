//! `{endpoint}/.well-known/openid-configuration`: where the provider publishes its keys.

use connector_api::{ConnectorError, ErrorCode};
use serde::Deserialize;

use crate::config::{Config, provider_url};
use crate::constants::DISCOVERY_PATH;
use crate::http::{self, Step};

/// The part of the discovery document the connector uses.
#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
}

/// Fetches the discovery document and returns its `jwks_uri`, after checking that the document
/// speaks for this endpoint (OpenID Connect Discovery §4.3) and that the URI is one we may call.
pub async fn jwks_uri(config: &Config) -> Result<String, ConnectorError> {
    let request = http::client()
        .get(config.url(DISCOVERY_PATH))
        .header(reqwest::header::ACCEPT, "application/json");
    let reply = http::send(request, Step::Discovery, config.timeout).await?;
    let document: Document = match reply.status.as_u16() {
        200..=299 => reply.json()?,
        429 => return Err(reply.rate_limited()),
        _ => return Err(reply.unexpected_status()),
    };
    let invalid = |what: String| {
        ConnectorError::new(
            ErrorCode::InvalidResponse,
            format!("{}: {what}", Step::Discovery),
        )
    };
    if document.issuer.trim_end_matches('/') != config.endpoint {
        return Err(invalid(format!(
            "issuer `{}` is not the endpoint `{}`",
            http::clean(&document.issuer),
            config.endpoint
        )));
    }
    provider_url(&document.jwks_uri)
        .map(String::from)
        .map_err(|e| invalid(format!("jwks_uri {}", http::clean(&e))))
}
