//! Several `host-example` instances sharing their pending sign-ins in a real Redis (each test
//! starts its own `redis-server` on a free loopback port): a sign-in started on one instance
//! finishes on another exactly once, expiry and key namespaces, Redis lost and back while
//! running, config errors at start, and the in-memory default untouched.

mod host_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util_shim::join_all_bounded;
use host_example::{Broker, BrokerConfig, BrokerOptions, ConfigError, StartError};
use host_support::{
    Host, RedisServer, Started, TestBroker, assert_error, callback, echo_connector, echo_dir, http,
    start_sign_in, status_json,
};
use redis::AsyncCommands as _;
use serde_json::Value;

/// A broker over the echo plugin whose pending sign-ins live in `url` under `prefix`.
async fn redis_broker(url: &str, prefix: &str) -> TestBroker {
    redis_broker_with(url, prefix, |_| {}).await
}

async fn redis_broker_with(
    url: &str,
    prefix: &str,
    adjust: impl FnOnce(&mut BrokerOptions),
) -> TestBroker {
    let rest = format!(
        "session_store = \"{url}\"\nsession_prefix = \"{prefix}\"\n{}",
        echo_connector("echo", "Hello", None)
    );
    TestBroker::open_with(echo_dir(), &rest, |_| None, adjust)
        .await
        .expect("broker starts on Redis")
}

async fn client(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn finish(base: &str, s: &Started, code: &str) -> reqwest::Response {
    callback(
        base,
        "echo",
        &[("state", &s.state), ("code", code)],
        Some(&s.cookie),
    )
    .await
}

fn sha256_hex(s: &str) -> String {
    host_example::binding::hash(s)
}

#[tokio::test]
async fn sign_in_on_a_finishes_on_b_once_and_keys_are_namespaced() {
    let redis = RedisServer::start(&[]);
    let a = redis_broker(&redis.url(), "brk").await;
    let b = redis_broker(&redis.url(), "brk").await;
    let mut kv = client(&redis.url()).await;

    let s = start_sign_in(&a.url, "echo", None).await;
    // One pending key, named by the state's hash (never the state), with Redis's own expiry.
    let mut keys: Vec<String> = kv.keys("*").await.unwrap();
    keys.sort();
    let pending_key = format!("brk:pending:{}", sha256_hex(&s.state));
    // Beside it, the binding key both instances authenticate cookies with.
    assert_eq!(
        keys,
        vec!["brk:binding-key".to_owned(), pending_key.clone()]
    );
    let ttl_ms: i64 = kv.pttl(&pending_key).await.unwrap();
    assert!((590_000..=600_000).contains(&ttl_ms), "{ttl_ms}");
    // The value: what the callback needs, nothing else. No state, no cookie value.
    let raw: String = kv.get(&pending_key).await.unwrap();
    let value: Value = serde_json::from_str(&raw).unwrap();
    let mut fields: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "binding",
            "build",
            "connector",
            "expires_at_ms",
            "factory",
            "generation",
            "origin",
            "session"
        ]
    );
    let cookie_value = s.cookie.trim_start_matches("hx_signin=");
    assert!(
        !raw.contains(&s.state) && !raw.contains(cookie_value),
        "{raw}"
    );
    assert_eq!(value["binding"], sha256_hex(cookie_value));
    assert_eq!(value["factory"], "echo-web");

    // Another browser cannot finish it on B (the binding is checkable by any instance), and
    // that attempt burns the state, as on one instance.
    let other = start_sign_in(&b.url, "echo", None).await;
    let s2 = start_sign_in(&a.url, "echo", None).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &s2.state), ("code", "x")],
        Some(&other.cookie),
    )
    .await;
    assert_error(r, 400, "cookie_mismatch").await;
    let r = callback(
        &a.url,
        "echo",
        &[("state", &s2.state), ("code", "x")],
        Some(&s2.cookie),
    )
    .await;
    assert_error(r, 400, "state_replayed").await;

    // Started on A, finished on B.
    let (status, json) = status_json(finish(&b.url, &s, "ada").await).await;
    assert_eq!(
        (status, &json["user"]["id"]),
        (200, &"echo-ada".into()),
        "{json}"
    );
    // Replayed on A or on B: refused.
    assert_error(finish(&a.url, &s, "ada").await, 400, "state_replayed").await;
    assert_error(finish(&b.url, &s, "ada").await, 400, "state_replayed").await;
    // The pending key is gone; a namespaced tombstone remains, expiring by itself.
    let used_key = format!("brk:used:{}", sha256_hex(&s.state));
    assert!(!kv.exists::<_, bool>(&pending_key).await.unwrap());
    let ttl_ms: i64 = kv.pttl(&used_key).await.unwrap();
    assert!(ttl_ms > 0, "{ttl_ms}");
    // Every key is under the prefix.
    let keys: Vec<String> = kv.keys("*").await.unwrap();
    assert!(keys.iter().all(|k| k.starts_with("brk:pending:")
        || k.starts_with("brk:used:")
        || k == "brk:binding-key"));
}

#[tokio::test]
async fn a_state_of_another_broker_prefix_is_unknown_and_stays_usable() {
    let redis = RedisServer::start(&[]);
    let a = redis_broker(&redis.url(), "broker-a").await;
    let a2 = redis_broker(&redis.url(), "broker-a").await;
    let other = redis_broker(&redis.url(), "broker-b").await;
    let s = start_sign_in(&a.url, "echo", None).await;
    // Another prefix has its own binding key: the cookie is not even honoured there.
    assert_error(finish(&other.url, &s, "x").await, 400, "cookie_missing").await;
    // The other broker's look-up did not burn it.
    assert_eq!(finish(&a2.url, &s, "x").await.status(), 200);
}

/// Generation numbers are per process; across instances the build (plugin SHA-256) and the
/// factory decide. A rolling upgrade (A on build 1, B reloaded to build 2) finishes sign-ins
/// both ways on the instance's own connector of the same factory; an instance without the
/// connector id refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_cross_builds_by_factory_and_never_another_connector() {
    let build_2 = tokio::task::spawn_blocking(host_support::echo_build_2)
        .await
        .unwrap();
    let redis = RedisServer::start(&[]);
    let a = redis_broker(&redis.url(), "roll").await;
    let b = redis_broker(&redis.url(), "roll").await;
    std::fs::copy(&build_2, b.plugins.path().join("libecho.so")).unwrap();
    b.broker.reload().await.expect("B reloads to build 2");
    // B's generation 1 (build 1) is retired at once: it has no sign-in of B's pending.
    let retired = host_support::eventually(Duration::from_secs(10), || async {
        (b.broker.live_generations() == [2]).then_some(())
    })
    .await;
    assert!(retired.is_some(), "{:?}", b.broker.live_generations());
    let build_of = |json: &Value| json["user"]["rawData"]["build"].clone();

    let s = start_sign_in(&a.url, "echo", None).await;
    let (status, json) = status_json(finish(&b.url, &s, "ab").await).await;
    assert_eq!((status, build_of(&json)), (200, "2".into()), "{json}");
    let s = start_sign_in(&b.url, "echo", None).await;
    let (status, json) = status_json(finish(&a.url, &s, "ba").await).await;
    assert_eq!((status, build_of(&json)), (200, "1".into()), "{json}");
    // Same build on both sides, at different generation numbers (B: 2, A: 1): that build.
    std::fs::copy(&build_2, a.plugins.path().join("libecho.so")).unwrap();
    a.broker.reload().await.expect("A reloads to build 2");
    let c = redis_broker(&redis.url(), "roll").await;
    std::fs::copy(&build_2, c.plugins.path().join("libecho.so")).unwrap();
    c.broker.reload().await.expect("C reloads to build 2");
    c.broker
        .reload()
        .await
        .expect("C reloads again (generation 3)");
    let s = start_sign_in(&c.url, "echo", None).await;
    let (status, json) = status_json(finish(&b.url, &s, "cb").await).await;
    assert_eq!((status, build_of(&json)), (200, "2".into()), "{json}");

    // An instance configured without `echo`: the sign-in is not finished there.
    let rest = format!(
        "session_store = \"{}\"\nsession_prefix = \"roll\"\n{}",
        redis.url(),
        echo_connector("other", "Hi", None)
    );
    let d = TestBroker::open_with(echo_dir(), &rest, |_| None, |_| {})
        .await
        .unwrap();
    let s = start_sign_in(&a.url, "echo", None).await;
    let r = callback(
        &d.url,
        "other",
        &[("state", &s.state), ("code", "x")],
        Some(&s.cookie),
    )
    .await;
    assert_error(r, 400, "invalid_state").await;
    let s = start_sign_in(&a.url, "echo", None).await;
    assert_error(finish(&d.url, &s, "x").await, 400, "invalid_state").await;
}

#[tokio::test]
async fn an_expired_state_is_refused_on_every_instance() {
    let redis = RedisServer::start(&[]);
    let ttl = |o: &mut BrokerOptions| o.sign_in_ttl = Duration::from_millis(300);
    let a = redis_broker_with(&redis.url(), "exp", ttl).await;
    let b = redis_broker_with(&redis.url(), "exp", ttl).await;
    let s = start_sign_in(&a.url, "echo", None).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Redis forgot it (its own expiry): an unknown state, 400.
    let (status, json) = status_json(finish(&b.url, &s, "x").await).await;
    assert_eq!(status, 400, "{json}");
    let code = json["error"]["code"].as_str().unwrap_or_default();
    assert!(["invalid_state", "state_expired"].contains(&code), "{json}");
    let mut kv = client(&redis.url()).await;
    let keys: Vec<String> = kv.keys("exp:pending:*").await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

/// 2,000 sign-ins alternating A/B at concurrency 64; each callback is raced on both
/// instances at once: exactly one of the two completes, the other is a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_sign_ins_across_two_instances_complete_exactly_once() {
    let redis = RedisServer::start(&[]);
    let a = redis_broker(&redis.url(), "load").await;
    let b = redis_broker(&redis.url(), "load").await;
    let (a_url, b_url) = (Arc::new(a.url.clone()), Arc::new(b.url.clone()));
    // One client (a connection pool) for all: building one per request costs more than the
    // sign-in itself in a debug build.
    let web = http();
    let started = Instant::now();
    let outcomes = join_all_bounded(2_000, 64, move |i| {
        let (a_url, b_url, web) = (a_url.clone(), b_url.clone(), web.clone());
        async move {
            let (first, second) = match i % 2 {
                0 => (&a_url, &b_url),
                _ => (&b_url, &a_url),
            };
            let r = web
                .get(format!("{first}/sign-in/echo"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{:?}", r.text().await);
            let location = r.headers()["location"].to_str().unwrap().to_string();
            let set_cookie = r.headers()["set-cookie"].to_str().unwrap();
            let cookie = set_cookie.split(';').next().unwrap().to_string();
            let state = host_support::query_param(&location, "state").unwrap();
            let code = format!("u{i}");
            let query = [("state", state.as_str()), ("code", code.as_str())];
            let call = |base: &str| {
                web.get(host_support::with_query(
                    &format!("{base}/callback/echo"),
                    &query,
                ))
                .header("accept", "application/json")
                .header("cookie", &cookie)
                .send()
            };
            let (x, y) = tokio::join!(call(second), call(first));
            let (x, y) = (status_json(x.unwrap()).await, status_json(y.unwrap()).await);
            let mut statuses = [x.0, y.0];
            statuses.sort();
            assert_eq!(statuses, [200, 400], "{x:?} {y:?}");
            let (ok, replay) = if x.0 == 200 { (x.1, y.1) } else { (y.1, x.1) };
            assert_eq!(replay["error"]["code"], "state_replayed");
            ok["user"]["id"].as_str().unwrap_or_default().to_string()
        }
    })
    .await;
    let elapsed = started.elapsed();
    let users: HashSet<String> = outcomes.iter().cloned().collect();
    assert_eq!(outcomes.len(), 2_000);
    assert_eq!(users.len(), 2_000, "every sign-in completed, none twice");
    assert!(users.contains("echo-u0") && users.contains("echo-u1999"));
    eprintln!("2,000 sign-ins, 4,000 raced callbacks: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    let mut kv = client(&redis.url()).await;
    let pending: Vec<String> = kv.keys("load:pending:*").await.unwrap();
    assert!(pending.is_empty(), "{} left pending", pending.len());
}

#[tokio::test]
async fn redis_lost_while_running_is_503_and_recovers_by_itself() {
    let mut redis = RedisServer::start(&[]);
    let a = redis_broker(&redis.url(), "out").await;
    let b = redis_broker(&redis.url(), "out").await;
    let (status, health) = status_json(http().get(a.at("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, &health["store"]),
        (200, &"redis".into()),
        "{health}"
    );
    let before = start_sign_in(&a.url, "echo", None).await;

    redis.stop();
    for base in [&a.url, &b.url] {
        let t = Instant::now();
        let r = http()
            .get(format!("{base}/sign-in/echo"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_error(r, 503, "store_unavailable").await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let t = Instant::now();
        assert_error(finish(base, &before, "x").await, 503, "store_unavailable").await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let (status, health) =
            status_json(http().get(format!("{base}/healthz")).send().await.unwrap()).await;
        assert_eq!(status, 503, "{health}");
        assert_eq!(
            (&health["status"], &health["store"]),
            (&"degraded".into(), &"unreachable".into())
        );
    }
    // The HTML form of the failure is a page, not a crash.
    let page = http().get(a.at("/sign-in/echo")).send().await.unwrap();
    assert_eq!(page.status(), 503);

    redis.restart();
    // Without restarting the hosts: healthy again, and the next sign-in succeeds across them.
    for base in [&a.url, &b.url] {
        let healthy = host_support::eventually(Duration::from_secs(10), || async {
            let r = http().get(format!("{base}/healthz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        assert!(healthy.is_some(), "{base} did not recover");
    }
    let s = start_sign_in(&a.url, "echo", None).await;
    assert_eq!(finish(&b.url, &s, "back").await.status(), 200);
    // The sign-in pending when Redis died is gone with it (no persistence here): refused.
    assert_error(finish(&b.url, &before, "x").await, 400, "invalid_state").await;
}

#[tokio::test]
async fn password_from_the_environment_and_config_errors_at_start() {
    let redis = RedisServer::start(&["--requirepass", "pw-s3cret"]);
    let port = redis.port;
    let rest = |url: &str| {
        format!(
            "session_store = \"{url}\"\n{}",
            echo_connector("echo", "Hello", None)
        )
    };
    let env = |name: &str| (name == "HX_REDIS_PW").then(|| "pw-s3cret".to_string());
    let with_pw = rest(&format!("redis://:${{HX_REDIS_PW}}@127.0.0.1:{port}/0"));
    let b = TestBroker::open_with(echo_dir(), &with_pw, env, |_| {})
        .await
        .expect("starts with the password from the environment");
    let s = start_sign_in(&b.url, "echo", None).await;
    assert_eq!(finish(&b.url, &s, "pw").await.status(), 200);
    // The prefix defaults to `host-example`.
    let mut kv = client(&format!("redis://:pw-s3cret@127.0.0.1:{port}/0")).await;
    let _: () = kv.set("probe", "1").await.unwrap();
    let used: Vec<String> = kv.keys("host-example:used:*").await.unwrap();
    assert_eq!(used.len(), 1);

    // A wrong password: refused at start, the message naming the URL without the password.
    let wrong = rest(&format!("redis://:wrong-pw@127.0.0.1:{port}/0"));
    let e = match TestBroker::open_with(echo_dir(), &wrong, |_| None, |_| {}).await {
        Ok(_) => panic!("started with a wrong password"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{e}"
    );
    assert!(!e.contains("wrong-pw"), "{e}");

    // Nothing listening: refused at start, clearly.
    let dead = free_port();
    let e = match TestBroker::open_with(
        echo_dir(),
        &rest(&format!("redis://127.0.0.1:{dead}/0")),
        |_| None,
        |_| {},
    )
    .await
    {
        Ok(_) => panic!("started without Redis"),
        Err(e) => e,
    };
    assert!(matches!(e, StartError::Store(_)), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "cannot reach the session store redis://127.0.0.1:{dead}/0"
        )),
        "{e}"
    );

    // A URL that is not Redis's, a variable not set: config errors.
    for (url, expect) in [
        (
            "http://127.0.0.1:1",
            "`session_store` must be a `redis://host:port/db` URL",
        ),
        (
            "redis://:${NOT_SET_PW}@h/0",
            "needs environment variable `NOT_SET_PW`",
        ),
    ] {
        let e = match TestBroker::open_with(echo_dir(), &rest(url), |_| None, |_| {}).await {
            Ok(_) => panic!("started with {url}"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(expect), "{e}");
    }

    // Never a silent fallback: the synchronous start, given the in-memory store for a config
    // that names a session store, refuses.
    let config = BrokerConfig::parse(
        &format!(
            "public_url = \"http://127.0.0.1:1\"\n{}",
            rest(&redis.url())
        ),
        |_| None,
    )
    .unwrap();
    let dir = echo_dir();
    let e = match Broker::start(config, BrokerOptions::new(dir.path())) {
        Ok(_) => panic!("started on memory despite session_store"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("memory store"), "{e}");
    let bad = BrokerConfig::parse(
        "public_url = \"http://x\"\nsession_prefix = \"a:b\"",
        |_| None,
    );
    assert_eq!(bad, Err(ConfigError::SessionPrefix("a:b".into())));
}

#[tokio::test]
async fn the_executable_refuses_to_start_without_redis() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = echo_dir();
    let config = dir.path().join("broker.toml");
    let dead = free_port();
    std::fs::write(
        &config,
        format!(
            "public_url = \"http://127.0.0.1:1\"\nsession_store = \"redis://:${{HX_PW}}@127.0.0.1:{dead}/0\"\n{}",
            echo_connector("echo", "Hello", None)
        ),
    )
    .unwrap();
    let plugins_arg = plugins.path().display().to_string();
    let config_arg = config.display().to_string();
    let args = [
        "serve",
        "--plugins",
        &plugins_arg,
        "--config",
        &config_arg,
        "--listen",
        "127.0.0.1:0",
    ];
    let err = match Host::spawn(&args, &[("HX_PW", "pw-hidden")]) {
        Ok(_) => panic!("host-example started without Redis"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!(
            "cannot reach the session store redis://:***@127.0.0.1:{dead}/0"
        )),
        "{err}"
    );
    assert!(!err.contains("pw-hidden"), "{err}");
}

#[tokio::test]
async fn the_default_store_is_memory() {
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;
    let (status, health) = status_json(http().get(b.at("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, &health["store"]),
        (200, &"memory".into()),
        "{health}"
    );
    assert_eq!(health["status"], "ok");
    assert_eq!(b.broker.config().session_store, None);
    assert_eq!(b.broker.store().kind(), "memory");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Runs `count` tasks, at most `limit` at a time, and collects their outputs (in no order).
mod futures_util_shim {
    use std::sync::Arc;

    pub async fn join_all_bounded<T, F, Fut>(count: usize, limit: usize, make: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(usize) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let permits = Arc::new(tokio::sync::Semaphore::new(limit));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let task = make(i);
            tasks.spawn(async move {
                let out = task.await;
                drop(permit);
                out
            });
        }
        let mut outputs = Vec::with_capacity(count);
        while let Some(done) = tasks.join_next().await {
            outputs.push(done.expect("a sign-in task panicked"));
        }
        outputs
    }
}
