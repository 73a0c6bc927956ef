//! Security through the host (issue 5, item 5), beyond `host_routes.rs`: a state presented at
//! another connector's callback, PKCE code injection, cookie attributes, open-redirect
//! attempts, and no secret in any log line or error body at debug level.

mod host_support;

use connector_tests::logs::capture_logs;

use base64::Engine as _;
use connector_tests::PluginDir;
use host_example::{Broker, BrokerConfig, BrokerOptions};
use host_support::{
    TestBroker, assert_error, callback, echo_connector, echo_dir, http, query_param, start_sign_in,
    status_json, with_query,
};
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HubSandbox, Route, SandboxConfig,
    pkce_challenge,
};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};

const EVIL: &str = "https://evil.example/steal";

async fn hub() -> HubSandbox {
    HubSandbox::start(SandboxConfig::default()).await.unwrap()
}

fn hf_connector(hub: &HubSandbox) -> String {
    format!(
        "[[connectors]]\nid = \"hf\"\nfactory = \"huggingface-universal\"\n\
         config = {{ clientId = \"{DEFAULT_CLIENT_ID}\", clientSecret = \"{DEFAULT_CLIENT_SECRET}\", \
         scope = \"openid profile email\", endpoint = \"{}\" }}\n",
        hub.endpoint()
    )
}

async fn hf_broker(hub: &HubSandbox) -> TestBroker {
    let dir = PluginDir::new();
    dir.add("huggingface-plugin");
    TestBroker::start(dir, &hf_connector(hub)).await
}

/// Consent at the sandbox: the callback URL it sends the browser back to.
async fn consent(location: &str) -> String {
    let response = http().get(location).send().await.unwrap();
    assert_eq!(response.status(), 303);
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The state is taken (single use) before it is checked, so presenting it at the wrong
/// connector ends the sign-in: whoever holds a leaked state can spoil it, but nobody can
/// finish it anywhere afterwards, which is the safe side.
#[tokio::test]
async fn a_state_at_another_connector_s_callback_is_400_and_burns_the_sign_in() {
    let connectors = echo_connector("echo-a", "A", None) + &echo_connector("echo-b", "B", None);
    let b = TestBroker::start(echo_dir(), &connectors).await;
    let a = start_sign_in(&b.url, "echo-a", None).await;
    let query = [("state", a.state.as_str()), ("code", "x")];
    let at_b = callback(&b.url, "echo-b", &query, Some(&a.cookie)).await;
    assert_error(at_b, 400, "invalid_state").await;
    let at_a = callback(&b.url, "echo-a", &query, Some(&a.cookie)).await;
    assert_error(at_a, 400, "state_replayed").await;
}

/// Code injection: sign-in 1's state with sign-in 2's code. The broker sends sign-in 1's
/// verifier, which does not match code 2's challenge: the provider refuses, 401.
#[tokio::test]
async fn a_code_from_another_sign_in_fails_pkce_through_the_host() {
    let hub = hub().await;
    let b = hf_broker(&hub).await;
    let one = start_sign_in(&b.url, "hf", None).await;
    let two = start_sign_in(&b.url, "hf", Some(&one.cookie)).await;
    consent(&one.location).await;
    let code_two = query_param(&consent(&two.location).await, "code").unwrap();
    let query = [("state", one.state.as_str()), ("code", code_two.as_str())];
    let r = callback(&b.url, "hf", &query, Some(&one.cookie)).await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (401, Some("social_auth_code_invalid")),
        "{json}"
    );
    assert!(!json.to_string().contains(&code_two), "{json}");
    let token = hub
        .requests()
        .into_iter()
        .rfind(|r| r.path == Route::Token.path())
        .expect("a token request");
    let form = token.form_params();
    let sent = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(sent("code"), Some(code_two));
    let challenge = pkce_challenge(&sent("code_verifier").expect("a verifier"));
    assert_eq!(
        Some(&challenge),
        query_param(&one.location, "code_challenge").as_ref()
    );
    assert_ne!(
        Some(&challenge),
        query_param(&two.location, "code_challenge").as_ref()
    );
}

/// A broker whose `public_url` is https (served on loopback http all the same).
async fn https_broker() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let text = format!(
        "public_url = \"https://broker.example\"\n{}",
        echo_connector("echo", "Hi", None)
    );
    let config = BrokerConfig::parse(&text, |_| None).unwrap();
    let dir = echo_dir();
    let broker = Broker::start(config, BrokerOptions::new(dir.path())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _dir = dir;
        let _ = broker
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    (url, stop)
}

#[tokio::test]
async fn the_cookie_is_httponly_lax_path_root_and_secure_on_https() {
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hi", None)).await;
    let plain = start_sign_in(&b.url, "echo", None).await;
    let attributes = |set_cookie: &str| -> Vec<String> {
        set_cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_owned())
            .collect()
    };
    assert_eq!(
        attributes(&plain.set_cookie),
        ["Path=/", "Max-Age=600", "HttpOnly", "SameSite=Lax"]
    );
    let (url, _stop) = https_broker().await;
    let secure = start_sign_in(&url, "echo", None).await;
    assert_eq!(
        attributes(&secure.set_cookie),
        [
            "Path=/",
            "Max-Age=600",
            "HttpOnly",
            "SameSite=Lax",
            "Secure"
        ]
    );
    assert_eq!(
        query_param(&secure.location, "redirect_uri").as_deref(),
        Some("https://broker.example/callback/echo")
    );
}

/// `redirect_uri`, `next` and `return_to` on `/sign-in/{id}` change nothing: the provider is
/// asked for `{public_url}/callback/{id}`; a callback answers a page, never a redirect.
#[tokio::test]
async fn open_redirect_attempts_change_nothing() {
    let hub = hub().await;
    let b = hf_broker(&hub).await;
    let tricks = [
        ("redirect_uri", EVIL),
        ("next", EVIL),
        ("return_to", "//evil.example/steal"),
    ];
    let r = http()
        .get(with_query(&b.at("/sign-in/hf"), &tricks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&hub.endpoint()), "{location}");
    assert_eq!(
        query_param(&location, "redirect_uri"),
        Some(b.at("/callback/hf"))
    );
    assert!(!location.contains("evil.example"), "{location}");
    let set_cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let back = consent(&location).await;
    assert!(back.starts_with(&b.at("/callback/hf?")), "{back}");

    // The callback, with the same tricks added, as JSON and as HTML, success and failure.
    let state = query_param(&back, "state").unwrap();
    let code = query_param(&back, "code").unwrap();
    let mut query = vec![("state", state.as_str()), ("code", code.as_str())];
    query.extend(tricks);
    for accept in ["text/html", "application/json"] {
        let r = http()
            .get(with_query(&b.at("/callback/hf"), &query))
            .header(ACCEPT, accept)
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(r.headers().get(LOCATION).is_none(), "{accept}: {status}");
        assert!(matches!(status, 200 | 400), "{accept}: {status}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("evil.example"), "{accept}: {body}");
    }
}

/// What the flows of [`no_secret_in_logs_or_error_bodies`] produced.
#[derive(Default)]
struct Seen {
    secrets: Vec<String>,
    bodies: Vec<String>,
}

impl Seen {
    fn started(&mut self, s: &host_support::Started) {
        let value = s.cookie.split_once('=').unwrap().1.to_owned();
        self.secrets.extend([s.state.clone(), value]);
    }

    async fn body(&mut self, r: reqwest::Response) -> u16 {
        let status = r.status().as_u16();
        self.bodies.push(r.text().await.unwrap());
        status
    }
}

/// A whole sign-in on `hf`, recording its secrets and the callback's body; the status.
async fn flow(b: &TestBroker, seen: &mut Seen, accept: &str) -> u16 {
    let s = start_sign_in(&b.url, "hf", None).await;
    seen.started(&s);
    let back = consent(&s.location).await;
    let r = http()
        .get(&back)
        .header(ACCEPT, accept)
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    seen.body(r).await
}

/// Runs success and failure flows with every log line captured at debug level, then looks
/// for each secret the sandbox saw (client secret, Basic credentials, codes, PKCE verifiers,
/// access tokens, nonces) and each state and cookie value in every log line and response body.
#[tokio::test]
async fn no_secret_in_logs_or_error_bodies() {
    let logs = capture_logs("debug");
    let hub = hub().await;
    let b = hf_broker(&hub).await;
    let mut seen = Seen::default();
    let json = "application/json";
    assert_eq!(flow(&b, &mut seen, json).await, 200);
    assert_eq!(flow(&b, &mut seen, "text/html").await, 200);
    for (route, fault, status) in [
        (Route::Token, status_fault(500), 502),
        (
            Route::Userinfo,
            Fault::RateLimited {
                retry_after_secs: 9,
            },
            429,
        ),
    ] {
        hub.set_fault_once(route, fault);
        assert_eq!(flow(&b, &mut seen, json).await, status, "{route:?}");
    }
    hub.set_id_token_forgery(Some(hub_sandbox::IdTokenForgery::WrongKey));
    assert_eq!(flow(&b, &mut seen, json).await, 401, "forged id_token");
    hub.set_id_token_forgery(None);
    hub.set_deny(true);
    assert_eq!(
        flow(&b, &mut seen, "text/html").await,
        400,
        "consent denied"
    );
    hub.set_deny(false);
    failures_at_the_host(&b, &mut seen).await;

    seen.secrets.extend(sandbox_secrets(&hub));
    let logs = logs.text();
    assert!(logs.contains("DEBUG"), "debug lines are captured");
    assert!(
        logs.contains("sign-in failed"),
        "the broker's lines are captured"
    );
    for secret in seen.secrets.iter().filter(|s| s.len() >= 8) {
        for line in logs.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "`{secret}` in a log line: {line}"
            );
        }
        for body in &seen.bodies {
            assert!(
                !body.contains(secret.as_str()),
                "`{secret}` in a body: {body}"
            );
        }
    }
    println!(
        "RELIABILITY security secrets={} log_lines={} bodies={}",
        seen.secrets.len(),
        logs.lines().count(),
        seen.bodies.len()
    );
}

/// Replay, another browser's cookie, a forged state, a code injection, a refused consent.
async fn failures_at_the_host(b: &TestBroker, seen: &mut Seen) {
    let s = start_sign_in(&b.url, "hf", None).await;
    seen.started(&s);
    let back = consent(&s.location).await;
    let other = start_sign_in(&b.url, "hf", None).await;
    seen.started(&other);
    let get = |cookie: &str| {
        http()
            .get(&back)
            .header(ACCEPT, "application/json")
            .header(COOKIE, cookie.to_owned())
            .send()
    };
    assert_eq!(seen.body(get(&other.cookie).await.unwrap()).await, 400);
    assert_eq!(seen.body(get(&s.cookie).await.unwrap()).await, 400);
    let forged = [("state", "A".repeat(43)), ("code", "c".repeat(20))];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = callback(&b.url, "hf", &forged, Some(&s.cookie)).await;
    assert_eq!(seen.body(r).await, 400);
    // Sign-in 1's code (never redeemed: its callbacks failed before) with sign-in 2's state.
    let code_one = query_param(&back, "code").unwrap();
    let injected = [("state", other.state.as_str()), ("code", code_one.as_str())];
    let r = callback(&b.url, "hf", &injected, Some(&other.cookie)).await;
    assert_eq!(seen.body(r).await, 401);
}

fn status_fault(status: u16) -> Fault {
    Fault::Status {
        status,
        body: "upstream failed".into(),
        content_type: "text/plain".into(),
    }
}

/// The secrets the broker sent the provider: Basic credentials, codes, PKCE verifiers, access
/// tokens, and the states and nonces of authorization requests.
fn sandbox_secrets(hub: &HubSandbox) -> Vec<String> {
    let basic = format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}");
    let mut secrets = vec![
        DEFAULT_CLIENT_SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(basic),
    ];
    for request in hub.requests() {
        let params = request
            .form_params()
            .into_iter()
            .chain(request.query_params());
        secrets.extend(
            params
                .filter(|(k, _)| ["code", "code_verifier", "state", "nonce"].contains(&k.as_str()))
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
