//! Helpers shared by the OIDC, refresh and new-route tests (real HTTP, redirects off).

#![allow(dead_code)] // Each test file uses a different subset.

use hub_sandbox::{
    CodeParams, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSandbox, SandboxConfig,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::{Client, Response, StatusCode, header, redirect};
use serde_json::Value;
use url::Url;

pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
pub const NONCE: &str = "n-0S6_WzA2Mj";
pub const BASIC: Option<(&str, &str)> = Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET));

pub fn http() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("reqwest client")
}

pub async fn start(config: SandboxConfig) -> HubSandbox {
    HubSandbox::start(config).await.expect("sandbox starts")
}

pub async fn sandbox() -> HubSandbox {
    start(SandboxConfig::default()).await
}

/// `GET {endpoint}{path}`.
pub async fn get(sandbox: &HubSandbox, path: &str) -> Response {
    let url = format!("{}{path}", sandbox.endpoint());
    http().get(url).send().await.expect("GET")
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("json body")
}

/// `/oauth/authorize` for `client_id` without PKCE, `extra` params added; the 303's `code`.
pub async fn code_for(sandbox: &HubSandbox, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("state", "st"),
    ];
    params.extend_from_slice(extra);
    let url = format!("{}/oauth/authorize", sandbox.endpoint());
    let url = Url::parse_with_params(&url, &params).expect("authorize url");
    let response = http().get(url).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii");
    let location = Url::parse(location).expect("absolute Location");
    let code = location.query_pairs().find(|(name, _)| name == "code");
    code.expect("code in redirect").1.into_owned()
}

/// A code issued to the default client without `/oauth/authorize` (no PKCE), for `scope`
/// and `nonce`.
pub fn issue_code(sandbox: &HubSandbox, scope: &str, nonce: &str) -> String {
    sandbox.issue_code(CodeParams {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        redirect_uri: REDIRECT_URI.to_owned(),
        scope: scope.to_owned(),
        code_challenge: None,
        nonce: Some(nonce.to_owned()),
    })
}

/// `POST /oauth/token` with `form`, Basic-authenticated when `basic` is given.
pub async fn post_token(
    sandbox: &HubSandbox,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Response {
    let url = format!("{}/oauth/token", sandbox.endpoint());
    let mut request = http().post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.expect("token request")
}

/// The default client's token response for `scope` (and `nonce` when given).
pub async fn tokens(sandbox: &HubSandbox, scope: &str, nonce: Option<&str>) -> Value {
    let mut extra = vec![("scope", scope)];
    extra.extend(nonce.map(|nonce| ("nonce", nonce)));
    let code = code_for(sandbox, DEFAULT_CLIENT_ID, &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let response = post_token(sandbox, &form, BASIC).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// The `id_token` of a fresh `openid profile email` sign-in with [`NONCE`].
pub async fn id_token(sandbox: &HubSandbox) -> String {
    let body = tokens(sandbox, "openid profile email", Some(NONCE)).await;
    body["id_token"].as_str().expect("id_token").to_owned()
}

pub async fn jwks(sandbox: &HubSandbox) -> JwkSet {
    let response = get(sandbox, "/oauth/jwks").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JWKS json")
}

/// `GET /oauth/userinfo` with a Bearer token.
pub async fn userinfo(sandbox: &HubSandbox, access_token: &str) -> Response {
    let url = format!("{}/oauth/userinfo", sandbox.endpoint());
    let request = http().get(url).bearer_auth(access_token);
    request.send().await.expect("userinfo")
}

/// Verifies `token` as a relying party should: RS256 only, key chosen by `kid` in `jwks`,
/// `iss` = the sandbox, `aud` = the default client, `exp` (60 s leeway). Returns the claims.
pub fn verify(sandbox: &HubSandbox, jwks: &JwkSet, token: &str) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or(format!("unknown kid {kid}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[DEFAULT_CLIENT_ID]);
    validation.set_issuer(&[sandbox.endpoint()]);
    let data = decode::<Value>(token, &key, &validation).map_err(|e| format!("decode: {e}"))?;
    Ok(data.claims)
}

/// The JSON of JWT part `index` (0 = header, 1 = claims), without any verification.
pub fn part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let encoded = token.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .expect("base64url part");
    serde_json::from_slice(&bytes).expect("JSON part")
}

pub fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("timestamp")
}
