//! The `hub-sandbox` binary announces its endpoint and serves it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::{StatusCode, header, redirect};
use url::Url;

/// Kills the child process when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_endpoint_and_serves_its_client() {
    let child = Command::new(env!("CARGO_BIN_EXE_hub-sandbox"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--client-id",
            "demo-app",
            "--public",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hub-sandbox");
    let mut child = Running(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("read first line");
    let endpoint = line
        .trim_end()
        .strip_prefix("listening on ")
        .expect("announcement line")
        .to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    let authorize = Url::parse_with_params(
        &format!("{endpoint}/oauth/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "demo-app"),
            ("redirect_uri", "http://localhost:1/cb"),
            ("scope", "profile"),
        ],
    )
    .expect("url");
    let response = http.get(authorize).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(
        response.headers()[header::LOCATION]
            .to_str()
            .expect("ascii"),
    )
    .expect("location");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");

    // A public client: client_id in the form, no secret.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:1/cb"),
        ("client_id", "demo-app"),
    ];
    let response = http
        .post(format!("{endpoint}/oauth/token"))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
}
