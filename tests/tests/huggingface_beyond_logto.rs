//! What the Hugging Face plugin does beyond Logto's connector, through the built cdylib against
//! the sandbox: OpenID Connect, public clients, organizations, `email_verified`, token storage and
//! refresh, size limits.

use connector_api::{ConnectorError, ErrorCode};
use connector_tests::hf::{approve, connector, plugin, query_pairs, request, sign_in, started};
use hub_sandbox::{
    Fault, HubSandbox, IdTokenForgery, Route, SandboxClient, SandboxConfig, SandboxOrg,
};
use serde_json::json;

const OPENID: &str = "openid profile email";

async fn hub() -> HubSandbox {
    HubSandbox::start(SandboxConfig::default()).await.unwrap()
}

#[tokio::test]
async fn openid_adds_a_nonce_and_verifies_the_id_token() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    let auth = c.authorization_uri(request("s")).unwrap();
    let nonce = auth.session["nonce"].as_str().unwrap().to_string();
    assert!(nonce.len() >= 22, "128 random bits");
    assert!(query_pairs(&auth.uri).contains(&("nonce".into(), nonce)));
    let callback = approve(&auth.uri).await;
    let user = c.user_info(&callback, &auth.session).await.unwrap();
    assert_eq!(user.id, SandboxConfig::default().user.sub);

    // The key set is cached: a second sign-in fetches neither the JWKS nor discovery again.
    sign_in(&c).await.unwrap();
    assert_eq!(hub.jwks_fetches(), 1);
    let discoveries = hub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/.well-known"))
        .count();
    assert_eq!(discoveries, 1);
}

#[tokio::test]
async fn without_openid_there_is_no_nonce_and_no_key_fetch() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": "profile"}));
    let auth = c.authorization_uri(request("s")).unwrap();
    assert!(auth.session.get("nonce").is_none());
    assert!(query_pairs(&auth.uri).iter().all(|(k, _)| k != "nonce"));
    sign_in(&c).await.unwrap();
    assert_eq!(hub.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    sign_in(&c).await.unwrap();
    hub.rotate_signing_key();
    sign_in(&c).await.unwrap();
    assert_eq!(
        hub.jwks_fetches(),
        2,
        "one fetch, then one more for the unknown kid"
    );
    sign_in(&c).await.unwrap();
    assert_eq!(hub.jwks_fetches(), 2);
}

#[tokio::test]
async fn every_forged_id_token_is_refused() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    for forgery in IdTokenForgery::ALL {
        hub.set_id_token_forgery(Some(*forgery));
        let e = sign_in(&c).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::SocialIdTokenInvalid, "{forgery:?}: {e}");
        assert!(e.message.starts_with("id_token refused: "), "{e}");
    }
    hub.set_id_token_forgery(None);
    sign_in(&c).await.unwrap();
}

#[tokio::test]
async fn each_forgery_is_refused_for_its_own_reason() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    let cases = [
        (IdTokenForgery::AlgNone, "alg is none or unknown"),
        (
            IdTokenForgery::Hs256,
            "not an asymmetric signature algorithm",
        ),
        (IdTokenForgery::WrongKey, "signature does not verify"),
        (
            IdTokenForgery::MissingKid,
            "no kid, and the provider publishes several keys",
        ),
        (
            IdTokenForgery::UnknownKid,
            "is not in the provider's key set",
        ),
        (IdTokenForgery::Expired, "expired"),
        (IdTokenForgery::IssuedInFuture, "issued in the future"),
        (IdTokenForgery::WrongIssuer, "iss is not the endpoint"),
        (
            IdTokenForgery::WrongAudience,
            "aud does not contain the client id",
        ),
        (IdTokenForgery::WrongNonce, "nonce does not match"),
        (
            IdTokenForgery::WrongSub,
            "sub does not match the userinfo sub",
        ),
        (IdTokenForgery::Garbage, "not a readable JWT"),
    ];
    for (forgery, reason) in cases {
        hub.set_id_token_forgery(Some(forgery));
        let e = sign_in(&c).await.unwrap_err();
        assert!(e.message.contains(reason), "{forgery:?}: {e}");
    }
}

#[tokio::test]
async fn a_missing_id_token_is_refused_when_openid_was_asked() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    let body = json!({"access_token": "hf_oauth_x", "token_type": "bearer", "scope": OPENID});
    hub.set_fault(Route::Token, Fault::Json { status: 200, body });
    let e = sign_in(&c).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialIdTokenInvalid, "{e}");
}

#[tokio::test]
async fn discovery_and_jwks_failures() {
    let hub = hub().await;
    let status = |status: u16| Fault::Status {
        status,
        body: "<html>down</html>".into(),
        content_type: "text/html".into(),
    };
    let cases = [
        (Route::Discovery, status(500), ErrorCode::General),
        (Route::Jwks, status(503), ErrorCode::General),
        (
            Route::Jwks,
            Fault::Json {
                status: 200,
                body: json!({"keys": "none"}),
            },
            ErrorCode::InvalidResponse,
        ),
        (
            Route::Discovery,
            Fault::RateLimited {
                retry_after_secs: 5,
            },
            ErrorCode::RateLimitExceeded,
        ),
        (
            Route::Discovery,
            Fault::Json {
                status: 200,
                body: json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}),
            },
            ErrorCode::InvalidResponse,
        ),
    ];
    for (route, fault, code) in cases {
        let label = format!("{route:?} {fault:?}");
        // A fresh instance each time: keys are cached per instance.
        let c = connector(&hub, json!({"scope": OPENID}));
        hub.set_fault(route, fault);
        let e = sign_in(&c).await.unwrap_err();
        hub.clear_faults();
        assert_eq!(e.code, code, "{label}: {e}");
    }
}

#[tokio::test]
async fn a_public_client_uses_pkce_and_no_secret() {
    let config = SandboxConfig {
        clients: vec![SandboxClient::public("public-app")],
        ..SandboxConfig::default()
    };
    let hub = HubSandbox::start(config).await.unwrap();
    let c = plugin()
        .create(&json!({"clientId": "public-app", "endpoint": hub.endpoint(), "scope": OPENID}))
        .unwrap();
    let user = sign_in(&c).await.unwrap();
    assert_eq!(user.id, SandboxConfig::default().user.sub);
    let requests = hub.requests();
    let token = requests.iter().find(|r| r.path == "/oauth/token").unwrap();
    assert_eq!(token.header("authorization"), None);
    let form = token.form_params();
    assert!(form.contains(&("client_id".into(), "public-app".into())));
    assert!(form.iter().any(|(k, _)| k == "code_verifier"));
}

fn org(sub: &str, name: &str) -> SandboxOrg {
    SandboxOrg {
        sub: sub.into(),
        name: name.into(),
        preferred_username: name.into(),
        ..SandboxOrg::default()
    }
}

#[tokio::test]
async fn organizations_select_and_gate() {
    let hub = hub().await;
    let mut user = SandboxConfig::default().user;
    user.orgs = vec![
        org("6500000000000000000000a1", "acme"),
        org("6500000000000000000000b2", "globex"),
    ];
    hub.set_user(user);

    let c = connector(&hub, json!({"orgIds": ["6500000000000000000000a1"]}));
    let auth = c.authorization_uri(request("s")).unwrap();
    assert!(query_pairs(&auth.uri).contains(&("orgIds".into(), "6500000000000000000000a1".into())));

    for allowed in [
        json!(["globex"]),
        json!(["6500000000000000000000a1"]),
        json!(["x", "acme"]),
    ] {
        let user = sign_in(&connector(&hub, json!({"allowedOrgs": allowed})))
            .await
            .unwrap();
        let orgs = user.raw_data["orgs"].as_array().unwrap();
        assert_eq!(orgs.len(), 2, "rawData keeps orgs as sent");
    }

    let e = sign_in(&connector(&hub, json!({"allowedOrgs": ["initech"]})))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationFailed);
    assert!(e.message.contains("allowedOrgs"));
    for name in ["acme", "globex", "6500000000000000000000a1"] {
        assert!(
            !e.message.contains(name),
            "the user's orgs stay private: {e}"
        );
    }
}

#[tokio::test]
async fn an_unverified_email_is_left_out() {
    let hub = hub().await;
    let mut user = SandboxConfig::default().user;
    user.email_verified = false;
    hub.set_user(user);
    let user = sign_in(&connector(&hub, json!({}))).await.unwrap();
    assert_eq!(user.email, None);
    assert_eq!(user.raw_data["email_verified"], false);
    assert!(user.raw_data["email"].is_string());
}

#[tokio::test]
async fn tokens_are_returned_and_refreshed_with_rotation() {
    let hub = hub().await;
    let c = connector(&hub, json!({"scope": OPENID}));
    let (callback, session) = started(&c).await;
    let (token, user) = c
        .token_response_and_user_info(&callback, &session)
        .await
        .unwrap();
    assert_eq!(user.id, SandboxConfig::default().user.sub);
    assert!(token.access_token.starts_with("hf_oauth_"));
    assert_eq!(token.token_type.as_deref(), Some("bearer"));
    assert_eq!(token.expires_in, Some(28800));
    assert_eq!(token.scope.as_deref(), Some(OPENID));
    assert!(token.id_token.is_some());
    let first_refresh = token.refresh_token.clone().unwrap();
    let printed = format!("{token:?}");
    assert!(!printed.contains(&token.access_token) && !printed.contains(&first_refresh));

    let renewed = c
        .access_token_by_refresh_token(&first_refresh)
        .await
        .unwrap();
    assert_ne!(renewed.access_token, token.access_token);
    let second_refresh = renewed.refresh_token.clone().unwrap();
    assert_ne!(second_refresh, first_refresh, "rotated");
    // The new access token works at the Hub.
    let status = reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", hub.endpoint()))
        .bearer_auth(&renewed.access_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let refused = |e: ConnectorError| {
        assert_eq!(e.code, ErrorCode::SocialAuthCodeInvalid, "{e}");
        assert!(!e.message.contains("hf_oauth"), "{e}");
    };
    refused(
        c.access_token_by_refresh_token(&first_refresh)
            .await
            .unwrap_err(),
    );
    hub.revoke_all_refresh_tokens();
    refused(
        c.access_token_by_refresh_token(&second_refresh)
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let hub = hub().await;
    let c = connector(&hub, json!({}));
    let (callback, session) = started(&c).await;
    let (token, _) = c
        .token_response_and_user_info(&callback, &session)
        .await
        .unwrap();
    hub.expire_all_refresh_tokens();
    let e = c
        .access_token_by_refresh_token(&token.refresh_token.unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::SocialAuthCodeInvalid);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused() {
    let hub = hub().await;
    for route in [Route::Token, Route::Userinfo, Route::Discovery, Route::Jwks] {
        for chunked in [false, true] {
            let c = connector(&hub, json!({"scope": OPENID}));
            hub.set_fault(
                route,
                Fault::HugeBody {
                    bytes: 2 * 1024 * 1024,
                    chunked,
                },
            );
            let e = sign_in(&c).await.unwrap_err();
            hub.clear_faults();
            assert_eq!(
                e.code,
                ErrorCode::InvalidResponse,
                "{route:?} chunked={chunked}: {e}"
            );
            assert!(e.message.contains("larger than 1048576 bytes"), "{e}");
        }
    }
    // Just under the limit is still read (and then refused only for its shape).
    hub.set_fault(
        Route::Userinfo,
        Fault::HugeBody {
            bytes: 1024 * 1024 - 64,
            chunked: true,
        },
    );
    let e = sign_in(&connector(&hub, json!({}))).await.unwrap_err();
    assert!(!e.message.contains("larger than"), "{e}");
}
