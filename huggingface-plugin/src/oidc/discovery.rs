//! `{endpoint}/.well-known/openid-configuration`: where the provider publishes its keys.

use connector_api::{ConnectorError, ErrorCode};
use serde::Deserialize;
use url::Url;

use crate::config::{Config, provider_url};
use crate::constants::DISCOVERY_PATH;
use crate::http::{self, Reply, Step};
use crate::scrub::Scrubber;

/// The part of the discovery document the connector uses.
#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
}

/// Fetches the discovery document and returns its `jwks_uri`, after checking that the document
/// speaks for this endpoint (OpenID Connect Discovery §4.3) and that the URI is one we may call:
/// on the endpoint's origin, so that a document cannot send the connector anywhere else.
pub async fn jwks_uri(config: &Config, held: Scrubber) -> Result<Url, ConnectorError> {
    let request = http::client()
        .get(config.url(DISCOVERY_PATH))
        .header(reqwest::header::ACCEPT, "application/json");
    let reply = http::send(config, request, Step::Discovery, held).await?;
    let document: Document = match reply.status.as_u16() {
        200..=299 => reply.json()?,
        429 => return Err(reply.rate_limited()),
        _ => return Err(reply.unexpected_status()),
    };
    if document.issuer.trim_end_matches('/') != config.endpoint {
        return Err(invalid(
            "issuer",
            format!(
                "issuer `{}` is not the endpoint `{}`",
                reply.quote(&document.issuer),
                config.endpoint
            ),
        ));
    }
    checked_jwks_uri(config, &reply, &document.jwks_uri)
}

fn checked_jwks_uri(config: &Config, reply: &Reply, text: &str) -> Result<Url, ConnectorError> {
    let url = provider_url(text)
        .map_err(|e| invalid("jwks_uri", format!("jwks_uri {}", reply.quote(&e))))?;
    match config.is_endpoint_origin(&url) {
        true => Ok(url),
        false => Err(invalid(
            "jwks_uri",
            format!(
                "jwks_uri is not on the endpoint's origin `{}`",
                config.endpoint
            ),
        )),
    }
}

/// `invalid_response` naming the document's `field`.
fn invalid(field: &str, what: String) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidResponse,
        format!("{}: {what}", Step::Discovery),
    )
    .with_data(serde_json::json!({ "field": field }))
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_jwks_uri_on_the_endpoint_s_origin_is_accepted() {
        let config =
            Config::parse(json!({"clientId": "i", "endpoint": "https://hub.example/base"}))
                .unwrap();
        let reply = Reply::for_test(Step::Discovery, StatusCode::OK, Default::default(), vec![]);
        let check = |uri: &str| checked_jwks_uri(&config, &reply, uri);
        assert_eq!(
            check("https://hub.example/oauth/jwks").unwrap().as_str(),
            "https://hub.example/oauth/jwks"
        );
        assert!(
            check("https://hub.example:443/keys").is_ok(),
            "the default port"
        );
        for elsewhere in [
            "https://other.example/oauth/jwks",
            "https://hub.example:8443/oauth/jwks",
            "https://keys.hub.example/oauth/jwks",
            "http://localhost/oauth/jwks",
        ] {
            let e = check(elsewhere).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidResponse, "{elsewhere}");
            assert_eq!(e.data, Some(json!({"field": "jwks_uri"})), "{elsewhere}");
            assert!(
                e.message
                    .contains("jwks_uri is not on the endpoint's origin"),
                "{e}"
            );
            assert!(!e.message.contains(elsewhere), "{e}");
        }
        let e = check("not a url").unwrap_err();
        assert_eq!(e.data, Some(json!({"field": "jwks_uri"})));
    }
}
