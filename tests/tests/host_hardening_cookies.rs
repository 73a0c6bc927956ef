//! Login CSRF by cookie tossing: someone who can set a cookie for the broker's host plants
//! their own binding cookie (or a value of their choosing) in the victim's browser. The broker
//! honours only binding values it issued, refuses a callback presenting two binding cookies
//! without signing anyone in or spending the state, and names its cookie `__Host-…` on https.

mod host_support;

use host_support::{
    TestBroker, assert_error, callback, echo_connector, echo_dir, http, start_sign_in, status_json,
};
use reqwest::header::{ACCEPT, COOKIE, SET_COOKIE};

async fn echo_broker() -> TestBroker {
    TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await
}

/// The attack end to end: the attacker starts a sign-in with their own account and plants
/// their binding cookie in the victim's browser with a narrower path (so the browser sends it
/// first, beside the victim's own), then hands the victim the callback URL.
#[tokio::test]
async fn a_tossed_cookie_beside_the_browser_s_own_is_refused_without_spending_the_state() {
    let b = echo_broker().await;
    let attacker = start_sign_in(&b.url, "echo", None).await;
    let victim = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", attacker.state.as_str()), ("code", "attacker")];

    // `Path=/callback` sorts first; and the same pair split over two `Cookie` headers.
    let one_header = format!("{}; {}", attacker.cookie, victim.cookie);
    let r = callback(&b.url, "echo", &query, Some(&one_header)).await;
    assert_error(r, 400, "cookie_conflict").await;
    let two_headers = http()
        .get(host_support::with_query(&b.at("/callback/echo"), &query))
        .header(ACCEPT, "application/json")
        .header(COOKIE, &attacker.cookie)
        .header(COOKIE, &victim.cookie)
        .send()
        .await
        .unwrap();
    assert_error(two_headers, 400, "cookie_conflict").await;

    // Nobody was signed in, and the state is intact: its own browser still finishes it.
    let r = callback(&b.url, "echo", &query, Some(&attacker.cookie)).await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, &json["user"]["id"]),
        (200, &"echo-attacker".into())
    );
    // The victim's own sign-in is untouched too.
    let own = [("state", victim.state.as_str()), ("code", "victim")];
    let r = callback(&b.url, "echo", &own, Some(&victim.cookie)).await;
    assert_eq!(r.status(), 200);
}

/// A value the client chose (well-formed, the old format or the new length) is never adopted
/// at `/sign-in`: the broker issues its own. Its own value is reused (two tabs).
#[tokio::test]
async fn a_client_chosen_binding_value_is_never_adopted() {
    let b = echo_broker().await;
    for chosen in [
        "A".repeat(43),
        "A".repeat(64),
        "planted-by-someone-else_0123456789".into(),
    ] {
        let planted = format!("hx_signin={chosen}");
        let s = start_sign_in(&b.url, "echo", Some(&planted)).await;
        assert_ne!(s.cookie, planted, "the chosen value was re-issued");
        assert!(!s.set_cookie.contains(&chosen), "{}", s.set_cookie);
        // And a callback presenting the chosen value is not bound to anything.
        let query = [("state", s.state.as_str()), ("code", "x")];
        let r = callback(&b.url, "echo", &query, Some(&planted)).await;
        assert_error(r, 400, "cookie_missing").await;
        let r = callback(&b.url, "echo", &query, Some(&s.cookie)).await;
        assert_eq!(
            r.status(),
            200,
            "the refused attempt did not spend the state"
        );
    }
    let first = start_sign_in(&b.url, "echo", None).await;
    let again = start_sign_in(&b.url, "echo", Some(&first.cookie)).await;
    assert_eq!(again.cookie, first.cookie, "an issued value is reused");
    // Two binding cookies at `/sign-in`: neither is reused.
    let other = start_sign_in(&b.url, "echo", None).await;
    let both = format!("{}; {}", first.cookie, other.cookie);
    let fresh = start_sign_in(&b.url, "echo", Some(&both)).await;
    assert!(fresh.cookie != first.cookie && fresh.cookie != other.cookie);
}

/// Values are verified under the broker's key: another broker's genuine value is foreign.
#[tokio::test]
async fn another_broker_s_value_is_not_adopted() {
    let (one, two) = (echo_broker().await, echo_broker().await);
    let s = start_sign_in(&one.url, "echo", None).await;
    let elsewhere = start_sign_in(&two.url, "echo", Some(&s.cookie)).await;
    assert_ne!(elsewhere.cookie, s.cookie);
}

/// With an https `public_url` the cookie is `__Host-hx_signin`: `Secure`, `Path=/`, no
/// `Domain`; a plain `hx_signin` (which anyone on the network path could set) is not a binding.
#[tokio::test]
async fn an_https_broker_uses_a_host_prefixed_cookie() {
    let b = TestBroker::open_as(
        Some("https://broker.example"),
        echo_dir(),
        &echo_connector("echo", "Hello", None),
        |_| None,
        |_| {},
    )
    .await
    .unwrap();
    let r = http().get(b.at("/sign-in/echo")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set_cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("__Host-hx_signin="), "{set_cookie}");
    let attributes: Vec<&str> = set_cookie.split(';').skip(1).map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{set_cookie}");
    assert!(attributes.contains(&"Path=/"), "{set_cookie}");
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{set_cookie}"
    );

    let s = start_sign_in(&b.url, "echo", None).await;
    let value = s.cookie.strip_prefix("__Host-hx_signin=").unwrap();
    let query = [("state", s.state.as_str()), ("code", "x")];
    let plain = format!("hx_signin={value}");
    let r = callback(&b.url, "echo", &query, Some(&plain)).await;
    assert_error(r, 400, "cookie_missing").await;
    let r = callback(&b.url, "echo", &query, Some(&s.cookie)).await;
    assert_eq!(r.status(), 200);
}
