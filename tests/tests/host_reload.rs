//! Live reload in-process: a plugin file replaced by a different build while the broker runs.

mod host_support;

use std::time::Duration;

use host_support::{
    TestBroker, callback, echo_build_2, echo_connector, echo_dir, eventually, http, start_sign_in,
    status_json,
};
use serde_json::Value;

async fn get_json(url: &str) -> Value {
    status_json(http().get(url).send().await.unwrap()).await.1
}

/// The scenario: a sign-in starts on build 1; `libecho.so` is replaced by build 2 and
/// `/admin/reload` is called; new sign-ins run on build 2 while the earlier one completes on
/// build 1; then build 1's generation is retired and its library shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reload_switches_builds_and_finishes_old_sign_ins_on_the_old_build() {
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;
    let description = |json: &Value| json["connectors"][0]["metadata"]["description"]["en"].clone();
    let before = get_json(&b.at("/api/connectors")).await;
    assert!(
        description(&before).as_str().unwrap().ends_with("build=1"),
        "{before}"
    );

    let old = start_sign_in(&b.url, "echo", None).await;

    // Overwritten in place, as an operator's `cp` would: safe, the broker maps only its copies.
    std::fs::copy(&build_2, b.plugins.path().join("libecho.so")).unwrap();
    let (status, report) = host_support::reload(&b).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["generation"], 2);
    assert_eq!(report["libraries"][0]["newBuild"], true);
    let after = get_json(&b.at("/api/connectors")).await;
    assert!(
        description(&after).as_str().unwrap().ends_with("build=2"),
        "{after}"
    );
    assert_ne!(
        after["connectors"][0]["build"]["sha256"],
        before["connectors"][0]["build"]["sha256"]
    );
    // Generation 1 is kept: a sign-in it started is still pending.
    assert_eq!(
        get_json(&b.at("/healthz")).await["liveGenerations"],
        serde_json::json!([2, 1])
    );

    let new = start_sign_in(&b.url, "echo", Some(&old.cookie)).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &new.state), ("code", "new")],
        Some(&old.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, &json["user"]["rawData"]["build"]),
        (200, &"2".into()),
        "{json}"
    );

    let r = callback(
        &b.url,
        "echo",
        &[("state", &old.state), ("code", "old")],
        Some(&old.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, &json["user"]["rawData"]["build"]),
        (200, &"1".into()),
        "{json}"
    );
    assert_eq!(json["user"]["id"], "echo-old");

    // Nothing references generation 1 any more: it is retired and build 1 shut down.
    let retired = eventually(Duration::from_secs(10), || async {
        let health = get_json(&b.at("/healthz")).await;
        (health["liveGenerations"] == serde_json::json!([2])).then_some(())
    })
    .await;
    assert!(retired.is_some(), "generation 1 was not retired");
    // Each build got its own content-addressed copy; the plugin file itself is never mapped.
    let copies: Vec<_> = std::fs::read_dir(b.plugins.path().join(".loaded"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("libecho-") && n.ends_with(".so"))
        .collect();
    assert_eq!(copies.len(), 2, "{copies:?}");
}

/// A reload started while a sign-in is mid-callback waits for nothing and breaks nothing: the
/// in-flight callback holds its generation until it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_in_flight_during_a_reload_completes() {
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let url = b.url.clone();
    let slow = tokio::spawn(async move {
        // `sleepMs` keeps the echo plugin's user_info busy across the reload.
        let query = [
            ("state", s.state.as_str()),
            ("code", "slow"),
            ("sleepMs", "500"),
        ];
        status_json(callback(&url, "echo", &query, Some(&s.cookie)).await).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = host_support::reload(&b).await;
    assert_eq!(status, 200);
    let (status, json) = slow.await.unwrap();
    assert_eq!(
        (status, &json["user"]["id"]),
        (200, &"echo-slow".into()),
        "{json}"
    );
}
