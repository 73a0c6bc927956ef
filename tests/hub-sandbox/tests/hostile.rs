//! A provider that turns hostile: echoing the request with its credentials, or replacing its
//! signing key under the same `kid`.

mod common;

use base64::Engine as _;
use common::*;
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EchoFormat, Fault, INITIAL_KEY_ID, Route,
};
use jsonwebtoken::decode_header;
use reqwest::{StatusCode, header};
use serde_json::Value;

const FORM: [(&str, &str); 3] = [
    ("grant_type", "authorization_code"),
    ("code", "the-code-value"),
    ("code_verifier", "the-verifier-value"),
];

/// The token request of [`FORM`] with Basic credentials, answered by an echo in `format`.
async fn echoed(format: EchoFormat, status: u16) -> reqwest::Response {
    let sandbox = sandbox().await;
    sandbox.set_fault_once(Route::Token, Fault::EchoRequest { status, format });
    post_token(&sandbox, &FORM, BASIC).await
}

fn basic() -> String {
    let pair = format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}");
    base64::engine::general_purpose::STANDARD.encode(pair)
}

/// The request's credentials: Basic header, decoded secret, code and verifier.
fn assert_has_everything(dump: &str) {
    for part in [
        format!("authorization: Basic {}", basic()),
        format!("client={DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}"),
        format!("client_secret={DEFAULT_CLIENT_SECRET}"),
        "code=the-code-value".to_owned(),
        "code_verifier=the-verifier-value".to_owned(),
        "POST /oauth/token HTTP/1.1".to_owned(),
    ] {
        assert!(dump.contains(&part), "`{part}` not in {dump}");
    }
}

#[tokio::test]
async fn echo_as_text_is_the_request_as_sent_then_its_credentials() {
    let response = echoed(EchoFormat::Text, 500).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    let dump = response.text().await.unwrap();
    assert!(dump.starts_with("POST /oauth/token HTTP/1.1\r\n"), "{dump}");
    assert_has_everything(&dump);
    let body = dump.find("grant_type=").unwrap();
    assert!(dump.find("authorization: Basic").unwrap() < body);
    assert!(dump.find("client=").unwrap() > body);
}

#[tokio::test]
async fn echo_as_invalid_grant_quotes_credentials_first_in_the_description() {
    let response = echoed(EchoFormat::InvalidGrant, 400).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"], "invalid_grant");
    let description = json["error_description"].as_str().unwrap();
    assert!(description.starts_with("client="), "{description}");
    assert_has_everything(description);
}

#[tokio::test]
async fn echo_as_json_puts_the_dump_in_a_json_string() {
    let response = echoed(EchoFormat::Json, 502).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"], "server_error");
    assert_has_everything(json["request"].as_str().unwrap());
}

#[tokio::test]
async fn echo_on_userinfo_carries_the_bearer_token() {
    let sandbox = sandbox().await;
    let fault = Fault::EchoRequest {
        status: 500,
        format: EchoFormat::Text,
    };
    sandbox.set_fault_once(Route::Userinfo, fault);
    let dump = userinfo(&sandbox, "hf_oauth_echoed")
        .await
        .text()
        .await
        .unwrap();
    assert!(dump.starts_with("GET /oauth/userinfo HTTP/1.1"), "{dump}");
    assert!(
        dump.contains("authorization: Bearer hf_oauth_echoed"),
        "{dump}"
    );
}

#[tokio::test]
async fn a_replaced_key_keeps_its_kid_but_no_longer_verifies_with_the_cached_set() {
    let sandbox = sandbox().await;
    let cached = jwks(&sandbox).await;
    sandbox.replace_signing_key();
    assert_eq!(sandbox.signing_key_id(), INITIAL_KEY_ID);
    let token = id_token(&sandbox).await;
    let kid = decode_header(&token).expect("header").kid;
    assert_eq!(kid.as_deref(), Some(INITIAL_KEY_ID));
    let error = verify(&sandbox, &cached, &token).expect_err("the cached key is the old one");
    assert!(error.contains("InvalidSignature"), "{error}");

    let fresh = jwks(&sandbox).await;
    let kids = |set: &jsonwebtoken::jwk::JwkSet| -> Vec<Option<String>> {
        set.keys.iter().map(|k| k.common.key_id.clone()).collect()
    };
    assert_eq!(kids(&fresh), kids(&cached), "the same kids are published");
    verify(&sandbox, &fresh, &token).expect("verifies with the refetched JWKS");
    assert_eq!(sandbox.jwks_fetches(), 2);
}
