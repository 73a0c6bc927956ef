//! host-example's routes, served in-process over real HTTP with the real plugins: the sign-in
//! flow, every failure status of the issue, the JSON API, and config errors at start.

mod host_support;

use connector_tests::PluginDir;
use host_example::{Broker, BrokerConfig, BrokerOptions, ConfigError, StartError};
use host_support::{
    TestBroker, assert_error, callback, callback_request, echo_connector, echo_dir, http, reload,
    reload_failed, start_sign_in, status_json,
};
use hub_sandbox::{HubSandbox, SandboxConfig};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE};
use std::time::Duration;

async fn echo_broker() -> TestBroker {
    TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await
}

#[tokio::test]
async fn sign_in_redirects_with_a_long_state_and_a_bound_cookie() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    assert!(s.location.starts_with("https://echo.invalid/authorize?"));
    let redirect = host_support::query_param(&s.location, "redirect_uri").unwrap();
    assert_eq!(redirect, b.at("/callback/echo"));
    // 32 random bytes, base64url: 43 characters (the issue asks for at least 128 bits).
    assert!(s.state.len() >= 43, "{}", s.state);
    assert!(s.cookie.starts_with("hx_signin="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Max-Age=600", "Path=/"] {
        assert!(s.set_cookie.contains(attribute), "{}", s.set_cookie);
    }
    assert!(
        !s.set_cookie.contains("Secure"),
        "http public_url: no Secure"
    );
    // The browser keeps its binding across sign-ins, so two tabs can sign in at once.
    let again = start_sign_in(&b.url, "echo", Some(&s.cookie)).await;
    assert_eq!(again.cookie, s.cookie);
    assert_ne!(again.state, s.state);
}

#[tokio::test]
async fn callback_answers_json_or_a_profile_page() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let response = callback(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", "ada")],
        Some(&s.cookie),
    )
    .await;
    let (status, json) = status_json(response).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["connector"], "echo");
    assert_eq!(json["user"]["id"], "echo-ada");
    assert_eq!(json["user"]["name"], "Hello");
    assert_eq!(json["user"]["rawData"]["build"], "1");

    // Without `Accept: application/json`: the HTML profile.
    let s = start_sign_in(&b.url, "echo", Some(&s.cookie)).await;
    let page = callback_request(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", "<b>x</b>")],
        Some(&s.cookie),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("Signed in with Echo"), "{html}");
    assert!(html.contains("Hello"));
    // Values from the provider are escaped.
    assert!(html.contains("echo-&lt;b&gt;x&lt;/b&gt;"), "{html}");
}

#[tokio::test]
async fn form_post_callback_is_accepted() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let body = format!("state={}&code=posted", s.state);
    let response = http()
        .post(b.at("/callback/echo"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .header(COOKIE, &s.cookie)
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(response).await;
    assert_eq!((status, &json["user"]["id"]), (200, &"echo-posted".into()));
}

#[tokio::test]
async fn forged_state_is_400_invalid_state() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let forged = "A".repeat(43);
    let r = callback(
        &b.url,
        "echo",
        &[("state", &forged), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_error(r, 400, "invalid_state").await;
    let r = callback(&b.url, "echo", &[("code", "x")], Some(&s.cookie)).await;
    assert_error(r, 400, "invalid_state").await;
    // The real state still works: a forged attempt does not burn it.
    let r = callback(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn replayed_callback_is_400_state_replayed() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "x")];
    assert_eq!(
        callback(&b.url, "echo", &query, Some(&s.cookie))
            .await
            .status(),
        200
    );
    let r = callback(&b.url, "echo", &query, Some(&s.cookie)).await;
    assert_error(r, 400, "state_replayed").await;
}

#[tokio::test]
async fn expired_state_is_400_state_expired() {
    let b = TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hello", None), |o| {
        o.sign_in_ttl = Duration::from_millis(200);
    })
    .await;
    let s = start_sign_in(&b.url, "echo", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_error(r, 400, "state_expired").await;
}

#[tokio::test]
async fn missing_cookie_is_400_and_does_not_burn_the_state() {
    let b = echo_broker().await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "x")];
    assert_error(
        callback(&b.url, "echo", &query, None).await,
        400,
        "cookie_missing",
    )
    .await;
    assert_eq!(
        callback(&b.url, "echo", &query, Some(&s.cookie))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn another_browser_s_cookie_is_400_cookie_mismatch() {
    let b = echo_broker().await;
    let victim = start_sign_in(&b.url, "echo", None).await;
    let attacker = start_sign_in(&b.url, "echo", None).await;
    assert_ne!(victim.cookie, attacker.cookie);
    let query = [("state", victim.state.as_str()), ("code", "x")];
    let r = callback(&b.url, "echo", &query, Some(&attacker.cookie)).await;
    assert_error(r, 400, "cookie_mismatch").await;
}

#[tokio::test]
async fn unknown_connector_is_404_and_a_repeated_parameter_400() {
    let b = echo_broker().await;
    let r = http()
        .get(b.at("/sign-in/nope"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "unknown_connector").await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("state", "other")];
    assert_error(
        callback(&b.url, "echo", &query, Some(&s.cookie)).await,
        400,
        "invalid_request",
    )
    .await;
}

/// Two instances of one factory, each with its own config; a state is only good for the
/// instance that issued it.
#[tokio::test]
async fn two_instances_of_one_factory() {
    let connectors =
        echo_connector("echo-a", "Hello A", None) + &echo_connector("echo-b", "Hello B", None);
    let b = TestBroker::start(echo_dir(), &connectors).await;
    let a = start_sign_in(&b.url, "echo-a", None).await;
    let bb = start_sign_in(&b.url, "echo-b", Some(&a.cookie)).await;
    assert!(bb.location.contains("callback%2Fecho-b"));
    let wrong = [("state", a.state.as_str()), ("code", "x")];
    assert_error(
        callback(&b.url, "echo-b", &wrong, Some(&a.cookie)).await,
        400,
        "invalid_state",
    )
    .await;
    let r = callback(
        &b.url,
        "echo-b",
        &[("state", &bb.state), ("code", "x")],
        Some(&a.cookie),
    )
    .await;
    let (_, json) = status_json(r).await;
    assert_eq!(
        (json["connector"].as_str(), json["user"]["name"].as_str()),
        (Some("echo-b"), Some("Hello B"))
    );

    let page = http()
        .get(b.at("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in ["echo-a", "echo-b"] {
        assert!(page.contains(&format!("href=\"/sign-in/{id}\"")), "{page}");
    }
    assert!(page.contains("Sign in with Echo"));
    assert!(
        page.contains("<img src=\"data:image/svg+xml;base64,"),
        "logo from the metadata"
    );
    assert!(!page.contains("Demo:"), "no demo banner outside demo mode");
}

/// Every connector error code the issue names, with its status and the code in the JSON.
#[tokio::test]
async fn connector_failures_map_to_the_issue_s_statuses() {
    let cases = [
        ("authorization_failed", 400),
        ("social_auth_code_invalid", 401),
        ("social_invalid_access_token", 401),
        ("social_invalid_id_token", 401),
        ("rate_limit_exceeded", 429),
        ("general", 502),
        ("invalid_response", 502),
    ];
    let connectors: String = cases
        .iter()
        .map(|(code, _)| echo_connector(&code.replace('_', "-"), "x", Some(code)))
        .collect();
    let b = TestBroker::start(echo_dir(), &connectors).await;
    for (code, status) in cases {
        let id = code.replace('_', "-");
        let s = start_sign_in(&b.url, &id, None).await;
        let r = callback(
            &b.url,
            &id,
            &[("state", &s.state), ("code", "x")],
            Some(&s.cookie),
        )
        .await;
        assert_error(r, status, code).await;
    }
    // The HTML form of a failure carries the same status.
    let s = start_sign_in(&b.url, "general", None).await;
    let page = callback_request(
        &b.url,
        "general",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(page.status(), 502);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Sign-in failed") && html.contains("general"),
        "{html}"
    );
}

#[tokio::test]
async fn api_connectors_healthz_and_reload_from_loopback() {
    let b = echo_broker().await;
    let (status, json) =
        status_json(http().get(b.at("/api/connectors")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let c = &json["connectors"][0];
    assert_eq!(
        (c["id"].as_str(), c["factory"].as_str()),
        (Some("echo"), Some("echo-web"))
    );
    assert_eq!(c["metadata"]["name"]["en"], "Echo");
    assert_eq!(c["build"]["file"], "libecho.so");
    assert_eq!(c["build"]["sha256"].as_str().map(str::len), Some(64));

    let (status, json) = status_json(http().get(b.at("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, &json["status"], &json["generation"]),
        (200, &"ok".into(), &1.into())
    );

    // Nothing changed: a new generation made of the same, reused build.
    let (status, json) = reload(&b).await;
    assert_eq!((status, &json["generation"]), (200, &2.into()), "{json}");
    assert_eq!(json["libraries"][0]["newBuild"], false);
    assert_eq!(
        http()
            .get(b.at("/admin/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

/// A reload that cannot build every connector keeps the old ones and says why.
#[tokio::test]
async fn failed_reload_keeps_the_old_connectors() {
    let b = echo_broker().await;
    let live = b.plugins.path().join("libecho.so");
    // Replaced in place: safe, because the broker only ever maps its own copies.
    std::fs::write(&live, b"not a library any more").unwrap();
    let json = reload_failed(&b).await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("connector `echo`") && message.contains("echo-web"),
        "{message}"
    );
    let s = start_sign_in(&b.url, "echo", None).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(b.broker.current().number, 1);
}

/// The Hugging Face plugin through the broker against the sandbox: the profile comes back,
/// the provider's tokens never do, and a user who denies consent gets 400 authorization_failed.
#[tokio::test]
async fn hugging_face_through_the_broker() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = PluginDir::new();
    dir.add("huggingface-plugin");
    let connectors = format!(
        "[[connectors]]\nid = \"hf\"\nfactory = \"huggingface-universal\"\n\
         config = {{ clientId = \"{}\", clientSecret = \"{}\", scope = \"openid profile email\", endpoint = \"{}\" }}\n",
        hub_sandbox::DEFAULT_CLIENT_ID,
        hub_sandbox::DEFAULT_CLIENT_SECRET,
        hub.endpoint()
    );
    let b = TestBroker::start(dir, &connectors).await;
    let s = start_sign_in(&b.url, "hf", None).await;
    let consent = http().get(&s.location).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&b.at("/callback/hf?")), "{back}");
    let r = http()
        .get(&back)
        .header(ACCEPT, "application/json")
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = SandboxConfig::default().user;
    assert_eq!(json["user"]["name"], expected.name.as_str(), "{text}");
    assert!(
        json["user"]["avatar"]
            .as_str()
            .unwrap()
            .starts_with(&hub.endpoint())
    );
    for secret in [
        "access_token",
        "refresh_token",
        "id_token",
        "hf_oauth",
        hub_sandbox::DEFAULT_CLIENT_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(hub.jwks_fetches(), 1, "openid: the id_token was verified");

    // A forged id_token is refused through the broker: 401.
    hub.set_id_token_forgery(Some(hub_sandbox::IdTokenForgery::WrongKey));
    assert_error(hf_callback(&b).await, 401, "social_invalid_id_token").await;
    hub.set_id_token_forgery(None);

    hub.set_deny(true);
    assert_error(hf_callback(&b).await, 400, "authorization_failed").await;
}

/// A sign-in on the broker's `hf` connector, through the sandbox's consent, to its callback.
async fn hf_callback(b: &TestBroker) -> reqwest::Response {
    let s = start_sign_in(&b.url, "hf", None).await;
    let consent = http().get(&s.location).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    http()
        .get(&back)
        .header(ACCEPT, "application/json")
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap()
}

fn start_error(connectors: &str) -> StartError {
    let text = format!("public_url = \"http://127.0.0.1:1\"\n{connectors}");
    let config = BrokerConfig::parse(&text, |_| None).unwrap();
    let dir = echo_dir();
    match Broker::start(config, BrokerOptions::new(dir.path())) {
        Ok(_) => panic!("the broker started with {connectors}"),
        Err(e) => e,
    }
}

#[test]
fn config_errors_stop_the_start_naming_connector_and_field() {
    let e = start_error(&echo_connector("good", "x", None).replace("echo-web", "no-such-factory"));
    assert!(
        matches!(&e, StartError::Config(ConfigError::UnknownFactory { connector, factory, .. })
        if connector == "good" && factory == "no-such-factory"),
        "{e}"
    );
    assert!(e.to_string().contains("loaded: `echo-web`"), "{e}");

    let bad = "[[connectors]]\nid = \"echo\"\nfactory = \"echo-web\"\nconfig = { greeting = 5 }\n";
    let e = start_error(&(echo_connector("fine", "x", None) + bad));
    assert_eq!(
        e.to_string(),
        "connector `echo`: invalid config field `greeting`: invalid config `greeting`: must be a string"
    );

    let twice = echo_connector("same", "x", None) + &echo_connector("same", "y", None);
    let text = format!("public_url = \"http://127.0.0.1:1\"\n{twice}");
    assert_eq!(
        BrokerConfig::parse(&text, |_| None),
        Err(ConfigError::DuplicateId("same".into()))
    );
}

/// `${NAME}` is filled in; a missing one names the variable. (`host_process.rs` checks the
/// real environment end to end.)
#[test]
fn environment_interpolation() {
    let toml = "public_url = \"http://127.0.0.1:1\"\n[[connectors]]\nid = \"echo\"\n\
                factory = \"echo-web\"\nconfig = { greeting = \"Hi ${WHO}!\" }\n";
    let env = |name: &str| (name == "WHO").then(|| "Grace".to_string());
    let config = BrokerConfig::parse(toml, env).unwrap();
    assert_eq!(config.connectors[0].config["greeting"], "Hi Grace!");
    let e = BrokerConfig::parse(toml, |_| None).unwrap_err();
    assert!(e.to_string().contains("environment variable `WHO`"), "{e}");
}
