//! The authorization-code exchange at `{endpoint}/oauth/token`.

use connector_api::{ConnectorError, ErrorCode};
use serde::Deserialize;

use crate::config::Config;
use crate::constants::TOKEN_PATH;
use crate::http::{self, Reply, Step};
use crate::secret::Secret;
use crate::session::Session;

/// Hugging Face's token response; only what the sign-in needs is required.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
}

/// An OAuth error body (RFC 6749 §5.2).
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// POSTs the code with the PKCE verifier, authenticating the client with HTTP Basic.
pub async fn exchange_code(
    config: &Config,
    session: &Session,
    code: &Secret,
) -> Result<TokenResponse, ConnectorError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", session.redirect_uri.as_str()),
        ("code_verifier", session.code_verifier.as_str()),
    ];
    let request = http::client()
        .post(config.url(TOKEN_PATH))
        .basic_auth(&config.client_id, Some(config.client_secret.expose()))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form);
    let reply = http::send(request, Step::Token, config.timeout).await?;
    match reply.status.as_u16() {
        200..=299 => bearer(reply.json()?),
        429 => Err(reply.rate_limited()),
        400..=499 => Err(refused(&reply)),
        _ => Err(reply.unexpected_status()),
    }
}

/// Only bearer tokens can be sent to userinfo (RFC 6750); Hugging Face writes it `bearer`.
fn bearer(token: TokenResponse) -> Result<TokenResponse, ConnectorError> {
    match token.token_type.eq_ignore_ascii_case("bearer") {
        true => Ok(token),
        false => Err(ConnectorError::new(
            ErrorCode::InvalidResponse,
            format!(
                "token request: unsupported token_type `{}`",
                http::clean(&token.token_type)
            ),
        )),
    }
}

/// Maps the token endpoint's 4xx answers to Logto codes.
fn refused(reply: &Reply) -> ConnectorError {
    let Ok(oauth) = serde_json::from_slice::<OAuthError>(&reply.body) else {
        return match reply.status.as_u16() {
            401 => client_refused(),
            _ => reply.unexpected_status(),
        };
    };
    let detail = http::clean(&match &oauth.error_description {
        Some(description) => format!("{}: {description}", oauth.error),
        None => oauth.error.clone(),
    });
    match oauth.error.as_str() {
        "invalid_grant" => ConnectorError::new(
            ErrorCode::SocialAuthCodeInvalid,
            format!("token request: authorization code refused ({detail})"),
        ),
        "invalid_client" => client_refused(),
        _ => ConnectorError::general(format!(
            "token request failed with HTTP {}: {detail}",
            reply.status.as_u16()
        )),
    }
}

fn client_refused() -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidConfig,
        "token request: client authentication failed (invalid_client); check clientId and clientSecret",
    )
    .with_data(serde_json::json!({ "field": "clientSecret" }))
}
