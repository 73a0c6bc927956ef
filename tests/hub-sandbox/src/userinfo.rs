//! `GET /oauth/userinfo`: the token's user, with fields by granted scope (as Hugging Face).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::config::{SandboxOrg, SandboxUser};
use crate::server::{AppState, Shared, lock};

#[derive(Debug, Serialize)]
struct UserInfo {
    sub: String,
    #[serde(flatten)]
    profile: Option<Profile>,
    #[serde(flatten)]
    email: Option<Email>,
    orgs: Vec<Org>,
}

/// Fields granted by the `profile` scope.
#[derive(Debug, Serialize)]
struct Profile {
    name: String,
    preferred_username: String,
    profile: String,
    picture: String,
    website: String,
    #[serde(rename = "isPro")]
    is_pro: bool,
}

/// Fields granted by the `email` scope.
#[derive(Debug, Serialize)]
struct Email {
    email: String,
    email_verified: bool,
}

#[derive(Debug, Serialize)]
struct Org {
    sub: String,
    name: String,
    preferred_username: String,
    picture: String,
    #[serde(rename = "roleInOrg", skip_serializing_if = "Option::is_none")]
    role_in_org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
}

pub(crate) async fn userinfo(State(shared): AppState, headers: HeaderMap) -> Response {
    let info = bearer_token(&headers).and_then(|token| {
        let store = lock(&shared.store);
        let grant = store.valid_token(token)?;
        Some(user_info(&shared, &grant.user, &grant.scope))
    });
    match info {
        Some(info) => Json(info).into_response(),
        None => invalid_token(),
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn user_info(shared: &Shared, user: &SandboxUser, scope: &str) -> UserInfo {
    let granted = |wanted: &str| scope.split(' ').any(|s| s == wanted);
    let email = user.email.as_ref().filter(|_| granted("email"));
    UserInfo {
        sub: user.sub.clone(),
        profile: granted("profile").then(|| profile(shared, user)),
        email: email.map(|email| Email {
            email: email.clone(),
            email_verified: user.email_verified,
        }),
        orgs: user.orgs.iter().map(|org| to_org(shared, org)).collect(),
    }
}

fn profile(shared: &Shared, user: &SandboxUser) -> Profile {
    Profile {
        name: user.name.clone(),
        preferred_username: user.preferred_username.clone(),
        profile: format!("{}/{}", shared.endpoint, user.preferred_username),
        picture: shared.expand(&user.picture),
        website: shared.expand(&user.website),
        is_pro: user.is_pro,
    }
}

fn to_org(shared: &Shared, org: &SandboxOrg) -> Org {
    Org {
        sub: org.sub.clone(),
        name: org.name.clone(),
        preferred_username: org.preferred_username.clone(),
        picture: shared.expand(&org.picture),
        role_in_org: org.role_in_org.clone(),
        plan: org.plan.clone(),
    }
}

fn invalid_token() -> Response {
    let challenge = HeaderValue::from_static("Bearer error=\"invalid_token\"");
    let body = Json(serde_json::json!({ "error": "invalid_token" }));
    let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}
