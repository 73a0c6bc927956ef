//! End-to-end tests of the sandbox through real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{BASIC, REDIRECT_URI, http, issue_code, json, post_token, sandbox, start};

use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HubSandbox, Route, SandboxClient,
    SandboxConfig, SandboxOrg, SandboxUser, pkce_challenge,
};
use reqwest::{Client, Response, StatusCode, header};
use serde_json::{Value, json};
use url::Url;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Authorize request parameters, defaulting to a PKCE request of the default client.
struct Authorize(Vec<(String, String)>);

impl Authorize {
    fn new() -> Self {
        let defaults = [
            ("response_type", "code"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email"),
            ("state", "st-123"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        Self(
            defaults
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self = self.remove(name);
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    fn remove(mut self, name: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self
    }

    async fn send(&self, sandbox: &HubSandbox) -> Response {
        let url = format!("{}/oauth/authorize", sandbox.endpoint());
        let url = Url::parse_with_params(&url, &self.0).expect("authorize url");
        http().get(url).send().await.expect("authorize request")
    }

    /// Sends the request and returns the code of its 303 redirect.
    async fn code(&self, sandbox: &HubSandbox) -> String {
        let location = redirect_location(self.send(sandbox).await);
        query_param(&location, "code").expect("code in redirect")
    }
}

fn redirect_location(response: Response) -> Url {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii");
    Url::parse(location).expect("absolute Location")
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

fn code_form<'a>(code: &'a str, verifier: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    form
}

/// Redeems `code` as the default confidential client.
async fn redeem(sandbox: &HubSandbox, code: &str, verifier: Option<&str>) -> Response {
    post_token(sandbox, &code_form(code, verifier), BASIC).await
}

async fn access_token(sandbox: &HubSandbox, scope: &str) -> String {
    let code = Authorize::new().set("scope", scope).code(sandbox).await;
    let response = redeem(sandbox, &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn userinfo(sandbox: &HubSandbox, authorization: Option<&str>) -> Response {
    let url = format!("{}/oauth/userinfo", sandbox.endpoint());
    let mut request = http().get(url);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.send().await.expect("userinfo request")
}

async fn assert_oauth_error(response: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status);
    let body = json(response).await;
    assert_eq!(body["error"], error, "body: {body}");
    assert!(body["error_description"].is_string(), "body: {body}");
    body
}

fn assert_no_nulls(value: &Value) {
    match value {
        Value::Null => panic!("null in userinfo"),
        Value::Array(items) => items.iter().for_each(assert_no_nulls),
        Value::Object(map) => map.values().for_each(assert_no_nulls),
        _ => {}
    }
}

// ---------------------------------------------------------------- happy path

#[tokio::test]
async fn happy_path_authorize_token_userinfo_with_pkce() {
    let sandbox = sandbox().await;
    let endpoint = sandbox.endpoint();

    let location = redirect_location(Authorize::new().send(&sandbox).await);
    assert_eq!(
        location.origin(),
        Url::parse(REDIRECT_URI).unwrap().origin()
    );
    assert_eq!(location.path(), "/callback");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    let code = query_param(&location, "code").expect("code");
    assert!(code.len() >= 22, "code has at least 128 bits: {code}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    let response = redeem(&sandbox, &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let token = json(response).await;
    let access_token = token["access_token"].as_str().expect("access_token");
    assert!(access_token.starts_with("hf_oauth_"), "{access_token}");
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 28800);
    assert_eq!(token["scope"], "openid profile email");

    // Logto sends the token type as given: lower-case `bearer`.
    let response = userinfo(&sandbox, Some(&format!("bearer {access_token}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info = json(response).await;
    assert_eq!(
        info,
        json!({
            "sub": "62f264b9f3c90f4b6514a269",
            "name": "Ada Lovelace",
            "preferred_username": "ada",
            "profile": format!("{endpoint}/ada"),
            "picture": format!("{endpoint}/avatars/ada.svg"),
            "website": "https://ada.example.com",
            "isPro": false,
            "email": "ada@example.com",
            "email_verified": true,
            "orgs": [{
                "sub": "64b7f1a2c3d4e5f60718293a",
                "name": "Analytical Engines",
                "preferred_username": "analytical-engines",
                "picture": format!("{endpoint}/avatars/analytical-engines.svg"),
                "roleInOrg": "admin",
                "plan": "team",
            }],
        })
    );

    // The picture URL resolves to an SVG served by the sandbox.
    let picture = info["picture"].as_str().expect("picture");
    let avatar = http().get(picture).send().await.expect("avatar");
    assert_eq!(avatar.status(), StatusCode::OK);
    assert_eq!(avatar.headers()[header::CONTENT_TYPE], "image/svg+xml");
    let svg = avatar.text().await.expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("<circle") && svg.contains(">A</text>"));
}

#[test]
fn pkce_challenge_matches_rfc7636_vector() {
    assert_eq!(pkce_challenge(VERIFIER), CHALLENGE);
}

#[tokio::test]
async fn issued_code_redeems_like_an_authorized_one() {
    let sandbox = sandbox().await;
    let code = issue_code(&sandbox, "profile", "n-1");
    let token = json(redeem(&sandbox, &code, None).await).await;
    assert_eq!(token["scope"], "profile");
    assert!(
        sandbox
            .requests()
            .iter()
            .all(|r| r.path != "/oauth/authorize")
    );
}

// ---------------------------------------------------------------- authorize

#[tokio::test]
async fn authorize_appends_to_an_existing_query_and_omits_absent_state() {
    let sandbox = sandbox().await;
    let redirect_uri = "https://app.example.com/cb?tenant=t1";
    let response = Authorize::new()
        .set("redirect_uri", redirect_uri)
        .remove("state")
        .send(&sandbox)
        .await;
    let location = redirect_location(response);
    assert!(
        location
            .as_str()
            .starts_with("https://app.example.com/cb?tenant=t1&code="),
        "{location}"
    );
    assert_eq!(query_param(&location, "state"), None);
}

#[tokio::test]
async fn authorize_rejects_bad_client_or_redirect_without_redirecting() {
    let client = SandboxClient {
        redirect_uris: vec!["https://app.example.com/cb".to_owned()],
        ..SandboxClient::default()
    };
    let sandbox = start(SandboxConfig {
        clients: vec![client],
        ..SandboxConfig::default()
    })
    .await;
    let registered = Authorize::new().set("redirect_uri", "https://app.example.com/cb");
    let cases = [
        registered.0.clone(),
        Authorize::new()
            .set("redirect_uri", "https://evil.example.com/cb")
            .0,
        Authorize(registered.0.clone()).set("client_id", "nope").0,
        Authorize(registered.0.clone()).remove("client_id").0,
        Authorize(registered.0.clone())
            .set("response_type", "token")
            .0,
        Authorize(registered.0.clone()).remove("redirect_uri").0,
    ];
    let statuses: Vec<_> = send_all(&sandbox, cases).await;
    assert_eq!(statuses[0].0, StatusCode::SEE_OTHER);
    for (status, location, content_type) in &statuses[1..] {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        assert_eq!(location, &None, "must not redirect to an unvalidated URI");
        assert!(content_type.starts_with("text/html"), "{content_type}");
    }
}

async fn send_all(
    sandbox: &HubSandbox,
    cases: impl IntoIterator<Item = Vec<(String, String)>>,
) -> Vec<(StatusCode, Option<String>, String)> {
    let mut out = Vec::new();
    for params in cases {
        let response = Authorize(params).send(sandbox).await;
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().expect("ascii").to_owned())
        };
        let location = header(header::LOCATION);
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        out.push((response.status(), location, content_type));
    }
    out
}

#[tokio::test]
async fn loopback_redirects_may_use_any_port() {
    let client = SandboxClient {
        redirect_uris: vec!["http://127.0.0.1:8080/cb".to_owned()],
        ..SandboxClient::default()
    };
    let sandbox = start(SandboxConfig {
        clients: vec![client],
        ..SandboxConfig::default()
    })
    .await;
    let other_port = Authorize::new().set("redirect_uri", "http://127.0.0.1:49152/cb");
    assert_eq!(
        other_port.send(&sandbox).await.status(),
        StatusCode::SEE_OTHER
    );
    let other_path = Authorize::new().set("redirect_uri", "http://127.0.0.1:49152/other");
    assert_eq!(
        other_path.send(&sandbox).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn authorize_redirects_invalid_request_for_non_s256_challenge() {
    let sandbox = sandbox().await;
    let response = Authorize::new()
        .set("code_challenge_method", "plain")
        .send(&sandbox)
        .await;
    let location = redirect_location(response);
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let sandbox = sandbox().await;
    sandbox.set_deny(true);
    let location = redirect_location(Authorize::new().send(&sandbox).await);
    assert_eq!(
        location.as_str(),
        format!(
            "{REDIRECT_URI}?error=access_denied&error_description=The+user+denied+the+request&state=st-123"
        )
    );
    sandbox.set_deny(false);
    let location = redirect_location(Authorize::new().send(&sandbox).await);
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn set_user_changes_who_later_codes_are_for() {
    let sandbox = sandbox().await;
    let first = access_token(&sandbox, "profile").await;
    sandbox.set_user(SandboxUser {
        sub: "0123456789abcdef01234567".to_owned(),
        preferred_username: "grace".to_owned(),
        ..SandboxUser::default()
    });
    let second = access_token(&sandbox, "profile").await;
    let first = json(userinfo(&sandbox, Some(&format!("Bearer {first}"))).await).await;
    let second = json(userinfo(&sandbox, Some(&format!("Bearer {second}"))).await).await;
    assert_eq!(first["sub"], "62f264b9f3c90f4b6514a269");
    assert_eq!(second["sub"], "0123456789abcdef01234567");
    assert_eq!(second["profile"], format!("{}/grace", sandbox.endpoint()));
}

// ---------------------------------------------------------------- token

#[tokio::test]
async fn pkce_mismatch_or_missing_verifier_is_invalid_grant() {
    let sandbox = sandbox().await;
    let wrong = "x".repeat(43);
    for verifier in [Some(wrong.as_str()), None] {
        let code = Authorize::new().code(&sandbox).await;
        let response = redeem(&sandbox, &code, verifier).await;
        let body = assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(body["error_description"], "PKCE verification failed");
    }
}

#[tokio::test]
async fn code_replay_is_invalid_grant() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    assert_eq!(
        redeem(&sandbox, &code, Some(VERIFIER)).await.status(),
        StatusCode::OK
    );
    let replay = redeem(&sandbox, &code, Some(VERIFIER)).await;
    assert_oauth_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let unknown = redeem(&sandbox, "not-a-code", Some(VERIFIER)).await;
    assert_oauth_error(unknown, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn expired_codes_are_invalid_grant() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    sandbox.expire_all_codes();
    let response = redeem(&sandbox, &code, Some(VERIFIER)).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let short = start(SandboxConfig {
        code_ttl: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await;
    let code = Authorize::new().code(&short).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let response = redeem(&short, &code, Some(VERIFIER)).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorize_request() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:3000/other"),
        ("code_verifier", VERIFIER),
    ];
    let response = post_token(&sandbox, &form, BASIC).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn code_issued_to_another_client_is_invalid_grant() {
    let other = SandboxClient {
        client_id: "other-client".to_owned(),
        client_secret: Some("other-secret".to_owned()),
        redirect_uris: Vec::new(),
    };
    let sandbox = start(SandboxConfig {
        clients: vec![SandboxClient::default(), other],
        ..SandboxConfig::default()
    })
    .await;
    let code = Authorize::new().code(&sandbox).await;
    let form = code_form(&code, Some(VERIFIER));
    let response = post_token(&sandbox, &form, Some(("other-client", "other-secret"))).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // The rightful client can still redeem it.
    assert_eq!(
        redeem(&sandbox, &code, Some(VERIFIER)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_client_authentication_is_401_invalid_client() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    let form = code_form(&code, Some(VERIFIER));
    let attempts = [
        Some((DEFAULT_CLIENT_ID, "wrong-secret")),
        Some(("unknown-client", DEFAULT_CLIENT_SECRET)),
        None,
    ];
    for basic in attempts {
        let response = post_token(&sandbox, &form, basic).await;
        let body = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_eq!(body["error_description"], "Client authentication failed");
    }
    // Failed authentication does not consume the code.
    assert_eq!(
        redeem(&sandbox, &code, Some(VERIFIER)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn basic_credentials_may_be_form_urlencoded() {
    let client = SandboxClient {
        client_id: "app".to_owned(),
        client_secret: Some("s3c+r/t=%".to_owned()),
        redirect_uris: Vec::new(),
    };
    let sandbox = start(SandboxConfig {
        clients: vec![client],
        ..SandboxConfig::default()
    })
    .await;
    // Sent raw (as most clients do) and form-urlencoded (RFC 6749 §2.3.1).
    for secret in ["s3c+r/t=%", "s3c%2Br%2Ft%3D%25"] {
        let code = Authorize::new()
            .set("client_id", "app")
            .code(&sandbox)
            .await;
        let form = code_form(&code, Some(VERIFIER));
        let response = post_token(&sandbox, &form, Some(("app", secret))).await;
        assert_eq!(response.status(), StatusCode::OK, "secret sent as {secret}");
    }
}

#[tokio::test]
async fn client_secret_post_is_accepted() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    let mut form = code_form(&code, Some(VERIFIER));
    form.extend([
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ]);
    assert_eq!(
        post_token(&sandbox, &form, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn public_client_authenticates_with_client_id_only() {
    let sandbox = start(SandboxConfig {
        clients: vec![SandboxClient::public("public-app")],
        ..SandboxConfig::default()
    })
    .await;
    let authorize = Authorize::new().set("client_id", "public-app");

    let code = authorize.code(&sandbox).await;
    let mut form = code_form(&code, Some(VERIFIER));
    form.push(("client_id", "public-app"));
    let token = json(post_token(&sandbox, &form, None).await).await;
    assert!(
        token["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("hf_oauth_"))
    );

    // As huggingface.js: neither client_id nor secret, the code identifies the client.
    let code = authorize.code(&sandbox).await;
    let response = post_token(&sandbox, &code_form(&code, Some(VERIFIER)), None).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A public client has no secret to send.
    let code = authorize.code(&sandbox).await;
    let form = code_form(&code, Some(VERIFIER));
    let response = post_token(&sandbox, &form, Some(("public-app", "made-up"))).await;
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn unsupported_grant_and_malformed_requests_are_400() {
    let sandbox = sandbox().await;
    let form = [("grant_type", "password"), ("username", "ada")];
    let response = post_token(&sandbox, &form, BASIC).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;

    let code = Authorize::new().code(&sandbox).await;
    let url = format!("{}/oauth/token", sandbox.endpoint());
    let as_json = http()
        .post(url)
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .json(&json!({"grant_type": "authorization_code", "code": code}))
        .send()
        .await
        .expect("token request");
    assert_oauth_error(as_json, StatusCode::BAD_REQUEST, "invalid_request").await;
}

// ---------------------------------------------------------------- userinfo

#[tokio::test]
async fn userinfo_rejects_missing_and_unknown_tokens() {
    let sandbox = sandbox().await;
    for authorization in [None, Some("Bearer hf_oauth_unknown"), Some("Basic YTpi")] {
        let response = userinfo(&sandbox, authorization).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(json(response).await, json!({"error": "invalid_token"}));
    }
}

#[tokio::test]
async fn revoked_tokens_are_401() {
    let sandbox = sandbox().await;
    let token = access_token(&sandbox, "openid profile").await;
    let authorization = format!("Bearer {token}");
    assert_eq!(
        userinfo(&sandbox, Some(&authorization)).await.status(),
        StatusCode::OK
    );
    sandbox.revoke_all_tokens();
    let response = userinfo(&sandbox, Some(&authorization)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let sandbox = start(SandboxConfig {
        token_ttl_secs: 0,
        ..SandboxConfig::default()
    })
    .await;
    let token = access_token(&sandbox, "profile").await;
    let response = userinfo(&sandbox, Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_fields_follow_granted_scope() {
    let sandbox = sandbox().await;
    let keys = |info: &Value| -> Vec<String> {
        let mut keys: Vec<_> = info.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let cases = [
        ("openid", vec!["orgs", "sub"]),
        (
            "profile",
            vec![
                "isPro",
                "name",
                "orgs",
                "picture",
                "preferred_username",
                "profile",
                "sub",
                "website",
            ],
        ),
        (
            "openid email",
            vec!["email", "email_verified", "orgs", "sub"],
        ),
    ];
    for (scope, expected) in cases {
        let token = access_token(&sandbox, scope).await;
        let info = json(userinfo(&sandbox, Some(&format!("Bearer {token}"))).await).await;
        assert_eq!(keys(&info), expected, "scope {scope}: {info}");
    }
}

#[tokio::test]
async fn absent_optional_fields_are_omitted_not_null() {
    let sandbox = sandbox().await;
    sandbox.set_user(SandboxUser {
        email: None,
        orgs: vec![SandboxOrg {
            role_in_org: None,
            plan: None,
            ..SandboxOrg::default()
        }],
        ..SandboxUser::default()
    });
    let token = access_token(&sandbox, "openid profile email").await;
    let info = json(userinfo(&sandbox, Some(&format!("Bearer {token}"))).await).await;
    assert_no_nulls(&info);
    assert!(info.get("email").is_none() && info.get("email_verified").is_none());
    let org = &info["orgs"][0];
    assert!(
        org.get("roleInOrg").is_none() && org.get("plan").is_none(),
        "{org}"
    );

    sandbox.set_user(SandboxUser {
        orgs: Vec::new(),
        ..SandboxUser::default()
    });
    let token = access_token(&sandbox, "openid").await;
    let info = json(userinfo(&sandbox, Some(&format!("Bearer {token}"))).await).await;
    assert_eq!(info["orgs"], json!([]));
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn status_fault_is_sticky_until_cleared() {
    let sandbox = sandbox().await;
    let html = "<html><body>502 Bad Gateway</body></html>";
    sandbox.set_fault(
        Route::Userinfo,
        Fault::Status {
            status: 502,
            body: html.to_owned(),
            content_type: "text/html".to_owned(),
        },
    );
    let token = access_token(&sandbox, "profile").await;
    let authorization = format!("Bearer {token}");
    for _ in 0..2 {
        let response = userinfo(&sandbox, Some(&authorization)).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html");
        assert_eq!(response.text().await.expect("body"), html);
    }
    sandbox.clear_faults();
    assert_eq!(
        userinfo(&sandbox, Some(&authorization)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn once_faults_apply_to_the_next_requests_only() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    sandbox.set_fault_once(
        Route::Token,
        Fault::Json {
            status: 200,
            body: json!({"invalid_field": true}),
        },
    );
    sandbox.set_fault_once(
        Route::Token,
        Fault::Json {
            status: 400,
            body: json!({"error": "invalid_grant"}),
        },
    );
    let first = redeem(&sandbox, &code, Some(VERIFIER)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(json(first).await, json!({"invalid_field": true}));
    let second = redeem(&sandbox, &code, Some(VERIFIER)).await;
    assert_eq!(second.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(second).await, json!({"error": "invalid_grant"}));
    // Faulted requests never reached the handler: the code is still unused.
    assert_eq!(
        redeem(&sandbox, &code, Some(VERIFIER)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_limited_fault_sends_retry_headers() {
    let sandbox = sandbox().await;
    sandbox.set_fault_once(
        Route::Authorize,
        Fault::RateLimited {
            retry_after_secs: 42,
        },
    );
    let response = Authorize::new().send(&sandbox).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    assert_eq!(response.headers()["ratelimit"], "\"api\";r=0;t=42");
    assert!(response.headers().contains_key("ratelimit-policy"));
    assert!(json(response).await["error"].is_string());
    assert_eq!(
        Authorize::new().send(&sandbox).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn stall_fault_delays_then_answers_normally() {
    let sandbox = sandbox().await;
    let token = access_token(&sandbox, "profile").await;
    let url = format!("{}/oauth/userinfo", sandbox.endpoint());

    sandbox.set_fault_once(Route::Userinfo, Fault::Stall(Duration::from_secs(5)));
    let timed_out = http()
        .get(&url)
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("stalled request times out");
    assert!(timed_out.is_timeout(), "{timed_out}");

    sandbox.set_fault_once(Route::Userinfo, Fault::Stall(Duration::from_millis(300)));
    let started = Instant::now();
    let response = http()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("userinfo");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["preferred_username"], "ada");
}

// ---------------------------------------------------------------- recording and lifecycle

#[tokio::test]
async fn every_request_is_recorded_in_order() {
    let sandbox = sandbox().await;
    let code = Authorize::new().code(&sandbox).await;
    sandbox.set_fault_once(
        Route::Token,
        Fault::Status {
            status: 500,
            body: String::new(),
            content_type: "text/plain".to_owned(),
        },
    );
    assert_eq!(
        redeem(&sandbox, &code, Some(VERIFIER)).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let _ = userinfo(&sandbox, Some("Bearer nope")).await;
    let missing = http()
        .get(format!("{}/nope?x=1", sandbox.endpoint()))
        .send()
        .await;
    assert_eq!(missing.expect("404").status(), StatusCode::NOT_FOUND);

    let requests = sandbox.requests();
    let paths: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("GET", "/oauth/authorize"),
            ("POST", "/oauth/token"),
            ("GET", "/oauth/userinfo"),
            ("GET", "/nope"),
        ]
    );
    let authorize = &requests[0];
    assert!(
        authorize
            .query
            .as_deref()
            .is_some_and(|q| q.contains("response_type=code"))
    );
    assert!(
        authorize
            .query_params()
            .contains(&("state".into(), "st-123".into()))
    );
    let token = &requests[1];
    let basic = token
        .header("Authorization")
        .expect("authorization recorded");
    assert!(basic.starts_with("Basic "), "{basic}");
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(token.form_params().contains(&("code".into(), code.clone())));
    assert_eq!(requests[2].header("authorization"), Some("Bearer nope"));
    assert_eq!(requests[3].query.as_deref(), Some("x=1"));

    sandbox.clear_requests();
    assert!(sandbox.requests().is_empty());
}

#[tokio::test]
async fn start_on_rejects_non_loopback_and_shutdown_stops_serving() {
    let public = "0.0.0.0:0".parse().expect("addr");
    let error = HubSandbox::start_on(public, SandboxConfig::default())
        .await
        .expect_err("non-loopback refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);

    let sandbox = HubSandbox::start_on(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig::default(),
    )
    .await
    .expect("start");
    let endpoint = sandbox.endpoint();
    assert_eq!(endpoint, format!("http://{}", sandbox.addr()));
    assert!(!endpoint.ends_with('/'));
    assert_eq!(
        Authorize::new().send(&sandbox).await.status(),
        StatusCode::SEE_OTHER
    );
    sandbox.shutdown().await;
    let after = Client::builder().no_proxy().build().expect("client");
    let result = after.get(format!("{endpoint}/oauth/userinfo")).send().await;
    assert!(
        result.is_err_and(|e| e.is_connect()),
        "server still answers after shutdown"
    );

    let dropped = sandbox_addr_after_drop().await;
    let result = after.get(format!("{dropped}/oauth/userinfo")).send().await;
    assert!(
        result.is_err_and(|e| e.is_connect()),
        "server still answers after drop"
    );
}

async fn sandbox_addr_after_drop() -> String {
    let sandbox = sandbox().await;
    let endpoint = sandbox.endpoint();
    drop(sandbox);
    tokio::task::yield_now().await;
    endpoint
}
