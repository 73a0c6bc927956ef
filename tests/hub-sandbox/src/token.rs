//! `POST /oauth/token`: authenticates the client and redeems a grant for an access token.
//!
//! Each grant type is one function returning a [`TokenResponse`]: `authorization_code`
//! here, `refresh_token` in [`crate::refresh`]. Both mint through [`mint`].

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::config::{SandboxClient, SandboxUser};
use crate::id_token::{self, Subject};
use crate::params::Params;
use crate::refresh;
use crate::server::{AppState, Shared, lock};
use crate::store::{CodeGrant, RefreshGrant, Store, TokenGrant};

/// How long a refresh token stays redeemable (30 days; Hugging Face's is unknown).
const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A successful token response.
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    refresh_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// Whom a successful grant mints tokens for.
#[derive(Debug)]
pub(crate) struct Minted {
    pub client_id: String,
    pub scope: String,
    pub user: SandboxUser,
}

/// An OAuth error answer: `{"error": …, "error_description": …}`.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

/// Client credentials as sent (Basic header or form fields).
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    client_id: Option<String>,
    pub secret: Option<String>,
}

pub(crate) async fn token(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    match exchange(&shared, &headers, &body) {
        Ok(token) => with_no_store(Json(token).into_response()),
        Err(error) => error.into_response(),
    }
}

fn exchange(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let form = parse_form(headers, body)?;
    let credentials = credentials(headers, &form)?;
    let client = match &credentials.client_id {
        Some(id) => Some(authenticate(shared, id, credentials.secret.as_deref())?),
        None => None,
    };
    match form.get("grant_type") {
        Some("authorization_code") => authorization_code(shared, client, &credentials, &form),
        Some("refresh_token") => refresh::refresh_token(shared, client, &credentials, &form),
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only authorization_code and refresh_token are supported",
        )),
        None => Err(OAuthError::invalid_request("Missing grant_type")),
    }
}

/// Redeems `code` (single use) for an access token, a refresh token and, with the `openid`
/// scope, an id_token.
fn authorization_code(
    shared: &Shared,
    client: Option<&SandboxClient>,
    credentials: &Credentials,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("Missing code"))?;
    let mut store = lock(&shared.store);
    let grant = store
        .code_mut(code)
        .ok_or_else(|| OAuthError::invalid_grant("Invalid authorization code"))?;
    // Public clients may identify themselves only through the code (as huggingface.js does).
    let client = match client {
        Some(client) => client,
        None => authenticate(
            shared,
            &grant.params.client_id,
            credentials.secret.as_deref(),
        )?,
    };
    redeem(grant, client, form)?;
    let (nonce, auth_time) = (grant.params.nonce.clone(), grant.auth_time);
    let minted = Minted {
        client_id: grant.params.client_id.clone(),
        scope: grant.params.scope.clone(),
        user: grant.user.clone(),
    };
    let mut response = mint(shared, &mut store, &minted);
    // Signing needs no store: release it before taking the key lock.
    drop(store);
    if minted.scope.split(' ').any(|s| s == "openid") {
        let subject = Subject {
            client_id: &minted.client_id,
            user: &minted.user,
            scope: &minted.scope,
            nonce: nonce.as_deref(),
            auth_time,
        };
        response.id_token = Some(signed_id_token(shared, &subject)?);
    }
    Ok(response)
}

fn signed_id_token(shared: &Shared, subject: &Subject<'_>) -> Result<String, OAuthError> {
    id_token::issue(shared, subject).map_err(OAuthError::server_error)
}

/// Stores a new access token and a new refresh token for `minted` (no id_token).
pub(crate) fn mint(shared: &Shared, store: &mut Store, minted: &Minted) -> TokenResponse {
    let access = TokenGrant {
        scope: minted.scope.clone(),
        user: minted.user.clone(),
        expires_at: Instant::now() + Duration::from_secs(shared.token_ttl_secs),
        revoked: false,
    };
    let refresh = RefreshGrant {
        client_id: minted.client_id.clone(),
        scope: minted.scope.clone(),
        user: minted.user.clone(),
        expires_at: Instant::now() + REFRESH_TTL,
        revoked: false,
    };
    TokenResponse {
        access_token: store.issue_token(access),
        token_type: "bearer",
        expires_in: shared.token_ttl_secs,
        scope: minted.scope.clone(),
        refresh_token: store.issue_refresh_token(refresh),
        id_token: None,
    }
}

/// Consumes `grant` for `client`, checking it is theirs, fresh, for this redirect URI and PKCE.
fn redeem(grant: &mut CodeGrant, client: &SandboxClient, form: &Params) -> Result<(), OAuthError> {
    if grant.params.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "Authorization code was issued to another client",
        ));
    }
    if std::mem::replace(&mut grant.used, true) {
        return Err(OAuthError::invalid_grant(
            "Authorization code has already been used",
        ));
    }
    if grant.is_expired() {
        return Err(OAuthError::invalid_grant("Authorization code has expired"));
    }
    if form.get("redirect_uri") != Some(grant.params.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    verify_pkce(
        grant.params.code_challenge.as_deref(),
        form.get("code_verifier"),
    )
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(headers) {
        let description = "Content-Type must be application/x-www-form-urlencoded";
        return Err(OAuthError::invalid_request(description));
    }
    let body = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("Request body is not UTF-8"))?;
    Params::parse(body)
        .map_err(|name| OAuthError::invalid_request(format!("Repeated parameter {name}")))
}

fn is_form(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mime = content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    mime.is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Credentials from `Authorization: Basic` or, failing that, the `client_id`/`client_secret` fields.
fn credentials(headers: &HeaderMap, form: &Params) -> Result<Credentials, OAuthError> {
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let Some((id, secret)) = basic_credentials(headers)? else {
        return Ok(Credentials {
            client_id: form_id.map(str::to_owned),
            secret: form_secret.map(str::to_owned),
        });
    };
    if form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "Use only one client authentication method",
        ));
    }
    if form_id.is_some_and(|form_id| form_id != id) {
        return Err(OAuthError::invalid_client());
    }
    Ok(Credentials {
        client_id: Some(id),
        secret: Some(secret),
    })
}

/// `Authorization: Basic base64(client_id:client_secret)`; other schemes are rejected.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    let (scheme, encoded) = value
        .split_once(' ')
        .ok_or_else(OAuthError::invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// The registered client `client_id` if `secret` is right (none for a public client).
///
/// Values are compared as sent and form-urldecoded (RFC 6749 §2.3.1 encodes them).
pub(crate) fn authenticate<'a>(
    shared: &'a Shared,
    client_id: &str,
    secret: Option<&str>,
) -> Result<&'a SandboxClient, OAuthError> {
    let client = shared
        .client(client_id)
        .or_else(|| shared.client(&form_decode(client_id)))
        .ok_or_else(OAuthError::invalid_client)?;
    let authenticated = match (&client.client_secret, secret) {
        (Some(expected), Some(sent)) => sent == expected || form_decode(sent) == *expected,
        (None, None) => true,
        _ => false,
    };
    authenticated
        .then_some(client)
        .ok_or_else(OAuthError::invalid_client)
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(value: &str) -> String {
    let value = value.replace('+', " ");
    percent_encoding::percent_decode_str(&value)
        .decode_utf8_lossy()
        .into_owned()
}

/// RFC 7636 S256: `BASE64URL-NOPAD(SHA256(verifier))` must equal the challenge.
fn verify_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    let Some(challenge) = challenge else {
        return Ok(());
    };
    let verified = verifier.is_some_and(|v| is_valid_verifier(v) && pkce_challenge(v) == challenge);
    verified
        .then_some(())
        .ok_or_else(|| OAuthError::invalid_grant("PKCE verification failed"))
}

/// The S256 PKCE challenge of `verifier`: `BASE64URL-NOPAD(SHA256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 43–128 unreserved characters (RFC 7636 §4.1).
fn is_valid_verifier(verifier: &str) -> bool {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

fn with_no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            status,
            error,
            description,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// The sandbox itself failed (e.g. signing an id_token): `500 server_error`.
    fn server_error(error: id_token::SignError) -> Self {
        let description = format!("Could not sign the id_token: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            description,
        )
    }

    fn invalid_client() -> Self {
        let description = "Client authentication failed";
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": self.error, "error_description": self.description });
        let mut response = with_no_store((self.status, Json(body)).into_response());
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Basic realm=\"huggingface.co\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
