//! The authorization URI: Logto's parameters in Logto's order, plus PKCE.

use connector_api::{Authorization, AuthorizationRequest, ConnectorError, ErrorCode};
use url::Url;

use crate::config::{Config, parse_scope};
use crate::constants::AUTHORIZE_PATH;
use crate::pkce;
use crate::session::Session;

/// `{endpoint}/oauth/authorize?response_type=code&client_id&scope&redirect_uri&state&code_challenge&code_challenge_method=S256`,
/// then `nonce` (with `openid`) and `orgIds` (when configured).
pub fn authorization_uri(
    config: &Config,
    request: AuthorizationRequest,
) -> Result<Authorization, ConnectorError> {
    let scope = match request.scope.as_deref() {
        Some(scope) => parse_scope(scope).map_err(|m| {
            ConnectorError::new(ErrorCode::InvalidRequestParameters, format!("scope: {m}"))
        })?,
        None => config.scope.clone(),
    };
    let verifier = pkce::new_verifier();
    // OpenID Connect: a nonce binds the id_token to this sign-in (128 random bits).
    let nonce = scope
        .split(' ')
        .any(|s| s == "openid")
        .then(pkce::random_token::<16>);
    let mut uri = Url::parse(&config.url(AUTHORIZE_PATH))
        .map_err(|e| ConnectorError::general(format!("bad authorization endpoint: {e}")))?;
    uri.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("scope", &scope)
        .append_pair("redirect_uri", &request.redirect_uri)
        .append_pair("state", &request.state)
        .append_pair("code_challenge", &pkce::challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(nonce) = &nonce {
        uri.query_pairs_mut().append_pair("nonce", nonce);
    }
    if !config.org_ids.is_empty() {
        // Hugging Face documents one id; several are sent comma-separated (unconfirmed upstream).
        uri.query_pairs_mut()
            .append_pair("orgIds", &config.org_ids.join(","));
    }
    let session = Session {
        redirect_uri: request.redirect_uri,
        code_verifier: verifier,
        nonce,
    };
    Ok(Authorization {
        uri: uri.into(),
        session: serde_json::to_value(session)
            .map_err(|e| ConnectorError::general(e.to_string()))?,
    })
}
