//! The contenders that run in a `connector-bench worker` process: the loaded plugin, the same
//! plugin in-process, and the bare reqwest floor. (Logto's runs in Node: `crate::node`.)

use std::sync::Arc;

use connector_api::plugin::Connector as _;
use connector_api::{
    Authorization, AuthorizationRequest, Connector, ConnectorError, Plugin, SocialUserInfo,
};
use huggingface_plugin::HuggingFace;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::signin::{Browser, Contender};
use crate::{CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPE};

/// The Hugging Face plugin, loaded from its cdylib like any host loads it.
#[derive(Debug)]
pub struct PluginContender {
    connector: Connector,
}

impl PluginContender {
    /// Loads the plugin at `path` and configures it for the sandbox at `endpoint`.
    pub fn load(path: &std::path::Path, endpoint: &str) -> Result<Self, String> {
        let plugin = Plugin::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let connector = plugin
            .create(&plugin_config(endpoint))
            .map_err(|e| e.to_string())?;
        Ok(Self { connector })
    }
}

/// The plugin's config for the sandbox at `endpoint`.
pub fn plugin_config(endpoint: &str) -> Value {
    json!({
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "scope": SCOPE,
        "endpoint": endpoint,
    })
}

/// The authorization request of benchmark sign-in `n`.
pub fn request(n: usize) -> AuthorizationRequest {
    AuthorizationRequest {
        state: format!("state-{n}"),
        redirect_uri: REDIRECT_URI.into(),
        connector_id: "huggingface".into(),
        jti: format!("jti-{n}"),
        user_agent: "connector-bench".into(),
        scope: None,
    }
}

/// The browser's consent to a plugin's authorization URI: callback parameters and session.
async fn approve(browser: &Browser, auth: Result<Authorization, ConnectorError>) -> (Value, Value) {
    let auth = auth.expect("authorization URI");
    (browser.approve(&auth.uri).await, auth.session)
}

/// A plugin's answer to the callback, as a contender's result: the user's id.
fn user_id(user: Result<SocialUserInfo, ConnectorError>) -> Result<String, String> {
    user.map(|user| user.id).map_err(|e| e.to_string())
}

impl Contender for PluginContender {
    /// Callback parameters and session.
    type Prepared = (Value, Value);

    async fn prepare(&self, browser: &Browser, n: usize) -> (Value, Value) {
        approve(browser, self.connector.authorization_uri(request(n))).await
    }

    async fn finish(&self, (callback, session): &(Value, Value)) -> Result<String, String> {
        user_id(self.connector.user_info(callback, session).await)
    }
}

/// The same plugin in-process (its rlib, on this process's runtime): no boundary, no second
/// runtime. Not a way hosts use it; it tells the plugin's own cost from the boundary's.
#[derive(Debug)]
pub struct RlibContender {
    connector: Arc<HuggingFace>,
}

impl RlibContender {
    pub fn new(endpoint: &str) -> Result<Self, String> {
        let connector = HuggingFace::create(plugin_config(endpoint)).map_err(|e| e.to_string())?;
        Ok(Self {
            connector: Arc::new(connector),
        })
    }
}

impl Contender for RlibContender {
    /// Callback parameters and session.
    type Prepared = (Value, Value);

    async fn prepare(&self, browser: &Browser, n: usize) -> (Value, Value) {
        approve(browser, self.connector.authorization_uri(request(n))).await
    }

    async fn finish(&self, (callback, session): &(Value, Value)) -> Result<String, String> {
        let connector = self.connector.clone();
        user_id(connector.user_info(callback.clone(), session.clone()).await)
    }
}

/// The floor: a bare reqwest client doing only the two requests of a sign-in and parsing them.
#[derive(Debug)]
pub struct FloorContender {
    http: reqwest::Client,
    endpoint: String,
}

impl FloorContender {
    pub fn new(endpoint: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    token_type: String,
}

impl Contender for FloorContender {
    /// The authorization code.
    type Prepared = String;

    async fn prepare(&self, browser: &Browser, n: usize) -> String {
        let mut uri = url::Url::parse(&format!("{}/oauth/authorize", self.endpoint)).unwrap();
        uri.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("scope", SCOPE)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("state", &format!("state-{n}"));
        let callback = browser.approve(uri.as_str()).await;
        callback["code"].as_str().unwrap_or_default().to_string()
    }

    async fn finish(&self, code: &String) -> Result<String, String> {
        let token: Token = json(
            self.http
                .post(format!("{}/oauth/token", self.endpoint))
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT_URI),
                ]),
        )
        .await?;
        let user: Value = json(
            self.http
                .get(format!("{}/oauth/userinfo", self.endpoint))
                .header(
                    "authorization",
                    format!("{} {}", token.token_type, token.access_token),
                ),
        )
        .await?;
        Ok(user["sub"].as_str().unwrap_or_default().to_string())
    }
}

/// Sends `request` and parses its JSON answer; a transport error, an error status or a body
/// that does not parse as its text.
async fn json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, String> {
    let text = |e: reqwest::Error| e.to_string();
    request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(text)?
        .json()
        .await
        .map_err(text)
}
