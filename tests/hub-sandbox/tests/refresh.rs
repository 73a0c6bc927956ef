//! `grant_type=refresh_token`: rotation, dead tokens, client authentication.

mod common;

use common::*;
use hub_sandbox::{DEFAULT_CLIENT_ID, HubSandbox, SandboxClient, SandboxConfig, pkce_challenge};
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

const DEAD: &str = "refresh token is expired or revoked";

fn refresh_form(refresh_token: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]
}

/// Refreshes as the default confidential client (Basic).
async fn refresh(sandbox: &HubSandbox, refresh_token: &str) -> Response {
    post_token(sandbox, &refresh_form(refresh_token), BASIC).await
}

fn string(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

async fn assert_dead(response: Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(response).await,
        json!({"error": "invalid_grant", "error_description": DEAD})
    );
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_mints_a_working_access_token() {
    let sandbox = sandbox().await;
    let first = tokens(&sandbox, "openid profile", Some(NONCE)).await;
    let old_refresh = string(&first, "refresh_token");
    assert!(
        old_refresh.starts_with("hf_oauth_refresh_"),
        "{old_refresh}"
    );
    assert!(
        old_refresh.len() >= "hf_oauth_refresh_".len() + 22,
        "≥128 bits"
    );

    let response = refresh(&sandbox, &old_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let second = json(response).await;
    let mut fields: Vec<_> = second
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ],
        "no id_token on refresh"
    );
    assert_eq!(second["token_type"], "bearer");
    assert_eq!(second["expires_in"], 28800);
    assert_eq!(second["scope"], "openid profile");
    let new_refresh = string(&second, "refresh_token");
    assert_ne!(new_refresh, old_refresh);
    let access_token = string(&second, "access_token");
    assert_ne!(access_token, string(&first, "access_token"));

    let info = userinfo(&sandbox, &access_token).await;
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(json(info).await["preferred_username"], "ada");

    assert_dead(refresh(&sandbox, &old_refresh).await).await;
    let third = json(refresh(&sandbox, &new_refresh).await).await;
    assert!(third["refresh_token"].is_string(), "{third}");
}

#[tokio::test]
async fn revoked_expired_and_unknown_refresh_tokens_are_invalid_grant() {
    let sandbox = sandbox().await;
    let revoked = string(&tokens(&sandbox, "profile", None).await, "refresh_token");
    sandbox.revoke_all_refresh_tokens();
    assert_dead(refresh(&sandbox, &revoked).await).await;

    let expired = string(&tokens(&sandbox, "profile", None).await, "refresh_token");
    sandbox.expire_all_refresh_tokens();
    assert_dead(refresh(&sandbox, &expired).await).await;

    let later = string(&tokens(&sandbox, "profile", None).await, "refresh_token");
    assert_eq!(refresh(&sandbox, &later).await.status(), StatusCode::OK);

    assert_dead(refresh(&sandbox, "hf_oauth_refresh_unknown").await).await;
    let missing = post_token(&sandbox, &[("grant_type", "refresh_token")], BASIC).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(missing).await["error"], "invalid_request");
}

#[tokio::test]
async fn access_tokens_survive_refresh_token_revocation() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, "profile", None).await;
    sandbox.revoke_all_refresh_tokens();
    let info = userinfo(&sandbox, &string(&body, "access_token")).await;
    assert_eq!(info.status(), StatusCode::OK);
}

fn two_clients() -> SandboxConfig {
    SandboxConfig {
        clients: vec![
            SandboxClient::default(),
            SandboxClient {
                client_id: "other-app".to_owned(),
                client_secret: Some("other-secret".to_owned()),
                redirect_uris: Vec::new(),
            },
            SandboxClient::public("public-app"),
        ],
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant_and_stays_usable() {
    let sandbox = start(two_clients()).await;
    let theirs = string(&tokens(&sandbox, "profile", None).await, "refresh_token");
    let form = refresh_form(&theirs);
    let stolen = post_token(&sandbox, &form, Some(("other-app", "other-secret"))).await;
    assert_dead(stolen).await;
    let public = [form.clone(), vec![("client_id", "public-app")]].concat();
    assert_dead(post_token(&sandbox, &public, None).await).await;
    assert_eq!(refresh(&sandbox, &theirs).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn confidential_clients_must_authenticate_to_refresh() {
    let sandbox = sandbox().await;
    let refresh_token = string(&tokens(&sandbox, "profile", None).await, "refresh_token");
    let form = refresh_form(&refresh_token);
    let anonymous = post_token(&sandbox, &form, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let with_id = [form.clone(), vec![("client_id", DEFAULT_CLIENT_ID)]].concat();
    let unauthenticated = post_token(&sandbox, &with_id, None).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let wrong = post_token(&sandbox, &form, Some((DEFAULT_CLIENT_ID, "wrong"))).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn public_client_signs_in_with_pkce_and_refreshes_with_client_id_only() {
    let sandbox = start(two_clients()).await;
    let verifier = "public-client-verifier-0123456789-abcdefghijklmnop";
    let challenge = pkce_challenge(verifier);
    let extra = [
        ("scope", "openid profile"),
        ("nonce", NONCE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&sandbox, "public-app", &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", "public-app"),
        ("code_verifier", verifier),
    ];
    let response = post_token(&sandbox, &form, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    let id_token = string(&body, "id_token");
    assert_eq!(part(&id_token, 1)["aud"], "public-app");

    let refresh_token = string(&body, "refresh_token");
    let form = [
        refresh_form(&refresh_token),
        vec![("client_id", "public-app")],
    ]
    .concat();
    let response = post_token(&sandbox, &form, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated = string(&json(response).await, "refresh_token");
    // Without client_id, the token identifies its (public) client, as codes do.
    let response = post_token(&sandbox, &refresh_form(&rotated), None).await;
    assert_eq!(response.status(), StatusCode::OK);

    let recorded = sandbox.requests();
    let last = recorded.last().expect("recorded");
    assert_eq!(last.header("authorization"), None);
}
