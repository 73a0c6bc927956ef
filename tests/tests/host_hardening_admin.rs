//! Cross-site requests to `/admin/reload`: a web page open in a browser on the broker's
//! machine can reach loopback, with a form POST or a `no-cors` fetch. What a browser sends
//! cross-site is refused (`Origin`, `Sec-Fetch-Site`), a reload needs a header no form can
//! send, and reloads through the endpoint are rate-limited.

mod host_support;

use host_support::{Host, TestBroker, echo_connector, echo_dir, http, reload, reload_at};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

async fn echo_broker() -> TestBroker {
    TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await
}

async fn post(b: &TestBroker, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = http()
        .post(b.at("/admin/reload"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("a=1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (status, json) = host_support::status_json(request.send().await.unwrap()).await;
    (
        status,
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// What a form POST or a `no-cors` fetch from another origin carries: none reloads, even with
/// the admin header added (which such a request cannot carry anyway).
#[tokio::test]
async fn requests_a_web_page_can_send_do_not_reload() {
    let b = echo_broker().await;
    let cases: [&[(&str, &str)]; 6] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("origin", "https://evil.example"),
            ("x-broker-admin", "reload"),
        ],
        &[
            ("sec-fetch-site", "cross-site"),
            ("x-broker-admin", "reload"),
        ],
    ];
    for headers in cases {
        assert_eq!(
            post(&b, headers).await,
            (403, "cross_site_request".into()),
            "{headers:?}"
        );
    }
    assert_eq!(b.broker.current().number, 1, "nothing was reloaded");
}

/// Without the admin header (or with another value) nothing is reloaded; with it, the reload
/// runs.
#[tokio::test]
async fn a_reload_needs_the_admin_header() {
    let b = echo_broker().await;
    for headers in [
        &[][..],
        &[("x-broker-admin", "yes")],
        &[("sec-fetch-site", "none")],
    ] {
        assert_eq!(
            post(&b, headers).await,
            (403, "admin_header_missing".into()),
            "{headers:?}"
        );
    }
    assert_eq!(b.broker.current().number, 1);
    let (status, json) = reload(&b).await;
    assert_eq!((status, &json["generation"]), (200, &2.into()), "{json}");
}

/// The executable with its defaults: one reload per second through the endpoint; the next is
/// 429 with `Retry-After`, and one a second later runs.
#[tokio::test]
async fn reloads_are_rate_limited() {
    let dir = echo_dir();
    let config = dir.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hello", None)
    );
    std::fs::write(&config, text).unwrap();
    let plugins = dir.path().display().to_string();
    let config = config.display().to_string();
    let host = Host::spawn(
        &[
            "serve",
            "--plugins",
            &plugins,
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .expect("the broker starts");
    let (status, json) = reload_at(&host.url).await;
    assert_eq!(status, 200, "{json}");
    let response = host_support::reload_request(&host.url)
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
    let (status, json) = host_support::status_json(response).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (429, Some("reload_rate_limited")),
        "{json}"
    );
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(reload_at(&host.url).await.0, 200);
    host.stop();
}
