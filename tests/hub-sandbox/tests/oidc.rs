//! OpenID Connect: discovery, JWKS, id_tokens, key rotation and id_token forgeries.

mod common;

use common::*;
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FORGED_AUDIENCE, FORGED_ISSUER, FORGED_NONCE,
    GARBAGE_ID_TOKEN, HubSandbox, IDLE_KEY_ID, INITIAL_KEY_ID, IdTokenForgery, ROTATED_KEY_ID,
    SandboxOrg, SandboxUser, UNKNOWN_KID,
};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

// ---------------------------------------------------------------- discovery and JWKS

#[tokio::test]
async fn discovery_document_describes_the_sandbox() {
    let sandbox = sandbox().await;
    let endpoint = sandbox.endpoint();
    let response = get(&sandbox, "/.well-known/openid-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let doc = json(response).await;
    assert_eq!(doc["issuer"], endpoint);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{endpoint}/oauth/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{endpoint}/oauth/token"));
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{endpoint}/oauth/userinfo")
    );
    assert_eq!(doc["jwks_uri"], format!("{endpoint}/oauth/jwks"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    let scopes = doc["scopes_supported"].as_array().expect("scopes");
    for scope in [
        "openid",
        "profile",
        "email",
        "read-repos",
        "write-discussions",
    ] {
        assert!(scopes.contains(&json!(scope)), "{scope} missing");
    }
}

#[tokio::test]
async fn jwks_publishes_two_rsa_signature_keys() {
    let sandbox = sandbox().await;
    let raw = json(get(&sandbox, "/oauth/jwks").await).await;
    let keys = raw["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    for (key, kid) in keys.iter().zip([INITIAL_KEY_ID, IDLE_KEY_ID]) {
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["kid"], kid);
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["e"], "AQAB");
        assert_eq!(key["n"].as_str().map(str::len), Some(342), "2048-bit n");
        assert!(key.get("d").is_none(), "no private parts: {key}");
    }
    let set: JwkSet = serde_json::from_value(raw).expect("a JwkSet");
    for jwk in &set.keys {
        assert_eq!(jwk.common.public_key_use, Some(PublicKeyUse::Signature));
        assert_eq!(jwk.common.key_algorithm, Some(KeyAlgorithm::RS256));
        assert!(matches!(jwk.algorithm, AlgorithmParameters::RSA(_)));
    }
    assert_eq!(sandbox.signing_key_id(), INITIAL_KEY_ID);
    assert_eq!(sandbox.jwks_fetches(), 1);
}

// ---------------------------------------------------------------- id_token

#[tokio::test]
async fn id_token_verifies_against_the_jwks_with_the_expected_claims() {
    let sandbox = sandbox().await;
    let endpoint = sandbox.endpoint();
    let before = now();
    let body = tokens(&sandbox, "openid profile email", Some(NONCE)).await;
    let token = body["id_token"].as_str().expect("id_token");

    let header = decode_header(token).expect("header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(INITIAL_KEY_ID));

    let mut claims = verify(&sandbox, &jwks(&sandbox).await, token).expect("verifies");
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((before..=now()).contains(&iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!((before..=iat).contains(&auth_time));
    for volatile in ["iat", "exp", "auth_time"] {
        claims.as_object_mut().expect("object").remove(volatile);
    }
    assert_eq!(
        claims,
        json!({
            "iss": endpoint,
            "sub": "62f264b9f3c90f4b6514a269",
            "aud": DEFAULT_CLIENT_ID,
            "nonce": NONCE,
            "name": "Ada Lovelace",
            "preferred_username": "ada",
            "picture": format!("{endpoint}/avatars/ada.svg"),
            "profile": format!("{endpoint}/ada"),
            "website": "https://ada.example.com",
            "email": "ada@example.com",
            "email_verified": true,
        })
    );

    // The id_token's subject is the userinfo subject.
    let access_token = body["access_token"].as_str().expect("access_token");
    let info = json(userinfo(&sandbox, access_token).await).await;
    assert_eq!(info["sub"], claims["sub"]);
}

#[tokio::test]
async fn id_token_claims_follow_scope_and_omit_an_absent_nonce() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, "openid", None).await;
    let token = body["id_token"].as_str().expect("id_token");
    let claims = verify(&sandbox, &jwks(&sandbox).await, token).expect("verifies");
    let mut names: Vec<_> = claims
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(names, ["aud", "auth_time", "exp", "iat", "iss", "sub"]);

    let without_openid = tokens(&sandbox, "profile email", Some(NONCE)).await;
    assert!(without_openid.get("id_token").is_none(), "{without_openid}");
}

#[tokio::test]
async fn issued_codes_carry_their_nonce_into_the_id_token() {
    let sandbox = sandbox().await;
    let code = issue_code(&sandbox, "openid email", "from-code-params");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let body = json(post_token(&sandbox, &form, BASIC).await).await;
    let token = body["id_token"].as_str().expect("id_token");
    let claims = verify(&sandbox, &jwks(&sandbox).await, token).expect("verifies");
    assert_eq!(claims["nonce"], "from-code-params");
    assert_eq!(claims["email"], "ada@example.com");
    assert!(claims.get("name").is_none(), "no profile scope: {claims}");
}

#[tokio::test]
async fn rotation_signs_with_a_third_key_published_from_then_on() {
    let sandbox = sandbox().await;
    let cached = jwks(&sandbox).await;
    sandbox.rotate_signing_key();
    assert_eq!(sandbox.signing_key_id(), ROTATED_KEY_ID);

    let token = id_token(&sandbox).await;
    let kid = decode_header(&token).expect("header").kid;
    assert_eq!(kid.as_deref(), Some(ROTATED_KEY_ID));
    let error = verify(&sandbox, &cached, &token).expect_err("cached JWKS lacks the kid");
    assert!(error.contains("unknown kid"), "{error}");

    let fresh = jwks(&sandbox).await;
    let kids: Vec<_> = fresh.keys.iter().map(|k| k.common.key_id.clone()).collect();
    let expected = [INITIAL_KEY_ID, IDLE_KEY_ID, ROTATED_KEY_ID].map(|k| Some(k.to_owned()));
    assert_eq!(kids, expected);
    verify(&sandbox, &fresh, &token).expect("verifies with the refetched JWKS");
    assert_eq!(sandbox.jwks_fetches(), 2);

    sandbox.rotate_signing_key();
    assert_eq!(jwks(&sandbox).await.keys.len(), 3, "rotation is idempotent");
}

// ---------------------------------------------------------------- forgeries

/// The id_token issued while `forgery` is armed.
async fn forged(sandbox: &HubSandbox, forgery: IdTokenForgery) -> String {
    sandbox.set_id_token_forgery(Some(forgery));
    id_token(sandbox).await
}

#[tokio::test]
async fn signature_forgeries_fail_verification() {
    let sandbox = sandbox().await;
    let jwks = jwks(&sandbox).await;

    let none = forged(&sandbox, IdTokenForgery::AlgNone).await;
    assert!(none.ends_with('.'), "empty signature: {none}");
    assert_eq!(
        part(&none, 0),
        json!({"alg": "none", "typ": "JWT", "kid": INITIAL_KEY_ID})
    );
    assert_eq!(part(&none, 1)["nonce"], NONCE);
    assert!(verify(&sandbox, &jwks, &none).is_err());

    let hs256 = forged(&sandbox, IdTokenForgery::Hs256).await;
    let header = decode_header(&hs256).expect("header");
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some(INITIAL_KEY_ID));
    assert!(verify(&sandbox, &jwks, &hs256).is_err());
    // It is the key-confusion attack: the HMAC secret is the published public key's PEM.
    let secret = DecodingKey::from_secret(include_bytes!("../keys/sandbox-key-1.pub.pem"));
    let mut hmac = Validation::new(Algorithm::HS256);
    hmac.set_audience(&[DEFAULT_CLIENT_ID]);
    decode::<Value>(&hs256, &secret, &hmac).expect("HMAC with the public PEM verifies");

    let wrong_key = forged(&sandbox, IdTokenForgery::WrongKey).await;
    let header = decode_header(&wrong_key).expect("header");
    assert_eq!(header.kid.as_deref(), Some(INITIAL_KEY_ID));
    let error = verify(&sandbox, &jwks, &wrong_key).expect_err("attacker key");
    assert!(error.contains("decode"), "{error}");

    let garbage = forged(&sandbox, IdTokenForgery::Garbage).await;
    assert_eq!(garbage, GARBAGE_ID_TOKEN);
    assert!(decode_header(&garbage).is_err());
}

#[tokio::test]
async fn kid_forgeries_carry_a_valid_signature_under_an_unusable_kid() {
    let sandbox = sandbox().await;
    let jwks = jwks(&sandbox).await;
    let validation = {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[DEFAULT_CLIENT_ID]);
        validation
    };
    let key = |kid: &str| DecodingKey::from_jwk(jwks.find(kid).expect("jwk")).expect("key");

    let missing = forged(&sandbox, IdTokenForgery::MissingKid).await;
    assert_eq!(decode_header(&missing).expect("header").kid, None);
    assert_eq!(verify(&sandbox, &jwks, &missing), Err("no kid".to_owned()));
    decode::<Value>(&missing, &key(INITIAL_KEY_ID), &validation).expect("active key signed");
    assert!(decode::<Value>(&missing, &key(IDLE_KEY_ID), &validation).is_err());

    let unknown = forged(&sandbox, IdTokenForgery::UnknownKid).await;
    let kid = decode_header(&unknown).expect("header").kid;
    assert_eq!(kid.as_deref(), Some(UNKNOWN_KID));
    let error = verify(&sandbox, &jwks, &unknown).expect_err("unknown kid");
    assert!(error.contains("unknown kid"), "{error}");
    decode::<Value>(&unknown, &key(INITIAL_KEY_ID), &validation).expect("active key signed");
}

#[tokio::test]
async fn claim_forgeries_are_validly_signed_but_break_their_claim() {
    let sandbox = sandbox().await;
    let jwks = jwks(&sandbox).await;
    let sub = "62f264b9f3c90f4b6514a269";

    let expired = forged(&sandbox, IdTokenForgery::Expired).await;
    let claims = part(&expired, 1);
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(
        iat.is_some_and(|iat| (now() - iat - 3 * 3600).abs() <= 5),
        "{claims}"
    );
    assert!(
        exp.is_some_and(|exp| (now() - exp - 2 * 3600).abs() <= 5),
        "{claims}"
    );
    let error = verify(&sandbox, &jwks, &expired).expect_err("expired");
    assert!(error.contains("Expired"), "{error}");

    let future = forged(&sandbox, IdTokenForgery::IssuedInFuture).await;
    let claims = verify(&sandbox, &jwks, &future).expect("signature and exp are fine");
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((now() + 590..=now() + 600).contains(&iat), "{claims}");

    let checks: [(IdTokenForgery, &str, Value); 4] = [
        (IdTokenForgery::WrongIssuer, "iss", json!(FORGED_ISSUER)),
        (IdTokenForgery::WrongAudience, "aud", json!(FORGED_AUDIENCE)),
        (IdTokenForgery::WrongNonce, "nonce", json!(FORGED_NONCE)),
        (
            IdTokenForgery::WrongSub,
            "sub",
            json!("0123456789abcdef01234567"),
        ),
    ];
    for (forgery, claim, value) in checks {
        let token = forged(&sandbox, forgery).await;
        let claims = part(&token, 1);
        assert_eq!(claims[claim], value, "{forgery:?}");
        assert_ne!(claims[claim], json!(sub));
        let header = decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(INITIAL_KEY_ID), "{forgery:?}");
    }
    // iss and aud are checked by the verifier; nonce and sub are the relying party's job.
    let wrong_iss = forged(&sandbox, IdTokenForgery::WrongIssuer).await;
    assert!(verify(&sandbox, &jwks, &wrong_iss).is_err());
    let wrong_aud = forged(&sandbox, IdTokenForgery::WrongAudience).await;
    assert!(verify(&sandbox, &jwks, &wrong_aud).is_err());
    let wrong_nonce = forged(&sandbox, IdTokenForgery::WrongNonce).await;
    let claims = verify(&sandbox, &jwks, &wrong_nonce).expect("only the nonce is off");
    assert_ne!(claims["nonce"], NONCE);
}

/// Everything a relying party checks: signature, kid, iss, aud, exp, iat, nonce and sub.
fn sound(sandbox: &HubSandbox, jwks: &JwkSet, token: &str) -> bool {
    verify(sandbox, jwks, token).is_ok_and(|claims| {
        claims["nonce"] == NONCE
            && claims["sub"] == "62f264b9f3c90f4b6514a269"
            && claims["iat"].as_i64().is_some_and(|iat| iat <= now() + 60)
    })
}

#[tokio::test]
async fn forgery_applies_to_every_later_token_until_cleared() {
    let sandbox = sandbox().await;
    let jwks = jwks(&sandbox).await;
    assert_eq!(IdTokenForgery::ALL.len(), 12);
    for &forgery in IdTokenForgery::ALL {
        sandbox.set_id_token_forgery(Some(forgery));
        for _ in 0..2 {
            let token = id_token(&sandbox).await;
            assert!(
                !sound(&sandbox, &jwks, &token),
                "{forgery:?} gave a sound token"
            );
        }
    }
    sandbox.set_id_token_forgery(None);
    assert!(sound(&sandbox, &jwks, &id_token(&sandbox).await));
}

// ---------------------------------------------------------------- organizations

#[tokio::test]
async fn users_in_several_orgs_are_served_as_given_and_org_ids_recorded() {
    let sandbox = sandbox().await;
    let second = SandboxOrg {
        sub: "65c0ffee0000000000000001".to_owned(),
        name: "Difference Engines".to_owned(),
        preferred_username: "difference-engines".to_owned(),
        picture: "https://cdn.example/de.png".to_owned(),
        role_in_org: None,
        plan: None,
    };
    let orgs = vec![SandboxOrg::default(), second];
    sandbox.set_user(SandboxUser {
        orgs: orgs.clone(),
        ..SandboxUser::default()
    });
    let org_ids = format!("{},{}", orgs[0].sub, orgs[1].sub);
    let code = code_for(
        &sandbox,
        DEFAULT_CLIENT_ID,
        &[("scope", "openid read-repos"), ("orgIds", &org_ids)],
    )
    .await;
    let authorize = &sandbox.requests()[0];
    assert!(
        authorize
            .query_params()
            .contains(&("orgIds".to_owned(), org_ids.clone()))
    );

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let response = post_token(
        &sandbox,
        &form,
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    );
    let body = json(response.await).await;
    let info = json(userinfo(&sandbox, body["access_token"].as_str().expect("at")).await).await;
    let endpoint = sandbox.endpoint();
    assert_eq!(
        info["orgs"],
        json!([
            {
                "sub": "64b7f1a2c3d4e5f60718293a",
                "name": "Analytical Engines",
                "preferred_username": "analytical-engines",
                "picture": format!("{endpoint}/avatars/analytical-engines.svg"),
                "roleInOrg": "admin",
                "plan": "team",
            },
            {
                "sub": "65c0ffee0000000000000001",
                "name": "Difference Engines",
                "preferred_username": "difference-engines",
                "picture": "https://cdn.example/de.png",
            },
        ])
    );
}
