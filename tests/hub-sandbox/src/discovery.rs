//! `GET /.well-known/openid-configuration`: the OpenID Provider metadata of the sandbox.
//!
//! Hugging Face's real document was never captured (reference §1), so this advertises what
//! the sandbox implements, with the sandbox's endpoint as `issuer`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::Route;
use crate::server::AppState;

/// Hugging Face's documented scopes (reference §2).
pub(crate) const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "read-billing",
    "read-memberships",
    "read-repos",
    "gated-repos",
    "contribute-repos",
    "write-repos",
    "manage-repos",
    "read-collections",
    "write-collections",
    "inference-api",
    "read-endpoints",
    "write-endpoints",
    "jobs",
    "webhooks",
    "write-discussions",
];

pub(crate) async fn discovery(State(shared): AppState) -> Response {
    let endpoint = &shared.endpoint;
    let url = |route: Route| format!("{endpoint}{}", route.path());
    Json(json!({
        "issuer": endpoint,
        "authorization_endpoint": url(Route::Authorize),
        "token_endpoint": url(Route::Token),
        "userinfo_endpoint": url(Route::Userinfo),
        "jwks_uri": url(Route::Jwks),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": SCOPES_SUPPORTED,
    }))
    .into_response()
}
