//! Faults on the OIDC routes, and the `HugeBody` fault in both transfer modes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hub_sandbox::{Fault, Route};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const DISCOVERY: &str = "/.well-known/openid-configuration";
const MIB: usize = 1 << 20;

#[test]
fn new_routes_have_their_paths() {
    assert_eq!(Route::Discovery.path(), DISCOVERY);
    assert_eq!(Route::Jwks.path(), "/oauth/jwks");
}

#[tokio::test]
async fn huge_body_with_content_length() {
    let sandbox = sandbox().await;
    let bytes = MIB + 1;
    let fault = Fault::HugeBody {
        bytes,
        chunked: false,
    };
    sandbox.set_fault_once(Route::Jwks, fault);
    let response = get(&sandbox, "/oauth/jwks").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        bytes.to_string().as_str()
    );
    assert!(response.headers().get(header::TRANSFER_ENCODING).is_none());
    let body = response.bytes().await.expect("body");
    assert_eq!(body.len(), bytes);
    let value: Value = serde_json::from_slice(&body).expect("JSON-looking");
    assert!(value["padding"].is_string());
    assert_eq!(sandbox.jwks_fetches(), 1);
}

#[tokio::test]
async fn huge_body_chunked_has_no_content_length() {
    let sandbox = sandbox().await;
    let bytes = 2 * MIB + 3;
    for route in [Route::Token, Route::Userinfo, Route::Discovery, Route::Jwks] {
        sandbox.set_fault(
            route,
            Fault::HugeBody {
                bytes,
                chunked: true,
            },
        );
    }
    let mut response = get(&sandbox, DISCOVERY).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
    assert_eq!(response.headers()[header::TRANSFER_ENCODING], "chunked");
    // A client can stop at its limit after reading only part of the body...
    let mut read = 0;
    while read <= MIB {
        let chunk = response.chunk().await.expect("chunk").expect("more body");
        read += chunk.len();
    }
    drop(response);
    // ...and the whole body has the announced size.
    let body = get(&sandbox, "/oauth/jwks")
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.len(), bytes);
    assert!(body.starts_with(b"{\"padding\":\"xxx") && body.ends_with(b"xx\"}"));
    let token = post_token(&sandbox, &[("grant_type", "x")], BASIC).await;
    assert!(token.headers().get(header::CONTENT_LENGTH).is_none());
    assert_eq!(token.bytes().await.expect("body").len(), bytes);
}

#[tokio::test]
async fn status_rate_limit_and_stall_faults_apply_to_discovery_and_jwks() {
    let sandbox = sandbox().await;
    sandbox.set_fault(
        Route::Discovery,
        Fault::Status {
            status: 503,
            body: "<html>down</html>".to_owned(),
            content_type: "text/html".to_owned(),
        },
    );
    sandbox.set_fault_once(
        Route::Jwks,
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    sandbox.set_fault_once(
        Route::Jwks,
        Fault::Json {
            status: 200,
            body: json!({"keys": "nope"}),
        },
    );
    for _ in 0..2 {
        let down = get(&sandbox, DISCOVERY).await;
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.text().await.expect("body"), "<html>down</html>");
    }
    let limited = get(&sandbox, "/oauth/jwks").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[header::RETRY_AFTER], "7");
    assert_eq!(limited.headers()["ratelimit"], "\"api\";r=0;t=7");
    assert_eq!(
        json(get(&sandbox, "/oauth/jwks").await).await,
        json!({"keys": "nope"})
    );
    assert_eq!(jwks(&sandbox).await.keys.len(), 2);
    assert_eq!(sandbox.jwks_fetches(), 3, "faulted fetches count");

    sandbox.clear_faults();
    assert_eq!(get(&sandbox, DISCOVERY).await.status(), StatusCode::OK);
    sandbox.set_fault_once(Route::Jwks, Fault::Stall(Duration::from_millis(300)));
    let started = Instant::now();
    let keys = jwks(&sandbox).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(keys.keys.len(), 2);

    let paths: Vec<_> = sandbox.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.iter().filter(|p| *p == DISCOVERY).count(), 3);
    assert_eq!(paths.iter().filter(|p| *p == "/oauth/jwks").count(), 4);
}
