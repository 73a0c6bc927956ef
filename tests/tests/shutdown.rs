//! `Plugin::shutdown` stops one loaded library's runtime; its own process (this file), so that no
//! other test loses a plugin it shares.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_api::{AuthorizationRequest, ConnectorError, ErrorCode, SocialUserInfo};
use connector_tests::load_private;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_only_that_copy_and_later_calls_fail_with_general() {
    // Two copies of one build: two libraries, two runtimes.
    let stopped = load_private("echo-plugin");
    let running = load_private("echo-plugin");
    let config = json!({"greeting": "Hi"});
    let (a, b) = (
        stopped.create(&config).unwrap(),
        running.create(&config).unwrap(),
    );
    let code = json!({"code": "1"});
    assert!(a.user_info(&code, &json!({})).await.is_ok());
    assert!(b.user_info(&code, &json!({})).await.is_ok());

    stopped.shutdown();

    let error = a.user_info(&code, &json!({})).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::General);
    assert_eq!(error.message, "connector plugin was shut down");
    // No new sign-in starts on a stopped plugin: it could not finish.
    let request = AuthorizationRequest {
        state: "s".into(),
        redirect_uri: "https://b.example/cb".into(),
        ..Default::default()
    };
    let error = a.authorization_uri(request).unwrap_err();
    assert_eq!(error.message, "connector plugin was shut down");
    assert_eq!(
        stopped.create(&config).unwrap_err().message,
        "connector plugin was shut down"
    );
    // Shutting down twice is harmless.
    stopped.shutdown();

    assert_eq!(b.user_info(&code, &json!({})).await.unwrap().id, "echo-1");
}

/// Starts a 1 s call, shuts its plugin down while the call is in flight, and returns the call's
/// result and how long shutdown took.
async fn shutdown_during_a_call() -> (Result<SocialUserInfo, ConnectorError>, Duration) {
    let plugin = load_private("echo-plugin");
    let connector = Arc::new(plugin.create(&json!({"greeting": "Hi"})).unwrap());
    let call = tokio::spawn({
        let connector = Arc::clone(&connector);
        async move {
            let callback = json!({"code": "slow", "sleepMs": 1000});
            connector.user_info(&callback, &json!({})).await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    // Shutdown blocks while it waits for the plugin's threads; keep it off the host's workers.
    tokio::task::spawn_blocking(move || plugin.shutdown())
        .await
        .unwrap();
    let took = started.elapsed();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("a call in flight at shutdown ends")
        .unwrap();
    (result, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_in_flight_at_shutdown_ends_without_hanging() {
    let (result, _) = shutdown_during_a_call().await;
    match result {
        Ok(user) => assert_eq!(user.id, "echo-slow"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::General);
            assert_eq!(e.message, "connector plugin was shut down");
        }
    }
}

/// `Plugin::shutdown` drains: a call in flight (1 s, shut down 200 ms in) completes, and
/// shutdown returns only after it.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_a_call_in_flight() {
    let (result, took) = shutdown_during_a_call().await;
    assert_eq!(result.unwrap().id, "echo-slow");
    assert!(took >= Duration::from_millis(500), "{took:?}");
}
