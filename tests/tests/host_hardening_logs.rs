//! Log injection and terminal codes: values from outside (a callback's code, which becomes the
//! user id; a provider's error message; a connector id from the URL) carrying `\n` and an
//! escape sequence never produce a raw newline or ESC in the log. A real `host-example`
//! writing to a pipe uses no colour, and `--log-format json` writes one JSON object per line.

mod host_support;

use connector_tests::logs::capture_logs;
use std::time::Duration;

use host_support::{
    Host, TestBroker, callback, echo_connector, echo_dir, eventually, http, start_sign_in,
};
use serde_json::Value;

/// A code that would forge a log line and turn the operator's terminal red.
const FORGING_CODE: &str = "x\n2026-01-01T00:00:00Z  INFO forged: FORGED\x1b[31m";

/// Every line is a whole log line (it starts with its timestamp) and there is no ESC.
fn assert_no_injection(logs: &str) {
    assert!(!logs.contains('\x1b'), "ESC in the log:\n{logs}");
    for line in logs.lines() {
        assert!(
            line.starts_with("20") && !line.starts_with("2026-01-01T00:00:00Z"),
            "a forged or broken log line: {line:?}\nin:\n{logs}"
        );
    }
}

/// A successful sign-in whose user id carries the code; a provider error message carrying the
/// same; a connector id from the URL carrying it too.
#[tokio::test]
async fn outside_values_are_logged_escaped() {
    let logs = capture_logs("host_example=debug");
    let toml_escaped = "general\\n2026-01-01T00:00:00Z  INFO forged: FORGED\\u001b[31m";
    let connectors = echo_connector("echo", "Hello\\nFORGED\\u001b[31m", None)
        + &echo_connector("failing", "x", Some(toml_escaped));
    let b = TestBroker::start(echo_dir(), &connectors).await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &s.state), ("code", FORGING_CODE)],
        Some(&s.cookie),
    )
    .await;
    assert_eq!(r.status(), 200);
    let s = start_sign_in(&b.url, "failing", None).await;
    let r = callback(
        &b.url,
        "failing",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_eq!(r.status(), 502);
    let r = http()
        .get(b.at("/sign-in/x%0A2026-01-01T00:00:00Z%20%20INFO%20forged:%1B[31m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let logs = logs.text();
    for expected in ["sign-in complete", "sign-in failed", "unknown_connector"] {
        assert!(logs.contains(expected), "no {expected:?} line in:\n{logs}");
    }
    assert!(
        logs.contains("FORGED"),
        "the values are logged, escaped:\n{logs}"
    );
    assert_no_injection(&logs);
}

fn serve_args(dir: &connector_tests::PluginDir) -> Vec<String> {
    let config = dir.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hello", None)
    );
    std::fs::write(&config, text).unwrap();
    [
        "serve",
        "--plugins",
        &dir.path().display().to_string(),
        "--config",
        &config.display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A sign-in with the forging code against a real process; returns its log once the
/// "sign-in complete" line is there.
async fn signed_in_log(host: &Host) -> String {
    let s = start_sign_in(&host.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", FORGING_CODE)];
    let r = callback(&host.url, "echo", &query, Some(&s.cookie)).await;
    assert_eq!(r.status(), 200);
    eventually(Duration::from_secs(10), || async {
        let logs = host.stderr.lock().unwrap().clone();
        logs.contains("sign-in complete").then_some(logs)
    })
    .await
    .expect("a sign-in complete line")
}

/// Writing to a pipe: no colour codes at all, and the injected value escaped.
#[tokio::test]
async fn a_process_logging_to_a_pipe_writes_no_escape_codes() {
    let dir = echo_dir();
    let args = serve_args(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::spawn(&args, &[]).expect("the broker starts");
    let logs = signed_in_log(&host).await;
    assert_no_injection(&logs);
    host.stop();
}

/// `--log-format json`: every line is one JSON object; the injected value is inside a string.
#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let dir = echo_dir();
    let mut args = vec!["--log-format".to_owned(), "json".to_owned()];
    args.extend(serve_args(&dir));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::spawn(&args, &[]).expect("the broker starts");
    let logs = signed_in_log(&host).await;
    assert!(!logs.contains('\x1b'), "{logs}");
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let complete = lines
        .iter()
        .find(|l| l["fields"]["message"] == "sign-in complete")
        .expect("the sign-in line");
    assert_eq!(complete["level"], "INFO");
    let user = complete["fields"]["user"].as_str().unwrap();
    assert!(user.contains("FORGED") && !user.contains('\n'), "{user:?}");
    host.stop();
}
