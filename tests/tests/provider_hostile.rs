//! A hostile or careless provider, through the real cdylib: one that echoes the request with its
//! credentials in its errors, one whose discovery document points elsewhere, and one that
//! replaces its signing key under the same `kid`. The sign-ins run through the broker in-process,
//! with every log line captured, where the browser's page, the JSON error and the log matter.

mod host_support;

use connector_tests::logs::capture_logs;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use connector_api::ErrorCode;
use connector_tests::PluginDir;
use connector_tests::hf::{self, approve, plugin, request};
use host_support::{TestBroker, http, start_sign_in};
use hub_sandbox::{
    EchoFormat, Fault, HubSandbox, IdTokenForgery, Route, SandboxClient, SandboxConfig,
};
use reqwest::header::{ACCEPT, COOKIE, LOCATION};
use serde_json::{Value, json};

const CLIENT_ID: &str = "hostile-test-client";
/// Characters that every encoding writes differently: `/ + @ & = ` space, `"` and `\`.
const CLIENT_SECRET: &str = "s3cr/t+v@l&ue=x y\"q\\z-9Kd";
const OPENID: &str = "openid profile email";

/// A sandbox whose one client has [`CLIENT_SECRET`].
async fn hub() -> HubSandbox {
    let client = SandboxClient {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_uris: Vec::new(),
    };
    let config = SandboxConfig {
        clients: vec![client],
        ..SandboxConfig::default()
    };
    HubSandbox::start(config).await.unwrap()
}

fn hf_connector(id: &str, endpoint: &str) -> String {
    let secret = toml_string(CLIENT_SECRET);
    format!(
        "[[connectors]]\nid = \"{id}\"\nfactory = \"huggingface-universal\"\n\
         config = {{ clientId = \"{CLIENT_ID}\", clientSecret = {secret}, \
         scope = \"{OPENID}\", endpoint = \"{endpoint}\" }}\n"
    )
}

/// A TOML basic string (the same escapes as JSON for these characters).
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

async fn broker(hub: &HubSandbox) -> TestBroker {
    let dir = PluginDir::new();
    dir.add("huggingface-plugin");
    TestBroker::start(dir, &hf_connector("hf", &hub.endpoint())).await
}

/// A connector on the real cdylib, outside any broker, with [`CLIENT_SECRET`].
fn connector(hub: &HubSandbox) -> connector_api::Connector {
    let config = json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
        "scope": OPENID, "endpoint": hub.endpoint()});
    plugin().create(&config).expect("valid config")
}

// ---------------------------------------------------------------- log capture

// ---------------------------------------------------------------- what must never show

/// `value` in every form a provider or a page may write it: raw, form- and percent-encoded
/// (either hex case), JSON-escaped (with and without `\/`) and HTML-escaped.
fn encodings(value: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let json = serde_json::to_string(value).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    let html = value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut all = vec![
        value.to_owned(),
        lowercase_hex(&form),
        form.clone(),
        lowercase_hex(&percent),
        percent,
        json.replace('/', "\\/"),
        json,
        html,
    ];
    all.sort();
    all.dedup();
    all
}

/// `%2F` → `%2f`, the rest unchanged.
fn lowercase_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hex_left = 0;
    for c in text.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The client's credentials: the secret, and `id:secret` in base64 (each alphabet, padded or
/// not) as the Basic header carries it.
fn client_credentials() -> Vec<String> {
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    let mut all = vec![CLIENT_SECRET.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        all.push(engine.encode(&pair));
    }
    all
}

/// Every value the broker or connector sent the sandbox as a credential: codes, verifiers,
/// states, nonces, bearer tokens and refresh tokens.
fn sent_secrets(hub: &HubSandbox) -> Vec<String> {
    let mut secrets = Vec::new();
    for request in hub.requests() {
        let params = request
            .form_params()
            .into_iter()
            .chain(request.query_params());
        secrets.extend(
            params
                .filter(|(k, _)| {
                    ["code", "code_verifier", "state", "nonce", "refresh_token"]
                        .contains(&k.as_str())
                })
                .map(|(_, v)| v),
        );
        if let Some(bearer) = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            secrets.push(bearer.to_owned());
        }
    }
    secrets
}

/// Fails naming the first secret (in any encoding) found in `outputs`.
fn assert_no_secret(secrets: &[String], outputs: &[(&str, &str)]) {
    for secret in secrets {
        for needle in encodings(secret) {
            for (what, text) in outputs {
                assert!(
                    !text.contains(&needle),
                    "`{needle}` (a form of `{secret}`) in {what}: {text}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- secrets echoed

/// A sign-in on the broker's `hf` connector up to its callback, as JSON or as a browser.
async fn sign_in(b: &TestBroker, json: bool) -> (u16, String) {
    let s = start_sign_in(&b.url, "hf", None).await;
    let consent = http().get(&s.location).send().await.unwrap();
    assert_eq!(consent.status(), 303);
    let back = consent.headers()[LOCATION].to_str().unwrap().to_owned();
    let accept = if json {
        "application/json"
    } else {
        "text/html"
    };
    let response = http()
        .get(&back)
        .header(ACCEPT, accept)
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn echo(status: u16, format: EchoFormat) -> Fault {
    Fault::EchoRequest { status, format }
}

/// The token and userinfo endpoints echo the whole request (Basic credentials, code, PKCE
/// verifier, bearer token) in a 500 text, an `invalid_grant` description and a JSON error:
/// the browser's page, the JSON error and every log line hold none of it, in any encoding,
/// while the errors still say what failed and quote the provider's (scrubbed) words.
#[tokio::test]
async fn a_provider_echoing_the_request_leaks_no_credential_to_any_output() {
    let logs = capture_logs("trace");
    let hub = hub().await;
    let b = broker(&hub).await;
    let cases = [
        (
            Route::Token,
            echo(500, EchoFormat::Text),
            502,
            "POST /oauth/token",
        ),
        (
            Route::Token,
            echo(400, EchoFormat::InvalidGrant),
            401,
            "grant_type=authorization_code",
        ),
        (
            Route::Token,
            echo(502, EchoFormat::Json),
            502,
            "server_error",
        ),
        (
            Route::Userinfo,
            echo(500, EchoFormat::Text),
            502,
            "GET /oauth/userinfo",
        ),
        (
            Route::Userinfo,
            echo(503, EchoFormat::Json),
            502,
            "GET /oauth/userinfo",
        ),
    ];
    let mut outputs = Vec::new();
    for (route, fault, status, quoted) in cases {
        for json in [true, false] {
            hub.set_fault_once(route, fault.clone());
            let (got, body) = sign_in(&b, json).await;
            assert_eq!(got, status, "{route:?} {fault:?}: {body}");
            // Not vacuous: the provider's words are quoted, only its secrets are not.
            assert!(body.contains(quoted), "{route:?} {fault:?}: {body}");
            outputs.push((format!("{route:?} {fault:?} json={json}"), body));
        }
    }
    let mut secrets = client_credentials();
    secrets.extend(sent_secrets(&hub));
    assert!(secrets.len() > 20, "{secrets:?}");
    let logs = logs.text();
    assert!(
        logs.contains("sign-in failed"),
        "the broker's lines are captured"
    );
    let mut all: Vec<(&str, &str)> = outputs
        .iter()
        .map(|(what, body)| (what.as_str(), body.as_str()))
        .collect();
    all.extend(logs.lines().map(|line| ("a log line", line)));
    assert_no_secret(&secrets, &all);
}

/// The refresh grant echoed back (refresh token, Basic credentials) in each format.
#[tokio::test]
async fn a_refresh_echoed_back_leaks_neither_the_refresh_token_nor_the_secret() {
    let hub = hub().await;
    let c = connector(&hub);
    let auth = c.authorization_uri(request("st")).unwrap();
    let callback = approve(&auth.uri).await;
    let (tokens, _) = c
        .token_response_and_user_info(&callback, &auth.session)
        .await
        .unwrap();
    let refresh = tokens.refresh_token.expect("a refresh token");
    let mut secrets = client_credentials();
    secrets.extend([refresh.clone(), tokens.access_token]);
    secrets.extend(tokens.id_token);
    for (fault, code) in [
        (echo(500, EchoFormat::Text), ErrorCode::General),
        (
            echo(400, EchoFormat::InvalidGrant),
            ErrorCode::SocialAuthCodeInvalid,
        ),
        (echo(500, EchoFormat::Json), ErrorCode::General),
    ] {
        hub.set_fault_once(Route::Token, fault.clone());
        let e = c.access_token_by_refresh_token(&refresh).await.unwrap_err();
        assert_eq!(e.code, code, "{fault:?}: {e}");
        assert!(e.message.contains("refresh_token="), "{fault:?}: {e}");
        let shown = format!("{e} {e:?} {}", e.data.clone().unwrap_or_default());
        assert_no_secret(&secrets, &[("the refresh error", &shown)]);
    }
}

// ---------------------------------------------------------------- another origin

/// A discovery document whose `jwks_uri` is on another port of the same host: refused as
/// `invalid_response` naming the field, before anything is asked there, so nothing that
/// origin says reaches the browser.
#[tokio::test]
async fn a_jwks_uri_on_another_origin_is_refused_before_any_request() {
    let hub = hub().await;
    let elsewhere = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let marker = "ANSWER-FROM-ELSEWHERE";
    elsewhere.set_fault(
        Route::Jwks,
        Fault::Status {
            status: 403,
            body: format!("{marker}: forbidden"),
            content_type: "text/plain".into(),
        },
    );
    let document = json!({
        "issuer": hub.endpoint(),
        "jwks_uri": format!("{}/oauth/jwks", elsewhere.endpoint()),
        "token_endpoint": format!("{}/oauth/token", hub.endpoint()),
    });
    hub.set_fault(
        Route::Discovery,
        Fault::Json {
            status: 200,
            body: document,
        },
    );
    let b = broker(&hub).await;
    for json in [true, false] {
        let (status, body) = sign_in(&b, json).await;
        assert_eq!(status, 502, "{body}");
        assert!(!body.contains(marker), "{body}");
        assert!(body.contains("jwks_uri"), "the field is named: {body}");
        if json {
            let error: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["code"], "invalid_response", "{body}");
        }
    }
    assert!(
        elsewhere.requests().is_empty(),
        "another origin was called: {:?}",
        elsewhere.requests()
    );
    assert_eq!(elsewhere.jwks_fetches(), 0);
}

// ---------------------------------------------------------------- a key replaced

/// The provider replaces its signing key but keeps the `kid`: the next sign-in meets a
/// signature its cached key does not verify, fetches the JWKS once more and succeeds, with
/// no reload; later sign-ins use the refetched keys.
#[tokio::test]
async fn a_key_replaced_under_the_same_kid_is_refetched_once() {
    let hub = hub().await;
    let c = connector(&hub);
    hf::sign_in(&c).await.expect("before the replacement");
    assert_eq!(hub.jwks_fetches(), 1);
    hub.replace_signing_key();
    hf::sign_in(&c).await.expect("after the replacement");
    assert_eq!(
        hub.jwks_fetches(),
        2,
        "one refetch for the failed signature"
    );
    hf::sign_in(&c).await.expect("with the refetched keys");
    assert_eq!(hub.jwks_fetches(), 2);
}

/// An id_token signed by a key the provider never published, under a known `kid`, is refused
/// each time; the refetch it triggers happens once per rate-limit window, not per sign-in.
#[tokio::test]
async fn a_forged_signature_under_a_known_kid_is_refused_with_at_most_one_refetch() {
    let hub = hub().await;
    let c = connector(&hub);
    hf::sign_in(&c).await.expect("a genuine sign-in");
    assert_eq!(hub.jwks_fetches(), 1);
    hub.set_id_token_forgery(Some(IdTokenForgery::WrongKey));
    for attempt in 0..5 {
        let e = hf::sign_in(&c).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::SocialIdTokenInvalid, "{attempt}: {e}");
        assert!(
            e.message.contains("signature does not verify"),
            "{attempt}: {e}"
        );
    }
    assert_eq!(
        hub.jwks_fetches(),
        2,
        "one refetch for five forged signatures"
    );
    hub.set_id_token_forgery(None);
    hf::sign_in(&c).await.expect("genuine sign-ins still work");
    assert_eq!(hub.jwks_fetches(), 2);
}
