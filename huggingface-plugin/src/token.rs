//! The token endpoint: the authorization-code exchange and the refresh grant.

use connector_api::{ConnectorError, ErrorCode};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::constants::TOKEN_PATH;
use crate::http::{self, Reply, Step};
use crate::scrub::Scrubber;
use crate::secret::Secret;
use crate::session::Session;

/// Hugging Face's token response; only `access_token` and `token_type` are required.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    /// A number, or a numeric string (Logto accepts both).
    pub expires_in: Option<Value>,
    pub scope: Option<String>,
    pub id_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
}

impl From<TokenResponse> for connector_api::TokenResponse {
    fn from(t: TokenResponse) -> Self {
        let expose = |s: Option<Secret>| s.map(|s| s.expose().to_string());
        Self {
            access_token: t.access_token.expose().to_string(),
            expires_in: t.expires_in.as_ref().and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
            token_type: Some(t.token_type),
            scope: t.scope,
            id_token: expose(t.id_token),
            refresh_token: expose(t.refresh_token),
        }
    }
}

impl TokenResponse {
    /// `scrubber` with this response's tokens added, for the calls that follow it.
    pub fn add_to(&self, scrubber: Scrubber) -> Scrubber {
        [
            Some(&self.access_token),
            self.id_token.as_ref(),
            self.refresh_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .fold(scrubber, |s, token| s.with(token.expose()))
    }
}

/// An OAuth error body (RFC 6749 §5.2).
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// POSTs the code with the PKCE verifier; `held` is what the sign-in holds besides.
pub async fn exchange_code(
    config: &Config,
    session: &Session,
    code: &Secret,
    held: Scrubber,
) -> Result<TokenResponse, ConnectorError> {
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", session.redirect_uri.as_str()),
        ("code_verifier", session.code_verifier.as_str()),
    ];
    let carried = held.with(code.expose()).with(&session.code_verifier);
    post(config, form, Step::Token, carried).await
}

/// Trades a refresh token for a new access token (and, when the provider rotates, a new
/// refresh token); an expired or revoked one is `social_auth_code_invalid`.
pub async fn refresh(
    config: &Config,
    refresh_token: &str,
) -> Result<TokenResponse, ConnectorError> {
    let form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let carried = Scrubber::default().with(refresh_token);
    post(config, form, Step::Refresh, carried).await
}

/// POSTs `form`, authenticating the client: HTTP Basic with a secret; a public client sends
/// only its `client_id` (RFC 6749 §3.2.1) and relies on PKCE. `carried` holds the form's
/// credentials; the client's are added here, where they are sent.
async fn post(
    config: &Config,
    mut form: Vec<(&str, &str)>,
    step: Step,
    carried: Scrubber,
) -> Result<TokenResponse, ConnectorError> {
    let mut request = http::client()
        .post(config.url(TOKEN_PATH))
        .header(reqwest::header::ACCEPT, "application/json");
    match &config.client_secret {
        Some(secret) => request = request.basic_auth(&config.client_id, Some(secret.expose())),
        None => form.push(("client_id", &config.client_id)),
    }
    let scrubber = carried.with_client(config);
    let reply = http::send(config, request.form(&form), step, scrubber).await?;
    match reply.status.as_u16() {
        200..=299 => bearer(reply.json()?, &reply),
        429 => Err(reply.rate_limited()),
        400..=499 => Err(refused(&reply)),
        _ => Err(reply.unexpected_status()),
    }
}

/// Only bearer tokens can be sent to userinfo (RFC 6750); Hugging Face writes it `bearer`.
fn bearer(token: TokenResponse, reply: &Reply) -> Result<TokenResponse, ConnectorError> {
    match token.token_type.eq_ignore_ascii_case("bearer") {
        true => Ok(token),
        false => Err(ConnectorError::new(
            ErrorCode::InvalidResponse,
            format!(
                "{}: unsupported token_type `{}`",
                reply.step,
                // The response's own tokens are not in the request's scrubber yet.
                token
                    .add_to(reply.scrubber().clone())
                    .quote(&token.token_type)
            ),
        )),
    }
}

/// Maps the token endpoint's 4xx answers to Logto codes.
fn refused(reply: &Reply) -> ConnectorError {
    let Some(oauth) = reply.parse::<OAuthError>() else {
        return match reply.status.as_u16() {
            401 => client_refused(reply.step),
            _ => reply.unexpected_status(),
        };
    };
    let detail = reply.quote(&match &oauth.error_description {
        Some(description) => format!("{}: {description}", oauth.error),
        None => oauth.error.clone(),
    });
    let step = reply.step;
    match oauth.error.as_str() {
        "invalid_grant" if step == Step::Refresh => ConnectorError::new(
            ErrorCode::SocialAuthCodeInvalid,
            format!("{step}: refresh token refused ({detail})"),
        ),
        "invalid_grant" => ConnectorError::new(
            ErrorCode::SocialAuthCodeInvalid,
            format!("{step}: authorization code refused ({detail})"),
        ),
        "invalid_client" => client_refused(step),
        _ => ConnectorError::general(format!(
            "{step} failed with HTTP {}: {detail}",
            reply.status.as_u16()
        )),
    }
}

fn client_refused(step: Step) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidConfig,
        format!(
            "{step}: client authentication failed (invalid_client); check clientId and clientSecret"
        ),
    )
    .with_data(serde_json::json!({ "field": "clientSecret" }))
}
