//! The Hugging Face plugin through the real loader (the built cdylib) against the Hub sandbox:
//! every behaviour of Logto's connector, plus PKCE, timeouts, rate limits and secret hygiene.

use std::time::{Duration, Instant};

use connector_api::{AuthorizationRequest, ConnectorError, ErrorCode, Platform, SocialUserInfo};
use connector_tests::hf::{
    REDIRECT_URI, approve, connector, plugin, query_pairs, request, sign_in, started,
};
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HubSandbox, Route, SandboxConfig,
};
use serde_json::json;

#[tokio::test]
async fn metadata_crosses_the_boundary() {
    let plugin = plugin();
    let m = plugin.metadata();
    assert_eq!(
        (m.id.as_str(), m.target.as_str()),
        ("huggingface-universal", "huggingface")
    );
    assert_eq!(m.platform, Platform::Universal);
    for lang in ["en", "zh-CN", "tr-TR", "ko"] {
        assert!(
            m.name.contains_key(lang) && m.description.contains_key(lang),
            "{lang}"
        );
    }
    assert!(m.logo.starts_with("data:image/svg+xml;base64,"));
    assert!(m.readme.contains("Redirect URI"));
    let keys: Vec<_> = m.form_items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "clientId",
            "clientSecret",
            "scope",
            "endpoint",
            "requestTimeoutMs"
        ]
    );
    let secret = &m.form_items[1];
    assert!(secret.required && secret.is_confidential);
    assert_eq!(plugin.api_version(), connector_api::API_VERSION);
}

#[tokio::test]
async fn config_errors_name_the_field() {
    let plugin = plugin();
    let cases = [
        (json!({"clientSecret": "s"}), "clientId"),
        (json!({"clientId": "i", "clientSecret": 5}), "clientSecret"),
        (
            json!({"clientId": "i", "allowedOrgs": "acme"}),
            "allowedOrgs",
        ),
        (
            json!({"clientId": "i", "clientSecret": "s", "scope": 3}),
            "scope",
        ),
        (
            json!({"clientId": "i", "clientSecret": "s", "endpoint": "http://hub.example"}),
            "endpoint",
        ),
        (
            json!({"clientId": "i", "clientSecret": "s", "colour": "red"}),
            "colour",
        ),
        (json!("just a string"), "config"),
    ];
    for (config, field) in cases {
        let e = plugin.create(&config).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig, "{config}");
        assert_eq!(e.data.as_ref().unwrap()["field"], field, "{config}");
        assert!(e.message.contains(field), "{}", e.message);
    }
}

#[tokio::test]
async fn authorization_uri_has_logtos_parameters_then_pkce() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let mut c = json!({"clientId": "<client-id>", "clientSecret": "<client-secret>",
        "scope": "profile email", "endpoint": hub.endpoint()});
    let auth = plugin()
        .create(&c)
        .unwrap()
        .authorization_uri(request("some_state"))
        .unwrap();
    // Logto's test 1, byte for byte (URLSearchParams encoding), then PKCE.
    let logto = format!(
        "{}/oauth/authorize?response_type=code&client_id=%3Cclient-id%3E&scope=profile+email\
         &redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&state=some_state&code_challenge=",
        hub.endpoint()
    );
    assert!(auth.uri.starts_with(&logto), "{}", auth.uri);
    let pairs = query_pairs(&auth.uri);
    assert_eq!(pairs.len(), 7);
    assert_eq!(pairs[6], ("code_challenge_method".into(), "S256".into()));
    let verifier = auth.session["codeVerifier"].as_str().unwrap();
    assert_eq!(pairs[5].1, hub_sandbox::pkce_challenge(verifier));
    assert_eq!(auth.session["redirectUri"], REDIRECT_URI);

    // Logto's test 2: a per-call scope overrides the configured one.
    let custom = AuthorizationRequest {
        scope: Some("custom_scope".into()),
        ..request("s")
    };
    c["scope"] = json!("profile");
    let auth = plugin()
        .create(&c)
        .unwrap()
        .authorization_uri(custom)
        .unwrap();
    assert_eq!(
        query_pairs(&auth.uri)[2],
        ("scope".into(), "custom_scope".into())
    );
    // Each sign-in gets its own verifier.
    let again = plugin()
        .create(&c)
        .unwrap()
        .authorization_uri(request("s"))
        .unwrap();
    assert_ne!(again.session["codeVerifier"], auth.session["codeVerifier"]);
}

/// Runs on a current-thread host runtime that also serves the sandbox: if the plugin blocked
/// the host's thread while it waits for the network, this test would hang.
#[tokio::test(flavor = "current_thread")]
async fn full_sign_in_over_real_http_without_blocking_the_host() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));
    let user = sign_in(&connector).await.unwrap();
    let expected = SandboxConfig::default().user;
    assert_eq!(user.id, expected.sub);
    assert_eq!(user.name.as_deref(), Some(expected.name.as_str()));
    assert_eq!(user.email, expected.email);
    assert!(user.avatar.as_deref().unwrap().starts_with(&hub.endpoint()));
    assert_eq!(
        user.raw_data["preferred_username"],
        expected.preferred_username.as_str()
    );
    assert!(user.raw_data["orgs"].is_array());

    let requests = hub.requests();
    let token = requests.iter().find(|r| r.path == "/oauth/token").unwrap();
    let form = token.form_params();
    let keys: Vec<_> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["grant_type", "code", "redirect_uri", "code_verifier"]
    );
    assert_eq!(form[0].1, "authorization_code");
    assert_eq!(form[2].1, REDIRECT_URI);
    let basic = base64_basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    assert_eq!(token.header("authorization"), Some(basic.as_str()));
    let userinfo = requests
        .iter()
        .find(|r| r.path == "/oauth/userinfo")
        .unwrap();
    assert!(
        userinfo
            .header("authorization")
            .unwrap()
            .starts_with("Bearer hf_oauth_")
    );
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::test]
async fn logto_userinfo_mapping() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let body = json!({"sub": "id", "name": "name", "email": "email", "picture": "picture"});
    hub.set_fault(
        Route::Userinfo,
        Fault::Json {
            status: 200,
            body: body.clone(),
        },
    );
    let user = sign_in(&connector(&hub, json!({}))).await.unwrap();
    let expected = SocialUserInfo {
        id: "id".into(),
        email: Some("email".into()),
        phone: None,
        name: Some("name".into()),
        avatar: Some("picture".into()),
        raw_data: body,
    };
    assert_eq!(user, expected);

    hub.set_fault(
        Route::Userinfo,
        Fault::Json {
            status: 200,
            body: json!({"sub": "x", "name": null}),
        },
    );
    let user = sign_in(&connector(&hub, json!({}))).await.unwrap();
    assert_eq!((user.name, user.email, user.avatar), (None, None, None));
}

#[tokio::test]
async fn scope_decides_the_fields() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let user = sign_in(&connector(&hub, json!({"scope": "profile"})))
        .await
        .unwrap();
    assert_eq!(user.email, None);
    assert!(user.name.is_some());
}

#[tokio::test]
async fn callback_errors_are_authorization_failed() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));
    let session = connector.authorization_uri(request("s")).unwrap().session;

    let e = connector
        .user_info(&json!({"error": "some error"}), &session)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationFailed);
    assert_eq!(e.data.unwrap()["error"], "some error");

    let e = connector
        .user_info(&json!({"state": "s"}), &session)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationFailed);

    // The user denies consent at the Hub: the description survives.
    hub.set_deny(true);
    let auth = connector.authorization_uri(request("s")).unwrap();
    let callback = approve(&auth.uri).await;
    let e = connector
        .user_info(&callback, &auth.session)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationFailed);
    assert_eq!(e.data.as_ref().unwrap()["error"], "access_denied");
    assert!(
        e.message.contains("The user denied the request"),
        "{}",
        e.message
    );
    assert!(
        hub.requests().iter().all(|r| r.path != "/oauth/token"),
        "no token request"
    );
}

#[tokio::test]
async fn incomplete_session_is_general() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));
    let (callback, session) = started(&connector).await;
    for missing in ["redirectUri", "codeVerifier"] {
        let mut broken = session.clone();
        broken.as_object_mut().unwrap().remove(missing);
        let e = connector.user_info(&callback, &broken).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::General);
        assert!(e.message.contains(missing), "{}", e.message);
    }
    let e = connector
        .user_info(&callback, &json!("not an object"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::General);
}

/// The error of a whole sign-in while `route` answers with `fault`.
async fn fault_error(hub: &HubSandbox, route: Route, fault: Fault) -> ConnectorError {
    hub.set_fault(route, fault);
    let e = sign_in(&connector(hub, json!({}))).await.unwrap_err();
    hub.clear_faults();
    e
}

#[tokio::test]
async fn token_endpoint_failures_map_to_logto_codes() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let json_fault = |status, body| Fault::Json { status, body };
    let raw = |status, body: &str, content_type: &str| Fault::Status {
        status,
        body: body.into(),
        content_type: content_type.into(),
    };
    let cases = [
        (
            json_fault(200, json!({"invalid_field": true})),
            ErrorCode::InvalidResponse,
        ),
        (
            json_fault(200, json!({"access_token": 1, "token_type": "bearer"})),
            ErrorCode::InvalidResponse,
        ),
        (
            json_fault(200, json!({"access_token": "a", "token_type": "mac"})),
            ErrorCode::InvalidResponse,
        ),
        (
            raw(200, "<html>ok</html>", "text/html"),
            ErrorCode::InvalidResponse,
        ),
        (
            json_fault(400, json!({"error": "invalid_grant"})),
            ErrorCode::SocialAuthCodeInvalid,
        ),
        (
            json_fault(400, json!({"error": "invalid_client"})),
            ErrorCode::InvalidConfig,
        ),
        (
            json_fault(401, json!({"error": "invalid_client"})),
            ErrorCode::InvalidConfig,
        ),
        (
            Fault::RateLimited {
                retry_after_secs: 30,
            },
            ErrorCode::RateLimitExceeded,
        ),
        (raw(500, "", "text/plain"), ErrorCode::General),
        (
            raw(502, "<html>Bad Gateway</html>", "text/html"),
            ErrorCode::General,
        ),
        (raw(503, "down", "text/plain"), ErrorCode::General),
    ];
    for (fault, code) in cases {
        let label = format!("{fault:?}");
        let e = fault_error(&hub, Route::Token, fault).await;
        assert_eq!(e.code, code, "{label}: {e}");
        assert!(e.message.starts_with("token request"), "{label}: {e}");
    }
    let e = fault_error(
        &hub,
        Route::Token,
        Fault::RateLimited {
            retry_after_secs: 30,
        },
    )
    .await;
    assert_eq!(e.data.unwrap()["retryAfterSecs"], 30);
}

#[tokio::test]
async fn the_sandbox_refuses_real_bad_grants() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));

    // A replayed code.
    let (callback, session) = started(&connector).await;
    connector.user_info(&callback, &session).await.unwrap();
    let e = connector.user_info(&callback, &session).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialAuthCodeInvalid, "{e}");

    // A verifier that does not match the challenge (PKCE).
    let (callback, mut session) = started(&connector).await;
    session["codeVerifier"] = json!("x".repeat(43));
    let e = connector.user_info(&callback, &session).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialAuthCodeInvalid, "{e}");

    // An expired code.
    let (callback, session) = started(&connector).await;
    hub.expire_all_codes();
    let e = connector.user_info(&callback, &session).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialAuthCodeInvalid, "{e}");

    // A wrong client secret.
    let wrong = self::connector(&hub, json!({"clientSecret": "not-the-secret"}));
    let (callback, session) = started(&wrong).await;
    let e = wrong.user_info(&callback, &session).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig, "{e}");
}

#[tokio::test]
async fn userinfo_failures_map_to_logto_codes() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let json_fault = |status, body| Fault::Json { status, body };
    let raw = |status, body: &str| Fault::Status {
        status,
        body: body.into(),
        content_type: "text/plain".into(),
    };
    let cases = [
        (
            json_fault(200, json!({"id": "id"})),
            ErrorCode::InvalidResponse,
        ),
        (json_fault(200, json!([1, 2])), ErrorCode::InvalidResponse),
        (raw(200, "not json"), ErrorCode::InvalidResponse),
        (
            json_fault(401, json!({"error": "invalid_token"})),
            ErrorCode::SocialAccessTokenInvalid,
        ),
        (
            Fault::RateLimited {
                retry_after_secs: 9,
            },
            ErrorCode::RateLimitExceeded,
        ),
        (raw(422, ""), ErrorCode::General),
        (raw(500, &"e".repeat(5000)), ErrorCode::General),
    ];
    for (fault, code) in cases {
        let label = format!("{fault:?}");
        let e = fault_error(&hub, Route::Userinfo, fault).await;
        assert_eq!(e.code, code, "{label}: {e}");
        assert!(e.message.starts_with("userinfo request"), "{label}: {e}");
        assert!(
            e.message.len() < 500,
            "error text is cut: {} bytes",
            e.message.len()
        );
    }
    let e = fault_error(&hub, Route::Userinfo, raw(422, "")).await;
    assert_eq!(e.message, "userinfo request failed with HTTP 422: ");

    // A token the Hub revokes between the token and the userinfo request: a real 401.
    let connector = connector(&hub, json!({}));
    let (callback, session) = started(&connector).await;
    hub.set_fault_once(Route::Userinfo, Fault::Stall(Duration::from_millis(300)));
    hub.clear_requests();
    let pending = tokio::spawn(async move { connector.user_info(&callback, &session).await });
    while !hub.requests().iter().any(|r| r.path == "/oauth/userinfo") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.revoke_all_tokens();
    let e = pending.await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialAccessTokenInvalid, "{e}");
}

#[tokio::test]
async fn a_stalled_provider_times_out_instead_of_hanging() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({"requestTimeoutMs": 300}));
    for route in [Route::Token, Route::Userinfo] {
        hub.set_fault(route, Fault::Stall(Duration::from_secs(10)));
        let started = Instant::now();
        let e = sign_in(&connector).await.unwrap_err();
        let waited = started.elapsed();
        hub.clear_faults();
        assert_eq!(e.code, ErrorCode::General);
        assert!(e.message.contains("timed out after 300 ms"), "{e}");
        assert!(
            waited < Duration::from_millis(300 + 1000),
            "{route:?} waited {waited:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_general() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));
    let (callback, session) = started(&connector).await;
    hub.shutdown().await;
    let e = connector.user_info(&callback, &session).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::General);
    assert!(e.message.contains("could not connect"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sign_ins_each_get_their_own_user() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = std::sync::Arc::new(connector(&hub, json!({})));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let c = connector.clone();
            tokio::spawn(async move { sign_in(&c).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().id,
            SandboxConfig::default().user.sub
        );
    }
    let tokens = hub
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .count();
    assert_eq!(tokens, 40);
}

/// Behaviour 8: no client secret, code or token in any error message, data or Debug print.
#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let connector = connector(&hub, json!({}));
    let mut errors = Vec::new();
    let faults = [
        (
            Route::Token,
            Fault::Json {
                status: 200,
                body: json!({"access_token": 5}),
            },
        ),
        (
            Route::Token,
            Fault::Json {
                status: 400,
                body: json!({"error": "invalid_grant"}),
            },
        ),
        (
            Route::Token,
            Fault::Json {
                status: 401,
                body: json!({"error": "invalid_client"}),
            },
        ),
        (
            Route::Userinfo,
            Fault::Json {
                status: 200,
                body: json!({"sub": 1}),
            },
        ),
        (
            Route::Userinfo,
            Fault::Json {
                status: 401,
                body: json!({}),
            },
        ),
        (
            Route::Userinfo,
            Fault::Json {
                status: 500,
                body: json!({}),
            },
        ),
    ];
    for (route, fault) in faults {
        hub.set_fault(route, fault);
        errors.push(sign_in(&connector).await.unwrap_err());
        hub.clear_faults();
    }
    let (callback, session) = started(&connector).await;
    errors.push(
        connector
            .user_info(&callback, &json!({"redirectUri": 1}))
            .await
            .unwrap_err(),
    );
    let _ = session;

    let requests = hub.requests();
    let mut secrets = vec![DEFAULT_CLIENT_SECRET.to_string()];
    for r in &requests {
        secrets.extend(
            r.form_params()
                .into_iter()
                .filter(|(k, _)| k == "code" || k == "code_verifier")
                .map(|(_, v)| v),
        );
        if let Some(bearer) = r
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        {
            secrets.push(bearer.to_string());
        }
    }
    assert!(
        secrets.len() > 10,
        "collected the codes and tokens of the flows: {}",
        secrets.len()
    );
    let printed: Vec<String> = errors.iter().map(|e| format!("{e:?} {e}")).collect();
    for secret in &secrets {
        for text in &printed {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
    assert!(!format!("{connector:?}").contains(DEFAULT_CLIENT_SECRET));
}
