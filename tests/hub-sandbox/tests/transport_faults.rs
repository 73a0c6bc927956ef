//! The transport faults (reset mid-body, trickle, redirect, content type) and the load-test
//! knobs (random failures, unique users, recording off).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hub_sandbox::{Fault, Route};
use reqwest::{StatusCode, header};
use serde_json::Value;

const DISCOVERY: &str = "/.well-known/openid-configuration";

#[tokio::test]
async fn reset_mid_body_sends_headers_then_breaks_the_body() {
    let sandbox = sandbox().await;
    sandbox.set_fault_once(Route::Jwks, Fault::ResetMidBody);
    let response = get(&sandbox, "/oauth/jwks").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let error = response.bytes().await.expect_err("the body is cut short");
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    // One-shot: the route answers normally again.
    assert_eq!(get(&sandbox, "/oauth/jwks").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn trickle_sends_the_normal_body_slowly() {
    let sandbox = sandbox().await;
    let normal = get(&sandbox, DISCOVERY).await.bytes().await.unwrap();
    let every = Duration::from_millis(40);
    let chunk = normal.len().div_ceil(5);
    sandbox.set_fault_once(Route::Discovery, Fault::Trickle { chunk, every });
    let started = Instant::now();
    let response = get(&sandbox, DISCOVERY).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        normal.len().to_string().as_str()
    );
    let body = response.bytes().await.unwrap();
    // Five chunks, four pauses between them.
    assert!(started.elapsed() >= every * 4, "{:?}", started.elapsed());
    assert_eq!(body, normal, "the same body, only slower");
}

#[tokio::test]
async fn redirect_points_elsewhere_with_an_empty_body() {
    let sandbox = sandbox().await;
    let location = "http://127.0.0.1:9/elsewhere".to_string();
    for (status, expected) in [(307, 307), (302, 302), (200, 302)] {
        let fault = Fault::Redirect {
            location: location.clone(),
            status,
        };
        sandbox.set_fault_once(Route::Userinfo, fault);
        let response = get(&sandbox, "/oauth/userinfo").await;
        assert_eq!(response.status().as_u16(), expected);
        assert_eq!(response.headers()[header::LOCATION], location.as_str());
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn content_type_relabels_the_normal_answer() {
    let sandbox = sandbox().await;
    let fault = Fault::ContentType("text/html; charset=utf-8".into());
    sandbox.set_fault_once(Route::Jwks, fault);
    let response = get(&sandbox, "/oauth/jwks").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["keys"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn random_failures_hit_token_and_userinfo_only_at_the_seeded_rate() {
    let sandbox = sandbox().await;
    sandbox.set_random_failure_rate(0.5, 7);
    let mut failed = 0;
    for _ in 0..200 {
        let response = get(&sandbox, "/oauth/userinfo").await;
        match response.status().as_u16() {
            500 => failed += 1,
            401 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(sandbox.random_failures(), failed);
    // 200 draws at p = 0.5: 100 ± 35 is beyond six standard deviations.
    assert!((65..=135).contains(&failed), "{failed}");
    for _ in 0..20 {
        assert_eq!(get(&sandbox, DISCOVERY).await.status(), StatusCode::OK);
    }
    sandbox.set_random_failure_rate(0.0, 0);
    for _ in 0..20 {
        assert_eq!(get(&sandbox, "/oauth/userinfo").await.status(), 401);
    }
    assert_eq!(sandbox.random_failures(), failed);
}

#[tokio::test]
async fn unique_users_number_each_authorization_and_recording_can_stop() {
    let sandbox = sandbox().await;
    sandbox.set_unique_users(true);
    let mut subs = Vec::new();
    for _ in 0..3 {
        let token = tokens(&sandbox, "openid profile", None).await;
        let access = token["access_token"].as_str().unwrap().to_string();
        let url = format!("{}/oauth/userinfo", sandbox.endpoint());
        let info: Value = http()
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        subs.push(info["sub"].as_str().unwrap().to_string());
        assert!(
            info["preferred_username"]
                .as_str()
                .unwrap()
                .starts_with("ada-")
        );
    }
    assert_eq!(subs, [1, 2, 3].map(|n| format!("{n:024x}")));
    let recorded = sandbox.requests().len();
    sandbox.set_recording(false);
    get(&sandbox, DISCOVERY).await;
    assert_eq!(sandbox.requests().len(), recorded);
}

#[tokio::test]
async fn forget_grants_makes_issued_tokens_unknown() {
    let sandbox = sandbox().await;
    let token = tokens(&sandbox, "profile", None).await;
    let access = token["access_token"].as_str().unwrap().to_string();
    let userinfo = |access: String| {
        let url = format!("{}/oauth/userinfo", sandbox.endpoint());
        async move { http().get(url).bearer_auth(access).send().await.unwrap() }
    };
    assert_eq!(userinfo(access.clone()).await.status(), StatusCode::OK);
    sandbox.forget_grants();
    assert_eq!(userinfo(access).await.status(), StatusCode::UNAUTHORIZED);
}
