//! Provider faults through the host (issue 5, item 1): the broker in-process with the Hugging
//! Face plugin (`openid profile email`, so discovery and JWKS are fetched) against the Hub
//! sandbox. For each of token, userinfo, discovery and JWKS, every fault must end in its
//! documented code and status at `/callback`, within the connector's timeout + 1 s, while
//! `/healthz` and a sign-in on a healthy provider keep working.
//!
//! Each case has its own connector instance: the plugin caches the JWKS per instance, so a
//! fresh one is the only way to make every case fetch discovery and JWKS again.
//! Prints one `RELIABILITY fault …` line per case for `.ci/reliability`.

mod host_support;

use std::time::{Duration, Instant};

use connector_tests::PluginDir;
use host_support::{TestBroker, http, start_sign_in, status_json, with_query};
use hub_sandbox::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HubSandbox, Route};
use reqwest::header::{ACCEPT, COOKIE, RETRY_AFTER};
use serde_json::{Value, json};

/// The connectors' `requestTimeoutMs`.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// What the issue allows beyond the timeout.
const SLACK: Duration = Duration::from_secs(1);
const MIB: usize = 1 << 20;

/// What `/callback` must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Error(u16, &'static str),
    /// The plugin ignores `Content-Type` and judges the body: a valid body passes.
    Profile,
}

const GENERAL: Expect = Expect::Error(502, "general");
const INVALID: Expect = Expect::Error(502, "invalid_response");

struct Case {
    /// The provider call at fault (as reported).
    route: Route,
    label: &'static str,
    /// The fault and the route it is armed on (the `jwks_uri` case arms discovery).
    fault: Option<(Route, Fault)>,
    /// The connector's endpoint, when not the sandbox (connection refused).
    endpoint: Option<String>,
    expect: Expect,
}

/// The faulty provider, a healthy one for the sign-ins meanwhile, and "another host" that
/// redirects point to (it must never be asked anything).
struct Rig {
    hub: HubSandbox,
    healthy: HubSandbox,
    elsewhere: HubSandbox,
    closed_port: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_faults_map_to_documented_codes_in_time_and_the_host_keeps_serving() {
    let rig = Rig {
        hub: sandbox().await,
        healthy: sandbox().await,
        elsewhere: sandbox().await,
        closed_port: closed_port().await,
    };
    let cases = cases(&rig);
    let broker = broker(&rig, &cases).await;
    let started = Instant::now();
    for (index, case) in cases.iter().enumerate() {
        run_case(&rig, &broker, &format!("c{index}"), case).await;
    }
    assert!(
        rig.elsewhere.requests().is_empty(),
        "a redirect was followed to another host: {:?}",
        rig.elsewhere.requests()
    );
    println!(
        "RELIABILITY faults cases={} total_ms={}",
        cases.len(),
        started.elapsed().as_millis()
    );
}

/// Arms the case's fault, signs in on its connector and, meanwhile, checks `/healthz` and a
/// whole sign-in on the healthy provider.
async fn run_case(rig: &Rig, b: &TestBroker, id: &str, case: &Case) {
    if let Some((route, fault)) = &case.fault {
        rig.hub.set_fault(*route, fault.clone());
    }
    let faulted = async {
        let begun = Instant::now();
        let (status, json, retry_after) = faulted_sign_in(b, id, case).await;
        (status, json, retry_after, begun.elapsed(), Instant::now())
    };
    let meanwhile = async {
        let healthz = http().get(b.at("/healthz")).send().await.unwrap();
        assert_eq!(healthz.status(), 200, "{}: /healthz", case.label);
        let (status, json) = status_json(sign_in(&b.url, "healthy", true).await).await;
        assert_eq!(
            status, 200,
            "{}: healthy sign-in meanwhile: {json}",
            case.label
        );
        Instant::now()
    };
    let ((status, json, retry_after, took, faulted_done), meanwhile_done) =
        tokio::join!(faulted, meanwhile);
    rig.hub.clear_faults();
    let route = route_name(case.route);
    let label = format!("{route} {}", case.label);
    assert!(took <= TIMEOUT + SLACK, "{label}: took {took:?}");
    let code = json["error"]["code"].as_str().unwrap_or("-");
    match case.expect {
        Expect::Error(want_status, want_code) => {
            assert_eq!((status, code), (want_status, want_code), "{label}: {json}");
            let message = json["error"]["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{label}: no message");
        }
        Expect::Profile => assert_eq!(status, 200, "{label}: {json}"),
    }
    if case.expect == Expect::Error(429, "rate_limit_exceeded") {
        assert_eq!(retry_after.as_deref(), Some("30"), "{label}: Retry-After");
    }
    if took >= TIMEOUT {
        // A slow provider must not hold the host: the healthy sign-in ended first.
        assert!(
            meanwhile_done < faulted_done,
            "{label}: the host waited for the fault"
        );
    }
    println!(
        "RELIABILITY fault route={route} fault={:?} status={status} code={code} ms={}",
        case.label,
        took.as_millis()
    );
}

/// A sign-in on connector `id` up to its callback: status, JSON body, `Retry-After`.
async fn faulted_sign_in(b: &TestBroker, id: &str, case: &Case) -> (u16, Value, Option<String>) {
    let response = match case.endpoint {
        // The provider is unreachable: no consent page, so the callback gets a made-up code.
        Some(_) => {
            let s = start_sign_in(&b.url, id, None).await;
            let query = [("state", s.state.as_str()), ("code", "never-issued")];
            callback_json(
                &with_query(&b.at(&format!("/callback/{id}")), &query),
                &s.cookie,
            )
            .await
        }
        None => sign_in(&b.url, id, false).await,
    };
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, json) = status_json(response).await;
    (status, json, retry_after)
}

/// `/sign-in/{id}`, consent at the provider, then `/callback/{id}` as JSON.
async fn sign_in(base: &str, id: &str, healthy: bool) -> reqwest::Response {
    let s = start_sign_in(base, id, None).await;
    let consent = http().get(&s.location).send().await.unwrap();
    assert_eq!(consent.status(), 303, "consent (healthy={healthy})");
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    callback_json(&back, &s.cookie).await
}

async fn callback_json(url: &str, cookie: &str) -> reqwest::Response {
    http()
        .get(url)
        .header(ACCEPT, "application/json")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

/// Every (route, fault) of the issue, with its documented outcome (RELIABILITY.md's matrix).
fn cases(rig: &Rig) -> Vec<Case> {
    let mut cases = Vec::new();
    for route in [Route::Token, Route::Userinfo, Route::Discovery, Route::Jwks] {
        for (label, fault, expect) in route_faults(rig, route) {
            cases.push(Case {
                route,
                label,
                fault: Some((route, fault)),
                endpoint: None,
                expect,
            });
        }
    }
    cases.extend(refused_cases(rig));
    cases
}

fn route_faults(rig: &Rig, route: Route) -> Vec<(&'static str, Fault, Expect)> {
    let html = |status| Fault::Status {
        status,
        body: "<html><body><h1>Bad Gateway</h1></body></html>".into(),
        content_type: "text/html".into(),
    };
    let elsewhere = format!("{}{}", rig.elsewhere.endpoint(), route.path());
    vec![
        ("500", status_text(500), GENERAL),
        ("502 html", html(502), GENERAL),
        ("503 html", html(503), GENERAL),
        (
            "429",
            Fault::RateLimited {
                retry_after_secs: 30,
            },
            Expect::Error(429, "rate_limit_exceeded"),
        ),
        ("reset mid-body", Fault::ResetMidBody, GENERAL),
        ("headers after 2 s", Fault::Stall(2 * TIMEOUT), GENERAL),
        (
            "body trickling 16 B / 200 ms",
            Fault::Trickle {
                chunk: 16,
                every: Duration::from_millis(200),
            },
            GENERAL,
        ),
        ("invalid JSON", invalid_json(), INVALID),
        ("wrong JSON types", wrong_types(route), INVALID),
        (
            "10 MiB body",
            Fault::HugeBody {
                bytes: 10 * MIB,
                chunked: false,
            },
            INVALID,
        ),
        (
            "10 MiB chunked body",
            Fault::HugeBody {
                bytes: 10 * MIB,
                chunked: true,
            },
            INVALID,
        ),
        ("HTML content type, HTML body", html(200), INVALID),
        (
            "HTML content type, valid body",
            Fault::ContentType("text/html".into()),
            Expect::Profile,
        ),
        (
            "307 to another host",
            Fault::Redirect {
                location: elsewhere,
                status: 307,
            },
            GENERAL,
        ),
    ]
}

/// Connection refused: the whole provider down (token, the first call). Userinfo, discovery
/// and JWKS share the token endpoint's origin (the connector calls no other), so a refused
/// connection there is the token case (see RELIABILITY.md). A discovery document whose
/// `jwks_uri` points at another origin (here a closed port) is refused as `invalid_response`
/// before anything connects there.
fn refused_cases(rig: &Rig) -> Vec<Case> {
    let closed = format!("http://127.0.0.1:{}", rig.closed_port);
    let document = json!({
        "issuer": rig.hub.endpoint(),
        "jwks_uri": format!("{closed}/oauth/jwks"),
    });
    vec![
        Case {
            route: Route::Token,
            label: "connection refused",
            fault: None,
            endpoint: Some(closed),
            expect: GENERAL,
        },
        Case {
            route: Route::Jwks,
            label: "jwks_uri on another origin",
            fault: Some((
                Route::Discovery,
                Fault::Json {
                    status: 200,
                    body: document,
                },
            )),
            endpoint: None,
            expect: INVALID,
        },
    ]
}

fn status_text(status: u16) -> Fault {
    Fault::Status {
        status,
        body: "Internal Server Error".into(),
        content_type: "text/plain".into(),
    }
}

fn invalid_json() -> Fault {
    Fault::Status {
        status: 200,
        body: "{\"keys\": [ {\"kid\": ".into(),
        content_type: "application/json".into(),
    }
}

/// Well-formed JSON whose fields have the wrong types (userinfo keeps the right `sub`, which is
/// checked against the id_token first).
fn wrong_types(route: Route) -> Fault {
    let body = match route {
        Route::Token => json!({"access_token": 42, "token_type": "bearer"}),
        Route::Userinfo => {
            json!({"sub": hub_sandbox::SandboxUser::default().sub, "name": ["not", "a", "string"]})
        }
        Route::Discovery => json!({"issuer": 42, "jwks_uri": true}),
        _ => json!({"keys": "none"}),
    };
    Fault::Json { status: 200, body }
}

fn route_name(route: Route) -> &'static str {
    match route {
        Route::Token => "token",
        Route::Userinfo => "userinfo",
        Route::Discovery => "discovery",
        Route::Jwks => "jwks",
        Route::Authorize => "authorize",
    }
}

/// A broker with one Hugging Face connector per case (`c0`, `c1`, …) and `healthy`.
async fn broker(rig: &Rig, cases: &[Case]) -> TestBroker {
    let hub = rig.hub.endpoint();
    let mut toml = hf_connector("healthy", &rig.healthy.endpoint());
    for (index, case) in cases.iter().enumerate() {
        let endpoint = case.endpoint.as_deref().unwrap_or(&hub);
        toml += &hf_connector(&format!("c{index}"), endpoint);
    }
    let dir = PluginDir::new();
    dir.add("huggingface-plugin");
    TestBroker::start(dir, &toml).await
}

fn hf_connector(id: &str, endpoint: &str) -> String {
    format!(
        "[[connectors]]\nid = \"{id}\"\nfactory = \"huggingface-universal\"\n\
         config = {{ clientId = \"{DEFAULT_CLIENT_ID}\", clientSecret = \"{DEFAULT_CLIENT_SECRET}\", \
         scope = \"openid profile email\", endpoint = \"{endpoint}\", requestTimeoutMs = {} }}\n",
        TIMEOUT.as_millis()
    )
}

async fn sandbox() -> HubSandbox {
    HubSandbox::start(hub_sandbox::SandboxConfig::default())
        .await
        .unwrap()
}

/// A loopback port nothing listens on (bound, then released; another process taking it in
/// between would make the refused cases fail loudly, not pass wrongly).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
