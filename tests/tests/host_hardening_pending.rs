//! A flood of sign-ins that never finish: one client's sign-ins are rate-limited (429 with
//! `Retry-After`), so the pending store, and the broker's memory, stay bounded, while another
//! client (another loopback address) still signs in during the flood.

mod host_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use host_example::SignInLimits;
use host_support::{Host, TestBroker, echo_connector, echo_dir, start_sign_in};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A client whose connections come from `local`, following no redirects.
fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local)
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A whole sign-in on `echo` from 127.0.0.2: the callback's status.
async fn other_client_signs_in(base: &str) -> u16 {
    let client = client_from(OTHER_CLIENT);
    let r = client
        .get(format!("{base}/sign-in/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the other client is not limited");
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let state = host_support::query_param(&location, "state").unwrap();
    let r = client
        .get(host_support::with_query(
            &format!("{base}/callback/echo"),
            &[("state", &state), ("code", "other")],
        ))
        .header(ACCEPT, "application/json")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn a_client_over_its_rate_is_429_and_another_client_still_signs_in() {
    let b = TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hello", None), |o| {
        o.sign_in_limits = Some(SignInLimits {
            per_minute: 60,
            burst: 5,
            max_clients: 1000,
        });
    })
    .await;
    for _ in 0..5 {
        start_sign_in(&b.url, "echo", None).await;
    }
    let r = host_support::http()
        .get(b.at("/sign-in/echo"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    host_support::assert_error(r, 429, "sign_in_rate_limited").await;
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(other_client_signs_in(&b.url).await, 200);
}

/// 100,000 sign-ins from one client against a real `host-example serve` with its defaults:
/// VmRSS grows by at most 50 MB, and a sign-in from another client during the flood completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unfinished_sign_ins_stays_bounded_and_others_sign_in() {
    const FLOOD: usize = 100_000;
    const CONCURRENCY: usize = 32;
    const BOUND_KIB: u64 = 50 * 1024;
    let dir = echo_dir();
    let config = dir.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hello", None)
    );
    std::fs::write(&config, text).unwrap();
    let (plugins, config) = (
        dir.path().display().to_string(),
        config.display().to_string(),
    );
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
    assert_eq!(other_client_signs_in(&host.url).await, 200, "warm-up");
    let (before, _) = host.memory_and_threads();

    let next = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url) = (
                client_from(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                host.url.clone(),
            );
            let (next, started) = (next.clone(), started.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < FLOOD {
                    let r = client
                        .get(format!("{url}/sign-in/echo"))
                        .send()
                        .await
                        .unwrap();
                    match r.status().as_u16() {
                        303 => started.fetch_add(1, Ordering::Relaxed),
                        429 => 0,
                        other => panic!("sign-in answered {other}"),
                    };
                }
            })
        })
        .collect();
    while next.load(Ordering::Relaxed) < FLOOD / 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let during = other_client_signs_in(&host.url).await;
    for worker in flood {
        worker.await.unwrap();
    }
    let (after, _) = host.memory_and_threads();
    let started = started.load(Ordering::Relaxed);
    println!(
        "RELIABILITY pending_flood sign_ins={FLOOD} started={started} rss_before_kib={before} \
         rss_after_kib={after} growth_kib={} bound_kib={BOUND_KIB}",
        after.saturating_sub(before)
    );
    assert_eq!(
        during, 200,
        "a sign-in from another client during the flood completes"
    );
    assert!(
        after <= before + BOUND_KIB,
        "VmRSS grew from {before} KiB to {after} KiB ({started} sign-ins started)"
    );
    host.stop();
}

#[tokio::test]
async fn the_in_memory_store_is_capped_whatever_the_number_of_clients() {
    let b = TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hello", None), |o| {
        o.max_pending = Some(3);
    })
    .await;
    let first = start_sign_in(&b.url, "echo", None).await;
    for _ in 0..2 {
        start_sign_in(&b.url, "echo", None).await;
    }
    let r = host_support::http()
        .get(b.at("/sign-in/echo"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[RETRY_AFTER], "60");
    host_support::assert_error(r, 503, "too_many_pending_sign_ins").await;
    // Sign-ins already started still finish.
    let done = host_support::callback(
        &b.url,
        "echo",
        &[("state", &first.state), ("code", "c")],
        Some(&first.cookie),
    )
    .await;
    assert_eq!(done.status(), 200);
}
