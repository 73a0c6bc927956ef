//! Security headers, checked with a real HTTP client on each route: every HTML page has a
//! Content-Security-Policy without inline script or `'unsafe-inline'` (its one stylesheet
//! allowed by hash, images from `data:` and the origins it shows), no framing, no referrer, no
//! sniffing; callback answers and error pages are never cached; HSTS on an https broker; the
//! JSON API passes no non-http avatar on.

mod host_support;

use base64::Engine as _;
use connector_tests::PluginDir;
use host_support::{
    TestBroker, callback, callback_request, echo_connector, echo_dir, http, start_sign_in,
    status_json,
};
use hub_sandbox::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSandbox, SandboxConfig};
use reqwest::header::{ACCEPT, COOKIE, HeaderMap, LOCATION};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no `{name}` header in {headers:?}"))
}

/// The headers every answer has, and the CSP of an HTML page: returns the policy.
fn assert_page_headers(headers: &HeaderMap, html: &str) -> String {
    assert_eq!(header(headers, "x-frame-options"), "DENY");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    let csp = header(headers, "content-security-policy").to_owned();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!html.contains("<script"), "{html}");
    // The page's own stylesheet is allowed by its hash, so it still applies.
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(style, _)| style)
        .expect("an inline stylesheet");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(style.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    csp
}

fn img_src(csp: &str) -> Vec<String> {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("img-src "))
        .unwrap_or_else(|| panic!("no img-src: {csp}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_page_and_error_carries_the_security_headers() {
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;

    // The index: the echo logo is a data: URI, so images from data: only.
    let r = http().get(b.at("/")).send().await.unwrap();
    let headers = r.headers().clone();
    let html = r.text().await.unwrap();
    let csp = assert_page_headers(&headers, &html);
    assert_eq!(img_src(&csp), ["data:"]);
    assert!(
        headers.get("strict-transport-security").is_none(),
        "http: no HSTS"
    );

    // The profile page after a callback: never cached.
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "x")];
    let r = callback_request(&b.url, "echo", &query, Some(&s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_page_headers(&headers, &r.text().await.unwrap());

    // Error pages, at the callback and at sign-in: never cached either.
    let r = callback_request(&b.url, "echo", &query, Some(&s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let headers = r.headers().clone();
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_page_headers(&headers, &r.text().await.unwrap());
    let r = http().get(b.at("/sign-in/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let headers = r.headers().clone();
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_page_headers(&headers, &r.text().await.unwrap());

    // JSON answers: errors never cached, and nothing may frame or load anything.
    let r = callback(&b.url, "echo", &query, Some(&s.cookie)).await;
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    for path in ["/api/connectors", "/healthz", "/no-such-route"] {
        let r = http().get(b.at(path)).send().await.unwrap();
        assert_eq!(header(r.headers(), "x-frame-options"), "DENY", "{path}");
        assert_eq!(
            header(r.headers(), "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        let csp = header(r.headers(), "content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
    }
}

#[tokio::test]
async fn an_https_broker_sends_hsts() {
    let b = TestBroker::open_as(
        Some("https://broker.example"),
        echo_dir(),
        &echo_connector("echo", "Hello", None),
        |_| None,
        |_| {},
    )
    .await
    .unwrap();
    for path in ["/", "/healthz", "/sign-in/echo"] {
        let r = http().get(b.at(path)).send().await.unwrap();
        let hsts = header(r.headers(), "strict-transport-security");
        assert!(hsts.starts_with("max-age="), "{path}: {hsts}");
    }
}

async fn hf_broker(hub: &HubSandbox) -> TestBroker {
    let dir = PluginDir::new();
    dir.add("huggingface-plugin");
    let toml = format!(
        "[[connectors]]\nid = \"hf\"\nfactory = \"huggingface-universal\"\n\
         config = {{ clientId = \"{DEFAULT_CLIENT_ID}\", clientSecret = \"{DEFAULT_CLIENT_SECRET}\", \
         scope = \"profile email\", endpoint = \"{}\" }}\n",
        hub.endpoint()
    );
    TestBroker::start(dir, &toml).await
}

/// A sign-in through the sandbox; the callback answer as HTML or JSON.
async fn hf_callback(b: &TestBroker, accept: &str) -> reqwest::Response {
    let s = start_sign_in(&b.url, "hf", None).await;
    let consent = http().get(&s.location).send().await.unwrap();
    let back = consent.headers()[LOCATION].to_str().unwrap().to_owned();
    http()
        .get(&back)
        .header(ACCEPT, accept)
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap()
}

/// The profile page allows images from the avatar's origin (the sandbox), and nothing else
/// but `data:`.
#[tokio::test]
async fn the_profile_page_allows_the_avatar_s_origin() {
    let hub = HubSandbox::start(SandboxConfig::default()).await.unwrap();
    let b = hf_broker(&hub).await;
    let r = hf_callback(&b, "text/html").await;
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let html = r.text().await.unwrap();
    let csp = assert_page_headers(&headers, &html);
    assert!(
        html.contains(&format!("src=\"{}/avatars/", hub.endpoint())),
        "{html}"
    );
    assert_eq!(img_src(&csp), ["data:".to_owned(), hub.endpoint()]);
}

/// A provider's `javascript:` avatar reaches neither the page nor the JSON API.
#[tokio::test]
async fn a_non_http_avatar_is_dropped_from_the_json_api() {
    let mut config = SandboxConfig::default();
    config.user.picture = "javascript:alert(document.cookie)".into();
    let hub = HubSandbox::start(config).await.unwrap();
    let b = hf_broker(&hub).await;
    let (status, json) = status_json(hf_callback(&b, "application/json").await).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["user"]["name"], "Ada Lovelace");
    assert!(
        json["user"].get("avatar").is_none_or(|a| a.is_null()),
        "{json}"
    );
    let html = hf_callback(&b, "text/html").await.text().await.unwrap();
    assert!(!html.contains("javascript:"), "{html}");
}
