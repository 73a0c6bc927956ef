//! Driving the Hugging Face plugin (the built cdylib, through the real loader) against the Hub
//! sandbox, as a broker would: authorization URI, consent at the sandbox, callback.

use connector_api::{AuthorizationRequest, Connector, ConnectorError, Plugin, SocialUserInfo};
use hub_sandbox::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSandbox};
use serde_json::{Value, json};

use crate::library_path;

/// The redirect URI every test sign-in uses.
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// The built Hugging Face plugin, loaded by the real loader.
pub fn plugin() -> Plugin {
    Plugin::load(&library_path("huggingface-plugin")).expect("the Hugging Face plugin loads")
}

/// A connector for `hub` with the sandbox's client and `extra` config keys.
pub fn connector(hub: &HubSandbox, extra: Value) -> Connector {
    let mut config = json!({
        "clientId": DEFAULT_CLIENT_ID,
        "clientSecret": DEFAULT_CLIENT_SECRET,
        "scope": "profile email",
        "endpoint": hub.endpoint(),
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    plugin().create(&config).expect("valid config")
}

/// An authorization request for `state` and [`REDIRECT_URI`].
pub fn request(state: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        redirect_uri: REDIRECT_URI.into(),
        connector_id: "huggingface".into(),
        jti: "jti-1".into(),
        user_agent: "tests".into(),
        scope: None,
    }
}

/// A client that does not follow redirects, as a test of a 303 needs.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows the authorization URI at the sandbox (which auto-approves) and returns the
/// callback parameters Hugging Face sends to the redirect URI, as the host would pass them.
pub async fn approve(uri: &str) -> Value {
    let response = http().get(uri).send().await.unwrap();
    assert_eq!(response.status(), 303, "the Hub answers consent with 303");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let url = url::Url::parse(location).unwrap();
    Value::Object(
        url.query_pairs()
            .map(|(k, v)| (k.into(), Value::String(v.into())))
            .collect(),
    )
}

/// A whole sign-in: authorization URI, consent at the sandbox, user info.
pub async fn sign_in(connector: &Connector) -> Result<SocialUserInfo, ConnectorError> {
    let auth = connector.authorization_uri(request("st")).unwrap();
    let callback = approve(&auth.uri).await;
    connector.user_info(&callback, &auth.session).await
}

/// Starts a sign-in and returns its callback and session without finishing it.
pub async fn started(connector: &Connector) -> (Value, Value) {
    let auth = connector.authorization_uri(request("st")).unwrap();
    (approve(&auth.uri).await, auth.session)
}

/// The decoded query parameters of `uri`, in order.
pub fn query_pairs(uri: &str) -> Vec<(String, String)> {
    url::Url::parse(uri)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}
